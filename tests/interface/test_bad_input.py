"""The bad-input cases a new user hit with saga-sr: each is one line naming the file and the fix, or a counted skip."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import one_line_error
from safetensors.torch import load_file, save_file

from saga_sr_plugin.interface import cli


def write_wav(path: Path, rate: int = 16000, seconds: float = 0.25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.random.default_rng(0).standard_normal((int(rate * seconds), 2)).astype(np.float32), rate)
    return path


def upsample(*args: str) -> int:
    return cli.main(["upsample", *args, "--no-caption", "--steps", "2"])


@pytest.mark.parametrize("flag, value, message", [
    ("--guidance-acoustic", "nan", "argument --guidance-acoustic: must be a finite number, got nan"),
    ("--guidance-text", "inf", "argument --guidance-text: must be a finite number, got inf"),
    ("--target-rolloff", "1.5", "argument --target-rolloff: must be in [0, 1], got 1.5"),
    ("--steps", "0", "argument --steps: must be at least 1, got 0"),
])
def test_non_finite_or_out_of_range_options_are_refused_when_read(flag, value, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["upsample", str(tmp_path / "a.wav"), "--model-config", "c.json", "--weights", "w", flag, value])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_settings_are_checked_before_the_model_loads_and_nothing_is_created(demo_model_files, tmp_path, capsys):
    config, _ = demo_model_files
    wav = write_wav(tmp_path / "in" / "a.wav")
    block = json.loads(Path(config).read_text())
    block["saga_sr"]["lfr_boundary"] = "edge"
    bad_config = tmp_path / "bad.json"
    bad_config.write_text(json.dumps(block))
    out = tmp_path / "new" / "out"
    # weights that do not exist: the option error must come first, and no output folder appears
    code = upsample(str(wav), "-o", str(out), "--model-config", str(bad_config), "--weights", str(tmp_path / "none"))
    line = one_line_error(capsys.readouterr().err)
    assert code == 2 and "lfr_boundary" in line and not (tmp_path / "new").exists()
    code = upsample(str(wav), "-o", str(out), "--model-config", config, "--weights", str(tmp_path / "none"))
    assert code == 2 and "not found" in one_line_error(capsys.readouterr().err) and not (tmp_path / "new").exists()


def test_existing_outputs_are_skipped_without_loading_the_model(demo_model_files, tmp_path, capsys):
    config, _ = demo_model_files
    wav = write_wav(tmp_path / "a.wav")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_saga_sr.wav").write_bytes(b"earlier output")
    code = upsample(str(wav), "-o", str(tmp_path / "out"), "--model-config", config, "--weights", str(tmp_path / "none"))
    captured = capsys.readouterr()
    assert code == 0 and "upsampled 0 of 1 file(s); 1 skipped" in captured.out and "error" not in captured.err


@pytest.mark.parametrize("output", ["in", "in/out", "."])
def test_an_output_folder_inside_or_equal_to_the_input_folder_keeps_every_input(output, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.wav", "sub/b.flac", "out/c.wav"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"")
    (tmp_path / "in" / "a_saga_sr.wav").write_bytes(b"")  # an earlier output
    inputs = sorted(f.relative_to("in").as_posix() for f, _ in cli.plan_outputs(["in"], output, "wav"))
    assert inputs == ["a.wav", "out/c.wav", "sub/b.flac"]


def test_a_long_file_name_is_upsampled_and_a_dangling_link_is_named_and_counted(demo_model_files, tmp_path, capsys):
    config, weights = demo_model_files
    folder = tmp_path / "in"
    long_name = "x" * (250 - len("_saga_sr.wav")) + ".wav"  # the output name is 250 characters, still legal
    write_wav(folder / long_name)
    os.symlink(tmp_path / "gone.wav", folder / "link.wav")
    code = upsample(str(folder), "-o", str(tmp_path / "out"), "--model-config", config, "--weights", weights)
    captured = capsys.readouterr()
    assert (tmp_path / "out" / f"{long_name[:-4]}_saga_sr.wav").is_file()
    assert code == 1 and "link.wav: a symbolic link to" in captured.err and "does not exist" in captured.err
    assert "upsampled 1 of 2 file(s); 1 failed" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{long_name[:-4]}_saga_sr.wav"]


def test_random_bytes_as_weights_are_not_called_a_code_import(demo_model_files, tmp_path, capsys):
    config, _ = demo_model_files
    junk = tmp_path / "model.ckpt"
    junk.write_bytes(np.random.default_rng(1).bytes(4096))
    code = upsample(str(write_wav(tmp_path / "a.wav")), "-o", str(tmp_path / "o"), "--model-config", config,
                    "--weights", str(junk))
    line = one_line_error(capsys.readouterr().err)
    assert code == 2 and "model.ckpt: not a readable checkpoint" in line and "import" not in line


def test_a_model_that_generates_nan_fails_that_file_by_name_with_the_summary_line(demo_model_files, tmp_path, capsys):
    config, weights = demo_model_files
    state = load_file(weights)
    name = next(k for k in state if k.endswith("weight") and "transformer" in k)
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, str(tmp_path / "nan.safetensors"))
    wav = write_wav(tmp_path / "a.wav")
    code = upsample(str(wav), "-o", str(tmp_path / "o"), "--model-config", config, "--weights",
                    str(tmp_path / "nan.safetensors"))
    err = capsys.readouterr().err
    assert code == 1 and f"{wav}: the model generated NaN or inf samples" in err
    assert "upsampled 0 of 1 file(s); 1 failed" in err


@pytest.mark.parametrize("content", ["[]", "3", '"a string"'])
def test_a_model_config_that_is_not_an_object_is_one_line(content, tmp_path, capsys):
    path = tmp_path / "model.json"
    path.write_text(content)
    code = upsample(str(write_wav(tmp_path / "a.wav")), "-o", str(tmp_path / "o"), "--model-config", str(path),
                    "--weights", "w")
    line = one_line_error(capsys.readouterr().err)
    assert code == 2 and f"model config {path} must hold a JSON object" in line
