"""Atomic file writes: a reader (or the next run) sees the old file or the new one, never half of one.

Every output of the package (exports, audio, sidecars, reports) is written to a temporary
sibling named ``.<name>.saga-tmp-<pid><suffix>`` and moved over the target with
``os.replace`` once complete. On an exception (Ctrl-C included) the temporary file is
removed; after a hard kill it stays, and the next write to the same folder removes
every such leftover whose process is gone.
"""
from __future__ import annotations

import contextlib
import os
import re
import typing as tp
from pathlib import Path

_TMP = re.compile(r"^\..+\.saga-tmp-(\d+)(\.[^.]*)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete ``.*.saga-tmp-<pid>*`` files in ``folder`` left by processes that no longer run."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TMP.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> tp.Iterator[Path]:
    """Yield a temporary path beside ``target`` (by default with its suffix, so writers infer
    the format); move it over ``target`` when the block ends, delete it if the block fails."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    tmp = target.with_name(f".{target.stem}.saga-tmp-{os.getpid()}{target.suffix if suffix is None else suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(target: str | os.PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)
