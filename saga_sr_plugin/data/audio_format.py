"""The audio the model works with: 44.1 kHz, (channels, samples), finite; and what bad audio is.

The bottom of the data side: the reader, the spectral measures, the simulation and every
layer above check audio here and raise :class:`BadAudioError` with a message that names it.
"""
from __future__ import annotations

import numpy as np
import torch

SAMPLE_RATE = 44100


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
