"""WebDataset shards: written by saga-sr shard, read by the official wds dataset with the plugin's metadata."""
from __future__ import annotations

import json
import random
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.data.demo_assets import write_split
from saga_sr_plugin.data.sidecar import read_sidecar, sidecar_path, write_sidecar
from saga_sr_plugin.data.shards import dataset_config, sample_key, shard_folders
from saga_sr_plugin.interface import cli
from saga_sr_plugin.training import assembly


@pytest.fixture
def captioned_folder(tmp_path):
    folder = tmp_path / "music"
    write_split(folder, 5, np.random.default_rng(3), 0.5)
    # a long file captioned per segment: its crops must take their segment's caption
    t = np.arange(int(2.0 * 44100)) / 44100
    sf.write(folder / "long.wav", np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2, axis=1).astype(np.float32), 44100)
    entries = read_sidecar(sidecar_path(folder))
    entries["long.wav"] = {"caption": "second half", "seconds": 2.0, "segments": [
        {"start": 0.0, "end": 1.0, "caption": "first half"}, {"start": 1.0, "end": 2.0, "caption": "second half"}]}
    write_sidecar(sidecar_path(folder), entries)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    return folder


def test_shard_writes_every_readable_file_with_its_caption_and_counts_the_bad_one(captioned_folder, tmp_path, capsys):
    out = tmp_path / "shards"
    code = cli.main(["shard", str(captioned_folder), "-o", str(out), "--files-per-shard", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "1 failed" in err and "corrupt.wav" in err
    tars = sorted((out / "music").glob("shard-*.tar"))
    assert len(tars) == 3, "6 readable files at 2 per shard"
    members = [m for t in tars for m in tarfile.open(t).getnames()]
    assert sorted(m for m in members if m.endswith(".json")) == sorted(
        f"{sample_key(r, set())}.json" for r in read_sidecar(sidecar_path(captioned_folder)))
    with tarfile.open(tars[0]) as tar:
        sample = json.loads(tar.extractfile(next(m for m in tar.getnames() if m.endswith(".json"))).read())
    assert sample["caption"] and sample["relpath"].endswith(".wav") and "path" not in sample
    config = json.loads((out / "dataset_config.json").read_text())
    assert config["dataset_type"] == "wds" and config["datasets"][0]["path"] == str(out / "music")
    # a second run refuses to replace the shards unless told to
    assert cli.main(["shard", str(captioned_folder), "-o", str(out)]) == 2


def test_sample_keys_have_no_dots_and_stay_unique():
    taken: set[str] = set()
    assert sample_key("a/b.v2.wav", taken) == "a/b_v2"
    assert sample_key("a/b_v2.flac", taken) == "a/b_v2_1"


def test_the_same_clip_gives_the_same_example_from_a_folder_and_from_a_shard(captioned_folder, tmp_path,
                                                                              demo_model_config, monkeypatch):
    """The official audio_dir and wds datasets, each with the plugin's metadata module, on each clip."""
    (captioned_folder / "corrupt.wav").unlink()
    shard_folders([captioned_folder], tmp_path / "shards")
    block = {"min_cutoff_hz": 3000, "max_cutoff_hz": 6000}
    folder_config = {"dataset_type": "audio_dir", "random_crop": False, "drop_last": False, "saga_sr": block,
                     "datasets": [{"id": "m", "path": str(captioned_folder),
                                   "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}
    shard_config = {**dataset_config(tmp_path / "shards", [captioned_folder], block), "random_crop": False}
    folder_ds = assembly.build_dataloader(folder_config, "folder", demo_model_config, 1, 1).dataset
    # the official WebLoader wraps a torch DataLoader over the WebDataset pipeline: read the pipeline here
    shard_pipeline = assembly.build_dataloader(shard_config, "shards", demo_model_config, 1, 1).pipeline[0].dataset
    # the two datasets draw in different orders (the shard pipeline prepares a buffer ahead), so every clip
    # gets the same draws: no phase flip, and one seed for the simulation
    monkeypatch.setattr(random, "random", lambda: 0.99)
    monkeypatch.setattr(random, "getrandbits", lambda k: 20251206)

    by_relpath = {}
    stream = iter(shard_pipeline)
    for _ in range(200):  # the stream is endless (resampled): a clip that never comes must fail, not hang
        audio_s, info_s = (x[0] for x in next(stream))
        by_relpath.setdefault(info_s["relpath"], (audio_s, info_s))
        if len(by_relpath) == 6:
            break
    assert len(by_relpath) == 6, f"the shard stream gave only {sorted(by_relpath)}"
    for rel, (audio_s, info_s) in by_relpath.items():
        audio_f, info_f = folder_ds[[f.endswith("/" + rel) for f in folder_ds.filenames].index(True)]
        torch.testing.assert_close(audio_s, audio_f, msg=rel)
        torch.testing.assert_close(info_s["lr_audio"], info_f["lr_audio"], msg=rel)
        for key in ("prompt", "rolloff_lr", "rolloff_hr", "lr_cutoff_hz", "lr_filter", "lr_order", "seconds_start",
                    "seconds_total"):
            assert info_s[key] == info_f[key], (rel, key)
    # the long file's crop (random_crop false: its start) takes the first segment's caption, on both
    assert by_relpath["long.wav"][1]["prompt"] == "first half"


def test_wds_config_errors_name_the_fix(tmp_path, demo_model_config, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    config = dataset_config(tmp_path, [empty])
    with pytest.raises(ConfigError, match="no .tar shards .* saga-sr shard"):
        assembly.build_dataloader(config, "d.json", demo_model_config, 1, 1)
    (empty / "shard-000000.tar").write_bytes(b"")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="every rank would read the same samples"):
        assembly.build_dataloader({**config, "resampled_shards": False}, "d.json", demo_model_config, 1, 1)
