"""Reading and writing audio files with errors that name the file and the problem."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .simulation import BadAudioError

MIN_SAMPLE_RATE = 4000
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".opus")


def list_audio_files(folder: str | os.PathLike, exts: tuple[str, ...] = AUDIO_EXTS, what: str = "folder") -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted); a missing folder is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} not found: {folder}")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts and p.is_file())


def read_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """(channels, samples) float32 and the file's rate; unreadable/empty/NaN files raise BadAudioError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise BadAudioError(f"{path}: cannot decode audio ({err}); formats read here: "
                            f"{', '.join(sorted(sf.available_formats()))}") from err
    if data.shape[0] == 0:
        raise BadAudioError(f"{path}: the file holds no samples")
    if not np.isfinite(data).all():
        raise BadAudioError(f"{path}: contains NaN or inf samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sample_rate)


def write_audio(path: str | os.PathLike, audio: torch.Tensor, sample_rate: int, subtype: str | None = None) -> Path:
    """Write (channels, samples); a peak above 1 is kept in float files and clipped in PCM ones."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = audio.detach().float().cpu().numpy().T
    if subtype is None:
        subtype = "PCM_24" if path.suffix.lower() in (".wav", ".flac") else None
    if subtype and subtype.startswith("PCM"):
        data = np.clip(data, -1.0, 1.0)
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return path
