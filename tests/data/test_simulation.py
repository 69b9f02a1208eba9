"""Low-res simulation and roll-off, measured on spectra."""
from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch
from scipy import signal
from scipy.signal import welch

from saga_sr_plugin.data.simulation import (
    FILTER_TYPES,
    LowPassSpec,
    SimulationConfig,
    apply_lowpass,
    design_lowpass,
    draw_lowpass,
    simulate_low_res,
)
from saga_sr_plugin.data.spectral import ROLLOFF_BINS, rolloff_bin, rolloff_hz, rolloff_ratio
from saga_sr_plugin.data.audio_format import BadAudioError
from conftest import SR, sine, white_noise


def psd_db_ratio(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    f, p = welch(x[0].numpy(), fs=SR, nperseg=4096)
    _, q = welch(y[0].numpy(), fs=SR, nperseg=4096)
    return f, 10 * np.log10(q / p)


@pytest.mark.parametrize("filter_type", FILTER_TYPES)
@pytest.mark.parametrize("order", [2, 10])
@pytest.mark.parametrize("cutoff", [2000.0, 8000.0])
def test_lowpass_removes_energy_above_cutoff_and_keeps_the_band_below(filter_type, order, cutoff):
    x = white_noise(seconds=2.0)
    y = apply_lowpass(x, LowPassSpec(cutoff, filter_type, order))
    assert y.shape == x.shape
    f, ratio_db = psd_db_ratio(x, y)
    assert ratio_db[f > 1.2 * cutoff].max() < -40.0
    # Bessel with the authors' norm="phase" rolls off gently from well below the cutoff (zero-phase, at a
    # quarter / half of it: -0.6 / -2.3 dB at order 2, -1.6 / -6.7 dB at order 10); the others are flat there
    quarter, half = (-2.0, -7.5) if filter_type == "bessel" else (-1.0, -2.0)
    assert ratio_db[(f > 50) & (f < 0.25 * cutoff)].min() > quarter
    assert ratio_db[(f > 50) & (f < 0.5 * cutoff)].min() > half
    assert ratio_db[f < 0.5 * cutoff].max() < 0.5  # no gain either


def test_lowpass_is_zero_phase_and_same_on_both_channels():
    x = sine(500.0)
    x[1] *= 0.5
    y = apply_lowpass(x, LowPassSpec(4000.0, "butter", 6))
    mid = slice(4410, -4410)
    assert torch.allclose(y[0, mid], x[0, mid], atol=2e-3)  # no delay at 500 Hz
    assert torch.allclose(y[1, mid], 0.5 * y[0, mid], atol=1e-5)


def librosa_rolloff_of_summed_spectrum(x: torch.Tensor) -> float:
    mono = x.mean(dim=0).numpy().astype(np.float64)
    s = np.abs(librosa.stft(mono, n_fft=2048, hop_length=512, window="hann", center=True, pad_mode="constant"))
    summed = s.sum(axis=1, keepdims=True)
    return float(librosa.feature.spectral_rolloff(S=summed, sr=SR, n_fft=2048, roll_percent=0.985)[0, 0])


@pytest.mark.parametrize("make", [
    lambda: sine(1000.0),
    lambda: sine(6000.0, channels=1),
    lambda: torch.from_numpy(apply_lowpass(white_noise(), LowPassSpec(5000.0, "butter", 8)).numpy()),
    lambda: white_noise(),
    lambda: sine(300.0) + sine(9000.0, amp=0.2),
])
def test_rolloff_matches_librosa_definition_aggregated_over_time(make):
    x = make()
    assert rolloff_hz(x) == pytest.approx(librosa_rolloff_of_summed_spectrum(x), abs=1e-6)


def test_rolloff_values_on_known_signals():
    # A windowed sine leaks: 98.5 % of the summed magnitude is reached a little above it.
    assert 1000.0 <= rolloff_hz(sine(1000.0)) < 1300.0
    band_limited = apply_lowpass(white_noise(), LowPassSpec(5000.0, "ellip", 8))
    assert 4000.0 < rolloff_hz(band_limited) < 5300.0  # resampler transition band ends ~5 % above
    assert rolloff_hz(white_noise()) > 20000.0
    assert 0.0 <= rolloff_ratio(white_noise()) < 1.0
    assert rolloff_ratio(sine(1000.0)) == pytest.approx(rolloff_bin(sine(1000.0)) / ROLLOFF_BINS)


def test_rolloff_is_stable_under_silence_and_near_silence():
    assert rolloff_ratio(torch.zeros(2, SR)) == 0.0
    assert rolloff_ratio(torch.zeros(2, 100)) == 0.0
    tiny = 1e-9 * sine(2000.0)
    assert rolloff_hz(tiny) == pytest.approx(rolloff_hz(sine(2000.0)), abs=1e-6)


@pytest.mark.parametrize("bad, message", [
    (torch.full((2, 1000), float("nan")), "NaN"),
    (torch.zeros(2, 2, 10), "shape"),
    (torch.zeros(1000, 2), "transpose"),
])
def test_bad_audio_gets_a_clear_error(bad, message):
    with pytest.raises(BadAudioError, match=message):
        rolloff_ratio(bad)


def test_draw_follows_the_paper_ranges_and_clamps_to_content(rng):
    config = SimulationConfig()
    draws = [draw_lowpass(rng, config) for _ in range(2000)]
    cutoffs = np.array([d.cutoff_hz for d in draws])
    assert cutoffs.min() >= 2000 and cutoffs.max() <= 16000
    assert abs(np.median(cutoffs) - 9000) < 600  # uniform
    assert {d.filter_type for d in draws} == set(FILTER_TYPES)
    assert {d.order for d in draws} == set(range(2, 11))
    clamped = [draw_lowpass(rng, config, content_hz=5000.0).cutoff_hz for _ in range(200)]
    assert max(clamped) <= 0.94 * 5000.0 + 1e-9
    assert min(draw_lowpass(rng, config, content_hz=1000.0).cutoff_hz for _ in range(50)) == 2000.0


def test_simulated_pair_has_lower_rolloff_and_stays_aligned(rng):
    x = white_noise(seconds=1.0)
    pair = simulate_low_res(x, rng)
    assert pair.low_res.shape == x.shape
    assert pair.rolloff_lr < pair.rolloff_hr
    assert pair.rolloff_lr <= pair.spec.cutoff_hz / (SR / 2) + 0.02
    silent = simulate_low_res(torch.zeros(2, SR), rng)
    assert torch.all(silent.low_res == 0) and silent.rolloff_hr == 0.0 and silent.rolloff_lr == 0.0


def test_simulation_config_rejects_typos():
    with pytest.raises(ValueError, match="unknown filter type"):
        SimulationConfig(filter_types=("butterworth",))
    with pytest.raises(TypeError):
        SimulationConfig(max_cutof_hz=8000)


def test_bessel_is_the_authors_phase_normalised_design():
    sos = design_lowpass(LowPassSpec(4000.0, "bessel", 10))
    _, h = signal.sosfreqz(sos, worN=[4000.0], fs=SR)
    zero_phase_db = 40 * math.log10(abs(h[0]))  # sosfiltfilt applies it twice
    assert zero_phase_db == pytest.approx(-30.1, abs=0.5)
