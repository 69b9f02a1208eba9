"""The caption sidecar: one ``captions.jsonl`` per dataset root.

Each line is a JSON object ``{"path": <path relative to the root, POSIX>, "caption": <str>,
...}`` (extra keys such as ``model`` and ``prompt`` record provenance). A file captioned per
segment (``saga-sr caption --segment-seconds``, as the authors captioned each training
segment) also has ``"segments": [{"start": s, "end": s, "caption": str}, ...]`` in seconds and
``"seconds"`` (its length); its ``caption`` is the middle segment's, for readers that want one.
The file is always rewritten whole through ``atomic.atomic_path``, so a crash leaves either
the old or the new file, never half a line.

Many processes (``torchrun``) each write a part, ``captions.part-<rank>-of-<world>.jsonl``, in
the same format; :func:`merge_parts` folds them into the sidecar.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import atomic_path

SIDECAR_NAME = "captions.jsonl"
PART_PATTERN = "captions.part-*-of-*.jsonl"


def sidecar_path(root: str | os.PathLike) -> Path:
    return Path(root) / SIDECAR_NAME


def relative_key(path: str | os.PathLike, root: str | os.PathLike) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def read_sidecar(path: str | os.PathLike) -> dict[str, dict]:
    """Entries by relative path; a missing file is an empty sidecar, a corrupt line an error."""
    path = Path(path)
    if not path.exists():
        return {}
    entries: dict[str, dict] = {}
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries[str(entry["path"])] = entry
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{path}:{line_no}: not a caption entry ({err}); "
                                 "each line must be a JSON object with 'path' and 'caption'") from err
    return entries


def part_path(root: str | os.PathLike, rank: int, world: int) -> Path:
    return Path(root) / f"captions.part-{rank}-of-{world}.jsonl"


def read_with_parts(root: str | os.PathLike) -> dict[str, dict]:
    """The sidecar with every part of an unfinished many-process run folded in (a part's entry wins)."""
    entries = read_sidecar(sidecar_path(root))
    for part in sorted(Path(root).glob(PART_PATTERN)):
        entries.update(read_sidecar(part))
    return entries


def merge_parts(root: str | os.PathLike) -> int:
    """Fold the parts into ``captions.jsonl`` (atomically), then delete them; the number merged."""
    parts = sorted(Path(root).glob(PART_PATTERN))
    if parts:
        write_sidecar(sidecar_path(root), read_with_parts(root))
        for part in parts:
            part.unlink()
    return len(parts)


def caption_at(entry: dict, start: float, end: float) -> str:
    """The caption of the stretch ``start``-``end`` s of a file: the segment overlapping it most
    (the first such), or the file's caption when it was captioned whole."""
    segments = entry.get("segments") or []
    if not segments:
        return str(entry.get("caption", ""))
    overlap = [min(end, s["end"]) - max(start, s["start"]) for s in segments]
    return str(segments[overlap.index(max(overlap))]["caption"])


def segment_spans(seconds: float, length: float, hop: float) -> list[tuple[float, float]]:
    """Segments of ``length`` s every ``hop`` s covering ``seconds`` s of audio; the last one ends at the
    end (it may overlap the one before); audio shorter than a segment is one segment."""
    if seconds <= length:
        return [(0.0, round(seconds, 6))]
    spans, start = [], 0.0
    while start + length <= seconds + 1e-9:
        spans.append((round(start, 6), round(start + length, 6)))
        start += hop
    if spans[-1][1] < seconds - 1e-6:
        spans.append((round(seconds - length, 6), round(seconds, 6)))
    return spans


def read_captions(root: str | os.PathLike) -> dict[str, str]:
    """Caption text by relative path for the dataset root ``root`` ({} when it has no sidecar)."""
    return {k: str(v.get("caption", "")) for k, v in read_sidecar(sidecar_path(root)).items()}


def write_sidecar(path: str | os.PathLike, entries: dict[str, dict]) -> None:
    """Atomically replace the sidecar with ``entries`` (sorted by path)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for key in sorted(entries):
            f.write(json.dumps({**entries[key], "path": key}, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def captions_under(root: str | os.PathLike) -> dict[str, str]:
    """Captions of every ``captions.jsonl`` at or below ``root``, keyed by path relative to ``root``."""
    root = Path(root)
    out: dict[str, str] = {}
    for sidecar in sorted(root.rglob(SIDECAR_NAME)):
        for rel, caption in read_captions(sidecar.parent).items():
            out[(sidecar.parent / rel).relative_to(root).as_posix()] = caption
    return out
