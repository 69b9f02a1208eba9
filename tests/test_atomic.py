"""Atomic writes: a failed or killed write never clobbers the old file or leaves litter."""
from __future__ import annotations

import os
import pytest
import torch
from saga_sr_plugin.atomic import atomic_path
from saga_sr_plugin.data.audio_io import write_audio


def test_a_failed_export_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.ckpt"
    target.write_bytes(b"old model")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of a new mod")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old model" and sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_leftovers_of_killed_runs_are_removed_by_the_next_write(tmp_path):
    stale = tmp_path / ".x.saga-tmp-999999999.wav"  # no such process
    stale.write_bytes(b"partial")
    mine = tmp_path / f".y.saga-tmp-{os.getpid()}.wav"
    mine.write_bytes(b"in progress")
    write_audio(tmp_path / "z.wav", torch.zeros(1, 100), 44100)
    assert not stale.exists() and mine.exists() and (tmp_path / "z.wav").is_file()
