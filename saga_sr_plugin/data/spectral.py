"""Spectral measures: roll-off (the f_l / f_h condition), content edge, bandwidth and the spectral line.

One module that the simulation, the post-processing, the f_h rule and the evaluation all
import (issue 28): each measure is defined once, on torch's STFT (Hann 2048, hop 512).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .audio_format import SAMPLE_RATE, as_channels_first

ROLLOFF_N_FFT = 2048
ROLLOFF_HOP = 512
ROLLOFF_PERCENT = 0.985
ROLLOFF_BINS = ROLLOFF_N_FFT // 2 + 1  # 1025: the normalised roll-off is bin / 1025, in [0, 1)


def summed_magnitude(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """|STFT| of the channel mean (Hann 2048, hop 512, centred with zeros) summed over time: (1025,)."""
    x = as_channels_first(audio).double().mean(dim=0)
    return torch.stft(
        x, ROLLOFF_N_FFT, ROLLOFF_HOP, window=torch.hann_window(ROLLOFF_N_FFT, dtype=torch.float64, device=x.device),
        center=True, pad_mode="constant", return_complex=True,  # librosa's default zero padding
    ).abs().sum(dim=-1)


def rolloff_bin_of_spectrum(spectrum: torch.Tensor, roll_percent: float = ROLLOFF_PERCENT) -> int:
    """librosa's roll-off on one spectrum: the lowest bin where the cumulative sum reaches ``roll_percent``."""
    cumulative = torch.cumsum(spectrum, dim=0)
    threshold = roll_percent * cumulative[-1]
    return int(torch.searchsorted(cumulative, threshold.unsqueeze(0)).clamp(max=ROLLOFF_BINS - 1).item())


def smoothed(spectrum: torch.Tensor, smooth_bins: int = 9) -> torch.Tensor:
    """The magnitude spectrum averaged over ``smooth_bins`` neighbouring bins (zero-padded ends)."""
    kernel = torch.ones(1, 1, smooth_bins, dtype=spectrum.dtype, device=spectrum.device) / smooth_bins
    return torch.nn.functional.conv1d(spectrum.reshape(1, 1, -1), kernel, padding=smooth_bins // 2).reshape(-1)


def content_edge_bin(spectrum: torch.Tensor, floor_db: float = 60.0, smooth_bins: int = 9,
                     local_drop_db: float = 40.0) -> int:
    """The highest bin whose (smoothed) magnitude is within ``floor_db`` of the spectrum's peak,
    or the first bin above the roll-off that falls ``local_drop_db`` below the octave under it.

    Where a band-limited input's content stops. The 98.5 % roll-off lies well below that
    for speech, whose energy sits low (at a 4 kHz cutoff its roll-off is often 2-3 kHz).
    """
    smooth = smoothed(spectrum, smooth_bins)
    above = torch.nonzero(smooth > smooth.max() * 10 ** (-floor_db / 20))
    edge = int(above.max()) if len(above) else 0
    # A resampler's stopband leaks a flat, loud input (noise, cymbals) only 50-60 dB down, all the
    # way up: the content ends where the level first falls local_drop_db below the median level of
    # the octave under the input's roll-off, whichever comes first.
    rolloff = rolloff_bin_of_spectrum(spectrum)
    level = 20 * torch.log10(smooth.clamp(min=1e-30))
    local = float(level[rolloff // 2:rolloff + 1].median())
    below = torch.nonzero(level[rolloff:] < local - local_drop_db)
    return min(edge, rolloff + int(below.min())) if len(below) else edge


def own_content_end_bin(spectrum: torch.Tensor, edge: int, limit: int, rise_db: float = 15.0,
                        floor_db: float = 100.0, smooth_bins: int = 9) -> int:
    """The content edge, moved up to the last of the input's own components below a known band ``limit``.

    A low-pass's transition band only falls; content that rises ``rise_db`` above the lowest level
    between ``edge`` and itself (and lies within ``floor_db`` of the spectrum's peak) is the input's
    own: a ring's harmonics at 5.5 and 7.7 kHz, 70-85 dB under its fundamental, past a gap that
    stops :func:`content_edge_bin` at 3.5 kHz (issue 25). The LFR keeps every bin up to it, so the
    boundary never throws away what the input holds below the cutoff the rate or the evaluation gives.
    """
    if limit <= edge + smooth_bins:
        return edge
    level = 20 * torch.log10(smoothed(spectrum, smooth_bins).clamp(min=1e-30))
    zone = level[edge:limit]
    lowest = torch.cummin(zone, dim=0).values
    own = torch.nonzero((zone - lowest >= rise_db) & (zone > level.max() - floor_db))
    return min(limit, edge + int(own.max()) + smooth_bins // 2 + 1) if len(own) else edge


def bandwidth_hz(clip: torch.Tensor, floor_db: float = -70.0, sample_rate: int = SAMPLE_RATE) -> float:
    """A clip's own bandwidth: the highest frequency whose smoothed power is within ``floor_db`` of its
    peak band (what the real-audio data command skips band-limited clips by, and what the evaluation
    CSV reports per reference, so results can be read against how much the reference carried up there).

    Frames without padding (no edge artefacts), and the median over frames, so a click or
    a clip boundary does not count as bandwidth.
    """
    mono = clip.mean(0)
    mono = torch.nn.functional.pad(mono, (0, max(0, 2048 - mono.shape[-1])))
    spectrum = torch.stft(mono, 2048, 512, window=torch.hann_window(2048), center=False, return_complex=True)
    power = spectrum.abs().pow(2).median(-1).values
    smooth = torch.nn.functional.avg_pool1d(power[None, None], 9, 1, 4)[0, 0]
    level = 10 * torch.log10(smooth + 1e-20)
    above = torch.nonzero(level > level.max() + floor_db)
    return float(above.max()) * sample_rate / 2048 if len(above) else 0.0


def rolloff_bin(audio: torch.Tensor | np.ndarray, roll_percent: float = ROLLOFF_PERCENT) -> int:
    """Roll-off STFT bin of a whole clip.

    Stereo is averaged to mono, |STFT| (Hann 2048, hop 512, centred with zeros) is summed over
    time, and the roll-off is librosa's definition applied to that one spectrum: the
    lowest bin at which the cumulative magnitude reaches ``roll_percent`` of the
    total. Silence gives bin 0 (no NaN).
    """
    return rolloff_bin_of_spectrum(summed_magnitude(audio), roll_percent)


def rolloff_ratio(audio: torch.Tensor | np.ndarray, roll_percent: float = ROLLOFF_PERCENT) -> float:
    """Normalised roll-off in [0, 1): bin / 1025 (0 Hz .. 22050 Hz at 44.1 kHz)."""
    return rolloff_bin(audio, roll_percent) / ROLLOFF_BINS


def rolloff_hz(audio: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE, roll_percent: float = ROLLOFF_PERCENT) -> float:
    """Roll-off frequency in Hz of the bin returned by :func:`rolloff_bin`."""
    return rolloff_bin(audio, roll_percent) * sample_rate / ROLLOFF_N_FFT


FIT_RANGE = (0.5, 0.9)   # the fitted part of the octave below the edge, as fractions of the edge


def spectral_line_db(spectrum: torch.Tensor, edge_bin: int, fit_range: tuple[float, float] = FIT_RANGE,
                     floor: float = 1e-12) -> tuple[float, float]:
    """Least-squares line of 20 log10 |spectrum| against log2(bin) over ``fit_range`` of the edge: its slope
    (dB/octave, taken as 0 where it rises) and its level at ``edge_bin`` (dB). Fewer than 3 bins: (0, nan)."""
    lo, hi = max(1, int(fit_range[0] * edge_bin)), int(fit_range[1] * edge_bin)
    if hi - lo < 3:
        return 0.0, float("nan")
    x = torch.log2(torch.arange(lo, hi, dtype=torch.float64, device=spectrum.device))
    y = 20 * torch.log10(spectrum[lo:hi].double().clamp(min=floor))
    x0, y0 = x - x.mean(), y - y.mean()
    slope = min(0.0, float((x0 * y0).sum() / (x0 * x0).sum()))
    return slope, float(y.mean()) + slope * (math.log2(edge_bin) - float(x.mean()))


def spectral_slope_db(spectrum: torch.Tensor, edge_bin: int, fit_range: tuple[float, float] = FIT_RANGE) -> float:
    """The slope of :func:`spectral_line_db` (dB/octave, <= 0)."""
    return spectral_line_db(spectrum, edge_bin, fit_range)[0]
