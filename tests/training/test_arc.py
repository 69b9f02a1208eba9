"""ARC post-training: the official factory builds ARCTrainingWrapper from training.arc, the plugin's
teacher is eq. 4, and a post-trained export runs in the configured steps without guidance."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.arc import ARCTrainingWrapper

from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.inference.sampling import make_sequential_guided_model
from saga_sr_plugin.models.weights import CheckpointMismatchError
from saga_sr_plugin.training import arc, assembly

from conftest import demo_config, one_line_error, run_train

ARC_BLOCK = {
    "use_model_as_discriminator": True,
    "discriminator": {"type": "conv", "dit_hidden_layer": 2, "contrastive": True,
                      "weights": {"generator": 1.0, "discriminator": 1.0, "contrastive": 1.0}},
    "noise_dist": {"generator": "logsnr_uniform", "discriminator": "logsnr_uniform"},
}
STUDENT = {"sampler": "pingpong", "schedule": "logsnr", "steps": 3, "guidance_acoustic": 1.0, "guidance_text": 1.0}


def arc_config(t5: str, warmup: dict | None = None) -> dict:
    config = demo_config(t5, sample_size=8192)
    config["training"]["arc"] = copy.deepcopy(ARC_BLOCK)
    if warmup:
        config["training"]["arc"]["ode_warmup"] = warmup
    opt = {"optimizer": {"type": "AdamW", "config": {"lr": 1e-4}}}
    config["training"]["optimizer_configs"] = {"diffusion": copy.deepcopy(opt), "discriminator": copy.deepcopy(opt)}
    config["saga_sr"].update(STUDENT)
    return config


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_t5) -> tuple[str, str]:
    """(config, exported weights) of a 'trained' demo model: random weights, as a test needs no more."""
    root = tmp_path_factory.mktemp("teacher")
    config = demo_config(tiny_t5, sample_size=8192)
    torch.manual_seed(1)
    save_file(create_model_from_config(config).state_dict(), str(root / "model.safetensors"))
    (root / "model.json").write_text(json.dumps(config))
    return str(root / "model.json"), str(root / "model.safetensors")


def write(tmp_path: Path, config: dict, name: str = "arc.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_the_official_factory_builds_arc_with_every_part_from_the_pretrained_model(teacher, tiny_t5, tmp_path):
    config = arc_config(tiny_t5, warmup={"warmup_steps": 2, "sampling_steps": 2, "guidance_acoustic": 1.7,
                                         "guidance_text": 1.1})
    source = write(tmp_path, config)
    model = assembly.build_model(config, source, teacher[1])
    wrapper = assembly.build_training_wrapper(config, model, source, teacher[1])
    assert type(wrapper) is ARCTrainingWrapper
    weights = load_file(teacher[1])
    for part in (wrapper.diffusion, wrapper.discriminator, wrapper.teacher_model.teacher):
        state = part.state_dict()
        # every part holds every pretrained weight it has; only 0.0.20's discriminator base drops its pretransform
        assert set(state) <= set(weights) and all(k.startswith("pretransform.") for k in set(weights) - set(state))
        assert all(torch.equal(state[k], weights[k]) for k in state)
    assert isinstance(wrapper.teacher_model, arc.Eq4Teacher)
    assert (wrapper.teacher_model.scale_acoustic, wrapper.teacher_model.scale_text) == (1.7, 1.1)
    assert wrapper.do_contrastive_disc and wrapper.discriminator_dit_layer in (2, [2])   # 0.0.20 keeps a list
    wrapper.train()
    assert not wrapper.teacher_model.training and not wrapper.teacher_model.teacher.conditioner.training


def test_without_ode_warmup_there_is_no_teacher(teacher, tiny_t5, tmp_path):
    config = arc_config(tiny_t5)
    model = assembly.build_model(config, "arc.json", teacher[1])
    assert assembly.build_training_wrapper(config, model, "arc.json", teacher[1]).teacher_model is None


def test_the_teacher_answers_with_eq4_and_ignores_the_official_single_scale(teacher, tiny_t5):
    config = demo_config(tiny_t5, sample_size=8192)
    model = create_model_from_config(config)
    model.load_state_dict(load_file(teacher[1]))
    eq4 = arc.Eq4Teacher(model, "lr_audio", 1.4, 1.2)
    torch.manual_seed(0)
    items = [{"prompt": "a piano", "rolloff_lr": 0.3, "rolloff_hr": 0.9, "lr_audio": 0.1 * torch.randn(2, 8192)}
             for _ in range(2)]
    cond = eq4.conditioner(items, "cpu")
    x, t = torch.randn(2, 64, 256), torch.full((2,), 0.7)
    inputs = model.get_conditioning_inputs(cond)
    null = model.conditioner.conditioners["lr_audio"].null_like(inputs["input_concat_cond"])
    expected = make_sequential_guided_model(model.model, inputs, null, 1.4, 1.2)(x, t)
    got = eq4(x, t, cond=cond, cfg_scale=4.0, batch_cfg=True)
    assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(got, model(x, t, cond=cond, cfg_scale=1.0), atol=1e-3)  # guidance changed it


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["saga_sr"].update(guidance_acoustic=1.4), "samples without guidance"),
    (lambda c: c["training"]["arc"].update(ode_warmpu={}), "did you mean 'ode_warmup'"),
    (lambda c: c["training"]["arc"].update(teacher_model_ckpt="t.ckpt"), "loaded strictly"),
    (lambda c: c["training"]["arc"].update(ode_warmup={"cfg": 4.0}), "guidance_acoustic and guidance_text"),
    (lambda c: c["training"]["arc"]["discriminator"].update(dit_hidden_layer=9), "in [1, 4]"),
    (lambda c: c["training"]["arc"]["noise_dist"].update(generator="gaussian"), "logsnr_uniform"),
])
def test_a_bad_arc_block_is_one_line_naming_the_file(edit, message, teacher, tiny_t5, dataset, tmp_path, capsys):
    config = arc_config(tiny_t5)
    edit(config)
    with pytest.raises(SystemExit):
        run_train(write(tmp_path, config), dataset, tmp_path, "--pretrained-ckpt-path", teacher[1], "--max-steps", "1")
    line = one_line_error(capsys.readouterr().err)
    assert "arc.json" in line and message in line


def test_arc_needs_the_model_to_post_train_and_no_accumulation(teacher, tiny_t5, dataset, tmp_path, capsys):
    source = write(tmp_path, arc_config(tiny_t5))
    with pytest.raises(SystemExit):
        run_train(source, dataset, tmp_path, "--max-steps", "1")
    assert "--pretrained-ckpt-path" in one_line_error(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        run_train(source, dataset, tmp_path, "--pretrained-ckpt-path", teacher[1], "--accum-batches", "2")
    assert "cannot accumulate" in one_line_error(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        run_train(source, dataset, tmp_path, "--pretrained-ckpt-path", teacher[1], "--gradient-clip-val", "1.0")
    assert "training.clip_grad_norm" in one_line_error(capsys.readouterr().err)


def test_weights_of_another_config_are_refused_not_half_loaded(tiny_t5, tmp_path):
    other = demo_config(tiny_t5, sample_size=8192)
    other["model"]["diffusion"]["config"]["depth"] = 2
    save_file(create_model_from_config(other).state_dict(), str(tmp_path / "other.safetensors"))
    config = arc_config(tiny_t5)
    model = create_model_from_config(config)
    with pytest.raises(CheckpointMismatchError, match="other.safetensors"):
        assembly.build_training_wrapper(config, model, "arc.json", str(tmp_path / "other.safetensors"))
    with pytest.raises(ConfigError, match="--pretrained-ckpt-path"):
        assembly.build_training_wrapper(config, model, "arc.json", None)


def count_dit_calls(monkeypatch) -> list[int]:
    from stable_audio_tools.models.diffusion import DiTWrapper

    calls: list[int] = []
    forward = DiTWrapper.forward

    def counting(self, x, *args, **kwargs):
        calls.append(x.shape[0])
        return forward(self, x, *args, **kwargs)

    monkeypatch.setattr(DiTWrapper, "forward", counting)
    return calls


def test_post_training_runs_exports_and_upsamples_in_the_configured_steps(teacher, tiny_t5, dataset, tmp_path,
                                                                          monkeypatch):
    import numpy as np
    import soundfile as sf
    from saga_sr_plugin.interface import cli

    config = arc_config(tiny_t5, warmup={"warmup_steps": 2, "refresh_rate": 2, "sampling_steps": 2})
    source = write(tmp_path, config)
    run = run_train(source, dataset, tmp_path, "--pretrained-ckpt-path", teacher[1], "--max-steps", "5",
                    "--demo-every", "0")
    assert type(run.wrapper) is ARCTrainingWrapper and run.trainer.global_step == 5
    exported = load_file(str(run.export_path))
    ema = run.wrapper.diffusion_ema.ema_model.state_dict()
    assert all(torch.equal(exported[f"model.{k}"], v) for k, v in ema.items())
    before = load_file(teacher[1])
    assert any(not torch.equal(exported[k], before[k]) for k in before if k.startswith("model."))  # it trained
    assert not any(k.startswith(("discriminator", "teacher")) for k in exported)
    assert json.loads(run.export_path.with_suffix(".json").read_text())["saga_sr"]["sampler"] == "pingpong"

    # the official unwrap path: the Lightning checkpoint -> the same EMA weights
    unwrapped = tmp_path / "unwrapped.safetensors"
    assert cli.main(["export", "--model-config", source, "--ckpt-path",
                     str(tmp_path / "r" / "checkpoints" / "last.ckpt"), "-o", str(unwrapped)]) == 0
    assert all(torch.equal(load_file(str(unwrapped))[k], v) for k, v in exported.items())

    # the exported config alone makes the upsampler run the student: 3 pingpong steps, one pass of B each
    wav = tmp_path / "in.wav"
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * np.arange(1200) / 8000), 8000)  # 0.15 s: one window
    calls = count_dit_calls(monkeypatch)
    assert cli.main(["upsample", str(wav), "-o", str(tmp_path / "out"), "--model-config",
                     str(run.export_path.with_suffix(".json")), "--weights", str(run.export_path), "--no-caption"]) == 0
    assert calls == [1, 1, 1]
    calls.clear()
    assert cli.main(["upsample", str(wav), "-o", str(tmp_path / "out1"), "--model-config",
                     str(run.export_path.with_suffix(".json")), "--weights", str(run.export_path), "--no-caption",
                     "--steps", "1"]) == 0
    assert calls == [1]


@pytest.mark.parametrize("name", ["saga_arc_config.json", "saga_real_cpu_arc_config.json",
                                  "saga_real_cpu_arc_adversarial_only_config.json"])
def test_the_shipped_arc_configs_pass_every_check(name):
    from conftest import ROOT
    from saga_sr_plugin.inference.settings import UpsampleSettings
    from saga_sr_plugin.models.checks import check_model_config

    config = json.loads((ROOT / "model_configs" / name).read_text())
    check_model_config(config, name)
    block = arc.check_arc_config(config, name)
    settings = UpsampleSettings.from_config(config)
    assert (settings.sampler, settings.steps, settings.guidance_acoustic, settings.guidance_text) == ("pingpong", 8, 1.0, 1.0)
    assert "effective_batch_size" not in config["training"] and set(config["training"]["optimizer_configs"]) == {
        "diffusion", "discriminator"}
    assert ("ode_warmup" in block) == ("adversarial_only" not in name)
