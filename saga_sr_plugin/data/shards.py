"""WebDataset shards of a dataset folder, in the layout the official ``wds`` dataset type reads (``saga-sr shard``).

Each sample of a shard is one audio file, stored as its own bytes under its own extension
(``flac``, ``wav``...: the official loader decodes them with the same ``torchaudio.load`` a
folder's files go through), or re-encoded as FLAC when the official loader would not
recognise the extension; and a ``json`` holding the file's ``captions.jsonl`` entry (caption,
segments, length) with its ``relpath``. ``saga_sr_plugin.data.metadata`` reads the caption
from there, so a clip gives the same training example from a folder and from a shard.

Each root becomes ``<out>/<root name>/shard-000000.tar``... written in a private folder and
moved into place when complete; unreadable, silent and non-finite files are counted skips.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import typing as tp
from pathlib import Path

import soundfile as sf
from tqdm.auto import tqdm

from ..atomic import atomic_folder
from .audio_format import BadAudioError
from .audio_io import list_audio_files, read_audio
from .sidecar import read_sidecar, sidecar_path

log = logging.getLogger("saga_sr.shard")

# what the official wds loader decodes (stable_audio_tools.data.dataset.AUDIO_KEYS, 0.0.19 and 0.0.20)
WDS_AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "m4a", "ogg", "opus")
SHARD_PATTERN = "shard-%06d.tar"
SILENCE_PEAK = 1e-5


@dataclasses.dataclass
class ShardReport:
    files: int = 0
    shards: int = 0
    bytes_written: int = 0
    transcoded: int = 0
    uncaptioned: int = 0
    skipped: list[dict] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "skipped_count": len(self.skipped)}


def sample_key(relpath: str, taken: set[str]) -> str:
    """A WebDataset key for ``relpath``: no dots (the loader splits key from extension at the first dot
    of the name), unique within the shard set."""
    key = re.sub(r"[^A-Za-z0-9_/-]", "_", str(Path(relpath).with_suffix("")))
    unique, n = key, 1
    while unique in taken:
        unique, n = f"{key}_{n}", n + 1
    taken.add(unique)
    return unique


def audio_payload(path: Path) -> tuple[str, bytes, float, bool]:
    """(extension, bytes, seconds, transcoded) of one file, checked the way training reads it."""
    audio, sr = read_audio(path)
    if audio.abs().max() < SILENCE_PEAK:
        raise BadAudioError(f"{path}: silent (peak below {SILENCE_PEAK})")
    seconds = audio.shape[-1] / sr
    ext = path.suffix.lower().lstrip(".")
    if ext in WDS_AUDIO_EXTENSIONS:
        return ext, path.read_bytes(), seconds, False
    buffer = io.BytesIO()
    sf.write(buffer, audio.T.numpy(), sr, format="FLAC", subtype="PCM_24")
    return "flac", buffer.getvalue(), seconds, True


def write_shards(root: str | os.PathLike, out_dir: str | os.PathLike, max_megabytes: float = 256.0,
                 max_files: int = 10_000, overwrite: bool = False, report: ShardReport | None = None) -> Path:
    """Write the audio files under ``root`` with their captions as shards in ``out_dir/<root name>``."""
    import webdataset as wds

    root, report = Path(root), report or ShardReport()
    target = Path(out_dir) / root.name
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: pass --overwrite to write its shards again")
    files = list_audio_files(root, what="folder to shard")
    entries = read_sidecar(sidecar_path(root))
    taken: set[str] = set()
    with atomic_folder(target) as private:
        with wds.ShardWriter(str(private / SHARD_PATTERN), maxcount=max_files, maxsize=int(max_megabytes * 2**20),
                             verbose=0) as sink:
            for path in tqdm(files, desc=f"shard {root}", unit="file"):
                rel = path.relative_to(root).as_posix()
                try:
                    ext, data, seconds, transcoded = audio_payload(path)
                except (BadAudioError, FileNotFoundError, OSError, RuntimeError) as err:
                    report.skipped.append({"path": str(path), "reason": str(err)})
                    log.warning("skipped (%d so far): %s", len(report.skipped), err)
                    continue
                entry = {k: v for k, v in entries.get(rel, {}).items() if k != "path"}
                if not str(entry.get("caption", "")).strip():
                    report.uncaptioned += 1
                entry.update(relpath=rel, source=root.name, seconds=entry.get("seconds") or round(seconds, 3))
                sink.write({"__key__": sample_key(rel, taken), ext: data, "json": json.dumps(entry).encode()})
                report.files += 1
                report.transcoded += transcoded
        shards = sorted(private.glob("shard-*.tar"))
        report.shards += len(shards)
        report.bytes_written += sum(s.stat().st_size for s in shards)
    return target


def shard_folders(roots: tp.Sequence[str | os.PathLike], out_dir: str | os.PathLike, max_megabytes: float = 256.0,
                  max_files: int = 10_000, overwrite: bool = False) -> ShardReport:
    report = ShardReport()
    for root in roots:
        write_shards(root, out_dir, max_megabytes, max_files, overwrite, report)
    return report


def dataset_config(out_dir: str | os.PathLike, roots: tp.Sequence[str | os.PathLike], saga_sr: dict | None = None) -> dict:
    """The official ``wds`` dataset config for what :func:`shard_folders` wrote (local shards; for S3,
    replace each ``path`` by ``s3_path``)."""
    config: dict = {"dataset_type": "wds", "datasets": [
        {"id": Path(r).name, "path": str(Path(out_dir) / Path(r).name),
         "custom_metadata_module": "saga_sr_plugin.data.metadata"} for r in roots]}
    if saga_sr:
        config["saga_sr"] = saga_sr
    return config
