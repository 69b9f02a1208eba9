"""ViSQOL in audio mode: a perceptual, reference-based score (MOS-LQO, 1 to 5, higher is better) beside LSD.

LSD rewards a quiet, averaged band; ViSQOL compares gammatone spectrograms patch by patch with a
structural similarity (NSIM) and maps them to a listening-test scale, so hiss where the reference
is quiet and a band that does not move with the music both cost. Computed by ``visqol-python``, a
pure-Python port of Google's ViSQOL v3 that ships the audio mode's SVR model (no download) and
reproduces the C++ tool's scores on its conformance set (docs/evaluation.md says why it is trusted).

Both signals are mixed to mono (as ViSQOL's own file reader does) and resampled to 48 kHz, the
audio mode's rate; its 32 gammatone bands then reach 24 kHz, so the band SAGA-SR adds is scored.
ViSQOL aligns the two signals itself and normalises their level (a copy at half the amplitude scores
as the reference itself), so it judges the spectrum's shape over time, not the loudness LSD also
counts. It needs at least :data:`MIN_SECONDS` (45 spectrogram frames); shorter clips score NaN.
On 1.5 s excerpts its own noise (the same music moved by 10 or 50 ms) stays within 0.04, but the
scale is compressed against 10 s excerpts (a 4 kHz low-pass: 2.9-3.2 against 2.0-2.6):
``experiments/visqol_sanity.py``, docs/evaluation.md.
"""
from __future__ import annotations

import functools
import logging
import typing as tp

import numpy as np
import torch
import torchaudio.functional as AF

VISQOL_RATE = 48000
MIN_SECONDS = 1.0   # ViSQOL's audio mode needs 45 frames of its spectrogram (0.9 s at its hop)


@functools.lru_cache(maxsize=1)
def _api() -> tp.Any:
    """One audio-mode ViSQOL per process (building it reads the bundled SVR model)."""
    try:
        from visqol import VisqolApi
    except ImportError as err:  # a dependency of this package; only a broken install lands here
        raise ImportError("ViSQOL needs the visqol-python package: pip install visqol-python") from err
    logging.getLogger("visqol").setLevel(logging.ERROR)   # its sample-rate notes are about inputs it resamples
    api = VisqolApi()
    api.create(mode="audio")
    return api


def _mono_48k(audio: torch.Tensor, sample_rate: int) -> np.ndarray:
    x = torch.as_tensor(audio, dtype=torch.float64)
    x = x.reshape(-1, x.shape[-1]).mean(dim=0)
    if sample_rate != VISQOL_RATE:
        x = AF.resample(x, sample_rate, VISQOL_RATE)
    return x.numpy()


def visqol(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int = 44100) -> float:
    """MOS-LQO of ``estimate`` against ``reference`` ((channels, samples) or (samples,), same rate, lengths
    trimmed to the shorter). NaN for a silent reference, which ViSQOL cannot judge, and for a clip shorter
    than :data:`MIN_SECONDS`."""
    n = min(estimate.shape[-1], reference.shape[-1])
    if n < MIN_SECONDS * sample_rate:
        return float("nan")
    ref, est = _mono_48k(reference[..., :n], sample_rate), _mono_48k(estimate[..., :n], sample_rate)
    if not np.any(ref) or not np.isfinite(est).all():
        return float("nan")
    return float(_api().measure_from_arrays(ref, est, VISQOL_RATE).moslqo)
