"""Captioning with a tiny random Qwen2-Audio loaded through the real from_pretrained path."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr_plugin.interface import cli

from saga_sr_plugin.training import assembly
from saga_sr_plugin.captioning.qwen2_audio import BASE_PROMPT, Captioner, caption_folder
from saga_sr_plugin.data.sidecar import caption_at, part_path, read_sidecar, sidecar_path, write_sidecar
from saga_sr_plugin.distributed import Share
from stable_audio_tools.models.factory import create_model_from_config
from saga_sr_plugin.captioning.tiny_model import save_tiny_qwen2_audio


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> str:
    return str(save_tiny_qwen2_audio(tmp_path_factory.mktemp("qwen")))


@pytest.fixture(scope="module")
def captioner(tiny_qwen) -> Captioner:
    return Captioner.load(tiny_qwen, device="cpu", max_new_tokens=6)


def _write_folder(root, rng):
    """Several rates and channel counts, a nested file, a corrupt and a silent one."""
    root.mkdir(parents=True, exist_ok=True)
    for name, rate, channels, seconds in (("a.wav", 44100, 2, 1.0), ("b.flac", 16000, 1, 0.5),
                                          ("c.wav", 8000, 2, 2.0), ("sub/d.ogg", 22050, 1, 0.7)):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.2 * rng.standard_normal((int(rate * seconds), channels))).astype(np.float32), rate)
    (root / "corrupt.wav").write_bytes(b"RIFFxxxxWAVE broken")
    sf.write(root / "silent.wav", np.zeros((8000, 2), dtype=np.float32), 16000)


def test_defaults_are_the_authors(captioner):
    assert captioner.prompt == BASE_PROMPT and not captioner.chat_template
    assert captioner.sampling_rate == 16000


def test_captions_for_several_rates_and_channel_counts(captioner):
    rng = np.random.default_rng(0)
    items = [(torch.from_numpy(0.2 * rng.standard_normal((c, int(sr * 0.6)))).float(), sr)
             for sr, c in ((44100, 2), (16000, 1), (8000, 2), (48000, 1))]
    captions = captioner.caption(items)
    assert len(captions) == 4 and all(isinstance(c, str) and c for c in captions)
    assert all("<|AUDIO|>" not in c and "Generate" not in c[:8] for c in captions)
    # deterministic decoding: same inputs, same captions, batched or one by one
    assert captioner.caption(items) == captions
    assert captioner.caption_one(*items[1]) == captions[1]


def test_long_files_are_clipped_to_the_encoder_window(captioner):
    x = captioner.prepare(torch.randn(2, 44100 * 40), 44100)
    assert x.ndim == 1 and len(x) == 30 * 16000


def test_chat_template_mode_for_instruct_models(tiny_qwen):
    chat = Captioner.load(tiny_qwen, device="cpu", chat_template=True, max_new_tokens=4)
    assert "quality" in chat.prompt and "<|im_start|>assistant" in chat._text()
    assert len(chat.caption([(torch.randn(1, 16000) * 0.1, 16000)])[0]) > 0


def test_folder_captioning_round_trips_resumes_and_reports(tmp_path, captioner):
    root = tmp_path / "data"
    _write_folder(root, np.random.default_rng(1))
    report = caption_folder(root, captioner, batch_size=2)
    entries = read_sidecar(sidecar_path(root))
    assert set(entries) == {"a.wav", "b.flac", "c.wav", "sub/d.ogg"}
    assert all(e["caption"] and e["model"] == captioner.name for e in entries.values())
    assert report.captioned == 4 and len(report.failed) == 2
    reasons = " ".join(f["reason"] for f in report.failed)
    assert "corrupt.wav" in reasons and "silent.wav: silent" in reasons

    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0
            self.name, self.prompt = inner.name, inner.prompt

        def caption(self, items):
            self.calls += len(items)
            return self.inner.caption(items)

    sf.write(root / "new.wav", (0.2 * np.random.default_rng(2).standard_normal((16000, 1))).astype(np.float32), 16000)
    counting = Counting(captioner)
    again = caption_folder(root, counting, batch_size=2)
    assert counting.calls == 1 and again.captioned == 1 and again.already_done == 4
    assert read_sidecar(sidecar_path(root))["a.wav"] == entries["a.wav"]


def test_a_crash_mid_run_leaves_a_valid_sidecar(tmp_path, captioner):
    root = tmp_path / "data"
    _write_folder(root, np.random.default_rng(3))

    class Crashing:
        name, prompt, calls = "x", "p", 0

        def caption(self, items):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return captioner.caption(items)

    with pytest.raises(KeyboardInterrupt):
        caption_folder(root, Crashing(), batch_size=2)
    done = read_sidecar(sidecar_path(root))
    assert len(done) == 2  # the first batch survived, the file parses
    report = caption_folder(root, captioner, batch_size=2)
    assert report.already_done == 2 and report.captioned == 2


def test_cli_caption_writes_sidecar_and_report(tmp_path, tiny_qwen, capsys):
    root = tmp_path / "data"
    _write_folder(root, np.random.default_rng(4))
    code = cli.main(["caption", str(root), "--model", tiny_qwen, "--device", "cpu", "--max-new-tokens", "4",
                     "--batch-size", "3", "--report", str(tmp_path / "report.json")])
    assert code == 1, "two files failed: the exit code says so (as upsample and evaluate do)"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["captioned"] == 4 and report["failed_count"] == 2 and report["files_per_second"] > 0
    assert "captioned 4 file(s)" in capsys.readouterr().out


def test_file_list_captions_only_the_listed_files(tmp_path, tiny_qwen):
    root = tmp_path / "data"
    _write_folder(root, np.random.default_rng(6))
    (tmp_path / "list.txt").write_text("a.wav\n# a comment\n" + str(root / "sub" / "d.ogg") + "\n")
    code = cli.main(["caption", str(root), "--model", tiny_qwen, "--device", "cpu", "--max-new-tokens", "3",
                     "--file-list", str(tmp_path / "list.txt"), "--report", str(tmp_path / "r.json")])
    assert code == 0 and set(read_sidecar(sidecar_path(root))) == {"a.wav", "sub/d.ogg"}
    (tmp_path / "bad.txt").write_text("/elsewhere/x.wav\n")
    assert cli.main(["caption", str(root), "--model", tiny_qwen, "--device", "cpu",
                     "--file-list", str(tmp_path / "bad.txt")]) == 2


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="could not load the captioning model"):
        Captioner.load(str(tmp_path / "no_such_model"), device="cpu")


def test_captions_flow_from_sidecar_through_official_dataset_into_t5(tmp_path, captioner, demo_model_config):
    root = tmp_path / "clips"
    root.mkdir()
    rng = np.random.default_rng(5)
    for name in ("x.wav", "y.wav"):
        sf.write(root / name, (0.3 * rng.standard_normal((12000, 2))).astype(np.float32), 44100)
    caption_folder(root, captioner, batch_size=2)
    captions = {k: v["caption"] for k, v in read_sidecar(sidecar_path(root)).items()}
    config = {"dataset_type": "audio_dir", "random_crop": False, "drop_last": False,
              "datasets": [{"id": "c", "path": str(root), "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}
    loader = assembly.build_dataloader(config, "captions.json", demo_model_config, batch_size=2, num_workers=1)
    batch = loader.collate_fn([loader.dataset[0], loader.dataset[1]])
    metadata = batch[1]
    assert [m["prompt"] for m in metadata] == [captions[m["relpath"]] for m in metadata]
    model = create_model_from_config(demo_model_config)
    t5 = model.conditioner.conditioners["prompt"]
    embeddings, _ = model.conditioner(metadata, "cpu")["prompt"]
    for i, m in enumerate(metadata):
        assert torch.allclose(embeddings[i], t5([m["prompt"]], "cpu")[0][0])


class LevelCaptioner:
    """Captions a piece by its level, so a segment's caption says which stretch it came from."""
    name, prompt, clip_seconds = "level", "p", 30.0

    def caption(self, items):
        return [f"level {float(a.abs().max()):.1f}" for a, _ in items]


def test_segment_captions_carry_their_spans_and_crops_take_their_segment(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    rate = 8000
    steps = np.concatenate([np.full(rate, level, np.float32) for level in (0.1, 0.2, 0.3, 0.4)])  # 4 s, 1 s a level
    sf.write(root / "long.wav", steps, rate)
    sf.write(root / "short.wav", np.full(rate // 2, 0.5, np.float32), rate)
    report = caption_folder(root, LevelCaptioner(), batch_size=3, segment_seconds=1.0, hop_seconds=1.0)
    entry = read_sidecar(sidecar_path(root))["long.wav"]
    assert [(s["start"], s["end"]) for s in entry["segments"]] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert [s["caption"] for s in entry["segments"]] == ["level 0.1", "level 0.2", "level 0.3", "level 0.4"]
    assert entry["segment_seconds"] == 1.0 and report.segments == 5 and report.captioned == 2
    assert read_sidecar(sidecar_path(root))["short.wav"]["segments"][0]["end"] == 0.5
    # a crop takes the caption of the segment it overlaps most; the dataset's metadata module does the same
    assert caption_at(entry, 2.2, 3.1) == "level 0.3" and caption_at(entry, 0.5, 1.9) == "level 0.2"
    from saga_sr_plugin.data import metadata
    info = {"path": str(root / "long.wav"), "relpath": "long.wav", "timestamps": (0.76, 0.99)}
    assert metadata.caption_for(info) == "level 0.4"
    # captioned whole before: asking for segments now captions the file again (the way is part of the key)
    caption_folder(root, LevelCaptioner(), segment_seconds=2.0)
    assert [s["caption"] for s in read_sidecar(sidecar_path(root))["long.wav"]["segments"]] == ["level 0.2", "level 0.4"]
    with pytest.raises(ValueError, match="segment-seconds"):
        caption_folder(root, LevelCaptioner(), segment_seconds=31.0)


def test_a_stopped_many_process_run_resumes_from_its_parts(tmp_path):
    root = tmp_path / "data"
    _write_folder(root, np.random.default_rng(8))
    part = part_path(root, 1, 2)
    write_sidecar(part, {"b.flac": {"caption": "from a part", "model": "level", "prompt": "p", "seconds": 0.5}})
    report = caption_folder(root, LevelCaptioner(), share=Share(0, 2, grouped=False))
    assert report.already_done == 0 and "b.flac" not in read_sidecar(part_path(root, 0, 2))  # rank 0: a, c, ...
    mine = caption_folder(root, LevelCaptioner(), share=Share(1, 2))
    assert mine.already_done == 1, "rank 1 found b.flac in its part and did not caption it again"
    caption_folder(root, LevelCaptioner())  # one process: the parts join the sidecar first, then are gone
    merged = read_sidecar(sidecar_path(root))
    assert merged["b.flac"]["caption"] == "from a part" and set(merged) == {"a.wav", "b.flac", "c.wav", "sub/d.ogg"}
    assert not list(root.glob("captions.part-*"))


def _caption_command(root, tiny_qwen, report, *extra):
    return ["caption", str(root), "--model", tiny_qwen, "--device", "cpu", "--max-new-tokens", "4", "--batch-size", "2",
            "--segment-seconds", "0.5", "--report", str(report), *extra]


def test_torchrun_two_processes_give_one_process_result_and_resume(tmp_path, tiny_qwen):
    """Two CPU ranks under torchrun: each captions its share into its part, rank 0 merges; the sidecar
    equals one process's, and a rerun captions nothing."""
    one, two = tmp_path / "one", tmp_path / "two"
    _write_folder(one, np.random.default_rng(9))
    _write_folder(two, np.random.default_rng(9))
    assert cli.main(_caption_command(one, tiny_qwen, tmp_path / "one.json")) == 1  # corrupt.wav and silent.wav fail, as below
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "saga_sr_plugin.interface.cli"]
    done = subprocess.run(launch + _caption_command(two, tiny_qwen, tmp_path / "r.json"), env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "captioned 4 file(s)" in done.stdout, done.stdout + done.stderr[-3000:]
    assert read_sidecar(sidecar_path(two)) == read_sidecar(sidecar_path(one))
    assert not list(two.glob("captions.part-*")), "rank 0 merged the parts and removed them"
    assert json.loads((tmp_path / "r.json").read_text())["failed_count"] == 2, "both ranks' failures are counted"
    again = subprocess.run(launch + _caption_command(two, tiny_qwen, tmp_path / "again.json"), env=env, capture_output=True, text=True,
                           timeout=600)
    assert "captioned 0 file(s)" in again.stdout and "4 already done" in again.stdout, again.stdout + again.stderr[-3000:]
