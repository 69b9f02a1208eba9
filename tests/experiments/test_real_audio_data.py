"""The real-audio data command's parsing, clipping, skipping and splitting, on generated files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import SR

import real_audio_data as rad


def noise(seconds: float, rate: int = SR, channels: int = 2, seed: int = 0, lowpass_hz: float | None = None):
    x = 0.2 * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))
    if lowpass_hz:
        spec = np.fft.rfft(x, axis=0)
        spec[np.fft.rfftfreq(len(x), 1 / rate) > lowpass_hz] = 0
        x = np.fft.irfft(spec, n=len(x), axis=0)
    return x.astype(np.float32)


@pytest.fixture
def sources(tmp_path):
    speech, music = tmp_path / "klettres", tmp_path / "music"
    for lang in ("fr", "de", "en_GB", "en", "it"):
        (speech / lang).mkdir(parents=True)
        sf.write(speech / lang / "a.ogg", noise(0.8, seed=len(lang), channels=1), SR)
    sf.write(speech / "de" / "phone.wav", noise(0.8, rate=22050), 22050)         # below 44.1 kHz: dropped
    sf.write(speech / "de" / "muffled.wav", noise(0.8, lowpass_hz=6000), SR)     # band-limited: skipped
    sf.write(speech / "de" / "quiet.wav", np.zeros((SR, 2), np.float32), SR)     # silent: skipped
    (speech / "de" / "broken.ogg").write_bytes(b"OggS nonsense")                 # unreadable: skipped
    music.mkdir()
    for i in range(12):
        sf.write(music / f"track{i}.ogg", noise(2.6, seed=100 + i), SR)
    return {"speech": [("klettres", speech, 0)], "music": [("wesnoth", music, None)]}


def test_clips_skips_splits_and_manifest(sources, tmp_path):
    out = tmp_path / "real"
    manifest = rad.build(out, 1.0, 16000, sources, band_limited_keep=0.0)
    assert manifest["skipped"] == {"below 44.1 kHz (22050 Hz)": 1, "silent clip": 1, "unreadable": 1,
                                   "band-limited clip not kept (--band-limited-keep)": 1}
    speech = [c for c in manifest["clips"] if c["category"] == "speech"]
    assert {c["split"] for c in speech if c["group"].endswith(":fr")} == {"test"}
    assert {c["split"] for c in speech if c["group"].endswith(":it")} == {"val"}
    en = {c["group"] for c in speech if c["group"].split(":")[-1] == "en"}
    assert en == {"klettres:en"}, "en and en_GB are one language, so one speaker group and one split"
    music = [c for c in manifest["clips"] if c["category"] == "music"]
    assert len(music) == 12 * 3  # 2.6 s -> two 1 s clips and a 0.6 s tail (more than half a clip)
    assert {c["seconds"] for c in music} == {1.0, 0.6}
    rad.check_disjoint(manifest)
    for clip in manifest["clips"]:
        audio, rate = sf.read(out / clip["path"], always_2d=True)
        assert rate == SR and audio.shape[1] == 2
    captions = [json.loads(line) for line in (out / "train" / "captions.jsonl").read_text().splitlines()]
    assert {c["caption"] for c in captions} <= {"speech", "orchestral music"} and captions


def test_build_is_idempotent_and_the_disjointness_check_can_fail(sources, tmp_path):
    out = tmp_path / "real"
    rad.build(out, 1.0, 16000, sources)
    before = (out / "manifest.json").stat().st_mtime_ns
    rad.build(out, 1.0, 16000, sources)
    assert (out / "manifest.json").stat().st_mtime_ns == before
    bad = {"clips": [{"category": "speech", "group": "klettres:fr", "split": "train"},
                     {"category": "speech", "group": "ktuberling:fr", "split": "test"}]}
    with pytest.raises(AssertionError, match="fr"):
        rad.check_disjoint(bad)


def test_bandwidth_of_full_band_and_band_limited_noise():
    import torch

    assert rad.bandwidth_hz(torch.from_numpy(noise(0.5).T.copy())) > 20000
    assert 5000 < rad.bandwidth_hz(torch.from_numpy(noise(0.5, lowpass_hz=6000).T.copy())) < 7000


def test_band_limited_references_are_kept_for_training_and_set_apart_when_held_out(sources, tmp_path):
    speech = sources["speech"][0][1]
    sf.write(speech / "fr" / "muffled.wav", noise(0.8, seed=7, lowpass_hz=5000), SR)   # a held-out speaker
    sf.write(speech / "de" / "dull.wav", noise(0.8, seed=8, lowpass_hz=1500), SR)      # under 2 kHz: skipped
    out = tmp_path / "real"
    manifest = rad.build(out, 1.0, 16000, sources)
    assert manifest["skipped"]["bandwidth below 2000 Hz"] == 1
    limited = {c["path"]: c for c in manifest["clips"] if c["band_limited"]}
    assert set(limited) == {"train/speech/klettres_de_muffled_000.wav", "test_band_limited/speech/klettres_fr_muffled_000.wav"}
    assert all(4000 < c["bandwidth_hz"] < 7000 for c in limited.values())
    assert manifest["band_limited"] == {"train/speech": 1, "test/speech": 1}
    assert not list((out / "test").rglob("*muffled*")), "the scored test split keeps only full-band clips"
    captions = (out / "test_band_limited" / "captions.jsonl").read_text()
    assert "klettres_fr_muffled_000.wav" in captions
    rad.check_disjoint(manifest)


def test_band_limited_share_is_a_stable_choice():
    names = [f"speech/clip{i}.wav" for i in range(400)]
    half = {n for n in names if rad.kept(n, 0.5)}
    assert 150 < len(half) < 250
    assert half <= {n for n in names if rad.kept(n, 0.8)}, "a larger share keeps every clip a smaller one kept"
    assert not any(rad.kept(n, 0.0) for n in names) and all(rad.kept(n, 1.0) for n in names)
