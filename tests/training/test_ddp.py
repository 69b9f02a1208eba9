"""Multi-process training through Lightning's own DDP (gloo, 2 CPU processes): one export, ranks in step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, demo_config, one_line_error, write_demo_dataset
from safetensors.torch import load_file

from saga_sr_plugin.interface import cli
from saga_sr_plugin.models.weights import read_checkpoint
from saga_sr_plugin.training import assembly

PROBE = Path(__file__).with_name("ddp_probe.py")


def run_ddp(tmp_path: Path, model_config: Path, dataset: str, steps: int = 3, strategy: str = "ddp",
            accelerator: str = "cpu", devices: int = 2) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)  # keep a carried site folder
    env = {**os.environ, "SAGA_DDP_PROBE_OUT": str(tmp_path), "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, str(PROBE), "--model-config", str(model_config), "--dataset-config", dataset,
         "--accelerator", accelerator, "--devices", str(devices), "--strategy", strategy, "--max-steps", str(steps),
         "--batch-size", "2",
         "--num-workers", "1", "--checkpoint-every", str(steps), "--save-dir", str(tmp_path / "runs"), "--name", "ddp"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def check_run(tmp_path: Path, result: subprocess.CompletedProcess, model_config: dict, steps: int = 3,
              world: int = 2) -> None:
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    run_dir = tmp_path / "runs" / "ddp"
    assert log.count("exported EMA weights to") == 1, "rank 0 alone exports"
    exported = load_file(str(run_dir / "model.safetensors"))
    ranks = [load_file(str(tmp_path / f"ema_rank{r}.safetensors")) for r in range(world)]
    assert all(r.keys() == ranks[0].keys() for r in ranks)
    for key in ranks[0]:
        assert all(torch.equal(ranks[0][key], r[key]) for r in ranks), f"EMA weights differ between ranks at {key}"
        # the export is the whole model with the EMA DiT (DiTWrapper "model") in place of the online one
        assert torch.equal(ranks[0][key], exported[f"model.{key}"]), f"the export is not rank 0's EMA at {key}"
    checkpoint = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == steps and checkpoint["model_config"] == json.loads(json.dumps(model_config))
    wrapper = assembly.build_training_wrapper(model_config, assembly.build_model(model_config, "model.json"))
    assembly.check_resume_checkpoint(str(run_dir / "checkpoints" / "last.ckpt"), wrapper, "model.json")


@pytest.fixture(scope="module")
def ddp_root(tmp_path_factory, tiny_t5):
    root = tmp_path_factory.mktemp("ddp")
    config = demo_config(tiny_t5, sample_size=8192)
    return root, config, write_demo_dataset(root, clips=8, seed=4)


def test_ddp_on_raw_audio(ddp_root, tmp_path):
    _, config, dataset = ddp_root
    (tmp_path / "model.json").write_text(json.dumps(config))
    check_run(tmp_path, run_ddp(tmp_path, tmp_path / "model.json", dataset), config)


def test_ddp_on_pre_encoded_data(ddp_root, tmp_path):
    root, config, _ = ddp_root
    (tmp_path / "raw.json").write_text(json.dumps(config))
    assert cli.main(["pre-encode", str(root / "clips"), "-o", str(tmp_path / "latents"), "--model-config",
                     str(tmp_path / "raw.json"), "-k", "2", "--device", "cpu"]) == 0
    config = json.loads(json.dumps(config))
    config["training"]["pre_encoded"] = True
    (tmp_path / "model.json").write_text(json.dumps(config))
    result = run_ddp(tmp_path, tmp_path / "model.json", str(tmp_path / "latents" / "dataset_config.json"))
    check_run(tmp_path, result, config)


def test_ddp_over_webdataset_shards_each_rank_reads_its_own_stream(ddp_root, tmp_path):
    """The official wds loader resamples shards per rank (its seed holds the rank): with one clip per
    shard, the two ranks' training steps see different sequences of clips, both from the shards."""
    root, config, _ = ddp_root
    (tmp_path / "model.json").write_text(json.dumps(config))
    assert cli.main(["shard", str(root / "clips"), "-o", str(tmp_path / "shards"), "--files-per-shard", "1"]) == 0
    result = run_ddp(tmp_path, tmp_path / "model.json", str(tmp_path / "shards" / "dataset_config.json"), steps=6)
    check_run(tmp_path, result, config, steps=6)
    seen = [json.loads((tmp_path / f"seen_rank{r}.json").read_text()) for r in (0, 1)]
    clips = {p.name for p in (root / "clips").glob("*.wav")}
    assert all(len(s) == 12 and set(s) <= clips for s in seen), seen
    assert seen[0] != seen[1], "both ranks read the same clips in the same order"



@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.skipif(not assembly.FEATURES["fsdp_ema"], reason="FSDP with the official EMA is 0.0.20's")
def test_fsdp_on_one_gpu_trains_and_exports_the_ema(ddp_root, tmp_path):
    """0.0.20's FSDP strategy and pre-wrap callback at world size 1: the DiT's blocks are sharded, the EMA
    is kept whole (its FSDP-aware update), and the export holds it."""
    _, config, dataset = ddp_root
    (tmp_path / "model.json").write_text(json.dumps(config))
    result = run_ddp(tmp_path, tmp_path / "model.json", dataset, strategy="fsdp", accelerator="gpu", devices=1)
    check_run(tmp_path, result, config, world=1)


def test_fsdp_is_a_one_line_error_where_it_cannot_run(demo_config_file, capsys):
    """On 0.0.19 it names the release to install; on the CPU (Lightning's FSDP needs CUDA) it names ddp."""
    from saga_sr_plugin.interface import train as train_entry

    with pytest.raises(SystemExit) as exit_info:
        train_entry.main(["--model-config", demo_config_file, "--strategy", "fsdp", "--accelerator", "cpu",
                          "--max-steps", "1"])
    line = one_line_error(capsys.readouterr().err)
    expected = "--strategy ddp" if assembly.FEATURES["fsdp_ema"] else "needs stable-audio-tools 0.0.20"
    assert exit_info.value.code == 2 and expected in line and "fsdp" in line
