"""The real-audio bundle: within its budget, balanced, test clips bit-exact after the round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SR
from saga_sr_plugin.data.sidecar import read_captions, write_sidecar

import real_audio_bundle as bundle


def write_split(folder, category: str, count: int, seed: int, channels: int = 2) -> None:
    entries = {}
    for i in range(count):
        audio = 0.1 * np.random.default_rng(seed + i).standard_normal((SR // 4, channels))
        path = folder / category / f"{category}_{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio.astype(np.float32), SR, subtype="PCM_16")
        entries[f"{category}/{path.name}"] = {"caption": category}
    existing = {k: {"caption": v} for k, v in read_captions(folder).items()}
    write_sidecar(folder / "captions.jsonl", {**existing, **entries})


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "real"
    write_split(root / "train", "speech", 30, 0, channels=1)
    write_split(root / "train", "music", 30, 100)
    write_split(root / "test_eval", "speech", 2, 200, channels=1)
    write_split(root / "test_eval", "music", 2, 300)
    write_split(root / "val_demo", "music", 1, 400)
    (root / "tiny_t5").mkdir()
    (root / "tiny_t5" / "config.json").write_text("{}")
    return root


def test_pack_stays_within_budget_and_balanced_and_unpack_restores_the_test_clips(data, tmp_path):
    out = tmp_path / "bundle"
    manifest = bundle.pack(data, out, budget_mb=0.6, vorbis_level=0.2)
    on_disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and f.name != "bundle.json")
    assert on_disk == manifest["bytes"] <= 0.6 * 2**20
    taken = manifest["train_clips"]
    assert 0 < taken["speech"] < 30 and abs(taken["speech"] - taken["music"]) <= 1, taken
    assert len(list((out / "train").rglob("*.ogg"))) == sum(taken.values())

    restored = tmp_path / "restored"
    bundle.unpack(out, restored)
    for reference in (data / "test_eval").rglob("*.wav"):
        got, rate = sf.read(restored / "test" / reference.relative_to(data / "test_eval"), dtype="int16")
        want, _ = sf.read(reference, dtype="int16")
        assert rate == SR and np.array_equal(got, want), reference.name
    assert read_captions(restored / "test")["music/music_00.wav"] == "music"
    train = sorted(p.relative_to(restored / "train").as_posix() for p in (restored / "train").rglob("*.wav"))
    assert train == sorted(read_captions(restored / "train")), "every training clip has its caption"
    assert sf.info(restored / "train" / train[0]).samplerate == SR
    assert (restored / "tiny_t5" / "config.json").exists()


def test_bad_bundles_and_missing_data_are_named(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="tiny_t5"):
        (data / "tiny_t5" / "config.json").unlink()
        (data / "tiny_t5").rmdir()
        bundle.pack(data, tmp_path / "b", 1.0, 0.2)
    with pytest.raises(FileNotFoundError, match="not a bundle"):
        bundle.unpack(tmp_path / "nothing", tmp_path / "r")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "bundle.json").write_text(json.dumps({"version": 0}))
    with pytest.raises(ValueError, match="pack it again"):
        bundle.unpack(tmp_path / "old", tmp_path / "r")


def test_the_model_config_follows_the_datas_text_encoder(tmp_path):
    import real_audio

    config = ROOT / "model_configs" / "saga_real_gpu_config.json"
    t5 = tmp_path / "real_gpu" / "tiny_t5"
    edited = real_audio.with_t5(config, t5, tmp_path / "runs")
    assert edited == tmp_path / "runs" / "model_config.json"
    entries = json.loads(edited.read_text())["model"]["conditioning"]["configs"]
    assert [e["config"]["t5_model_name"] for e in entries if e["type"] == "saga_t5"] == [str(t5)]
    assert real_audio.with_t5(edited, t5, tmp_path / "elsewhere") == edited, "already right: used as it is"
