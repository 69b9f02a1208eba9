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


def test_saga_sr_export_of_a_crafted_checkpoint_runs_no_code_as_a_subprocess(evil_ckpt, config_file, tmp_path):
    """The entry point a user runs, on whatever Lightning the stack has (2.5 unpickles with code by default)."""
    import subprocess
    import sys

    path, marker = evil_ckpt
    done = subprocess.run([sys.executable, "-m", "saga_sr_plugin.interface.cli", "export", "--model-config",
                           config_file, "--ckpt-path", str(path), "-o", str(tmp_path / "x.safetensors")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "refused to load" in done.stderr and "system" in done.stderr, done.stderr
    assert not marker.exists() and not (tmp_path / "x.safetensors").exists()


def _export(config: dict, tmp_path, name: str, source: str) -> str:
    """Random weights of ``config`` exported the official way (a stand-in wrapper with an EMA-less DiT)."""
    import json

    import torch
    from stable_audio_tools.models.factory import create_model_from_config

    from saga_sr_plugin.training.export import export_model

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.diffusion = create_model_from_config(config)

        def export_model(self, path, use_safetensors=False):
            from safetensors.torch import save_file
            save_file(self.diffusion.state_dict(), path)

    out = tmp_path / name
    export_model(Wrapper(), out, json.loads(json.dumps(config)), config_source=source)
    return str(out)


def test_weights_from_another_config_with_fitting_shapes_are_refused_unless_asked(tiny_t5, tmp_path, caplog):
    import json

    from conftest import demo_config
    from saga_sr_plugin.models.weights import CheckpointMismatchError, read_identity

    base = demo_config(tiny_t5)
    weights = _export(base, tmp_path, "model.safetensors", "configs/base.json")
    identity, source = read_identity(weights)
    assert source == "configs/base.json" and identity["model"]["pretransform"] == base["model"]["pretransform"]

    other = json.loads(json.dumps(base))
    other["model"]["pretransform"]["config"]["scale"] = 0.654   # the same shapes, another latent scale
    other["saga_sr"] = {"steps": 7}                            # inference settings are not the model
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(CheckpointMismatchError) as err:
        load_exported_model(str(tmp_path / "other.json"), weights)
    message = str(err.value)
    assert "\n" not in message and "configs/base.json" in message and "other.json" in message
    assert "model.pretransform.config.scale (0.654 here" in message and "--allow-config-mismatch" in message
    with caplog.at_level("WARNING"):
        load_exported_model(str(tmp_path / "other.json"), weights, allow_config_mismatch=True)
    assert "loading anyway" in caplog.text

    # the same model from another folder (relative vs absolute T5 path), with training-only keys changed: loads
    same = json.loads(json.dumps(base))
    same["training"] = {"learning_rate": 1}
    for entry in same["model"]["conditioning"]["configs"]:
        entry.get("config", {}).pop("dropout_prob", None)
    (tmp_path / "same.json").write_text(json.dumps(same))
    load_exported_model(str(tmp_path / "same.json"), weights)


def test_weights_without_a_record_load_with_a_note(demo_model_files, caplog):
    with caplog.at_level("INFO"):
        load_exported_model(*demo_model_files)
    assert "holds no record of the model config" in caplog.text


def test_training_from_weights_of_another_config_is_a_one_line_error(tiny_t5, tmp_path, dataset, capsys):
    import json

    from conftest import demo_config, one_line_error, run_train

    weights = _export(demo_config(tiny_t5), tmp_path, "model.safetensors", "demo.json")
    other = demo_config(tiny_t5)
    other["model"]["pretransform"]["config"]["scale"] = 0.654
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit):
        run_train(str(tmp_path / "other.json"), dataset, tmp_path / "run", "--pretrained-ckpt-path", weights,
                  "--max-steps", "1")
    assert "were exported with the model config demo.json, not" in one_line_error(capsys.readouterr().err)


def test_exports_are_written_with_the_usual_mode(tiny_t5, tmp_path):
    import os
    import stat

    from conftest import demo_config

    old = os.umask(0o022)
    try:
        weights = _export(demo_config(tiny_t5), tmp_path, "model.safetensors", "demo.json")
    finally:
        os.umask(old)
    for path in (weights, weights.replace(".safetensors", ".json")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, oct(os.stat(path).st_mode)


def test_an_unreadable_weights_file_is_reported_as_a_permission_problem(demo_model_files, monkeypatch):
    import os

    from saga_sr_plugin.models import weights as weights_module

    real = os.access
    monkeypatch.setattr(weights_module.os, "access",
                        lambda p, mode, **kw: False if str(p) == demo_model_files[1] else real(p, mode, **kw))
    with pytest.raises(CheckpointError, match="permission denied.*chmod"):
        load_exported_model(*demo_model_files)
