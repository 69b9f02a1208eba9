"""Upsampling edge cases: near-silent input, the LFR level ratio."""
from __future__ import annotations

import math
import pytest
import torch

from conftest import white_noise
from saga_sr_plugin.inference.upsampler import Upsampler
from saga_sr_plugin.inference.settings import UpsampleSettings
from saga_sr_plugin.inference.postprocess import level_ratio, _stft


def test_near_silent_input_does_not_come_out_as_audible_noise(demo_model_files):
    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    dither = 10 ** (-90 / 20) * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    result = upsampler.upsample(dither, 16000, caption="", settings=upsampler.settings(steps=2))
    rms_db = lambda x: 20 * math.log10(float(x.pow(2).mean().sqrt()) + 1e-20)
    assert rms_db(result.audio) < rms_db(dither) + 13, (rms_db(result.audio), rms_db(dither))
    assert result.added_band_gain_db < 0
    loud = upsampler.upsample(0.3 * dither / dither.abs().max(), 16000, caption="", settings=upsampler.settings(
        steps=2, max_added_band_db=None))
    assert loud.added_band_gain_db == 0.0


def test_lfr_level_ratio_is_the_magnitude_ratio_at_the_cutoff_bin():
    ref = white_noise(0.5, seed=1)
    out = 0.7 * white_noise(0.5, seed=2)
    spec_ref, spec_out = _stft(ref.double(), 2048, 512), _stft(out.double(), 2048, 512)
    c = 200
    expected = spec_ref[:, c].abs().sum() / spec_out[:, c].abs().sum()
    assert float(level_ratio(spec_ref, spec_out, c, "cutoff_magnitude")) == pytest.approx(float(expected))
    assert UpsampleSettings().lfr_ratio_rule == "cutoff_magnitude"
