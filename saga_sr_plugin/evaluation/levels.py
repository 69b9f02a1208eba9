"""Does the added band sit at the reference's level, and does it step where windows meet?

Two numbers a listener hears before any LSD: the level of each band above the input's
cutoff against the reference's (a band 20 dB too loud is hiss; one 20 dB too quiet is
the dull input again), and a jump in that level where one window's output hands over
to the next (a step the reference does not have is heard as a pumping of the hiss).
"""
from __future__ import annotations

import math
import typing as tp

import torch

from ..inference.windows import window_starts

ADDED_BANDS_HZ = ((4000.0, 8000.0), (8000.0, 12000.0), (12000.0, 16000.0), (16000.0, 22050.0))
POWER_FLOOR = 1e-12


def band_power(audio: torch.Tensor, lo_hz: float, hi_hz: float, sample_rate: int = 44100) -> float:
    """Mean power of ``audio`` ((channels, samples) or (samples,)) in [lo_hz, hi_hz), Hann-windowed FFT."""
    x = torch.as_tensor(audio, dtype=torch.float64)
    x = x.reshape(-1, x.shape[-1])
    spectrum = torch.fft.rfft(x * torch.hann_window(x.shape[-1], dtype=torch.float64), dim=-1).abs().pow(2)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate, dtype=torch.float64)
    band = (freqs >= lo_hz) & (freqs < hi_hz)
    return float(spectrum[:, band].sum(-1).mean()) / x.shape[-1] if band.any() else float("nan")


def ratio_db(a: float, b: float) -> float:
    """10 log10(a / b) of two powers, both floored (silence is a level, not -inf)."""
    return 10 * math.log10(max(a, POWER_FLOOR) / max(b, POWER_FLOOR))


def added_band_levels(estimate: torch.Tensor, reference: torch.Tensor, cutoff_hz: float, sample_rate: int = 44100,
                      bands: tp.Sequence[tuple[float, float]] = ADDED_BANDS_HZ) -> dict[str, float]:
    """For each band that lies above ``cutoff_hz``: estimate level minus reference level, dB (+: too loud)."""
    n = min(estimate.shape[-1], reference.shape[-1])
    out = {}
    for lo, hi in bands:
        if lo >= cutoff_hz - 1e-6:
            out[f"{lo / 1000:g}-{hi / 1000:g} kHz"] = ratio_db(band_power(estimate[..., :n], lo, hi, sample_rate),
                                                          band_power(reference[..., :n], lo, hi, sample_rate))
    return out


def window_boundary_steps(estimate: torch.Tensor, reference: torch.Tensor, cutoff_hz: float, window: int,
                          overlap: int, span: int = 4096, sample_rate: int = 44100) -> list[float]:
    """At each hand-over between two windows: the level step (dB) of the estimate's band above
    ``cutoff_hz``, minus the reference's step there; 0 means the estimate steps as the reference does.

    The step compares ``span`` samples just before the overlap (the earlier window alone) with
    ``span`` samples just after it (the later window alone), windows laid out as the upsampler
    lays them (``inference.windows.window_starts``).
    """
    n = min(estimate.shape[-1], reference.shape[-1])
    starts = window_starts(max(n, window), window, window - overlap)
    steps = []
    for previous, start in zip(starts, starts[1:]):
        before = slice(max(0, start - span), start)
        after = slice(previous + window, min(n, previous + window + span))
        if before.stop - before.start < span // 2 or after.stop - after.start < span // 2:
            continue
        step = [ratio_db(band_power(x[..., after], cutoff_hz, sample_rate / 2, sample_rate),
                    band_power(x[..., before], cutoff_hz, sample_rate / 2, sample_rate)) for x in (estimate, reference)]
        steps.append(step[0] - step[1])
    return steps
