"""The saga-sr command on bad input: one-line errors, counted skips, safe outputs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, one_line_error

from saga_sr_plugin.interface import cli


def test_output_names_are_unique_and_keep_relative_paths(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for name in ("x.mp3", "x.ogg", "x.wav", "sub/x.wav", "y_saga_sr.wav"):
        (data / name).write_bytes(b"")
    pairs = dict(cli.plan_outputs([str(data)], tmp_path / "out", "wav"))
    targets = {str(t.relative_to(tmp_path / "out")) for t in pairs.values()}
    assert targets == {"x_mp3_saga_sr.wav", "x_ogg_saga_sr.wav", "x_wav_saga_sr.wav", "sub/x_saga_sr.wav"}
    assert len(pairs) == 4, "an earlier output (y_saga_sr.wav) is not an input"
    twice = cli.plan_outputs([str(data / "x.wav"), str(data / "sub" / "x.wav")], tmp_path / "out", "wav")
    assert len({t for _, t in twice}) == 2


def test_rerunning_upsample_skips_existing_outputs_and_never_reads_them(demo_model_files, tmp_path, capsys):
    config, weights = demo_model_files
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", 0.3 * np.random.default_rng(0).standard_normal((4000, 2)).astype(np.float32), 16000)
    args = ["upsample", str(data), "-o", str(data / "out"), "--model-config", config, "--weights", weights,
            "--steps", "2", "--no-caption"]
    assert cli.main(args) == 0
    target = data / "out" / "a_saga_sr.wav"
    before = target.stat().st_mtime_ns
    capsys.readouterr()
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "exists (--overwrite" in captured.err and "upsampled 0 of 1 file(s); 1 skipped" in captured.out
    assert target.stat().st_mtime_ns == before and not (data / "out" / "out").exists()
    assert cli.main([*args, "--overwrite"]) == 0 and target.stat().st_mtime_ns != before


def test_evaluate_skips_and_names_bad_references_and_still_writes_results(demo_model_files, tmp_path, capsys):
    config, weights = demo_model_files
    refs = tmp_path / "refs"
    refs.mkdir()
    rng = np.random.default_rng(0)
    sf.write(refs / "good.wav", (0.3 * rng.standard_normal((11025, 2))).astype(np.float32), SR)
    sf.write(refs / "silent.wav", np.zeros((11025, 2), dtype=np.float32), SR)
    sf.write(refs / "phone.wav", (0.3 * rng.standard_normal((4000, 1))).astype(np.float32), 8000)
    out = tmp_path / "eval"
    code = cli.main(["evaluate", str(refs), "--model-config", config, "--weights", weights, "--steps", "2",
                     "--cutoffs", "4000", "-o", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert "silent.wav" in err and "phone.wav" in err and "8000 Hz" in err and "scored 1 of 3 file(s); 2 failed" in err
    assert (out / "lsd_per_file.csv").is_file() and (out / "lsd.png").is_file()
    assert "2 file(s) not scored" in (out / "lsd.md").read_text()


def test_evaluate_with_the_oracle_f_h_reports_it_apart(demo_model_files, tmp_path, monkeypatch):
    from saga_sr_plugin.inference.upsampler import Upsampler

    config, weights = demo_model_files
    refs = tmp_path / "refs" / "music"
    refs.mkdir(parents=True)
    rng = np.random.default_rng(1)
    sf.write(refs / "good.wav", (0.3 * rng.standard_normal((11025, 2))).astype(np.float32), SR)
    given = []
    original = Upsampler.generate_windows

    def spy(self, windows, captions, settings, seeds, progress=False, on_step=None, target_rolloffs=None):
        given.extend(target_rolloffs)
        return original(self, windows, captions, settings, seeds, progress, on_step, target_rolloffs)
    monkeypatch.setattr(Upsampler, "generate_windows", spy)
    out = tmp_path / "eval"
    assert cli.main(["evaluate", str(tmp_path / "refs"), "--model-config", config, "--weights", weights, "--steps",
                     "2", "--cutoffs", "4000", "-o", str(out), "--device", "cpu", "--target-rolloff", "oracle"]) == 0
    rows = list(csv.DictReader(open(out / "lsd_per_file.csv")))
    assert {r["system"] for r in rows} == {"unprocessed", "sinc", "saga-sr-oracle", "saga-sr-oracle-raw"}
    own = float(rows[0]["reference_rolloff"])   # rounded to 4 decimals in the CSV
    assert given and all(abs(g - own) < 1e-3 for g in given), "the model was given the reference's own roll-off"
    with pytest.raises(SystemExit):
        cli.main(["evaluate", str(tmp_path / "refs"), "--model-config", config, "--weights", weights,
                  "--target-rolloff", "oracl"])


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_truncated_weights_are_a_one_line_error_naming_the_file(demo_model_files, tmp_path, suffix, capsys):
    config, weights = demo_model_files
    data = Path(weights).read_bytes()
    if suffix == ".ckpt":
        torch.save({"state_dict": {}}, tmp_path / "full.ckpt")
        data = (tmp_path / "full.ckpt").read_bytes()
    broken = tmp_path / f"broken{suffix}"
    broken.write_bytes(data[: len(data) // 2])
    sf.write(tmp_path / "a.wav", np.zeros((100, 1), dtype=np.float32) + 0.1, 16000)
    code = cli.main(["upsample", str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), "--model-config", config,
                     "--weights", str(broken), "--no-caption"])
    err = capsys.readouterr().err
    line = one_line_error(err)
    assert code == 2 and f"broken{suffix}" in line and "truncated" in line


def test_truncated_lightning_checkpoint_export_is_a_one_line_error(config_file, tmp_path, capsys):
    torch.save({"state_dict": {"x": torch.zeros(1000)}, "epoch": 0}, tmp_path / "full.ckpt")
    data = (tmp_path / "full.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    code = cli.main(["export", "--model-config", config_file, "--ckpt-path", str(tmp_path / "cut.ckpt"),
                     "-o", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and "cut.ckpt" in one_line_error(err)


def test_unwritable_output_folder_is_a_one_line_error_before_any_work(demo_model_files, tmp_path, capsys):
    config, weights = demo_model_files
    (tmp_path / "file").write_text("x")
    sf.write(tmp_path / "a.wav", np.zeros((100, 1), dtype=np.float32) + 0.1, 16000)
    code = cli.main(["upsample", str(tmp_path / "a.wav"), "-o", str(tmp_path / "file" / "out"),
                     "--model-config", config, "--weights", weights, "--no-caption"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot create the output folder" in one_line_error(err)


def test_cli_export_is_atomic(config_file, tmp_path):
    (tmp_path / "exports").mkdir()
    target = tmp_path / "exports" / "model.ckpt"
    target.write_bytes(b"old model")

    def dies_mid_write(self, path, use_safetensors=False):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    from saga_sr_plugin.training import export

    class Wrapper:
        export_model = dies_mid_write

    with pytest.raises(KeyboardInterrupt):
        export.export_model(Wrapper(), target, json.loads(Path(config_file).read_text()))
    assert target.read_bytes() == b"old model" and [p.name for p in target.parent.iterdir()] == ["model.ckpt"]


def test_channel_and_silence_errors_name_the_file(demo_model_files, tmp_path, capsys):
    config, weights = demo_model_files
    sf.write(tmp_path / "six.wav", (0.1 * np.ones((1000, 6))).astype(np.float32), 16000)
    sf.write(tmp_path / "quiet.wav", np.zeros((1000, 2), dtype=np.float32), 16000)
    code = cli.main(["upsample", str(tmp_path / "six.wav"), str(tmp_path / "quiet.wav"), "-o", str(tmp_path / "o"),
                     "--model-config", config, "--weights", weights, "--no-caption", "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{tmp_path / 'six.wav'}: 6 channels" in err and f"{tmp_path / 'quiet.wav'}: silent" in err
    assert "input:" not in err


def test_upsample_under_torchrun_splits_the_files_and_counts_them_once(demo_model_files, tmp_path):
    """Two CPU ranks each write their share of a folder's outputs; rank 0 prints one total with every
    rank's failure."""
    import os
    import subprocess
    import sys

    config, weights = demo_model_files
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        sf.write(data / f"a{i}.wav", 0.3 * np.random.default_rng(i).standard_normal((4000, 2)).astype(np.float32),
                 16000)
    (data / "b_broken.wav").write_bytes(b"RIFF nonsense")  # rank 1's second file
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "saga_sr_plugin.interface.cli", "upsample", str(data), "-o", str(tmp_path / "out"),
                           "--model-config", config, "--weights", weights, "--steps", "2", "--no-caption",
                           "--device", "cpu"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode != 0 and log.count("upsampled 3 of 4 file(s)") == 1, log[-3000:]
    assert "b_broken.wav" in log.split("upsampled 3 of 4 file(s)")[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"a{i}_saga_sr.wav" for i in range(3)]
