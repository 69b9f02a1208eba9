"""Signal side of SAGA-SR: spectral roll-off and the low-resolution input simulation.

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

SAMPLE_RATE = 44100
ROLLOFF_N_FFT = 2048
ROLLOFF_HOP = 512
ROLLOFF_PERCENT = 0.985
ROLLOFF_BINS = ROLLOFF_N_FFT // 2 + 1  # 1025: the normalised roll-off is bin / 1025, in [0, 1)

FILTER_TYPES = ("cheby1", "butter", "bessel", "ellip")


class BadAudioError(ValueError):
    """Audio that cannot be used (NaN/inf, wrong shape); the message says which and why."""


def as_channels_first(audio: torch.Tensor | np.ndarray, what: str = "audio") -> torch.Tensor:
    """Return float32 (channels, samples); a 1-D signal becomes one channel."""
    x = torch.as_tensor(audio)
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.ndim != 2:
        raise BadAudioError(f"{what}: expected (channels, samples) or (samples,), got shape {tuple(x.shape)}")
    if x.shape[0] > x.shape[1]:
        raise BadAudioError(
            f"{what}: shape {tuple(x.shape)} has more channels than samples; "
            "pass audio as (channels, samples) (transpose a (samples, channels) array)"
        )
    x = x.float()
    if not torch.isfinite(x).all():
        raise BadAudioError(f"{what}: contains NaN or inf samples")
    return x


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


def content_edge_bin(spectrum: torch.Tensor, floor_db: float = 60.0, smooth_bins: int = 9,
                     local_drop_db: float = 40.0) -> int:
    """The highest bin whose (smoothed) magnitude is within ``floor_db`` of the spectrum's peak,
    or the first bin above the roll-off that falls ``local_drop_db`` below the octave under it.

    Where a band-limited input's content stops. The 98.5 % roll-off lies well below that
    for speech, whose energy sits low (at a 4 kHz cutoff its roll-off is often 2-3 kHz).
    """
    kernel = torch.ones(1, 1, smooth_bins, dtype=spectrum.dtype, device=spectrum.device) / smooth_bins
    smooth = torch.nn.functional.conv1d(spectrum.reshape(1, 1, -1), kernel, padding=smooth_bins // 2).reshape(-1)
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
    kernel = torch.ones(1, 1, smooth_bins, dtype=spectrum.dtype, device=spectrum.device) / smooth_bins
    smooth = torch.nn.functional.conv1d(spectrum.reshape(1, 1, -1), kernel, padding=smooth_bins // 2).reshape(-1)
    level = 20 * torch.log10(smooth.clamp(min=1e-30))
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
