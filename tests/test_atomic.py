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


def test_a_writers_own_temporary_never_lands_beside_the_target(tmp_path):
    """safetensors writes a ``.tmpXXXXXX`` of its own beside the path it is given; killed, that stayed."""
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "model.safetensors") as tmp:
            (tmp.parent / ".tmpAbC123").write_bytes(b"half a model")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_folders_of_killed_writes_are_removed_and_logged_by_the_next_write(tmp_path, caplog):
    stale = tmp_path / ".saga-tmp-999999999-3"  # no such process
    stale.mkdir()
    (stale / ".tmpAbC123").write_bytes(b"half a model")
    with caplog.at_level("INFO", logger="saga_sr.files"):
        write_audio(tmp_path / "z.wav", torch.zeros(1, 100), 44100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.wav"]
    assert "removed 1 temporary file(s)" in caplog.text and ".saga-tmp-999999999-3" in caplog.text


def test_a_250_character_target_name_is_writable(tmp_path):
    target = tmp_path / ("y" * 246 + ".wav")
    write_audio(target, torch.zeros(1, 100), 44100)
    assert target.is_file() and sorted(p.name for p in tmp_path.iterdir()) == [target.name]
