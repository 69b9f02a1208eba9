"""Device and precision: what CPU tests can catch of the CUDA paths, and the CUDA tests themselves.

CPU-side checks (always run):
- every tensor the plugin creates during upsampling and a training step names its device
  (``device_audit``): a window or buffer left on the CPU is what crashed ``upsample``
  on CUDA;
- the frozen T5 in float16 inside a bf16 autocast region (what Lightning's
  ``bf16-mixed`` does) gives finite embeddings instead of overflowing float16;
- a few ``bf16-mixed`` training steps through ``train_entry`` with a float16 T5, and
  upsampling in bfloat16.

CUDA tests (``-m cuda``; skipped without a GPU): upsampling in float32, bfloat16 and
float16, ``16-mixed`` and ``bf16-mixed`` training steps, and bf16 captioning.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.factory import create_training_wrapper_from_config

from conftest import SR, demo_config, logged, white_noise
from device_audit import FactoryDeviceAudit
from saga_sr_plugin.models.conditioners import LocalT5Conditioner
from saga_sr_plugin.data.demo_assets import save_tiny_t5
from saga_sr_plugin.inference.upsampler import Upsampler

from saga_sr_plugin.interface import train as train_entry

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def fp16_t5_config(tmp_path, dtype: str = "float16") -> str:
    """The demo config with the T5 in ``dtype`` (the paper config's default is float16)."""
    config = demo_config(str(save_tiny_t5(tmp_path / "t5")), sample_size=8192)
    for entry in config["model"]["conditioning"]["configs"]:
        if entry["type"] == "saga_t5":
            entry["config"]["dtype"] = dtype
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    return str(path)


def train_steps(config_path: str, dataset: str, out, precision: str, accelerator: str, steps: int = 3,
                extra: tuple[str, ...] = ("--no-export",)):
    return train_entry.main(["--model-config", config_path, "--dataset-config", dataset, "--save-dir", str(out),
                             "--name", precision, "--max-steps", str(steps), "--batch-size", "2",
                             "--num-workers", "1", "--precision", precision, "--accelerator", accelerator,
                             "--devices", "1", "--checkpoint-every", "1000", "--logger", "csv", *extra])


# ---------------------------------------------------------------- CPU-side checks
@pytest.mark.parametrize("options", [{}, {"target_rolloff": "auto", "slope_cap_db": 3.0},
                                     {"slope_cap_db": 0.0, "slope_cap_per_frame": True}])
def test_upsampling_creates_every_tensor_on_a_named_device(demo_model_files, options):
    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    audio = white_noise(0.4, channels=2, seed=1)
    with FactoryDeviceAudit() as audit:
        result = upsampler.upsample(audio, 16000, caption="a tone", settings=upsampler.settings(steps=2, **options))
    assert torch.isfinite(result.audio).all()
    assert audit.violations == [], f"tensors created without a device (they stay on the CPU on a GPU run): " \
                                   f"{sorted(set(audit.violations))}"


def test_a_training_step_creates_every_tensor_on_a_named_device(tiny_t5):
    config = demo_config(tiny_t5, sample_size=8192)
    model = create_model_from_config(config)
    wrapper = create_training_wrapper_from_config(config, model).train()
    batch = [{"prompt": "a bell" if i else "", "rolloff_lr": 0.2, "rolloff_hr": 0.9,
              "lr_audio": 0.1 * torch.randn(2, 8192), "padding_mask": [torch.ones(8192, dtype=torch.bool)]}
             for i in range(2)]
    with FactoryDeviceAudit() as audit:
        cond = model.conditioner(batch, "cpu")
        model(torch.randn(2, 64, 256), torch.rand(2), cond=cond, cfg_dropout_prob=0.1)
    assert audit.violations == [], sorted(set(audit.violations))


def test_the_audit_catches_a_window_without_a_device():
    """The check itself can fail: a plugin-style call without device= is recorded."""
    from saga_sr_plugin.inference import postprocess

    with FactoryDeviceAudit() as audit:
        postprocess.torch.hann_window(8)  # called from this test module: not the plugin's code
    assert audit.violations == []
    audit = FactoryDeviceAudit(package="test_devices")
    with audit:
        torch.hann_window(8)
    assert audit.violations and "hann_window" in audit.violations[0]


def test_float16_t5_inside_bf16_autocast_gives_finite_embeddings(tiny_t5):
    """What bf16-mixed training does to the frozen T5 of the paper config (float16 weights)."""
    t5 = LocalT5Conditioner(output_dim=64, t5_model_name=tiny_t5, max_length=16, dtype="float16")
    captions = ["a bright piano", "a man speaking in a large hall with some reverberation", ""]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings, mask = t5(captions, "cpu")
    assert embeddings.shape == (3, 16, 64) and torch.isfinite(embeddings).all()
    assert mask[0].sum() < mask[1].sum() and not mask[2].any()
    reference, _ = LocalT5Conditioner(output_dim=64, t5_model_name=tiny_t5, max_length=16, dtype="float16")(captions, "cpu")
    assert torch.allclose(embeddings.float(), reference.float(), atol=1e-3), "autocast must not change the frozen T5"


def test_bf16_mixed_training_steps_with_a_float16_t5(tmp_path, dataset_config):
    run = train_steps(fp16_t5_config(tmp_path), dataset_config, tmp_path, "bf16-mixed", "cpu")
    assert run.trainer.global_step == 3
    assert all(math.isfinite(v) for v in logged(tmp_path / "bf16-mixed")) and logged(tmp_path / "bf16-mixed")


def test_upsampling_in_bfloat16_on_cpu(demo_model_files):
    upsampler = Upsampler.load(*demo_model_files, device="cpu", dtype="bfloat16")
    audio = white_noise(0.3, seed=2)
    result = upsampler.upsample(audio, 22050, caption="a tone", settings=upsampler.settings(steps=2))
    assert result.audio.dtype == torch.float32 and torch.isfinite(result.audio).all()
    assert result.audio.shape == (2, 2 * audio.shape[-1])


# ---------------------------------------------------------------- CUDA
@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_cuda_upsampling(demo_model_files, dtype):
    upsampler = Upsampler.load(*demo_model_files, device="cuda", dtype=dtype)
    audio = white_noise(16000 / SR, seed=4)  # one second at 16 kHz
    result = upsampler.upsample(audio, 16000, caption="a tone", settings=upsampler.settings(steps=4))
    assert result.audio.device.type == "cpu" and torch.isfinite(result.audio).all()
    assert result.audio.shape == (2, 44100)
    cuda_input = upsampler.upsample(audio.cuda(), 16000, caption="a tone", settings=upsampler.settings(steps=4))
    assert torch.allclose(cuda_input.audio, result.audio, atol=1e-4)


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "32"])
def test_cuda_training_steps(tmp_path, dataset_config, precision):
    """Three steps, an SR demo (validation LSD) in the middle and at the end, and the EMA export, on the GPU."""
    from saga_sr_plugin.data.demo_assets import ensure_demo_assets

    demo_dir = str(ensure_demo_assets() / "audio" / "val")
    run = train_steps(fp16_t5_config(tmp_path), dataset_config, tmp_path, precision, "gpu",
                      extra=("--demo-dir", demo_dir, "--demo-every", "2", "--demo-count", "1", "--demo-steps", "2"))
    assert run.trainer.global_step == 3
    assert logged(tmp_path / precision) and all(math.isfinite(v) for v in logged(tmp_path / precision))
    metrics = (tmp_path / precision / "csv" / "metrics.csv").read_text()
    assert "val/lsd_4k" in metrics, "the SR demo at step 2 logged no validation LSD"
    assert (tmp_path / precision / "model.safetensors").exists()


@cuda
@pytest.mark.cuda
def test_cuda_captioning_in_bf16(tmp_path):
    from saga_sr_plugin.captioning.tiny_model import save_tiny_qwen2_audio
    from saga_sr_plugin.captioning.qwen2_audio import Captioner

    captioner = Captioner.load(str(save_tiny_qwen2_audio(tmp_path / "qwen")), device="cuda", dtype="auto",
                               max_new_tokens=6)
    assert next(captioner.model.parameters()).dtype == torch.bfloat16
    captions = captioner.caption([(white_noise(1.0, seed=5), 44100), (white_noise(0.5, 1, seed=6), 16000)])
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)


def test_paper_scale_benchmark_runs_the_paper_config_in_bf16_mixed(capsys):
    """The GPU script at smoke size: the paper config (SAO-VAE architecture, float16 T5) trains
    under bf16-mixed and upsamples in bfloat16; it reports failures instead of hiding them."""
    import paper_scale

    code = paper_scale.main(["--smoke", "--precisions", "bf16-mixed", "--upsample-dtypes", "bfloat16"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[train bf16-mixed]" in out and "ms/step" in out and "[upsample bfloat16" in out and "RTF" in out
    assert "SAGA-SR pre-encoded" in out and "x the bare DiT step" in out
    assert "student pingpong 2 steps, no guidance: RTF" in out
