"""The Table 1 protocol on generated stand-ins laid out as VCTK, FMA-small and ESC-50 are."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from saga_sr_plugin.evaluation.frechet import FrechetResult
from saga_sr_plugin.evaluation.paper_sets import esc50_files, table1, vctk_files
from saga_sr_plugin.interface import cli

SPEAKERS = ["p225", "p226", "p280", "p315", "p351", "p360", "p361", "p362", "p363", "p364", "p374", "p376", "s5"]


def tone(rate: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((int(rate * seconds), 1))).astype(np.float32)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    vctk = root / "VCTK-Corpus-0.92" / "wav48_silence_trimmed"
    for i, speaker in enumerate(SPEAKERS):
        (vctk / speaker).mkdir(parents=True)
        for utt in range(1, 4):
            sf.write(vctk / speaker / f"{speaker}_{utt:03d}_mic1.flac", tone(48000, 1.2, i * 10 + utt), 48000)
            sf.write(vctk / speaker / f"{speaker}_{utt:03d}_mic2.flac", tone(48000, 1.2, i * 10 + utt), 48000)
    fma = root / "fma_small"
    for i in range(5):
        (fma / f"{i:03d}").mkdir(parents=True)
        rate = 22050 if i == 0 else 44100   # one low-rate track: skipped and counted
        sf.write(fma / f"{i:03d}" / f"{i:06d}.wav", tone(rate, 3.0, 100 + i), rate)
    esc = root / "ESC-50-master"
    (esc / "audio").mkdir(parents=True)
    (esc / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in (1, 5):
        for clip in range(3):
            name = f"{fold}-{1000 + clip}-A-{clip}.wav"
            sf.write(esc / "audio" / name, tone(44100, 1.5, fold * 10 + clip), 44100)
            rows.append(f"{name},{fold},{clip},dog,False,{1000 + clip},A")
    (esc / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return vctk, fma, esc


def test_the_test_speakers_and_the_fold_are_the_protocols(sources):
    vctk, _, esc = sources
    chosen = vctk_files(vctk, 16)
    speakers = {p.parent.name for p in chosen}
    assert speakers == {"p360", "p361", "p362", "p363", "p364", "p374", "p376", "s5"}   # the last 8, p280/p315 out
    assert [p.parent.name for p in chosen[:8]] == sorted(speakers) and not any("mic2" in p.name for p in chosen)
    assert [p.name.split("-")[0] for p in esc50_files(esc)] == ["5", "5", "5"]


def test_table1_builds_the_sets_and_lays_the_scores_out_as_the_paper(sources, tmp_path, capsys):
    vctk, fma, esc = sources
    out = tmp_path / "t1"
    code = cli.main(["table1", "--vctk", str(vctk), "--fma", str(fma), "--esc50", str(esc), "--clips", "3",
                     "--seconds", "1.2", "-o", str(out)])
    assert code == 0
    manifest = json.loads((out / "sets" / "manifest.json").read_text())
    assert sorted({c["set"] for c in manifest["clips"]}) == ["effects", "music", "speech"]
    assert [sum(c["set"] == s for c in manifest["clips"]) for s in ("speech", "music", "effects")] == [3, 3, 3]
    assert any("22050 Hz" in s for s in manifest["skipped"])
    assert {sf.info(p).samplerate for p in (out / "sets").rglob("*.wav")} == {44100}
    text = (out / "table1.md").read_text()
    assert "| method | speech 4k | speech 8k | music 4k | music 8k | effects 4k | effects 8k |" in text
    assert "| unprocessed |" in text and "| sinc |" in text and "visqol" in text and "convention: ssr" in text
    # again: the sets are kept, not rebuilt
    assert cli.main(["table1", "--esc50", str(esc), "--clips", "3", "-o", str(out), "--no-visqol"]) == 0


def test_table1_marks_fd_of_small_sets():
    rows = [{"system": "saga-sr", "category": c, "cutoff_hz": k, "nuwave2/lsd": 1.0}
            for c in ("speech", "music") for k in (4000, 8000)]
    fd = {(c, k, "saga-sr"): FrechetResult(12.3, 40) for c in ("speech", "music") for k in (4000, 8000)}
    text = table1(rows, fd)
    assert "| saga-sr | 1.00 | 1.00 | 1.00 / 12.30* | 1.00 / 12.30* |" in text   # no FD for speech, as the paper
