"""Upsampling: schedule, eq. 4 guidance, low-frequency replacement, windows, any input, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, demo_config, lowpassed, white_noise

from saga_sr_plugin.data.audio_io import read_audio
from saga_sr_plugin.data.audio_format import BadAudioError
from saga_sr_plugin.data.spectral import rolloff_bin
from saga_sr_plugin.inference.postprocess import replace_low_frequencies
from saga_sr_plugin.inference.settings import UpsampleSettings
from saga_sr_plugin.inference.sampling import (
    combine_guidance,
    linear_quadratic_schedule,
    make_guided_model,
)
from saga_sr_plugin.inference.upsampler import Upsampler
from saga_sr_plugin.inference.windows import process_in_windows
from saga_sr_plugin.interface import cli


# ---------------------------------------------------------------- schedule
@pytest.mark.parametrize("steps", [2, 10, 30, 100, 101])
def test_linear_quadratic_schedule_shape(steps):
    t = linear_quadratic_schedule(steps).double()
    assert t.shape == (steps + 1,) and t[0] == 1.0 and t[-1] == 0.0
    assert (t[1:] < t[:-1]).all(), "time must fall strictly from noise (1) to data (0)"
    s = 1 - t  # Movie Gen's direction
    n_lin = steps // 2
    lin = torch.diff(s[: n_lin + 1])
    assert torch.allclose(lin, torch.full_like(lin, 0.025 / n_lin), atol=1e-6)  # linear part
    if steps - n_lin >= 3:
        quad = torch.diff(s[n_lin:], n=2)
        assert torch.allclose(quad, quad[0].expand_as(quad), atol=1e-6) and quad[0] > 0  # quadratic part
        assert torch.diff(s[n_lin - 1: n_lin + 2])[1] == pytest.approx(0.025 / n_lin + quad[0].item() / 2, abs=1e-6)


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError):
        linear_quadratic_schedule(1)
    with pytest.raises(ValueError):
        linear_quadratic_schedule(10, threshold=1.5)


# ---------------------------------------------------------------- guidance
class KnownDiT:
    """A 'model' whose output is a known function of every input; records its calls."""

    def __init__(self):
        self.batch_sizes = []

    def f(self, x, t, concat, cross, glob):
        return (x * (1 + t[:, None, None]) + 3 * concat + cross.sum(dim=(1, 2))[:, None, None] ** 2
                + 0.5 * glob.sum(dim=1)[:, None, None])

    def __call__(self, x, t, cross_attn_cond=None, input_concat_cond=None, global_cond=None, cfg_scale=None,
                 cfg_dropout_prob=None, **_):
        assert cfg_scale == 1.0 and cfg_dropout_prob == 0.0, "the official single-scale CFG must be off"
        self.batch_sizes.append(x.shape[0])
        return self.f(x, t, input_concat_cond, cross_attn_cond, global_cond)


def test_guidance_is_eq4_in_one_batched_forward():
    torch.manual_seed(0)
    b = 2
    x, t = torch.randn(b, 4, 6), torch.rand(b)
    zl, null = torch.randn(b, 4, 6), torch.full((b, 4, 6), -5.0)
    cross, glob = torch.randn(b, 5, 3), torch.randn(b, 8)
    inputs = {"input_concat_cond": zl, "cross_attn_cond": cross, "cross_attn_mask": torch.ones(b, 5),
              "global_cond": glob, "prepend_cond": None, "prepend_cond_mask": None}
    dit = KnownDiT()
    out = make_guided_model(dit, inputs, null, 1.4, 1.2)(x, t)
    zero = torch.zeros_like(cross)
    u0 = dit.f(x, t, null, zero, glob)       # u(0, 0): roll-off (global) still present
    ua = dit.f(x, t, zl, zero, glob)         # u(z_l, 0)
    uf = dit.f(x, t, zl, cross, glob)        # u(z_l, c)
    expected = u0 + 1.4 * (ua - u0) + 1.2 * (uf - ua)
    assert torch.allclose(out, expected, atol=1e-5)
    assert dit.batch_sizes == [3 * b], "three terms must be ONE forward of 3B items"


def test_combine_guidance_reduces_to_conditional_at_unit_scales():
    a, b, c = torch.randn(3, 4)
    assert torch.allclose(combine_guidance(a, b, c, 1.0, 1.0), c)
    assert torch.allclose(combine_guidance(a, b, c, 0.0, 0.0), a)


# ---------------------------------------------------------------- low-frequency replacement
def test_lfr_restores_the_input_low_band_and_keeps_the_generated_high_band():
    lowres = lowpassed(white_noise(1.0, seed=1), 4000)
    generated = lowpassed(white_noise(1.0, seed=2), 4000) + (white_noise(1.0, seed=3) - lowpassed(white_noise(1.0, seed=3), 4000))
    result = replace_low_frequencies(generated, lowres)
    assert 0.8 <= result.level_ratio <= 1.2 and result.band_gain_db == 0.0
    cut = result.cutoff_bin
    assert abs(cut * SR / 2048 - 4000) < 300
    # compared as waveforms band-limited away from the boundary (an STFT edit is not an exact STFT)
    gain = 1 / result.level_ratio
    low_err = lowpassed(result.audio - gain * lowres, 3500).pow(2).mean() / lowpassed(lowres, 3500).pow(2).mean()
    assert low_err < 1e-4, low_err
    high = lambda x: x - lowpassed(x, 4600)
    high_err = high(result.audio - generated).pow(2).mean() / high(generated).pow(2).mean()
    assert high_err < 1e-4, high_err
    # the generated low band (seed 2) is gone
    assert lowpassed(result.audio - generated, 3500).pow(2).mean() > 0.1 * lowpassed(generated, 3500).pow(2).mean()


@pytest.mark.parametrize("rule", ["cutoff_magnitude", "band_energy", "output_to_input"])
def test_lfr_level_ratio_is_clamped(rule):
    lowres = lowpassed(white_noise(0.5, seed=1), 4000)
    assert replace_low_frequencies(3 * lowres, lowres, None,
                                   UpsampleSettings(lfr_ratio_rule=rule)).level_ratio == pytest.approx(0.8)
    assert replace_low_frequencies(0.1 * lowres, lowres, None,
                                   UpsampleSettings(lfr_ratio_rule=rule)).level_ratio == pytest.approx(1.2)
    assert replace_low_frequencies(1.1 * lowres, lowres, None,
                                   UpsampleSettings(lfr_ratio_rule=rule)).level_ratio == pytest.approx(1 / 1.1, rel=1e-3)


def test_lfr_at_the_content_edge_boosts_the_kept_band_unless_the_ratio_rule_is_none():
    """At the input's content edge its own transition band makes r hit the 0.8 clamp (+1.9 dB); "none" keeps it."""
    lowres = lowpassed(white_noise(1.0, seed=1), 4000)
    generated = white_noise(1.0, seed=2)  # full band, full level at the edge
    edge = 4000 * 2048 // SR + 1  # the bin where the input falls off: its content edge
    level_db = lambda x: 10 * torch.log10(lowpassed(x, 3500).pow(2).mean() / lowpassed(lowres, 3500).pow(2).mean())
    boosted = replace_low_frequencies(generated, lowres, edge, UpsampleSettings(lfr_ratio_rule="cutoff_magnitude"))
    assert boosted.level_ratio == pytest.approx(0.8) and float(level_db(boosted.audio)) == pytest.approx(1.94, abs=0.05)
    kept = replace_low_frequencies(generated, lowres, edge, UpsampleSettings(lfr_ratio_rule="none"))
    assert kept.level_ratio == 1.0 and abs(float(level_db(kept.audio))) < 0.01


def test_lfr_output_to_input_keeps_the_input_and_corrects_the_generated_band():
    """A model output 2 dB too loud everywhere: band_energy brings the kept band up to it (+2 dB);
    output_to_input keeps the input exact and takes the generated band down by the same 2 dB."""
    reference = white_noise(1.0, seed=3)
    lowres = lowpassed(reference, 4000)
    generated = 10 ** (2 / 20) * reference  # right content, 2 dB too loud
    edge = 4000 * 2048 // SR
    low_db = lambda x: float(10 * torch.log10(lowpassed(x, 3500).pow(2).mean() / lowpassed(lowres, 3500).pow(2).mean()))
    high = lambda x: x - lowpassed(x, 4600)
    high_db = lambda x: float(10 * torch.log10(high(x).pow(2).mean() / high(reference).pow(2).mean()))
    joined = replace_low_frequencies(generated, lowres, edge, UpsampleSettings(lfr_ratio_rule="band_energy"))
    assert low_db(joined.audio) == pytest.approx(2.0, abs=0.1) and high_db(joined.audio) == pytest.approx(2.0, abs=0.1)
    fixed = replace_low_frequencies(generated, lowres, edge, UpsampleSettings(lfr_ratio_rule="output_to_input"))
    assert fixed.level_ratio == pytest.approx(10 ** (-2 / 20), rel=0.02)
    assert abs(low_db(fixed.audio)) < 0.05 and abs(high_db(fixed.audio)) < 0.1


# ---------------------------------------------------------------- windows
@pytest.mark.parametrize("length", [1000, 4096, 4097, 30000])
def test_windowed_equals_single_pass_for_a_position_independent_model(length):
    x = white_noise(length / SR)
    pointwise = lambda w, i: torch.tanh(2 * w) + 0.1 * w**2
    out = process_in_windows(x, window=4096, overlap=512, fn=pointwise)
    assert out.shape == x.shape
    assert torch.allclose(out, pointwise(x, 0), atol=1e-6)


# ---------------------------------------------------------------- the real pipeline on the demo model
@pytest.fixture(scope="module")
def upsampler(demo_model_files):
    return Upsampler.load(*demo_model_files, device="cpu")


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 32000, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_any_rate_and_channel_count_gives_44k1_of_the_same_duration(upsampler, rate, channels):
    n = int(0.3 * rate)
    x = 0.3 * torch.randn(channels, n, generator=torch.Generator().manual_seed(rate))
    result = upsampler.upsample(x, rate, caption="a tone", settings=upsampler.settings(steps=2))
    assert result.sample_rate == 44100
    assert result.audio.shape == (channels, round(n * 44100 / rate))
    assert torch.isfinite(result.audio).all()
    if rate < 44100:
        assert result.input_cutoff_hz < rate / 2 + 500


def test_long_input_runs_in_windows(upsampler):
    x = 0.3 * torch.randn(2, 30 * 16000, generator=torch.Generator().manual_seed(0))
    result = upsampler.upsample(x, 16000, caption="", settings=upsampler.settings(steps=2))
    assert result.audio.shape == (2, 30 * 44100) and torch.isfinite(result.audio).all()


def test_same_seed_same_output_and_lfr_switch(upsampler):
    x = 0.3 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    a = upsampler.upsample(x, 8000, caption="", settings=upsampler.settings(steps=3, seed=5))
    b = upsampler.upsample(x, 8000, caption="", settings=upsampler.settings(steps=3, seed=5))
    c = upsampler.upsample(x, 8000, caption="", settings=upsampler.settings(steps=3, seed=5, low_frequency_replacement=False))
    assert torch.equal(a.audio, b.audio) and not torch.allclose(a.audio, c.audio)
    assert c.lfr_level_ratio is None and a.lfr_level_ratio is not None


@pytest.mark.parametrize("audio, rate, message", [
    (torch.zeros(2, 8000), 16000, "silent"),
    (torch.full((2, 8000), float("nan")), 16000, "NaN"),
    (torch.randn(6, 8000), 16000, "6 channels"),
    (torch.randn(2, 8000), 2000, "below the supported"),
    (torch.randn(1, 1), 16000, "too short"),
])
def test_bad_audio_is_a_clear_error(upsampler, audio, rate, message):
    with pytest.raises(BadAudioError, match=message):
        upsampler.upsample(audio, rate, caption="")


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(BadAudioError, match="corrupt.wav: cannot decode"):
        read_audio(tmp_path / "corrupt.wav")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2), dtype=np.float32), 16000)
    with pytest.raises(BadAudioError, match="empty.wav: the file holds no samples"):
        read_audio(tmp_path / "empty.wav")


def test_cli_upsample_writes_audio_and_spectrograms(demo_model_files, tmp_path, capsys):
    config, weights = demo_model_files
    sf.write(tmp_path / "in.wav", 0.3 * np.random.default_rng(0).standard_normal((8000, 1)).astype(np.float32), 16000)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    code = cli.main(["upsample", str(tmp_path / "in.wav"), str(tmp_path / "bad.wav"), "-o", str(tmp_path / "out"),
                     "--model-config", config, "--weights", weights, "--steps", "2", "--no-caption", "--plot"])
    assert code == 1  # one input failed, and the run said so
    err = capsys.readouterr().err
    assert "bad.wav" in err and "upsampled 1 of 2 file(s); 1 failed: " in err
    audio, sr = sf.read(tmp_path / "out" / "in_saga_sr.wav", always_2d=True)
    assert sr == 44100 and audio.shape == (22050, 1)
    assert (tmp_path / "out" / "in_saga_sr.png").stat().st_size > 10_000


@pytest.mark.parametrize("suffix, rate", [(".mp3", 22050), (".ogg", 16000), (".flac", 32000)])
def test_compressed_formats_are_read(tmp_path, suffix, rate):
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    sf.write(tmp_path / f"in{suffix}", np.stack([x, x], axis=1), rate)
    audio, sr = read_audio(tmp_path / f"in{suffix}")
    assert sr == rate and audio.shape[0] == 2 and abs(audio.shape[1] - rate) < 0.1 * rate


# ---------------------------------------------------------------- batched windows
def test_batched_windows_equal_one_at_a_time(upsampler):
    """A 2 s input is ~12 windows of the test model: batches of 5 (and of all) give the sequential output."""
    x = 0.3 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(3))
    outputs = [upsampler.upsample(x, 16000, caption="a tone", settings=upsampler.settings(steps=3, batch_size=b)).audio
               for b in (1, 5, 64)]
    assert outputs[0].shape == (2, 88200)
    for other in outputs[1:]:
        assert torch.allclose(other, outputs[0], atol=1e-5), (other - outputs[0]).abs().max()


def test_windows_of_several_inputs_share_batches_without_changing_any_output(upsampler):
    from saga_sr_plugin.inference.upsampler import UpsampleJob

    g = torch.Generator().manual_seed(4)
    inputs = [(0.3 * torch.randn(2, n, generator=g), rate) for n, rate in ((8000, 16000), (30000, 22050), (3000, 8000))]
    alone = [upsampler.upsample(a, r, caption="", settings=upsampler.settings(steps=3, batch_size=1)).audio
             for a, r in inputs]
    bad = UpsampleJob("silent", lambda: (torch.zeros(2, 8000), 16000), "")
    jobs = [UpsampleJob(f"in{i}", (lambda a=a, r=r: (a, r)), "") for i, (a, r) in enumerate(inputs)]
    results = list(upsampler.upsample_many([jobs[0], bad, jobs[1], jobs[2]], upsampler.settings(steps=3, batch_size=4)))
    assert [job.name for job, _ in results] == ["in0", "silent", "in1", "in2"]
    assert isinstance(results[1][1], BadAudioError) and "silent" in str(results[1][1])
    for expected, (_, result) in zip(alone, [results[0], results[2], results[3]]):
        assert torch.allclose(result.audio, expected, atol=1e-5)


# ---------------------------------------------------------------- LFR boundary
def test_content_edge_finds_where_a_band_limited_input_ends():
    from saga_sr_plugin.data.spectral import content_edge_bin, rolloff_bin_of_spectrum, summed_magnitude
    from saga_sr_plugin.evaluation.protocol import simulate_input

    g = torch.Generator().manual_seed(0)
    # speech-like: energy falls 12 dB per octave above 300 Hz, so the 98.5 % roll-off sits far below the cutoff
    spec = torch.fft.rfft(torch.randn(2, 44100, generator=g))
    f = torch.fft.rfftfreq(44100, 1 / SR)
    speechy = torch.fft.irfft(spec / (1 + (f / 300) ** 2), n=44100)
    for cutoff in (4000, 8000):
        lowres = simulate_input(0.3 * speechy / speechy.abs().max(), cutoff, seed=1, name="x")
        spectrum = summed_magnitude(lowres)
        edge_hz = content_edge_bin(spectrum) * SR / 2048
        assert abs(edge_hz - cutoff) < 0.1 * cutoff, (edge_hz, cutoff)
        assert rolloff_bin_of_spectrum(spectrum) * SR / 2048 < 0.8 * cutoff


def test_lfr_boundary_setting_is_validated(upsampler):
    assert upsampler.settings().lfr_boundary in ("rolloff", "content")
    with pytest.raises(ValueError, match="lfr_boundary"):
        upsampler.settings(lfr_boundary="edge")
    x = 0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(2))
    a = upsampler.upsample(x, 16000, caption="", settings=upsampler.settings(steps=2, lfr_boundary="rolloff"))
    b = upsampler.upsample(x, 16000, caption="", settings=upsampler.settings(steps=2, lfr_boundary="content"))
    assert b.input_cutoff_hz >= a.input_cutoff_hz
