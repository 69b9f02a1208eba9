"""The out-of-domain data command: which files each source takes, the round-robin choice, the manifest."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import SR

import ood_audio_data as ood


def tone(seconds: float, freq: float = 440.0, rate: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


@pytest.fixture
def sources(tmp_path):
    stamps, music, bells = tmp_path / "stamps", tmp_path / "music", tmp_path / "bells"
    for lang in ("", "_fr", "_ru"):
        for animal in ("cat", "dog"):
            (stamps / "animals").mkdir(parents=True, exist_ok=True)
            sf.write(stamps / "animals" / f"{animal}_desc{lang}.ogg", tone(0.6, 300 + len(lang)), SR)
    sf.write(stamps / "animals" / "cat.ogg", tone(2.0, 900, channels=2), SR)                # an effect
    (stamps / "symbols").mkdir()
    sf.write(stamps / "symbols" / "7.ogg", tone(0.6), SR)                                   # spoken digit: left out
    sf.write(stamps / "animals" / "old.ogg", tone(0.6, rate=22050), 22050)                  # below 44.1 kHz
    music.mkdir()
    for i in range(3):
        sf.write(music / f"track {i}.ogg", tone(4.0, 200 + 50 * i, rate=48000, channels=2), 48000)
    bells.mkdir()
    sf.write(bells / "ring.oga", tone(1.0, 1200), SR, format="OGG")
    sf.write(bells / "audio-channel-left.oga", tone(1.0), SR, format="OGG")                  # spoken: left out
    sf.write(bells / "tick.wav", tone(0.1), SR)                                              # under 0.25 s
    sf.write(bells / "hush.wav", np.zeros((SR, 1), np.float32), SR)                          # silent
    return (ood.Source("speech", "stamps", stamps, ("*_desc*.ogg",), group="desc_language"),
            ood.Source("music", "tunes", music, ("*.ogg",)),
            ood.Source("effects", "stamps", stamps, ("*.ogg",), ("*_desc*", "symbols/*"), group="folder"),
            ood.Source("effects", "bells", bells, ("*.oga", "*.wav"), ("audio-channel-*",), group="folder"))


def test_sources_groups_clips_and_manifest(sources, tmp_path):
    out = tmp_path / "ood"
    manifest = ood.build(out, 1.0, per_category=3, sources=sources)
    assert manifest["counts"] == {"effects": 2, "music": 3, "speech": 3}
    assert manifest["skipped"] == {"below 44.1 kHz (22050 Hz)": 1, "shorter than 0.25 s": 1, "silent clip": 1}
    speech = [c for c in manifest["clips"] if c["category"] == "speech"]
    assert sorted(c["group"] for c in speech) == ["stamps:en", "stamps:fr", "stamps:ru"], "one per language first"
    assert not any("symbols" in c["source"] or "audio-channel" in c["source"] for c in manifest["clips"])
    for clip in manifest["clips"]:
        audio, rate = sf.read(out / clip["path"], always_2d=True)
        assert rate == SR and audio.shape[1] == 2 and len(audio) <= SR
        assert " " not in clip["path"]
    music = [c for c in manifest["clips"] if c["category"] == "music"]
    assert all(c["start"] > 0 for c in music), "a long recording gives its middle clip"
    captions = {json.loads(line)["path"]: json.loads(line)["caption"]
                for line in (out / "captions.jsonl").read_text().splitlines()}
    assert {captions[c["path"]] for c in speech} == {"speech"}
    assert {captions[c["path"]] for c in manifest["clips"] if c["category"] == "effects"} == {""}
    ood.check_out_of_domain(manifest)
    before = (out / "manifest.json").stat().st_mtime_ns
    ood.build(out, 1.0, per_category=3, sources=sources)
    assert (out / "manifest.json").stat().st_mtime_ns == before, "same settings: nothing rebuilt"


def test_a_training_package_is_refused():
    with pytest.raises(AssertionError, match="klettres-data"):
        ood.check_out_of_domain({"clips": [{"package": "klettres-data"}, {"package": "lomiri-sounds"}]})


def test_round_robin_spreads_over_groups():
    items = [(None, f"{g}{i}", g) for g in "aab" for i in range(3)]
    order = ood.round_robin(items, seed=0)
    assert sorted({g for _, _, g in order[:2]}) == ["a", "b"]
    assert len(order) == len(items)
