"""The paper's test protocol (Table 1): its three test sets built from a user's local copies, scored as the
paper lays them out.

Sets (SAGA-SR.md, "Evaluation"): speech = VCTK test, music = FMA-small, effects = ESC-50 fold 5, 400 clips
each, inputs at 4 and 8 kHz. Where the paper is silent the choices are data here:
- VCTK's test speakers: the speakers sorted, p280 and p315 left out (no text or no mic2 in 0.92), the
  last :data:`VCTK_TEST_SPEAKERS` of them (NU-Wave's split, which later SR papers reuse): p360 ... s5 in
  VCTK 0.92. Utterances are taken round-robin over the speakers.
- FMA-small: tracks in a stable hashed order, each track's middle ``seconds``.
- ESC-50: fold 5 from ``meta/esc50.csv`` (or the file name's first field), all 400 clips, whole (5 s).
Each clip is written at 44.1 kHz under ``OUT/{speech,music,effects}/`` (an excerpt of ``seconds`` at
most), with a manifest; files that cannot be read or are below 44.1 kHz are skipped and counted.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import re
import typing as tp
from pathlib import Path

import torchaudio.functional as AF
from tqdm.auto import tqdm

from ..atomic import write_text
from ..data.audio_format import SAMPLE_RATE, BadAudioError
from ..data.audio_io import list_audio_files, read_audio, write_audio
from .frechet import FrechetResult
from .protocol import summarise

log = logging.getLogger("saga_sr.paper_sets")
CLIPS_PER_SET = 400
VCTK_EXCLUDED = ("p280", "p315")
VCTK_TEST_SPEAKERS = 8
ESC50_FOLD = 5
SETS = ("speech", "music", "effects")
_SPEAKER = re.compile(r"^(p\d+|s\d+)$")


def stable_order(paths: tp.Iterable[Path]) -> list[Path]:
    """A fixed pseudo-random order (the same on every machine), by a hash of the file name."""
    return sorted(paths, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())


def vctk_files(root: Path, count: int = CLIPS_PER_SET) -> list[Path]:
    """``count`` utterances of the test speakers, round-robin over them (VCTK 0.92's ``wav48_silence_trimmed``
    or 0.80's ``wav48`` layout: speaker folders of audio files)."""
    speakers = sorted({p.parent.name for p in list_audio_files(root) if _SPEAKER.match(p.parent.name)})
    speakers = [s for s in speakers if s not in VCTK_EXCLUDED][-VCTK_TEST_SPEAKERS:]
    if not speakers:
        raise FileNotFoundError(f"{root}: no VCTK speaker folders (p225, ..., s5) with audio files")
    per_speaker = {s: stable_order(p for p in list_audio_files(root) if p.parent.name == s
                                   and not p.stem.endswith("_mic2")) for s in speakers}
    chosen: list[Path] = []
    for i in range(max(map(len, per_speaker.values()))):
        chosen += [files[i] for files in per_speaker.values() if i < len(files)]
    return chosen[:count]


def fma_files(root: Path, count: int = CLIPS_PER_SET) -> list[Path]:
    return stable_order(list_audio_files(root))[:count]


def esc50_files(root: Path, fold: int = ESC50_FOLD) -> list[Path]:
    """The fold's clips, by ``meta/esc50.csv`` when present, else by the file names' first field."""
    meta = root / "meta" / "esc50.csv"
    if meta.is_file():
        with open(meta) as f:
            names = {row["filename"] for row in csv.DictReader(f) if int(row["fold"]) == fold}
        return sorted(p for p in list_audio_files(root) if p.name in names)
    return sorted(p for p in list_audio_files(root) if p.name.split("-")[0] == str(fold))


@dataclasses.dataclass
class SetReport:
    written: dict[str, int]
    skipped: list[str]


def build_sets(out: str | os.PathLike, vctk: str | None = None, fma: str | None = None, esc50: str | None = None,
               clips: int = CLIPS_PER_SET, seconds: float = 5.94) -> SetReport:
    """Write the sets that have a source under ``out``; idempotent (existing clips are kept)."""
    out = Path(out)
    sources = {"speech": (vctk, vctk_files), "music": (fma, fma_files), "effects": (esc50, esc50_files)}
    written: dict[str, int] = {}
    skipped: list[str] = []
    manifest = []
    for name, (root, pick) in sources.items():
        if not root:
            continue
        if not Path(root).is_dir():
            raise FileNotFoundError(f"{name} source folder not found: {root}")
        files = pick(Path(root)) if name == "effects" else pick(Path(root), clips * 2)   # spares for skips
        done = 0
        for path in tqdm(files, desc=f"{name} set", unit="file"):
            if done == clips:
                break
            target = out / name / f"{path.stem}.wav"
            if not target.is_file():
                try:
                    audio, rate = read_audio(path)
                except (BadAudioError, OSError) as err:
                    skipped.append(str(err))
                    continue
                if rate < SAMPLE_RATE:
                    skipped.append(f"{path}: {rate} Hz, below the 44.1 kHz a reference needs")
                    continue
                if rate != SAMPLE_RATE:
                    audio = AF.resample(audio, rate, SAMPLE_RATE)
                n = int(seconds * SAMPLE_RATE)
                start = max(0, (audio.shape[-1] - n) // 2)
                write_audio(target, audio[:, start:start + n], SAMPLE_RATE)
            manifest.append({"set": name, "source": str(path), "clip": str(target.relative_to(out))})
            done += 1
        written[name] = done
        if done < clips:
            log.warning("%s: %d clips, fewer than the %d asked for", name, done, clips)
    write_text(out / "manifest.json", json.dumps({"clips": manifest, "skipped": skipped, "seconds": seconds}, indent=2))
    return SetReport(written, skipped)


def table1(rows: list[dict], fd: dict[tuple[str, int, str], FrechetResult] | None = None,
           metric: str = "nuwave2/lsd") -> str:
    """Table 1's layout: a row per system; speech LSD, music and effects LSD / FD, at 4 and 8 kHz."""
    summary = summarise(rows, metric)
    systems = list(dict.fromkeys(r["system"] for r in rows))
    cutoffs = sorted({r["cutoff_hz"] for r in rows})
    sets = [s for s in SETS if any(r["category"] == s for r in rows)]
    header = [f"{s} {c // 1000}k" for s in sets for c in cutoffs]
    lines = [f"| method | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for system in systems:
        cells = []
        for s in sets:
            for c in cutoffs:
                value = f"{summary[(s, c, system)][0]:.2f}" if (s, c, system) in summary else "-"
                if fd is not None and s != "speech" and (s, c, system) in fd:   # the paper gives FD for music, effects
                    value += f" / {fd[(s, c, system)]}"
                cells.append(value)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
