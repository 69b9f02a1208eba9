"""Added-band levels and window-boundary steps, on signals whose answer is known."""
from __future__ import annotations

import pytest
import torch
from conftest import SR, lowpassed, white_noise

from saga_sr_plugin.evaluation.levels import (
    added_band_levels,
    band_power,
    window_boundary_steps,
)


def boosted(x: torch.Tensor, lo: float, hi: float, db: float) -> torch.Tensor:
    spec = torch.fft.rfft(x)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    spec[..., (freqs >= lo) & (freqs < hi)] *= 10 ** (db / 20)
    return torch.fft.irfft(spec, n=x.shape[-1])


def test_a_band_boosted_by_10_db_reads_plus_10_and_the_others_zero():
    reference = white_noise(1.0, seed=1)
    levels = added_band_levels(boosted(reference, 8000, 12000, 10.0), reference, cutoff_hz=4000)
    assert list(levels) == ["4-8 kHz", "8-12 kHz", "12-16 kHz", "16-22.05 kHz"]
    assert levels["8-12 kHz"] == pytest.approx(10.0, abs=0.5)
    assert all(abs(v) < 0.5 for k, v in levels.items() if k != "8-12 kHz")
    assert list(added_band_levels(reference, reference, cutoff_hz=8000)) == ["8-12 kHz", "12-16 kHz", "16-22.05 kHz"]


def test_a_step_at_a_window_hand_over_is_found_unless_the_reference_steps_too():
    window, overlap = 16384, 2048
    reference = white_noise(1.5, seed=2)
    hand_over = window  # first window alone until window - overlap, second alone from window
    stepped = reference.clone()
    stepped[:, hand_over - overlap:] = lowpassed(stepped, 4000)[:, hand_over - overlap:] + \
        2 * (stepped - lowpassed(stepped, 4000))[:, hand_over - overlap:]  # band above 4 kHz +6 dB from there
    steps = window_boundary_steps(stepped, reference, 4000, window, overlap)
    assert steps[0] == pytest.approx(6.0, abs=0.7)
    assert all(abs(s) < 0.7 for s in window_boundary_steps(stepped, stepped, 4000, window, overlap))
    assert band_power(lowpassed(reference, 4000), 8000, 12000) < 1e-6 * band_power(reference, 8000, 12000)
