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
    plain = replace_low_frequencies(generated, lowres, cut, UpsampleSettings(max_added_band_db=None)).audio
    matched = replace_low_frequencies(generated, lowres, cut,
                                      UpsampleSettings(max_added_band_db=None, envelope_margin_db=3.0)).audio
    assert min(added_band_levels(plain, reference, 4000).values()) > 15
    assert all(abs(v) < 4.5 for v in added_band_levels(matched, reference, 4000).values())
    high = matched - lowpassed(matched, 4500)
    on, off = high[:, gate > 0].pow(2).mean(), high[:, gate == 0].pow(2).mean()
    assert 10 * math.log10(on / off) > 10, "the added band follows the input's gating"


def test_the_content_edge_ignores_a_resamplers_leak_above_a_cliff():
    from conftest import lowpassed, white_noise

    from saga_sr_plugin.data.spectral import content_edge_bin, summed_magnitude

    band_limited = lowpassed(white_noise(1.0, seed=5), 4000)
    leak = 10 ** (-50 / 20) * (white_noise(1.0, seed=6) - lowpassed(white_noise(1.0, seed=6), 12000))
    edge_hz = content_edge_bin(summed_magnitude(band_limited + leak)) * SR / 2048
    assert 3800 < edge_hz < 4300
    assert content_edge_bin(summed_magnitude(white_noise(1.0, seed=7))) > 1000, "a full-band input has no cliff"


# ---------------------------------------------------------------- outputs do not clip (issue 29, item 3)
def _tone_and_model_band(tone: torch.Tensor, level: float = 0.01) -> torch.Tensor:
    """A stand-in model output: the tone, plus noise above 2 kHz at ``level`` rms (what a model adds)."""
    noise = torch.randn(tone.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    spectrum = torch.fft.rfft(noise)
    spectrum[..., torch.fft.rfftfreq(tone.shape[-1], 1 / SR) < 2000] = 0
    band = torch.fft.irfft(spectrum, n=tone.shape[-1])
    return tone + band / band.pow(2).mean().sqrt() * level


@pytest.mark.parametrize("kind", ["sine", "sweep"])
def test_envelope_matching_adds_no_broadband_band_a_tone_does_not_ask_for(kind):
    from saga_sr_plugin.inference.postprocess import replace_low_frequencies

    t = torch.arange(32768, dtype=torch.float64) / SR
    phase = 1000 * t if kind == "sine" else 2000 * t + 3000 * t ** 2     # a sweep from 2 to 4 kHz
    tone = (0.5 * torch.sin(2 * math.pi * phase)).repeat(2, 1)
    cutoff = 67 if kind == "sine" else 200   # bins: 1.4 kHz (the sine's detected edge), 4.3 kHz
    out = replace_low_frequencies(_tone_and_model_band(tone), tone, cutoff,
                                  UpsampleSettings(lfr_ratio_rule="output_to_input", envelope_margin_db=1.5)).audio
    # before: the tone's mean bin power continued over every bin above the cutoff as noise (peak 2.4), and the
    # reflected padding of the STFT's end frames raised clicks there
    assert out.abs().max() < 0.6, float(out.abs().max())
    assert max(out[:, :200].abs().max(), out[:, -200:].abs().max()) < 0.6


def test_peak_safe_scales_only_what_would_clip():
    from saga_sr_plugin.inference.upsampler import peak_safe

    x = torch.tensor([[0.5, -2.0, 1.0]])
    y, gain = peak_safe(x, -0.1)
    assert abs(float(y.abs().max()) - 10 ** (-0.1 / 20)) < 1e-6 and abs(gain - (-0.1 - 20 * math.log10(2))) < 1e-9
    assert peak_safe(0.4 * x, -0.1)[1] == 0.0 and torch.equal(peak_safe(x, None)[0], x)


def test_a_loud_model_output_is_scaled_with_a_note_or_written_as_float(demo_model_files, tmp_path, monkeypatch,
                                                                        caplog, capsys):
    import soundfile as sf

    from saga_sr_plugin.interface import cli

    def too_loud(self, windows, captions, settings, seeds, progress=False, on_step=None, target_rolloffs=None):
        return torch.stack([3.0 * w.float() for w in windows])     # a model whose output is 3x the input
    monkeypatch.setattr(Upsampler, "generate_windows", too_loud)
    wav = tmp_path / "in.wav"
    sf.write(wav, 0.9 * torch.sin(torch.arange(16000) / 16000 * 2 * math.pi * 440).numpy(), 16000)
    args = [str(wav), "--model-config", demo_model_files[0], "--weights", demo_model_files[1], "--no-caption",
            "--steps", "2", "--no-lfr"]
    with caplog.at_level("INFO"):
        assert cli.main(["upsample", *args, "-o", str(tmp_path / "a")]) == 0
    scaled, _ = sf.read(tmp_path / "a" / "in_saga_sr.wav")
    assert 0.95 < abs(scaled).max() <= 1.0 and "so it does not clip" in caplog.text + capsys.readouterr().out
    assert cli.main(["upsample", *args, "-o", str(tmp_path / "b"), "--no-peak-limit"]) == 0
    info = sf.info(tmp_path / "b" / "in_saga_sr.wav")
    kept, _ = sf.read(tmp_path / "b" / "in_saga_sr.wav")
    assert info.subtype == "FLOAT" and abs(kept).max() > 2.0


# ---------------------------------------------------------------- raw beside processed, the band-limit boundary
def test_variants_post_process_the_same_sampling(demo_model_files):
    from saga_sr_plugin.inference.upsampler import UpsampleJob, raw_settings

    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    settings = upsampler.settings(steps=2)
    audio = white_noise(0.4, seed=5)
    both = upsampler.upsample_many([UpsampleJob("x", lambda: (audio, 16000))], settings,
                                   variants={"raw": raw_settings(settings)})
    _, result = next(both)
    alone_raw = upsampler.upsample(audio, 16000, caption="", settings=raw_settings(settings)).audio
    alone = upsampler.upsample(audio, 16000, caption="", settings=settings).audio
    assert torch.allclose(result.variants["raw"], alone_raw, atol=1e-6) and torch.allclose(result.audio, alone, atol=1e-6)
    assert not torch.allclose(result.audio, result.variants["raw"], atol=1e-3)
    with pytest.raises(ValueError, match="changes the sampling \\(steps\\)"):
        next(upsampler.upsample_many([], settings, variants={"bad": dataclasses.replace(settings, steps=3)}))


def test_the_band_limit_boundary_keeps_the_inputs_own_quiet_content_below_the_given_cutoff(demo_model_files):
    """The ring case of issue 25: content quieter than the edge rule sees, under the cutoff, is the input's own."""
    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    g = torch.Generator().manual_seed(0)
    n = SR
    spectrum = torch.fft.rfft(torch.randn(2, n, generator=g, dtype=torch.float64))
    freqs = torch.fft.rfftfreq(n, 1 / SR)
    spectrum *= torch.where(freqs < 3000, 1.0, 10 ** (-50 / 20)) * (freqs < 7900)   # a quiet band 3-7.9 kHz
    lowres = (0.3 * torch.fft.irfft(spectrum, n=n) / torch.fft.irfft(spectrum, n=n).abs().max()).float()

    def band(x: torch.Tensor) -> torch.Tensor:
        s = torch.fft.rfft(x.double())
        return s[..., (freqs > 3600) & (freqs < 7400)]

    outputs = {}
    for boundary in ("content", "band_limit"):
        settings = dataclasses.replace(upsampler.settings(steps=2), lfr_boundary=boundary, envelope_margin_db=None)
        result = upsampler.upsample(lowres, SR, caption="", settings=settings, nyquist_hz=8000)
        outputs[boundary] = (result.input_cutoff_hz, band(result.audio))
    assert outputs["content"][0] < 3600 < 7900 < outputs["band_limit"][0] <= 8000
    kept = (outputs["band_limit"][1] - band(lowres)).abs().pow(2).sum() / band(lowres).abs().pow(2).sum()
    replaced = (outputs["content"][1] - band(lowres)).abs().pow(2).sum() / band(lowres).abs().pow(2).sum()
    assert kept < 0.2 < 100 < replaced, (float(kept), float(replaced))   # kept: within leakage of the added band


# ---------------------------------------------------------------- the ring case (issue 25, item 4)
def _ring(seconds: float = 1.0) -> torch.Tensor:
    """A ring's spectrum: loud partials to 3.1 kHz, a gap, and its own quiet partials at 5.5 and 7 kHz (62 dB down)."""
    from conftest import sine
    parts = [(1000, 0.5), (2600, 0.05), (3100, 0.05), (5500, 0.5 * 10 ** (-62 / 20)), (7000, 0.5 * 10 ** (-62 / 20))]
    return sum(sine(f, seconds, amp=a) for f, a in parts).double()


def test_the_lfr_boundary_keeps_the_inputs_own_partials_past_a_gap_below_the_known_limit():
    from conftest import lowpassed

    from saga_sr_plugin.data.spectral import content_edge_bin, own_content_end_bin, summed_magnitude

    spectrum = summed_magnitude(lowpassed(_ring(), 8000))
    edge = content_edge_bin(spectrum)
    assert edge * SR / 2048 < 4500, "the content edge stops at the gap (what threw the ring's partials away)"
    assert own_content_end_bin(spectrum, edge, int(8000 / (SR / 2048))) * SR / 2048 > 7000
    # a low-pass's transition band only falls: nothing past it is taken for the input's own content
    noise = summed_magnitude(lowpassed(white_noise(1.0, seed=3), 3000))
    noise_edge = content_edge_bin(noise)
    assert own_content_end_bin(noise, noise_edge, int(8000 / (SR / 2048))) == noise_edge


def test_upsampling_a_ring_at_16_khz_leaves_its_partials_below_8_khz_as_they_came(demo_model_files):
    import torchaudio.functional as AF

    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    ring16k = AF.resample(_ring().float(), SR, 16000)
    settings = dataclasses.replace(upsampler.settings(steps=2), lfr_boundary="content", peak_limit_dbfs=None)
    result = upsampler.upsample(ring16k, 16000, caption="", settings=settings)
    assert result.input_cutoff_hz > 7000, result.input_cutoff_hz
    spec_in = _stft(AF.resample(ring16k.double(), 16000, SR), 2048, 512).abs().pow(2).mean(dim=(0, 2))
    spec_out = _stft(result.audio.double()[..., :spec_in.shape[-1] * 512], 2048, 512).abs().pow(2).mean(dim=(0, 2))
    for hz in (5500, 7000):
        b = round(hz / (SR / 2048))
        level_in, level_out = (10 * math.log10(float(s[b - 2:b + 3].sum())) for s in (spec_in, spec_out))
        assert abs(level_out - level_in) < 1.0, (hz, level_in, level_out)
