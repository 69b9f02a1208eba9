"""Pre-encoded training through the official ``pre_encoded`` dataset and wrapper switch."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from stable_audio_tools.models.factory import create_model_from_config

from conftest import ROOT, SR, demo_config, logged
from saga_sr_plugin.interface import cli
from saga_sr_plugin.data import pre_encoded
from saga_sr_plugin.models.conditioners import LowResLatentConditioner
from saga_sr_plugin.data.demo_assets import write_split
from saga_sr_plugin.data.pre_encoding import PreEncoder, clip_rng, cut_clips, pre_encode
from saga_sr_plugin.data.simulation import simulate_low_res

from saga_sr_plugin.interface import train as train_entry


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, tiny_t5):
    """Four demo clips of 0.5 s plus a corrupt and a silent file, pre-encoded with K = 3."""
    root = tmp_path_factory.mktemp("pe")
    write_split(root / "music", 4, np.random.default_rng(5), 0.5)
    (root / "music" / "broken.wav").write_bytes(b"RIFF nonsense")
    sf.write(root / "music" / "silent.wav", np.zeros((22050, 2), dtype=np.float32), SR)
    config = demo_config(tiny_t5, sample_size=8192)
    config_path = root / "model.json"
    config_path.write_text(json.dumps(config))
    code = cli.main(["pre-encode", str(root / "music"), "-o", str(root / "latents"), "--model-config",
                     str(config_path), "-k", "3", "--batch-size", "4", "--device", "cpu",
                     "--report", str(root / "report.json")])
    return root, config, config_path, code


def test_pre_encode_writes_the_official_layout_and_counts_skips(encoded):
    root, config, _, code = encoded
    report = json.loads((root / "report.json").read_text())
    assert code == 1 and report["skipped_count"] == 2, "the corrupt and the silent file are counted skips"
    assert {s["path"].split("/")[-1] for s in report["skipped"]} == {"broken.wav", "silent.wav"}
    clips = sorted((root / "latents" / "music").glob("*.npy"))
    assert len(clips) == report["clips"] == 4 * 3  # 0.5 s = 22050 samples -> clips of 8192: 2 full + a tail > half
    info = json.loads(clips[0].with_suffix(".json").read_text())
    assert info["sample_size"] == 8192 and len(info["padding_mask"]) == 8192 // 32
    assert len(info["rolloff_lr"]) == len(info["lr_filter"]) == 3 and info["prompt"]
    z_l = np.load(str(clips[0]).replace(".npy", ".zl.npz"))["z_l"]
    assert z_l.shape == (3, 64, 256) and z_l.dtype == np.float16
    dataset = json.loads((root / "latents" / "dataset_config.json").read_text())
    assert dataset["dataset_type"] == "pre_encoded"
    assert dataset["datasets"][0]["custom_metadata_module"] == "saga_sr_plugin.data.pre_encoded"


def test_latents_are_the_pretransform_encoding_of_the_clip_and_its_simulations(encoded):
    root, config, _, _ = encoded
    from saga_sr_plugin.data.audio_io import read_audio

    model = create_model_from_config(config)
    audio, _ = read_audio(root / "music" / "clip_000.wav")
    clip, valid, _ = cut_clips(audio, 8192)[1]
    stem = root / "latents" / "music" / "clip_000_0001"
    with torch.no_grad():
        z_h = model.pretransform.encode(clip[None])[0]
        rng = clip_rng(0, "clip_000.wav", 1)
        low = [simulate_low_res(clip, rng).low_res.clamp(-1, 1) for _ in range(3)]
        z_l = model.pretransform.encode(torch.stack(low))
    assert torch.allclose(torch.from_numpy(np.load(stem.with_suffix(".npy"))), z_h, atol=1e-5)
    stored = torch.from_numpy(np.load(stem.with_suffix(".zl.npz"))["z_l"].astype(np.float32))
    assert torch.allclose(stored, z_l, atol=2e-3 * z_l.abs().max())  # float16 storage


def test_pre_encode_resumes_and_shards_agree(encoded, tmp_path):
    root, config, config_path, _ = encoded
    first = sorted((root / "latents" / "music").glob("*.npy"))
    mtimes = [p.stat().st_mtime_ns for p in first]
    assert cli.main(["pre-encode", str(root / "music"), "-o", str(root / "latents"), "--model-config",
                     str(config_path), "-k", "3", "--device", "cpu"]) == 1
    assert [p.stat().st_mtime_ns for p in first] == mtimes, "finished clips are not written again"
    for shard in ("0/2", "1/2"):
        cli.main(["pre-encode", str(root / "music"), "-o", str(tmp_path), "--model-config", str(config_path), "-k",
                  "3", "--device", "cpu", "--shard", shard])
    sharded = sorted(p.name for p in (tmp_path / "music").glob("*.npy"))
    assert sharded == [p.name for p in first]
    a = np.load(str(first[0]).replace(".npy", ".zl.npz"))["z_l"]
    b = np.load(tmp_path / "music" / first[0].name.replace(".npy", ".zl.npz"))["z_l"]
    assert np.array_equal(a, b), "the degradations depend on (seed, file, clip) only"


def test_pre_encode_under_torchrun_writes_what_one_process_writes(encoded, tmp_path):
    """Two CPU ranks (torchrun) split the files; the clips, the report's totals and the dataset
    config equal the one-process run's."""
    root, config, config_path, _ = encoded
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "saga_sr_plugin.interface.cli", "pre-encode", str(root / "music"), "-o",
                           str(tmp_path / "latents"), "--model-config", str(config_path), "-k", "3", "--batch-size",
                           "4", "--device", "cpu", "--report", str(tmp_path / "report.json")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0, "each rank met one bad file: the job says so"
    assert "rank 0 of 2" in done.stdout and "rank 1 of 2" in done.stdout, done.stdout + done.stderr[-3000:]
    one = sorted((root / "latents" / "music").glob("*.npy"))
    two = sorted((tmp_path / "latents" / "music").glob("*.npy"))
    assert [p.name for p in two] == [p.name for p in one]
    for a, b in zip(one, two):
        assert np.array_equal(np.load(a), np.load(b)), a.name
        assert np.array_equal(np.load(str(a).replace(".npy", ".zl.npz"))["z_l"],
                              np.load(str(b).replace(".npy", ".zl.npz"))["z_l"]), a.name
    totals = json.loads((tmp_path / "report.json").read_text())
    single = json.loads((root / "report.json").read_text())
    assert (totals["clips"], totals["skipped_count"]) == (single["clips"], single["skipped_count"]) == (12, 2)
    assert json.loads((tmp_path / "latents" / "dataset_config.json").read_text())["dataset_type"] == "pre_encoded"


def test_metadata_module_picks_one_of_the_k_versions(encoded):
    root, *_ = encoded
    npy = sorted((root / "latents" / "music").glob("*.npy"))[0]
    info = json.loads(npy.with_suffix(".json").read_text())
    info["latent_filename"] = str(npy)
    stored = np.load(str(npy).replace(".npy", ".zl.npz"))["z_l"].astype(np.float32)
    seen = set()
    for _ in range(30):
        md = pre_encoded.get_custom_metadata(info, None)
        k = [i for i in range(3) if np.array_equal(stored[i], md["lr_audio"].numpy())]
        assert len(k) == 1 and md["rolloff_lr"] == info["rolloff_lr"][k[0]] and md["lr_filter"] == info["lr_filter"][k[0]]
        seen.add(k[0])
    assert seen == {0, 1, 2}


def test_lowres_conditioner_takes_latents_as_they_are_and_still_encodes_audio(demo_model_config):
    model = create_model_from_config(demo_model_config)
    conditioner = next(c for c in model.conditioner.conditioners.values() if isinstance(c, LowResLatentConditioner))
    conditioner.eval()
    audio = 0.1 * torch.randn(2, 2, 8192)
    encoded_audio, _ = conditioner(list(audio), "cpu")
    as_latents, mask = conditioner(list(encoded_audio), "cpu")
    assert torch.equal(as_latents, encoded_audio) and mask.shape == (2, 256)
    with pytest.raises(ValueError, match="mixes"):
        conditioner([encoded_audio[0], audio[0]], "cpu")


def test_training_on_pre_encoded_data_through_the_official_switch(encoded, tmp_path, capsys):
    root, config, _, _ = encoded
    config = json.loads(json.dumps(config))
    config["training"]["pre_encoded"] = True
    config_path = tmp_path / "pe.json"
    config_path.write_text(json.dumps(config))
    dataset = str(root / "latents" / "dataset_config.json")
    config["training"]["log_every_n_steps"] = 1
    config_path.write_text(json.dumps(config))
    run = train_entry.main(["--model-config", str(config_path), "--dataset-config", dataset, "--save-dir",
                            str(tmp_path), "--name", "pe", "--max-steps", "3", "--batch-size", "2", "--num-workers", "1",
                            "--no-export", "--logger", "csv"])
    assert run.trainer.global_step == 3 and run.wrapper.pre_encoded
    assert [math.isfinite(v) for v in logged(tmp_path / "pe")] == [True] * 3
    with pytest.raises(SystemExit) as exit_info:  # raw-audio config on pre-encoded data
        train_entry.main(["--model-config", str(encoded[2]), "--dataset-config", dataset, "--max-steps", "1",
                          "--save-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "training.pre_encoded" in capsys.readouterr().err
    config["sample_size"] = 16384
    config_path.write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        train_entry.main(["--model-config", str(config_path), "--dataset-config", dataset, "--max-steps", "1",
                          "--save-dir", str(tmp_path)])
    assert "pre-encoded for sample_size 8192" in capsys.readouterr().err


def test_paper_pre_encoded_config_differs_only_in_the_official_switch():
    paper = json.loads((ROOT / "model_configs" / "saga_model_config.json").read_text())
    pre = json.loads((ROOT / "model_configs" / "saga_model_config_pre_encoded.json").read_text())
    assert pre["training"].pop("pre_encoded") is True and pre == paper


def test_cut_clips_pads_the_tail_and_drops_short_ones():
    audio = torch.ones(2, 8192 * 2 + 5000)
    clips = cut_clips(audio, 8192)
    assert [valid for _, valid, _ in clips] == [8192, 8192, 5000] and clips[-1][0][:, 5000:].abs().sum() == 0
    assert len(cut_clips(torch.ones(2, 8192 + 1000), 8192)) == 1
    assert len(cut_clips(torch.ones(2, 1000), 8192)) == 1, "a file shorter than a clip still gives one (padded) clip"
