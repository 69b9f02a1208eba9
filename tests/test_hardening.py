"""What a new user hits: unsafe checkpoints, clobbered outputs, Ctrl-C, bad files, typos, portability.

One test (or a few) per item of the hardening issue; each fails on the code before its fix.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file
from scipy import signal
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper

from conftest import ROOT, SR, demo_config, white_noise
from saga_sr_plugin import cli, training
from saga_sr_plugin.atomic import atomic_path
from saga_sr_plugin.audio_io import read_audio, write_audio
from saga_sr_plugin.checkpoints import CheckpointError, export_checkpoint, load_exported_model
from saga_sr_plugin.configs import ConfigError, check_model_config
from saga_sr_plugin.demo import save_tiny_t5
from saga_sr_plugin.inference import Upsampler, UpsampleSettings
from saga_sr_plugin.postprocess import level_ratio, _stft
from saga_sr_plugin.simulation import LowPassSpec, design_lowpass

sys.path.insert(0, str(ROOT))
import train_entry  # noqa: E402


@pytest.fixture(scope="module")
def dataset(dataset_config) -> str:
    return dataset_config


@pytest.fixture
def config_file(tmp_path, tiny_t5) -> str:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(demo_config(tiny_t5, sample_size=8192)))
    return str(path)


def one_line_error(err: str) -> str:
    """The single ``error:`` line a command printed instead of a traceback (progress bars may precede it)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run_train(config: str, dataset: str, out: Path, *extra: str):
    return train_entry.main(["--model-config", config, "--dataset-config", dataset, "--save-dir", str(out),
                             "--name", "r", "--batch-size", "2", "--num-workers", "1", "--checkpoint-every", "1000",
                             *extra])


# ---------------------------------------------------------------- 1. no code execution from a checkpoint
class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_ckpt(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, path)
    return path, marker


def test_a_crafted_checkpoint_runs_no_code_in_train_entry(evil_ckpt, config_file, dataset, tmp_path, capsys):
    path, marker = evil_ckpt
    with pytest.raises(SystemExit) as exit_info:
        run_train(config_file, dataset, tmp_path, "--ckpt-path", str(path), "--max-steps", "1")
    assert exit_info.value.code == 2 and not marker.exists()
    err = capsys.readouterr().err
    assert "evil.ckpt" in err and "system" in err and "must not run code" in err


def test_a_crafted_checkpoint_runs_no_code_in_export_or_loading(evil_ckpt, config_file, tmp_path):
    path, marker = evil_ckpt
    with pytest.raises(CheckpointError, match="evil.ckpt.*system"):
        export_checkpoint(config_file, str(path), str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load_exported_model(config_file, str(path))
    assert not marker.exists()


# ---------------------------------------------------------------- 2. outputs never overwrite each other
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


# ---------------------------------------------------------------- 3. Ctrl-C
def test_ctrl_c_saves_a_resumable_checkpoint_does_not_export_and_exits_non_zero(config_file, dataset, tmp_path,
                                                                                monkeypatch, capsys):
    original = DiffusionCondTrainingWrapper.on_train_batch_end

    def interrupt_at_step_2(self, *args, **kwargs):
        if self.global_step >= 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DiffusionCondTrainingWrapper, "on_train_batch_end", interrupt_at_step_2)
    with pytest.raises(SystemExit) as exit_info:
        run_train(config_file, dataset, tmp_path, "--max-steps", "10")
    assert exit_info.value.code == 130
    saved = tmp_path / "r" / "checkpoints" / "interrupted.ckpt"
    assert saved.is_file() and not (tmp_path / "r" / "model.safetensors").exists()
    err = capsys.readouterr().err
    assert "interrupted at step 2" in err and f"--ckpt-path {saved}" in err
    monkeypatch.setattr(DiffusionCondTrainingWrapper, "on_train_batch_end", original)
    run = run_train(config_file, dataset, tmp_path, "--max-steps", "4", "--ckpt-path", str(saved), "--no-export")
    assert run.trainer.global_step == 4


# ---------------------------------------------------------------- 4 and 11. one bad reference is a counted skip
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


# ---------------------------------------------------------------- 5. one-line errors
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


@pytest.mark.parametrize("mutate, message", [
    (lambda dit: dit.update(embed_dimm=128), "no option 'embed_dimm' \\(did you mean 'embed_dim'\\?\\)"),
    (lambda dit: dit.update(num_heads=5), "embed_dim 128 is not divisible by num_heads 5"),
])
def test_dit_typos_and_impossible_widths_fail_when_the_config_is_read(demo_model_config, mutate, message):
    mutate(demo_model_config["model"]["diffusion"]["config"])
    with pytest.raises(ConfigError, match=message):
        check_model_config(demo_model_config, "typo.json")


# ---------------------------------------------------------------- 6. saga_sr typos
def test_unknown_saga_sr_keys_are_errors_with_a_suggestion(demo_model_config):
    demo_model_config["saga_sr"]["step"] = 30
    with pytest.raises(ConfigError, match="no option 'step' \\(did you mean 'steps'\\?\\)"):
        check_model_config(demo_model_config, "typo.json")
    with pytest.raises(ConfigError, match="'step'"):
        UpsampleSettings.from_config(demo_model_config)


# ---------------------------------------------------------------- 7. truncated WAV
def test_a_truncated_wav_is_read_with_a_warning_naming_file_and_durations(tmp_path, caplog):
    sf.write(tmp_path / "full.wav", (0.1 * np.random.default_rng(0).standard_normal((44100, 2))).astype(np.float32),
             44100, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING"):
        audio, _ = read_audio(tmp_path / "cut.wav")
    assert audio.shape[-1] < 44100 // 2 + 10
    assert "cut.wav" in caplog.text and "promises 1.000 s" in caplog.text and "holds 0.500 s" in caplog.text
    caplog.clear()
    read_audio(tmp_path / "full.wav")
    assert "truncated" not in caplog.text


# ---------------------------------------------------------------- 8. near-silent input
def test_near_silent_input_does_not_come_out_as_audible_noise(demo_model_files):
    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    dither = 10 ** (-90 / 20) * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    result = upsampler.upsample(dither, 16000, caption="", settings=upsampler.settings(steps=2))
    rms_db = lambda x: 20 * math.log10(float(x.pow(2).mean().sqrt()) + 1e-20)
    assert rms_db(result.audio) < rms_db(dither) + 13, (rms_db(result.audio), rms_db(dither))
    assert result.added_band_gain_db < 0
    loud = upsampler.upsample(0.3 * dither / dither.abs().max(), 16000, caption="", settings=upsampler.settings(
        steps=2, max_added_band_db=None))
    assert loud.added_band_gain_db == 0.0


# ---------------------------------------------------------------- 9. exports load from anywhere
def test_exports_hold_absolute_local_paths_and_load_from_another_folder(config_file, dataset, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "assets").mkdir(parents=True)
    save_tiny_t5(work / "assets" / "t5")
    config = json.loads(Path(config_file).read_text())
    config["model"]["conditioning"]["configs"][0]["config"]["t5_model_name"] = "assets/t5"  # relative, as the demo's
    (work / "model.json").write_text(json.dumps(config))
    monkeypatch.chdir(work)
    run = run_train("model.json", dataset, work / "runs", "--max-steps", "1")
    exported = json.loads(run.export_path.with_suffix(".json").read_text())
    assert exported["model"]["conditioning"]["configs"][0]["config"]["t5_model_name"] == str(work / "assets" / "t5")
    monkeypatch.chdir(tmp_path)
    model, _ = load_exported_model(str(run.export_path.with_suffix(".json")), str(run.export_path))
    assert model is not None
    # a relative path beside the config resolves against the config's folder, from any working directory
    (work / "runs" / "r" / "rel.json").write_text(json.dumps(config))
    (work / "runs" / "r" / "assets").symlink_to(work / "assets")
    load_exported_model(str(work / "runs" / "r" / "rel.json"), str(run.export_path))


# ---------------------------------------------------------------- 10. atomic writes, no leftovers
def test_a_failed_export_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.ckpt"
    target.write_bytes(b"old model")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of a new mod")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old model" and sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_leftovers_of_killed_runs_are_removed_by_the_next_write(tmp_path):
    stale = tmp_path / ".x.saga-tmp-999999999.wav"  # no such process
    stale.write_bytes(b"partial")
    mine = tmp_path / f".y.saga-tmp-{os.getpid()}.wav"
    mine.write_bytes(b"in progress")
    write_audio(tmp_path / "z.wav", torch.zeros(1, 100), 44100)
    assert not stale.exists() and mine.exists() and (tmp_path / "z.wav").is_file()


def test_cli_export_is_atomic(config_file, tmp_path):
    (tmp_path / "exports").mkdir()
    target = tmp_path / "exports" / "model.ckpt"
    target.write_bytes(b"old model")

    def dies_mid_write(self, path, use_safetensors=False):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    from saga_sr_plugin import checkpoints

    class Wrapper:
        export_model = dies_mid_write

    with pytest.raises(KeyboardInterrupt):
        checkpoints.export_model(Wrapper(), target, json.loads(Path(config_file).read_text()))
    assert target.read_bytes() == b"old model" and [p.name for p in target.parent.iterdir()] == ["model.ckpt"]


# ---------------------------------------------------------------- 11. errors name the file
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


# ---------------------------------------------------------------- 12. the authors' Bessel
def test_bessel_is_the_authors_phase_normalised_design():
    sos = design_lowpass(LowPassSpec(4000.0, "bessel", 10))
    _, h = signal.sosfreqz(sos, worN=[4000.0], fs=SR)
    zero_phase_db = 40 * math.log10(abs(h[0]))  # sosfiltfilt applies it twice
    assert zero_phase_db == pytest.approx(-30.1, abs=0.5)


# ---------------------------------------------------------------- 13. effective batch size
def test_effective_batch_size_sets_gradient_accumulation(config_file, dataset, tmp_path, capsys):
    config = json.loads(Path(config_file).read_text())
    config["training"]["effective_batch_size"] = 8
    path = tmp_path / "eff.json"
    path.write_text(json.dumps(config))
    run = run_train(str(path), dataset, tmp_path, "--max-steps", "1", "--no-export")
    assert run.trainer.accumulate_grad_batches == 4
    assert "effective batch 8 = batch 2 x 1 device(s) x 4 accumulated step(s)" in capsys.readouterr().out
    config["training"]["effective_batch_size"] = 7
    path.write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        run_train(str(path), dataset, tmp_path, "--max-steps", "1", "--no-export")
    assert exit_info.value.code == 2 and "not a multiple of --batch-size 2" in capsys.readouterr().err
    assert training.gradient_accumulation(config, "c", 2, 1, explicit=3) == 3


def test_paper_config_reads_its_effective_batch_size():
    config = json.loads((ROOT / "model_configs" / "saga_model_config.json").read_text())
    assert training.gradient_accumulation(config, "paper", 8, 32) == 1
    assert training.gradient_accumulation(config, "paper", 8, 8) == 4


# ---------------------------------------------------------------- 14. the authors' LFR level match
def test_lfr_level_ratio_is_the_magnitude_ratio_at_the_cutoff_bin():
    ref = white_noise(0.5, seed=1)
    out = 0.7 * white_noise(0.5, seed=2)
    spec_ref, spec_out = _stft(ref.double(), 2048, 512), _stft(out.double(), 2048, 512)
    c = 200
    expected = spec_ref[:, c].abs().sum() / spec_out[:, c].abs().sum()
    assert float(level_ratio(spec_ref, spec_out, c, "cutoff_magnitude")) == pytest.approx(float(expected))
    assert UpsampleSettings().lfr_ratio_rule == "cutoff_magnitude"


# ---------------------------------------------------------------- 15. target roll-off 1.0
def test_target_rolloff_one_is_accepted_and_above_one_refused():
    assert UpsampleSettings(target_rolloff=1.0).target_rolloff == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        UpsampleSettings(target_rolloff=1.01)
