"""Reading, checking and writing audio, with errors that name the file and the problem."""
from __future__ import annotations

import logging
import os
import shlex
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ..atomic import atomic_path
from .audio_format import SAMPLE_RATE, BadAudioError, as_channels_first

log = logging.getLogger("saga_sr.audio")
MIN_SAMPLE_RATE = 4000
SILENCE_PEAK = 1e-5
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus")
# Audio containers libsndfile cannot read, by extension, and what they usually hold.
UNREADABLE_EXTS = {".m4a": "MP4/AAC", ".mp4": "MP4", ".aac": "AAC", ".m4b": "MP4/AAC", ".wma": "WMA",
                   ".webm": "WebM", ".amr": "AMR", ".ac3": "AC-3", ".ape": "Monkey's Audio", ".mka": "Matroska"}


def container_of(path: Path) -> str | None:
    """The name of an audio format libsndfile cannot read, from the file's first bytes or its extension."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        head = b""
    if head[4:8] == b"ftyp":
        return "MP4/M4A (AAC or ALAC)"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"0&\xb2u":
        return "WMA/ASF"
    return UNREADABLE_EXTS.get(path.suffix.lower())


def convert_hint(path: Path, container: str) -> str:
    return (f"{path}: {container} audio, which this package's reader (libsndfile) cannot decode; convert it first, "
            f"e.g. ffmpeg -i {shlex.quote(str(path))} {shlex.quote(str(path.with_suffix('.flac')))}")


def list_audio_files(folder: str | os.PathLike, exts: tuple[str, ...] = AUDIO_EXTS, what: str = "folder") -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted); a missing folder is an error naming it.

    A symbolic link whose target is gone is listed too, so that reading it fails with its
    name and it is counted, instead of vanishing from the list. The private folders of
    writes in progress (``.saga-tmp-*``, see ``atomic``) are not searched.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} not found: {folder}")
    entries = [p for p in folder.rglob("*") if (p.is_file() or p.is_symlink())
               and not any(part.startswith(".saga-tmp-") for part in p.relative_to(folder).parts[:-1])]
    unreadable = [p for p in entries if p.suffix.lower() in UNREADABLE_EXTS]
    if unreadable:   # never a silent loss: say what was left out and how to get it in
        log.warning("%s: left out %d file(s) in formats libsndfile cannot decode (%s), e.g. %s; convert them first "
                    "(ffmpeg -i in.m4a out.flac)", folder, len(unreadable),
                    ", ".join(sorted({p.suffix.lower() for p in unreadable})), unreadable[0].name)
    return sorted(p for p in entries if p.suffix.lower() in exts)


def wav_promised_frames(path: str | os.PathLike) -> int | None:
    """Frames a RIFF/WAVE header's ``data`` chunk promises (None for other formats).

    libsndfile reads a truncated WAV without a word, sizing it by the bytes present;
    the header still holds the length it was written with.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            size = struct.unpack("<I", chunk[4:])[0]
            if chunk[:4] == b"fmt ":
                fmt = f.read(size + (size & 1))
                block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
            elif chunk[:4] == b"data":
                return size // block_align if block_align and size != 0xFFFFFFFF else None
            else:
                f.seek(size + (size & 1), os.SEEK_CUR)


def read_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """(channels, samples) float32 and the file's rate; unreadable/empty/NaN files raise BadAudioError."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise FileNotFoundError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        container = container_of(path)
        if container:
            raise BadAudioError(convert_hint(path, container)) from err
        raise BadAudioError(f"{path}: cannot decode audio ({err}); formats read here: "
                            f"{', '.join(sorted(sf.available_formats()))}") from err
    if data.shape[0] == 0:
        raise BadAudioError(f"{path}: the file holds no samples")
    promised = wav_promised_frames(path)
    if promised is not None and promised > data.shape[0]:
        log.warning("%s: truncated: the header promises %.3f s but the file holds %.3f s; using the %.3f s read",
                    path, promised / sample_rate, data.shape[0] / sample_rate, data.shape[0] / sample_rate)
    if not np.isfinite(data).all():
        raise BadAudioError(f"{path}: contains NaN or inf samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sample_rate)


def write_audio(path: str | os.PathLike, audio: torch.Tensor, sample_rate: int, subtype: str | None = None) -> Path:
    """Write (channels, samples) atomically; a peak above 1 is kept in float files and clipped in PCM ones."""
    path = Path(path)
    data = audio.detach().float().cpu().numpy().T
    if subtype is None:
        subtype = "PCM_24" if path.suffix.lower() in (".wav", ".flac") else None
    if subtype and subtype.startswith("PCM"):
        clipped = int((np.abs(data) > 1.0).sum())
        if clipped:   # never silent: a PCM file cannot hold it
            log.warning("%s: %d sample(s) above full scale clipped (peak %.2f); write float WAV to keep them",
                        path, clipped, float(np.abs(data).max()))
        data = np.clip(data, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype)
    return path


def prepare_input(audio: torch.Tensor, sample_rate: int, what: str = "input") -> torch.Tensor:
    """Checked (channels, samples) at 44.1 kHz; mono stays mono, more than 2 channels is an error.

    What every path into the model reads its input through (upsampling, pre-encoding);
    ``what`` names the input in errors (the CLI passes the file name).
    """
    x = as_channels_first(audio, what)
    if x.shape[0] > 2:
        raise BadAudioError(f"{what}: {x.shape[0]} channels; SAGA-SR is a stereo model: downmix to mono or "
                            "stereo first (e.g. ffmpeg -ac 2)")
    if sample_rate < MIN_SAMPLE_RATE:
        raise BadAudioError(f"{what}: sample rate {sample_rate} Hz is below the supported {MIN_SAMPLE_RATE} Hz")
    if x.shape[-1] < 2:
        raise BadAudioError(f"{what}: too short ({x.shape[-1]} samples)")
    if x.abs().max() < SILENCE_PEAK:
        raise BadAudioError(f"{what}: silent (peak below {SILENCE_PEAK}); there is nothing to upsample")
    if sample_rate != SAMPLE_RATE:
        x = AF.resample(x, sample_rate, SAMPLE_RATE)
    return x
