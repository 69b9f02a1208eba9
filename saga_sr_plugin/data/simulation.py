"""The low-resolution input simulation (spectral measures: spectral.py; the audio format: audio_format.py).

Everything here runs on CPU in the data-loader workers, on one clip at a time,
with scipy's filter design / zero-phase filtering / polyphase resampling and
torch's STFT (nothing hand-rolled).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np
import torch
from scipy import signal

from .audio_format import SAMPLE_RATE, as_channels_first
from .spectral import ROLLOFF_BINS, ROLLOFF_N_FFT, rolloff_bin, rolloff_ratio

FILTER_TYPES = ("cheby1", "butter", "bessel", "ellip")


@dataclass(frozen=True)
class LowPassSpec:
    """One draw of the degradation: what the model's input went through."""
    cutoff_hz: float
    filter_type: str
    order: int


@dataclass(frozen=True)
class SimulationConfig:
    """Ranges of the low-resolution simulation (paper + authors' code defaults)."""
    min_cutoff_hz: float = 2000.0
    max_cutoff_hz: float = 16000.0
    filter_types: Sequence[str] = field(default=FILTER_TYPES)
    min_order: int = 2
    max_order: int = 10
    content_margin: float = 0.94  # cutoff <= margin x the clip's own 98.5 % roll-off
    resample: bool = True  # down to 2 x cutoff and back: the input really is a lower-rate signal
    # the authors' output_cut_off_freq_range: with this probability the target itself is low-passed at a
    # frequency drawn from [lo, hi] Hz (same filter families) before f_h is measured on it, so the model
    # sees references of every bandwidth and f_h is what tells them apart; None: off (the paper)
    target_lowpass_hz: Sequence[float] | None = None
    target_lowpass_prob: float = 1.0
    # a control for experiments: f_h given to the model is this constant, whatever the target holds
    fixed_target_rolloff: float | None = None

    def __post_init__(self) -> None:
        unknown = [f for f in self.filter_types if f not in FILTER_TYPES]
        if unknown:
            raise ValueError(f"unknown filter type(s) {unknown}; known: {list(FILTER_TYPES)}")
        if not 0 < self.min_cutoff_hz <= self.max_cutoff_hz < SAMPLE_RATE / 2:
            raise ValueError(f"need 0 < min_cutoff_hz <= max_cutoff_hz < {SAMPLE_RATE / 2}")
        if not 1 <= self.min_order <= self.max_order:
            raise ValueError("need 1 <= min_order <= max_order")
        if self.target_lowpass_hz is not None:
            lo, hi = self.target_lowpass_hz
            if not 0 < lo <= hi < SAMPLE_RATE / 2:
                raise ValueError(f"target_lowpass_hz must be [lo, hi] with 0 < lo <= hi < {SAMPLE_RATE / 2}, got "
                                 f"{list(self.target_lowpass_hz)}")
        if not 0.0 <= self.target_lowpass_prob <= 1.0:
            raise ValueError(f"target_lowpass_prob is a probability, got {self.target_lowpass_prob}")
        if self.fixed_target_rolloff is not None and not 0.0 <= self.fixed_target_rolloff <= 1.0:
            raise ValueError(f"fixed_target_rolloff is a normalised roll-off in [0, 1], got {self.fixed_target_rolloff}")


def draw_lowpass(rng: np.random.Generator, config: SimulationConfig, content_hz: float | None = None) -> LowPassSpec:
    """Draw cutoff, filter type and order; clamp the cutoff to the clip's content."""
    cutoff = float(rng.uniform(config.min_cutoff_hz, config.max_cutoff_hz))
    if content_hz is not None:
        cutoff = min(cutoff, config.content_margin * content_hz)
    cutoff = max(cutoff, config.min_cutoff_hz)
    filter_type = str(rng.choice(list(config.filter_types)))
    order = int(rng.integers(config.min_order, config.max_order + 1))
    return LowPassSpec(cutoff, filter_type, order)


def design_lowpass(spec: LowPassSpec, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Second-order sections of the drawn low-pass, as the authors design them.

    Chebyshev I and elliptic: 0.1 dB ripple, 60 dB stop band. Bessel: scipy's default
    ``norm="phase"`` (at order 10 about -15 dB at the cutoff, -30 dB after the zero-phase
    double pass); ``norm="mag"`` would be -3 dB there.
    """
    kwargs = dict(N=spec.order, Wn=spec.cutoff_hz, btype="lowpass", fs=sample_rate, output="sos")
    if spec.filter_type == "butter":
        return signal.butter(**kwargs)
    if spec.filter_type == "cheby1":
        return signal.cheby1(rp=0.1, **kwargs)
    if spec.filter_type == "ellip":
        return signal.ellip(rp=0.1, rs=60, **kwargs)
    if spec.filter_type == "bessel":
        return signal.bessel(**kwargs)  # scipy's default norm="phase", as the authors (and ssr_eval)
    raise ValueError(f"unknown filter type {spec.filter_type!r}; known: {list(FILTER_TYPES)}")


def band_limit_by_resampling(x: np.ndarray, cutoff_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample down to ~2 x cutoff and back: the input really is a lower-rate signal.

    Almost nothing survives above the cutoff, not nothing: the polyphase resampler's
    transition band (and the 100 Hz rounding of the intermediate rate) lets through
    0.2-0.5 % of a white-noise clip's energy above the cutoff after Butterworth,
    Chebyshev or elliptic filters, under 0.1 % after Bessel (measured on 5.94 s of
    noise at 4 and 8 kHz, orders 2 and 10), as in the authors' pipeline. The
    intermediate rate is rounded to 100 Hz so the polyphase ratio stays small
    (44100 / 100 = 441); the output is trimmed or padded to the input length.
    """
    low_rate = max(100, int(round(2 * cutoff_hz / 100.0)) * 100)
    if low_rate >= sample_rate:
        return x
    ratio = Fraction(low_rate, sample_rate)
    down = signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    up = signal.resample_poly(down, ratio.denominator, ratio.numerator, axis=-1)
    n = x.shape[-1]
    if up.shape[-1] >= n:
        return up[..., :n]
    return np.pad(up, [(0, 0)] * (up.ndim - 1) + [(0, n - up.shape[-1])])


def apply_lowpass(audio: torch.Tensor | np.ndarray, spec: LowPassSpec, resample: bool = True,
                  sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Zero-phase low-pass (same filter on every channel), then optional down/up resampling.

    The result stays at ``sample_rate`` and sample-aligned with the input, so z_l and
    z_h line up frame by frame.
    """
    x = as_channels_first(audio).double().numpy()
    y = signal.sosfiltfilt(design_lowpass(spec, sample_rate), x, axis=-1)
    if resample:
        y = band_limit_by_resampling(y, spec.cutoff_hz, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(y)).float()


@dataclass(frozen=True)
class SimulatedPair:
    low_res: torch.Tensor
    spec: LowPassSpec
    rolloff_lr: float
    rolloff_hr: float


def limit_target(audio: torch.Tensor, rng: np.random.Generator, config: SimulationConfig) -> torch.Tensor:
    """The training target, low-passed at a drawn frequency with ``config.target_lowpass_prob`` (the authors'
    ``output_cut_off_freq_range``), else unchanged; the same filter families and orders as the input's."""
    if config.target_lowpass_hz is None or rng.random() >= config.target_lowpass_prob:
        return audio
    lo, hi = config.target_lowpass_hz
    spec = draw_lowpass(rng, SimulationConfig(min_cutoff_hz=lo, max_cutoff_hz=hi, filter_types=config.filter_types,
                                              min_order=config.min_order, max_order=config.max_order))
    return apply_lowpass(audio, spec, resample=config.resample).to(torch.as_tensor(audio).dtype)


def simulate_low_res(audio: torch.Tensor | np.ndarray, rng: np.random.Generator,
                     config: SimulationConfig = SimulationConfig()) -> SimulatedPair:
    """Draw a degradation, apply it, and return both normalised roll-offs (f_l, f_h; f_h is
    ``config.fixed_target_rolloff`` when set, the control of experiments/fh_steering.py)."""
    high = as_channels_first(audio)
    hr_bin = rolloff_bin(high)
    content_hz = hr_bin * SAMPLE_RATE / ROLLOFF_N_FFT
    # A silent clip has no content: keep the paper's draw instead of clamping to 0 Hz.
    spec = draw_lowpass(rng, config, content_hz if hr_bin > 0 else None)
    low = apply_lowpass(high, spec, resample=config.resample)
    f_h = hr_bin / ROLLOFF_BINS if config.fixed_target_rolloff is None else config.fixed_target_rolloff
    return SimulatedPair(low, spec, rolloff_ratio(low), f_h)


def cutoff_to_rolloff_ratio(cutoff_hz: float) -> float:
    """The normalised roll-off value of a given frequency (for user controls)."""
    return min(math.floor(cutoff_hz * ROLLOFF_N_FFT / SAMPLE_RATE), ROLLOFF_BINS - 1) / ROLLOFF_BINS
