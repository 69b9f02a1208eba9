"""Upsampling edge cases: near-silent input, the LFR level ratio."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from conftest import SR, white_noise

from saga_sr_plugin.inference.postprocess import _stft, level_ratio
from saga_sr_plugin.inference.settings import UpsampleSettings
from saga_sr_plugin.inference.upsampler import Upsampler


def test_near_silent_input_does_not_come_out_as_audible_noise(demo_model_files):
    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    dither = 10 ** (-90 / 20) * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    rms_db = lambda x: 20 * math.log10(float(x.pow(2).mean().sqrt()) + 1e-20)
    enveloped = upsampler.upsample(dither, 16000, caption="", settings=upsampler.settings(steps=2))
    assert rms_db(enveloped.audio) < rms_db(dither) + 13, (rms_db(enveloped.audio), rms_db(dither))
    # the cap alone (the paper's configs have no envelope matching)
    cap_only = dataclasses.replace(upsampler.settings(steps=2), envelope_margin_db=None)
    result = upsampler.upsample(dither, 16000, caption="", settings=cap_only)
    assert rms_db(result.audio) < rms_db(dither) + 13, (rms_db(result.audio), rms_db(dither))
    assert result.added_band_gain_db < 0
    loud = upsampler.upsample(0.3 * dither / dither.abs().max(), 16000, caption="",
                              settings=dataclasses.replace(cap_only, max_added_band_db=None))
    assert loud.added_band_gain_db == 0.0


def test_lfr_level_ratio_is_the_magnitude_ratio_at_the_cutoff_bin():
    ref = white_noise(0.5, seed=1)
    out = 0.7 * white_noise(0.5, seed=2)
    spec_ref, spec_out = _stft(ref.double(), 2048, 512), _stft(out.double(), 2048, 512)
    c = 200
    expected = spec_ref[:, c].abs().sum() / spec_out[:, c].abs().sum()
    assert float(level_ratio(spec_ref, spec_out, c, "cutoff_magnitude")) == pytest.approx(float(expected))
    assert UpsampleSettings().lfr_ratio_rule == "cutoff_magnitude"


def test_envelope_matching_brings_a_loud_steady_added_band_to_the_inputs_slope_and_timing():
    from conftest import lowpassed, white_noise

    from saga_sr_plugin.evaluation.levels import added_band_levels
    from saga_sr_plugin.inference.postprocess import replace_low_frequencies

    gate = (torch.arange(SR) // 4410 % 2).double().float()  # 100 ms on, 100 ms off
    reference = white_noise(1.0, seed=3) * gate
    lowres = lowpassed(reference, 4000)
    # the "model": the input plus steady hiss above 4 kHz, 20 dB louder than the reference there
    hiss = white_noise(1.0, seed=4) - lowpassed(white_noise(1.0, seed=4), 4000)
    generated = lowres + 10 * hiss * (reference - lowres).pow(2).mean().sqrt() / hiss.pow(2).mean().sqrt()
    cut = int(4000 / (SR / 2048))
    plain = replace_low_frequencies(generated, lowres, cutoff_bin=cut, max_added_band_db=None).audio
    matched = replace_low_frequencies(generated, lowres, cutoff_bin=cut, max_added_band_db=None,
                                      envelope_margin_db=3.0).audio
    assert min(added_band_levels(plain, reference, 4000).values()) > 15
    assert all(abs(v) < 4.5 for v in added_band_levels(matched, reference, 4000).values())
    high = matched - lowpassed(matched, 4500)
    on, off = high[:, gate > 0].pow(2).mean(), high[:, gate == 0].pow(2).mean()
    assert 10 * math.log10(on / off) > 10, "the added band follows the input's gating"


def test_the_content_edge_ignores_a_resamplers_leak_above_a_cliff():
    from conftest import lowpassed, white_noise

    from saga_sr_plugin.data.simulation import content_edge_bin, summed_magnitude

    band_limited = lowpassed(white_noise(1.0, seed=5), 4000)
    leak = 10 ** (-50 / 20) * (white_noise(1.0, seed=6) - lowpassed(white_noise(1.0, seed=6), 12000))
    edge_hz = content_edge_bin(summed_magnitude(band_limited + leak)) * SR / 2048
    assert 3800 < edge_hz < 4300
    assert content_edge_bin(summed_magnitude(white_noise(1.0, seed=7))) > 1000, "a full-band input has no cliff"
