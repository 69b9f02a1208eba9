"""f_h when the user gives none (``target_rolloff: "auto"``), from the input alone.

SAGA-SR conditions on the target's roll-off f_h, which nobody knows at inference. One value for
every file (the paper's 0.9, the real-audio recipe's 0.6) asks a ringtone whose content stops at
5 kHz for as much added band as a cymbal. The ``auto`` rule needs no reference:

1. If the input's content stops well below what its sample rate allows (its content edge under
   ``band_limited_below`` of its Nyquist), the source was band-limited before it was stored at that
   rate: nothing above was lost, so f_h is the input's own roll-off f_l.
2. Otherwise f_h is a linear function of three measures of the input: its roll-off f_l, its
   content edge (the LFR boundary, normalised like f_l) and the slope of its log-magnitude spectrum
   over the octave below the edge (0.5-0.9 of it, below the low-pass's transition; dB per octave,
   at most 0). The coefficients are data (the ``saga_sr.target_rolloff_rule`` block of a model
   config); the defaults are a least-squares fit on the real-audio training clips, band-limited
   ones included, simulated as training simulates them (``experiments/fit_target_rolloff.py``;
   measured in docs/real_audio.md). The result is kept in [f_l, 0.999].
"""
from __future__ import annotations

import dataclasses
import math
import typing as tp

import torch

from ..data.spectral import (ROLLOFF_BINS, content_edge_bin, rolloff_bin_of_spectrum, spectral_slope_db,
                             summed_magnitude)


class RolloffFeatures(tp.NamedTuple):
    input_rolloff: float    # f_l: the input's 98.5 % roll-off, bin / 1025
    edge: float             # where the input's content ends (the LFR boundary), bin / 1025
    slope_db_per_octave: float


def features_of(spectrum: torch.Tensor, edge_bin: int) -> RolloffFeatures:
    """The rule's measures of an input, from its summed magnitude spectrum and content edge."""
    return RolloffFeatures(rolloff_bin_of_spectrum(spectrum.double()) / ROLLOFF_BINS, edge_bin / ROLLOFF_BINS,
                           spectral_slope_db(spectrum, edge_bin))


def input_features(audio: torch.Tensor) -> RolloffFeatures:
    """:func:`features_of` a low-res input (channels, samples) at 44.1 kHz, its edge found as the upsampler finds it."""
    spectrum = summed_magnitude(audio)
    return features_of(spectrum, max(rolloff_bin_of_spectrum(spectrum), content_edge_bin(spectrum)))


@dataclasses.dataclass(frozen=True)
class TargetRolloffRule:
    """f_h = intercept + input_rolloff * f_l + edge * e + slope * (slope dB/octave / 100), kept in [f_l, 0.999]."""

    intercept: float = 0.4305        # fitted on 2,000 real-audio training clips (fit_target_rolloff.py)
    input_rolloff: float = 1.5565
    edge: float = -0.7821
    slope: float = 0.0902
    band_limited_below: float = 0.8   # content edge under this share of the Nyquist: f_h = f_l

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"target_rolloff_rule.{f.name} must be a finite number, got {value!r}")
        if not 0.0 <= self.band_limited_below <= 1.0:
            raise ValueError(f"target_rolloff_rule.band_limited_below is a share in [0, 1], got {self.band_limited_below}")

    @classmethod
    def from_block(cls, block: dict | None, source: str = "model config") -> "TargetRolloffRule":
        from ..configs import ConfigError, suggest

        block = dict(block or {})
        known = [f.name for f in dataclasses.fields(cls)]
        for key in block:
            if key not in known:
                raise ConfigError(f"{source}: saga_sr.target_rolloff_rule has no coefficient {key!r}"
                                  f"{suggest(key, known)}; known: {', '.join(known)}")
        try:
            return cls(**block)
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from None

    def predict(self, features: RolloffFeatures, nyquist: float | None = None) -> float:
        """f_h for an input with these features; ``nyquist`` (bin / 1025) is its rate's limit, if known."""
        if nyquist is not None and features.edge < self.band_limited_below * nyquist:
            return features.input_rolloff
        value = (self.intercept + self.input_rolloff * features.input_rolloff + self.edge * features.edge
                 + self.slope * features.slope_db_per_octave / 100)
        return float(min(max(value, features.input_rolloff), 0.999))


def fit_rule(features: tp.Sequence[RolloffFeatures], targets: tp.Sequence[float],
             band_limited_below: float = 0.8) -> TargetRolloffRule:
    """Least-squares coefficients of :class:`TargetRolloffRule` for (features, reference f_h) pairs."""
    if len(features) < 4:
        raise ValueError(f"need at least 4 (features, f_h) pairs to fit 4 coefficients, got {len(features)}")
    X = torch.tensor([[1.0, f.input_rolloff, f.edge, f.slope_db_per_octave / 100] for f in features], dtype=torch.float64)
    y = torch.tensor(list(targets), dtype=torch.float64)
    w = torch.linalg.lstsq(X, y[:, None]).solution[:, 0].tolist()
    return TargetRolloffRule(*[round(v, 4) for v in w], band_limited_below=band_limited_below)
