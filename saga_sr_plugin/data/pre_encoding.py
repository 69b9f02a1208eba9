"""Pre-encoded training data in the official ``pre_encoded`` layout (``saga-sr pre-encode``).

Three quarters of an on-the-fly SAGA-SR step re-encode audio through the frozen VAE
(z_h of the batch, z_l of its simulated low-res version). Pre-encoding does that once:
each file is cut into consecutive clips of the model's ``sample_size``, and for each
clip this writes

- ``<stem>.npy``: z_h (latent channels, frames), float32: what the official
  ``PreEncodedDataset`` loads as the training target;
- ``<stem>.zl.npz``: K simulated low-res versions encoded, z_l (K, channels, frames),
  float16 (the ``npz`` suffix keeps them out of the official file scan);
- ``<stem>.json``: the official metadata (``padding_mask``, ``seconds_total``) plus
  the caption (``prompt``), f_h, and per version f_l and the degradation drawn
  (cutoff, filter, order), exactly as training simulates them.

``saga_sr_plugin.data.pre_encoded`` (the dataset's ``custom_metadata_module``) picks one of
the K versions per step. The ``.npy`` is written last, so the official scan only ever
finds complete clips, and a rerun skips them (resumable). Under ``torchrun`` each rank
takes every world-th file on its own GPU (``--shard i/n`` picks a share by hand, e.g. for
a SLURM array); unreadable, silent and >2-channel files are counted skips.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import time
import typing as tp
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import atomic_path, write_text
from .audio_format import SAMPLE_RATE, BadAudioError
from .audio_io import list_audio_files, prepare_input, read_audio
from ..distributed import Share, parse_share
from .sidecar import caption_at, read_sidecar, sidecar_path
from .simulation import SimulationConfig, simulate_low_res

log = logging.getLogger("saga_sr.pre_encode")
SILENCE_PEAK = 1e-5
ZL_SUFFIX = ".zl.npz"


@dataclasses.dataclass
class PreEncodeReport:
    files: int = 0
    clips: int = 0
    already_done: int = 0
    skipped: list[dict] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    bytes_written: int = 0

    @classmethod
    def total(cls, reports: tp.Sequence["PreEncodeReport"]) -> "PreEncodeReport":
        """Every rank's report as one (seconds: the slowest rank's, the job's wall time)."""
        return cls(*(sum(getattr(r, f) for r in reports) for f in ("files", "clips", "already_done")),
                   [s for r in reports for s in r.skipped], max((r.seconds for r in reports), default=0.0),
                   sum(r.bytes_written for r in reports))

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["skipped_count"] = len(self.skipped)
        out["clips_per_second"] = round(self.clips / self.seconds, 3) if self.seconds else 0.0
        out["bytes_per_clip"] = round(self.bytes_written / self.clips) if self.clips else 0
        return out


@dataclasses.dataclass
class Clip:
    stem: Path                 # output path without suffix
    audio: torch.Tensor        # (2, sample_size) at 44.1 kHz, zero-padded
    valid: int                 # samples of real audio
    start_seconds: float
    caption: str
    source: str
    index: int


def cut_clips(audio: torch.Tensor, sample_size: int, min_fraction: float = 0.5) -> list[tuple[torch.Tensor, int, int]]:
    """Consecutive clips of ``sample_size``: (clip, valid samples, start); a tail shorter than
    ``min_fraction`` of a clip is dropped (as a crop that short would be mostly padding)."""
    clips = []
    for start in range(0, audio.shape[-1], sample_size):
        piece = audio[:, start:start + sample_size]
        if piece.shape[-1] < min_fraction * sample_size and start > 0:
            break
        clips.append((torch.nn.functional.pad(piece, (0, sample_size - piece.shape[-1])), piece.shape[-1], start))
    return clips


def clip_rng(seed: int, source: str, index: int) -> np.random.Generator:
    """The degradations of a clip depend on (seed, file, clip) only: shards and reruns agree."""
    return np.random.default_rng([seed, zlib.crc32(source.encode()), index])


def raw_latents(pretransform: torch.nn.Module, audio: torch.Tensor) -> torch.Tensor:
    """z_h as the official pre-encoded training step expects it: it divides by a float
    ``pretransform.scale`` itself, so the stored latents are encode() x scale."""
    z = pretransform.encode(audio)
    scale = getattr(pretransform, "scale", 1.0)
    return z * scale if isinstance(scale, (int, float)) and scale != 1.0 else z


def _save_npy(path: Path, array: np.ndarray) -> int:
    with atomic_path(path, suffix=".part") as tmp, open(tmp, "wb") as f:  # never *.npy until complete
        np.save(f, array)
    return path.stat().st_size


def _save_npz(path: Path, **arrays: np.ndarray) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path.stat().st_size


class PreEncoder:
    """Encodes clips through the model's pretransform in batches and writes the files."""

    def __init__(self, pretransform: torch.nn.Module, sample_size: int, versions: int = 4, batch_size: int = 16,
                 device: str | torch.device = "cpu", seed: int = 0, simulation: SimulationConfig = SimulationConfig()):
        if versions < 1:
            raise ValueError(f"versions (K) must be at least 1, got {versions}")
        ratio = getattr(pretransform, "downsampling_ratio", 1)
        if sample_size % ratio:
            raise ValueError(f"sample_size {sample_size} is not a multiple of the pretransform's ratio {ratio}")
        self.pretransform = pretransform.to(device).eval().requires_grad_(False)
        self.sample_size, self.frames = sample_size, sample_size // ratio
        self.versions, self.batch_size, self.device, self.seed = versions, batch_size, torch.device(device), seed
        if simulation.target_lowpass_hz is not None:
            raise ValueError("saga_sr.target_lowpass_hz low-passes the target anew at every draw, and pre-encoding "
                             "stores one target latent per clip: train on audio (not pre-encoded) with it")
        self.simulation = simulation

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(n, 2, sample_size) -> latents (n, channels, frames), in batches of ``batch_size``."""
        out = [raw_latents(self.pretransform, audio[i:i + self.batch_size].to(self.device)).float().cpu()
               for i in range(0, audio.shape[0], self.batch_size)]
        return torch.cat(out)

    def write(self, clips: list[Clip]) -> int:
        """Simulate K low-res versions per clip, encode everything, write the files; returns bytes."""
        lowres, meta = [], []
        for clip in clips:
            rng = clip_rng(self.seed, clip.source, clip.index)
            pairs = [simulate_low_res(clip.audio, rng, self.simulation) for _ in range(self.versions)]
            lowres += [p.low_res.clamp(-1, 1) for p in pairs]
            meta.append(pairs)
        z_h = self.encode(torch.stack([c.audio for c in clips]))
        z_l = self.encode(torch.stack(lowres)).reshape(len(clips), self.versions, *z_h.shape[1:])
        written = 0
        for clip, zh, zl, pairs in zip(clips, z_h, z_l, meta):
            valid_frames = min(self.frames, -(-clip.valid * self.frames // self.sample_size))
            info = {
                "padding_mask": [1] * valid_frames + [0] * (self.frames - valid_frames),
                "seconds_start": round(clip.start_seconds, 4), "seconds_total": round(clip.valid / SAMPLE_RATE, 4),
                "prompt": clip.caption, "source": clip.source, "clip": clip.index,
                "sample_rate": SAMPLE_RATE, "sample_size": self.sample_size,
                "rolloff_hr": pairs[0].rolloff_hr, "rolloff_lr": [p.rolloff_lr for p in pairs],
                "lr_cutoff_hz": [round(p.spec.cutoff_hz, 2) for p in pairs],
                "lr_filter": [p.spec.filter_type for p in pairs], "lr_order": [p.spec.order for p in pairs],
            }
            written += _save_npz(clip.stem.with_suffix(ZL_SUFFIX), z_l=zl.numpy().astype(np.float16))
            text = json.dumps(info)
            write_text(clip.stem.with_suffix(".json"), text)
            written += len(text.encode())
            written += _save_npy(clip.stem.with_suffix(".npy"), zh.numpy().astype(np.float32))  # last: marks it done
        return written


def _load_for_clips(path: Path) -> torch.Tensor:
    """Stereo at 44.1 kHz, with the upsampler's checks (more than 2 channels, silence, rate)."""
    x = prepare_input(*read_audio(path), what=str(path))
    return x.expand(2, -1).contiguous() if x.shape[0] == 1 else x


def pre_encode(roots: tp.Sequence[str | os.PathLike], out_dir: str | os.PathLike, encoder: PreEncoder,
               shard: str | Share = "0/1", report_path: str | os.PathLike | None = None) -> PreEncodeReport:
    """Pre-encode every audio file under ``roots`` into ``out_dir/<root name>/...`` (resumable).

    ``shard``: this process's share of the files (``INDEX/COUNT``, ``auto`` or a :class:`Share`).
    On a torchrun group every rank returns its own report and rank 0 writes the total to ``report_path``.
    """
    share = parse_share(shard) if isinstance(shard, str) else shard
    out_dir = Path(out_dir)
    report = PreEncodeReport()
    jobs: list[tuple[Path, Path, str, dict[str, dict]]] = []
    for root in map(Path, roots):
        captions = read_sidecar(sidecar_path(root))
        for f in list_audio_files(root, what="folder to pre-encode"):
            jobs.append((f, root, f.relative_to(root).as_posix(), captions))
    jobs = share.take(jobs)
    start = time.time()
    pending: list[Clip] = []
    bar = tqdm(jobs, desc=f"pre-encode ({share.describe()})", unit="file")

    def flush() -> None:
        if pending:
            report.bytes_written += encoder.write(pending)
            report.clips += len(pending)
            pending.clear()

    for path, root, rel, captions in bar:
        stem_dir = out_dir / root.name / Path(rel).parent
        try:
            audio = _load_for_clips(path)
        except (BadAudioError, FileNotFoundError, OSError) as err:
            report.skipped.append({"path": str(path), "reason": str(err)})
            log.warning("skipped (%d so far): %s", len(report.skipped), err)
            continue
        report.files += 1
        for i, (clip, valid, offset) in enumerate(cut_clips(audio, encoder.sample_size)):
            caption = caption_at(captions.get(rel, {}), offset / SAMPLE_RATE, (offset + valid) / SAMPLE_RATE)
            stem = stem_dir / f"{Path(rel).stem}_{i:04d}"
            if stem.with_suffix(".npy").exists():
                report.already_done += 1
                continue
            if clip.abs().max() < SILENCE_PEAK:
                report.skipped.append({"path": f"{path} clip {i}", "reason": "silent clip"})
                continue
            pending.append(Clip(stem, clip, valid, offset / SAMPLE_RATE, caption, rel, i))
            if len(pending) >= encoder.batch_size:
                flush()
        bar.set_postfix(clips=report.clips + len(pending), skipped=len(report.skipped))
    flush()
    bar.close()
    report.seconds = time.time() - start
    reports = share.gather(report)
    if report_path and share.is_first:
        write_text(report_path, json.dumps(PreEncodeReport.total(reports or [report]).to_json(), indent=2))
    return report


def dataset_config(out_dir: str | os.PathLike, roots: tp.Sequence[str | os.PathLike]) -> dict:
    """The official ``pre_encoded`` dataset config for what :func:`pre_encode` wrote."""
    return {"dataset_type": "pre_encoded", "random_crop": False, "drop_last": True,
            "datasets": [{"id": Path(r).name, "path": str(Path(out_dir) / Path(r).name),
                          "custom_metadata_module": "saga_sr_plugin.data.pre_encoded"} for r in roots]}

