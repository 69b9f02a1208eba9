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


# ---------------------------------------------------------------- hardening, round three (issue 29)
def test_oracle_on_upsample_says_it_belongs_to_evaluate(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["upsample", str(tmp_path / "a.wav"), "--model-config", "c.json", "--weights", "w",
                  "--target-rolloff", "oracle"])
    err = capsys.readouterr().err
    assert "'oracle' belongs to saga-sr evaluate only" in err and "not a number" not in err


def test_an_m4a_file_is_named_with_its_format_and_the_ffmpeg_fix(demo_model_files, tmp_path, capsys):
    m4a = tmp_path / "voice.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + bytes(64))   # an MP4 container's first box
    code = upsample(str(m4a), "-o", str(tmp_path / "out"), "--model-config", demo_model_files[0],
                    "--weights", demo_model_files[1])
    err = capsys.readouterr().err
    assert code == 1 and "MP4/M4A" in err and "ffmpeg -i" in err and "voice.flac" in err, err


def test_a_folder_with_m4a_files_says_what_it_left_out(tmp_path, caplog):
    from saga_sr_plugin.data.audio_io import list_audio_files

    write_wav(tmp_path / "a.wav")
    (tmp_path / "b.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with caplog.at_level("WARNING"):
        assert [p.name for p in list_audio_files(tmp_path)] == ["a.wav"]
    assert "left out 1 file(s)" in caplog.text and ".m4a" in caplog.text


def test_a_truncated_wav_is_said_to_be_truncated(demo_model_files, tmp_path, caplog):
    full = write_wav(tmp_path / "full.wav", seconds=3.0)
    data = full.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:len(data) // 5])
    with caplog.at_level("WARNING"):
        code = upsample(str(tmp_path / "cut.wav"), "-o", str(tmp_path / "out"), "--model-config", demo_model_files[0],
                        "--weights", demo_model_files[1])
    assert code == 0 and "truncated: the header promises 3.000 s" in caplog.text


def test_a_long_caption_is_said_to_be_cut_and_printed_short(demo_model_files, tmp_path, capsys, caplog):
    wav = write_wav(tmp_path / "a.wav")
    caption = "a bright saw tone " * 1200   # 21,600 characters, far beyond the demo T5's 16 tokens
    with caplog.at_level("WARNING"):
        code = cli.main(["upsample", str(wav), "-o", str(tmp_path / "out"), "--model-config", demo_model_files[0],
                         "--weights", demo_model_files[1], "--steps", "2", "--caption", caption])
    out = capsys.readouterr()
    assert code == 0 and "the text encoder reads its first 16, the rest is cut" in caplog.text
    assert caption not in out.out + out.err and "(21600 characters)" in out.out


def test_the_added_band_cap_is_reported_in_usable_figures():
    from saga_sr_plugin.inference.upsampler import added_band_cap_note

    note = added_band_cap_note([0.0, -3.0, -9.0, -240.0], 12.0)
    assert note == ("the generated band was lowered in 2 of 4 window(s) (by 6.0 dB on average, at most 9.0 dB) and "
                    "muted in 1 window(s) where the input is silent (max_added_band_db 12)")
    assert added_band_cap_note([0.0, 0.0], 12.0) == "" and "-240" not in note


def test_export_keeps_an_existing_output_unless_overwrite(config_file, tmp_path, capsys):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"precious")
    ckpt = tmp_path / "r.ckpt"
    torch.save({"state_dict": {}}, ckpt)
    code = cli.main(["export", "--model-config", config_file, "--ckpt-path", str(ckpt), "-o", str(target)])
    line = one_line_error(capsys.readouterr().err)
    assert code == 2 and "already exist" in line and "--overwrite" in line and target.read_bytes() == b"precious"
    code = cli.main(["export", "--model-config", config_file, "--ckpt-path", str(ckpt), "-o", str(target),
                     "--overwrite"])
    assert code == 2 and "do not fit" in capsys.readouterr().err   # past the guard: the empty checkpoint is refused


def test_a_relative_t5_path_resolves_beside_the_config_from_any_folder(tmp_path, monkeypatch, tiny_t5, dataset):
    import shutil

    from conftest import demo_config, run_train

    home = tmp_path / "project"
    shutil.copytree(tiny_t5, home / "assets" / "t5")
    config = demo_config("assets/t5")   # relative to the config's folder, as a shipped config writes it
    (home / "configs").mkdir()
    (home / "configs" / "m.json").write_text(json.dumps(config).replace('"assets/t5"', '"../assets/t5"'))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = run_train(str(home / "configs" / "m.json"), dataset, tmp_path / "run", "--max-steps", "1", "--demo-every", "0",
                    "--no-export")
    assert run.trainer.global_step == 1
