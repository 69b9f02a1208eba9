"""train_entry.py on what a new user hits: unsafe checkpoints, Ctrl-C, portable exports, the effective batch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_train
from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper

from saga_sr_plugin.data.demo_assets import save_tiny_t5
from saga_sr_plugin.models.loading import load_exported_model
from saga_sr_plugin.training import assembly


def test_a_crafted_checkpoint_runs_no_code_in_train_entry(evil_ckpt, config_file, dataset, tmp_path, capsys):
    path, marker = evil_ckpt
    with pytest.raises(SystemExit) as exit_info:
        run_train(config_file, dataset, tmp_path, "--ckpt-path", str(path), "--max-steps", "1")
    assert exit_info.value.code == 2 and not marker.exists()
    err = capsys.readouterr().err
    assert "evil.ckpt" in err and "system" in err and "must not run code" in err


def test_ctrl_c_saves_a_resumable_checkpoint_does_not_export_and_exits_non_zero(config_file, dataset, tmp_path,
                                                                                monkeypatch, capsys):
    original = DiffusionCondTrainingWrapper.on_train_batch_end

    def interrupt_at_step_2(self, *args, **kwargs):
        if self.global_step >= 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DiffusionCondTrainingWrapper, "on_train_batch_end", interrupt_at_step_2)
    with pytest.raises(SystemExit) as exit_info:
        run_train(config_file, dataset, tmp_path, "--max-steps", "10")
    assert exit_info.value.code == 130
    saved = tmp_path / "r" / "checkpoints" / "interrupted.ckpt"
    assert saved.is_file() and not (tmp_path / "r" / "model.safetensors").exists()
    err = capsys.readouterr().err
    assert "interrupted at step 2" in err and f"--ckpt-path {saved}" in err
    monkeypatch.setattr(DiffusionCondTrainingWrapper, "on_train_batch_end", original)
    run = run_train(config_file, dataset, tmp_path, "--max-steps", "4", "--ckpt-path", str(saved), "--no-export")
    assert run.trainer.global_step == 4


def test_exports_hold_absolute_local_paths_and_load_from_another_folder(config_file, dataset, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "assets").mkdir(parents=True)
    save_tiny_t5(work / "assets" / "t5")
    config = json.loads(Path(config_file).read_text())
    config["model"]["conditioning"]["configs"][0]["config"]["t5_model_name"] = "assets/t5"  # relative, as the demo's
    (work / "model.json").write_text(json.dumps(config))
    monkeypatch.chdir(work)
    run = run_train("model.json", dataset, work / "runs", "--max-steps", "1")
    exported = json.loads(run.export_path.with_suffix(".json").read_text())
    assert exported["model"]["conditioning"]["configs"][0]["config"]["t5_model_name"] == str(work / "assets" / "t5")
    monkeypatch.chdir(tmp_path)
    model, _ = load_exported_model(str(run.export_path.with_suffix(".json")), str(run.export_path))
    assert model is not None
    # a relative path beside the config resolves against the config's folder, from any working directory
    (work / "runs" / "r" / "rel.json").write_text(json.dumps(config))
    (work / "runs" / "r" / "assets").symlink_to(work / "assets")
    load_exported_model(str(work / "runs" / "r" / "rel.json"), str(run.export_path))


def test_effective_batch_size_sets_gradient_accumulation(config_file, dataset, tmp_path, capsys):
    config = json.loads(Path(config_file).read_text())
    config["training"]["effective_batch_size"] = 8
    path = tmp_path / "eff.json"
    path.write_text(json.dumps(config))
    run = run_train(str(path), dataset, tmp_path, "--max-steps", "1", "--no-export")
    assert run.trainer.accumulate_grad_batches == 4
    assert "effective batch 8 = batch 2 x 1 device(s) x 4 accumulated step(s)" in capsys.readouterr().out
    config["training"]["effective_batch_size"] = 7
    path.write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        run_train(str(path), dataset, tmp_path, "--max-steps", "1", "--no-export")
    assert exit_info.value.code == 2 and "not a multiple of --batch-size 2" in capsys.readouterr().err
    assert assembly.gradient_accumulation(config, "c", 2, 1, explicit=3) == 3


def test_paper_config_reads_its_effective_batch_size():
    config = json.loads((ROOT / "model_configs" / "saga_model_config.json").read_text())
    assert assembly.gradient_accumulation(config, "paper", 8, 32) == 1
    assert assembly.gradient_accumulation(config, "paper", 8, 8) == 4
