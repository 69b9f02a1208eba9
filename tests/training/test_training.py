"""Training on the official DiffusionCondTrainingWrapper: steps, overfitting, EMA, export, reload."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from safetensors.torch import load_file
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper
from stable_audio_tools.training.factory import create_training_wrapper_from_config

from conftest import ROOT, demo_config, logged
from saga_sr_plugin.training import assembly
from saga_sr_plugin.models.weights import CheckpointMismatchError
from saga_sr_plugin.training.export import export_checkpoint
from saga_sr_plugin.models.loading import load_exported_model
from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.models.checks import check_model_config
from saga_sr_plugin.data.demo_assets import save_tiny_t5, write_split

from saga_sr_plugin.interface import train as train_entry


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    """Six captioned 1 s demo clips and an official audio_dir dataset config pointing at them."""
    root = tmp_path_factory.mktemp("data")
    write_split(root / "clips", 6, np.random.default_rng(1), 1.0)
    config = {"dataset_type": "audio_dir", "random_crop": True, "drop_last": True,
              "datasets": [{"id": "t", "path": str(root / "clips"), "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}
    path = root / "dataset.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_dataset):
    """Six Lightning steps of the demo config through train_entry, exported at the end."""
    out = tmp_path_factory.mktemp("run")
    t5 = str(save_tiny_t5(out / "t5"))
    config_path = out / "model.json"
    config_path.write_text(json.dumps(demo_config(t5, sample_size=8192)))
    run = train_entry.main(["--model-config", str(config_path), "--dataset-config", tiny_dataset,
                            "--save-dir", str(out), "--name", "t", "--max-steps", "6", "--batch-size", "2",
                            "--num-workers", "1", "--checkpoint-every", "3", "--seed", "0", "--logger", "csv"])
    return run, str(config_path), out


def test_official_factory_builds_rectified_flow_wrapper_with_ema(demo_model_config):
    model = create_model_from_config(demo_model_config)
    wrapper = create_training_wrapper_from_config(demo_model_config, model)
    assert type(wrapper) is DiffusionCondTrainingWrapper
    assert wrapper.diffusion_objective == "rectified_flow"
    assert wrapper.diffusion_ema is not None
    assert wrapper.cfg_dropout_prob == pytest.approx(0.1)


def test_full_saga_config_builds_with_depth_reduced(tmp_path):
    """The paper's config through the official factories: real VAE architecture (random
    weights, no download), T5 replaced by a tiny local 768-d encoder, DiT depth 24 -> 1
    so the test stays small. Widths, ids and dims are the paper's."""
    config = json.loads((ROOT / "model_configs" / "saga_model_config.json").read_text())
    check_model_config(config, "saga_model_config.json")
    assert config["model"]["diffusion"]["config"]["depth"] == 24
    config["model"]["diffusion"]["config"]["depth"] = 1
    t5 = save_tiny_t5(tmp_path / "t5_768", d_model=768)
    for entry in config["model"]["conditioning"]["configs"]:
        if entry["type"] == "saga_t5":
            entry["config"].update(t5_model_name=str(t5), max_length=8)
    model = create_model_from_config(config)
    wrapper = create_training_wrapper_from_config(config, model)
    assert type(wrapper) is DiffusionCondTrainingWrapper and wrapper.diffusion_objective == "rectified_flow"
    assert wrapper.diffusion_ema is not None and wrapper.timestep_sampler == "uniform"
    assert model.pretransform.downsampling_ratio == 2048 and model.pretransform.encoded_channels == 64
    dit = model.model.model
    assert dit.transformer.dim == 1536

    audio = torch.randn(1, 2, 4096) * 0.1
    cond = model.conditioner([{"prompt": "a piano", "rolloff_lr": 0.2, "rolloff_hr": 0.9, "lr_audio": audio[0]}], "cpu")
    inputs = model.get_conditioning_inputs(cond)
    assert inputs["cross_attn_cond"].shape == (1, 8 + 2, 768)
    assert inputs["global_cond"].shape == (1, 1536)
    assert inputs["input_concat_cond"].shape == (1, 64, 2)
    with torch.no_grad():
        out = model(torch.randn(1, 64, 2), torch.tensor([0.5]), cond=cond)
    assert out.shape == (1, 64, 2) and torch.isfinite(out).all()


def test_train_entry_steps_have_finite_loss_and_export(trained_run):
    run, _, out = trained_run
    assert run.trainer.global_step == 6
    losses = logged(out / "t")
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert run.export_path.is_file() and run.export_path.suffix == ".safetensors"
    assert json.loads(run.export_path.with_suffix(".json").read_text())["model_type"] == "diffusion_cond"
    ckpt = torch.load(out / "t" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["model_config"]["model_type"] == "diffusion_cond"


def test_exported_file_holds_exactly_the_ema_weights(trained_run):
    run, _, out = trained_run
    exported = load_file(str(run.export_path))
    # The official export swaps the EMA model into the wrapper, so the online weights
    # are read from the last Lightning checkpoint (saved after the final step).
    state = torch.load(out / "t" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    online = {k[len("diffusion.model."):]: v for k, v in state.items() if k.startswith("diffusion.model.")}
    ema = {k[len("diffusion_ema.ema_model."):]: v for k, v in state.items() if k.startswith("diffusion_ema.ema_model.")}
    assert online and ema.keys() == online.keys()
    differ = [k for k in ema if not torch.equal(ema[k], online[k])]
    assert differ, "after 6 steps the EMA weights should differ from the online weights"
    for key, value in ema.items():
        assert torch.equal(exported["model." + key], value), key
    assert not any(k.startswith("conditioner.conditioners.prompt.model") for k in exported), "frozen T5 leaked into the export"


def test_lightning_checkpoint_export_matches_and_reloads_identically(trained_run, tmp_path):
    run, config_path, out = trained_run
    exported = export_checkpoint(config_path, str(out / "t" / "checkpoints" / "last.ckpt"), str(tmp_path / "m.safetensors"))
    a, b = load_file(str(exported)), load_file(str(run.export_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    model, _ = load_exported_model(config_path, str(run.export_path))
    reference = run.wrapper.diffusion_ema.ema_model.eval()
    torch.manual_seed(0)
    x, t = torch.randn(2, 64, 256), torch.tensor([0.3, 0.8])
    cond = model.conditioner([{"prompt": "a bright saw tone", "rolloff_lr": 0.2, "rolloff_hr": 0.9,
                               "lr_audio": torch.randn(2, 8192) * 0.1}] * 2, "cpu")
    inputs = model.get_conditioning_inputs(cond)
    with torch.no_grad():
        assert torch.equal(model.model(x, t, **inputs), reference(x, t, **inputs))


def test_checkpoint_from_another_config_is_refused(trained_run, tmp_path, tiny_t5):
    run, _, out = trained_run
    other = demo_config(tiny_t5)
    other["model"]["diffusion"]["config"]["embed_dim"] = 96
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(other))
    with pytest.raises(CheckpointMismatchError, match="other.json"):
        load_exported_model(str(other_path), str(run.export_path))
    with pytest.raises(CheckpointMismatchError, match="last.ckpt"):
        export_checkpoint(str(other_path), str(out / "t" / "checkpoints" / "last.ckpt"), str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="export it first"):
        load_exported_model(str(other_path), str(out / "t" / "checkpoints" / "last.ckpt"))


def test_resume_checkpoint_from_another_config_is_a_one_line_error(trained_run, tmp_path, tiny_t5, tiny_dataset,
                                                                   capsys):
    _, _, out = trained_run
    other = demo_config(tiny_t5, sample_size=8192)
    other["model"]["diffusion"]["config"]["depth"] = 2
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(other))
    with pytest.raises(SystemExit) as exit_info:
        train_entry.main(["--model-config", str(other_path), "--dataset-config", tiny_dataset, "--max-steps", "1",
                          "--save-dir", str(tmp_path), "--ckpt-path", str(out / "t" / "checkpoints" / "last.ckpt"),
                          "--num-workers", "1", "--batch-size", "2"])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "last.ckpt" in lines[0] and "other.json" in lines[0]
    assert "missing" in lines[0] or "unexpected" in lines[0]


def test_overfitting_one_batch_lowers_the_official_loss(tiny_dataset, demo_model_config):
    pl.seed_everything(0)
    loader = assembly.build_dataloader(json.loads(open(tiny_dataset).read()), tiny_dataset, demo_model_config,
                                       batch_size=2, num_workers=1)
    batch = next(iter(loader))
    opt = demo_model_config["training"]["optimizer_configs"]["diffusion"]
    opt["optimizer"]["config"]["lr"] = 1e-3
    opt["scheduler"]["config"]["warmup"] = 0.0
    model = create_model_from_config(demo_model_config)
    wrapper = create_training_wrapper_from_config(demo_model_config, model)
    losses: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(accelerator="cpu", max_steps=100, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, callbacks=[Record()], enable_model_summary=False)
    trainer.fit(wrapper, torch.utils.data.DataLoader([batch], batch_size=None, collate_fn=lambda b: b))
    assert all(math.isfinite(v) for v in losses)
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.7 * first, (first, last)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["model"]["diffusion"].update(diffusion_objective="rectifed_flow"), "rectified_flow"),
    (lambda c: c["model"]["diffusion"].update(input_concat_ids=["lr_audi"]), "lr_audi"),
    (lambda c: c.pop("sample_rate"), "sample_rate"),
])
def test_config_typos_are_config_errors(demo_model_config, mutate, message):
    mutate(demo_model_config)
    with pytest.raises(ConfigError, match=message):
        check_model_config(demo_model_config, "typo.json")


def test_train_entry_reports_a_missing_dataset_folder(tmp_path, demo_config_file, capsys):
    bad = tmp_path / "ds.json"
    bad.write_text(json.dumps({"dataset_type": "audio_dir", "datasets": [{"id": "x", "path": str(tmp_path / "nope")}]}))
    with pytest.raises(SystemExit) as exit_info:
        train_entry.main(["--model-config", demo_config_file, "--dataset-config", str(bad), "--max-steps", "1"])
    assert exit_info.value.code == 2
    assert "nope" in capsys.readouterr().err


def test_strategies_are_lightnings_own():
    from pytorch_lightning.strategies import DDPStrategy

    assert isinstance(assembly.make_strategy("ddp_find_unused")[0], DDPStrategy)
    assert assembly.make_strategy("ddp") == ("ddp", [])
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install deepspeed"):
            assembly.make_strategy("deepspeed")


def test_cli_export_to_official_ckpt_format_loads_for_inference(trained_run, tmp_path, capsys):
    from saga_sr_plugin.interface import cli
    from saga_sr_plugin.inference.upsampler import Upsampler

    _, config_path, out = trained_run
    code = cli.main(["export", "--model-config", config_path, "--ckpt-path", str(out / "t" / "checkpoints" / "last.ckpt"),
                     "-o", str(tmp_path / "model.ckpt")])
    assert code == 0 and "exported EMA weights" in capsys.readouterr().out
    assert "state_dict" in torch.load(tmp_path / "model.ckpt", map_location="cpu", weights_only=False)
    upsampler = Upsampler.load(config_path, str(tmp_path / "model.ckpt"), device="cpu")
    result = upsampler.upsample(0.3 * torch.randn(1, 4000), 16000, caption="", settings=upsampler.settings(steps=2))
    assert result.audio.shape == (1, 11025)
    assert cli.main(["export", "--model-config", config_path, "--ckpt-path", str(tmp_path / "nope.ckpt")]) == 2
