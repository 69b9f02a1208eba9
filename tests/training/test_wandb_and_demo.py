"""W&B offline runs carry the SR demos; the main job's demo output is something to listen to and look at."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import demo_config
from saga_sr_plugin.data.demo_assets import save_tiny_t5, write_split

from saga_sr_plugin.interface import train as train_entry


@pytest.fixture
def tiny_setup(tmp_path):
    write_split(tmp_path / "train", 4, np.random.default_rng(1), 0.5)
    write_split(tmp_path / "val", 2, np.random.default_rng(2), 0.5)
    dataset = {"dataset_type": "audio_dir", "random_crop": True, "drop_last": True,
               "datasets": [{"id": "t", "path": str(tmp_path / "train"), "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}
    (tmp_path / "ds.json").write_text(json.dumps(dataset))
    dataset["datasets"][0]["path"] = str(tmp_path / "val")
    (tmp_path / "val.json").write_text(json.dumps(dataset))
    (tmp_path / "model.json").write_text(json.dumps(demo_config(str(save_tiny_t5(tmp_path / "t5")), sample_size=8192)))
    return tmp_path


def _args(tmp_path, *extra):
    return ["--model-config", str(tmp_path / "model.json"), "--dataset-config", str(tmp_path / "ds.json"),
            "--save-dir", str(tmp_path / "runs"), "--name", "r", "--batch-size", "2", "--num-workers", "1",
            "--demo-dir", str(tmp_path / "val"), "--demo-count", "1", "--demo-steps", "2", *extra]


def test_wandb_offline_run_holds_sr_demo_media_and_configs(tiny_setup, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train_entry.main(_args(tiny_setup, "--max-steps", "4", "--demo-every", "2", "--logger", "wandb",
                           "--val-dataset-config", str(tiny_setup / "val.json"), "--val-every", "2", "--no-export"))
    import wandb
    wandb.finish()
    runs = list((tiny_setup / "runs" / "r" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    media = list(runs[0].rglob("media/**/*"))
    names = [m.name for m in media]
    assert any(n.endswith(".wav") and "input" in str(m) for m, n in zip(media, names)), names
    assert any(n.endswith(".wav") and "output" in str(m) for m, n in zip(media, names)), names
    assert any(n.endswith(".png") for n in names), names
    events = b"".join(p.read_bytes() for p in runs[0].glob("*.wandb"))
    for key in (b"model_config", b"dataset_config", b"val/lsd_4k", b"train/loss", b"train/lr", b"val/loss_0.5",
                b"demo/clip_000_4k/spectrograms"):
        assert key in events, key


def test_main_job_writes_listenable_demos(tiny_setup, capsys):
    run = train_entry.main(_args(tiny_setup, "--max-steps", "2", "--demo-every", "0"))
    demo = tiny_setup / "runs" / "r" / "demo"
    wavs = sorted(p.name for p in demo.glob("*.wav"))
    assert len(wavs) == 2 * 3 and any("_4k_output" in w for w in wavs)  # 1 clip x 2 cutoffs x 3 files
    assert len(list(demo.glob("*.png"))) == 2
    table = (demo / "README.md").read_text()
    assert "LSD output" in table and "| 4-8 kHz | 8-12 kHz | 12-16 kHz | 16-22.05 kHz | window step |" in table
    row_4k = next(line for line in table.splitlines() if "| 4 kHz |" in line)
    assert len([c for c in row_4k.split("|") if c.strip().startswith(("+", "-"))]) == 4, row_4k
    assert table in capsys.readouterr().out, "the main job prints the table"
    assert run.export_path.is_file()


def test_the_final_demo_says_what_runs_shows_a_bar_and_can_be_skipped(tiny_setup, capsys):
    train_entry.main(_args(tiny_setup, "--max-steps", "1", "--demo-every", "0"))
    captured = capsys.readouterr()
    said = captured.out.index("final SR demos: 1 clip(s) x 2 cutoff(s), 2 sampler steps per window (4 kHz, 8 kHz)")
    assert said < captured.out.index("SR demos (input / output / reference") and "--no-final-demo" in captured.out
    assert "SR demos:" in captured.err and "window-step" in captured.err, "a progress bar over the demo's steps"

    run = train_entry.main(_args(tiny_setup, "--max-steps", "1", "--demo-every", "0", "--no-final-demo",
                                 "--name", "skipped"))
    assert run.export_path.is_file() and not (tiny_setup / "runs" / "skipped" / "demo").exists()
    assert "final SR demos" not in capsys.readouterr().out
