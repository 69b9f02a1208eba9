"""Weights and checkpoints are read weights-only and fitted strictly."""
from __future__ import annotations

import pytest

from saga_sr_plugin.models.loading import load_exported_model
from saga_sr_plugin.models.weights import CheckpointError
from saga_sr_plugin.training.export import export_checkpoint


def test_a_crafted_checkpoint_runs_no_code_in_export_or_loading(evil_ckpt, config_file, tmp_path):
    path, marker = evil_ckpt
    with pytest.raises(CheckpointError, match="evil.ckpt.*system"):
        export_checkpoint(config_file, str(path), str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load_exported_model(config_file, str(path))
    assert not marker.exists()
