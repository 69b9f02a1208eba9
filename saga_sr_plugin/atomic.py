"""Atomic file writes: a reader (or the next run) sees the old file or the new one, never half of one.

Every output of the package (exports, audio, sidecars, reports) is written inside a
private folder beside the target, ``.saga-tmp-<pid>-<n>/``, and moved over the target
with ``os.replace`` once complete. The folder's name is short whatever the target's
(a 250-character output name stays writable), and anything a writer puts beside its
own file lands in it too (safetensors writes a ``.tmpXXXXXX`` of its own before it
renames). The file gets the mode a plain ``open`` would give it (the umask's), whatever the writer used.
On an exception (Ctrl-C included) the folder is removed; after a hard kill
it stays, and the next write to the same folder removes every such leftover whose
process is gone, and logs what it removed.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import typing as tp
from pathlib import Path

log = logging.getLogger("saga_sr.files")
# ``.saga-tmp-<pid>-<n>`` folders, and ``.<name>.saga-tmp-<pid><suffix>`` files of versions before 0.1.1
_TMP = re.compile(r"^\.(?:saga-tmp-(\d+)-\d+|.+\.saga-tmp-(\d+)(?:\.[^.]*)?)$")
_counter = itertools.count()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries in ``folder`` left by processes that no longer run."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TMP.match(entry.name)
        if not match:
            continue
        pid = int(match.group(1) or match.group(2))
        if pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    if removed:
        log.info("removed %d temporary file(s) left in %s by a run that was killed: %s", len(removed), folder,
                 ", ".join(p.name for p in removed[:3]))
    return removed


def default_file_mode() -> int:
    """The mode a plain ``open`` gives a new file under this process's umask (0o644 under umask 022)."""
    try:
        with open("/proc/self/status") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> tp.Iterator[Path]:
    """Yield a temporary path for ``target`` (by default with its suffix, so writers infer the
    format); move it over ``target`` when the block ends, delete it if the block fails."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    private = target.parent / f".saga-tmp-{os.getpid()}-{next(_counter)}"
    private.mkdir()
    tmp = private / f"partial{target.suffix if suffix is None else suffix}"
    try:
        yield tmp
        # writers that stage through mkstemp (safetensors) leave 0600; give the file the usual mode
        if tmp.is_file() and not tmp.is_symlink():
            os.chmod(tmp, default_file_mode())
        os.replace(tmp, target)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def write_text(target: str | os.PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> tp.Iterator[Path]:
    """Yield an empty private folder; when the block ends it replaces ``target`` (a folder) whole,
    and if the block fails it is deleted and ``target`` stays as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    private = target.parent / f".saga-tmp-{os.getpid()}-{next(_counter)}"
    private.mkdir()
    try:
        yield private
        if target.exists():
            shutil.rmtree(target)
        os.replace(private, target)
    finally:
        shutil.rmtree(private, ignore_errors=True)
