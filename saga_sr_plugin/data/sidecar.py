"""The caption sidecar: one ``captions.jsonl`` per dataset root.

Each line is a JSON object ``{"path": <path relative to the root, POSIX>, "caption": <str>,
...}`` (extra keys such as ``model`` and ``prompt`` record provenance). The file is
always rewritten whole through ``atomic.atomic_path``, so a crash leaves either the
old or the new file, never half a line.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import atomic_path

SIDECAR_NAME = "captions.jsonl"


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
