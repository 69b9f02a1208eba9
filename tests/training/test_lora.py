"""LoRA fine-tuning of a trained model through the official training.lora_config (stable-audio-tools 0.0.20)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT, demo_config, one_line_error, run_train
from safetensors.torch import load_file

from saga_sr_plugin.interface import cli
from saga_sr_plugin.training import assembly

needs_lora = pytest.mark.skipif(not assembly.FEATURES["lora"], reason="training.lora_config is 0.0.20's")
SHIPPED = "saga_demo_lora_config.json"


def test_the_shipped_lora_config_is_the_demo_config_with_a_lora_block():
    demo = json.loads((ROOT / "model_configs" / "saga_demo_config.json").read_text())
    lora = json.loads((ROOT / "model_configs" / SHIPPED).read_text())
    assert lora["training"].pop("lora_config")["include"] == ["transformer.layers"]  # the DiT's blocks alone
    assert lora["training"].pop("use_ema") is False and demo["training"].pop("use_ema") is True
    lora["training"].pop("max_steps"), demo["training"].pop("max_steps")
    assert lora == demo


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_t5, dataset_config):
    """A 'trained' demo model (random weights, saved as an export) fine-tuned with the shipped LoRA block."""
    if not assembly.FEATURES["lora"]:
        pytest.skip("training.lora_config is 0.0.20's")
    from stable_audio_tools.models.factory import create_model_from_config
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("lora")
    base_config = demo_config(tiny_t5)
    torch.manual_seed(0)
    save_file(create_model_from_config(base_config).state_dict(), str(root / "base.safetensors"))
    (root / "lora.json").write_text(json.dumps(demo_config(tiny_t5, name=SHIPPED)))
    run = run_train(str(root / "lora.json"), dataset_config, root, "--pretrained-ckpt-path",
                    str(root / "base.safetensors"), "--max-steps", "4", "--no-final-demo")
    return root, base_config, run


@needs_lora
def test_lora_trains_the_adapters_alone_and_saves_them_the_official_way(lora_run, capsys):
    root, _, run = lora_run
    from stable_audio_tools.models.lora.utils import load_lora_checkpoint

    assert run.wrapper.diffusion_ema is None, "the official wrapper turns EMA off for LoRA"
    adapter, config = load_lora_checkpoint(str(root / "r" / "lora.safetensors"))
    assert config["rank"] == 8 and config["include"] == ["transformer.layers"]
    assert adapter and all("transformer.layers" in k and "lora" in k for k in adapter), sorted(adapter)[:4]
    checkpoint = torch.load(root / "r" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert set(checkpoint) == {"state_dict", "lora_config"}, "the checkpoint holds the adapter alone"


@needs_lora
def test_the_export_is_the_base_model_with_the_adapter_merged(lora_run, tiny_t5):
    """Outside the DiT's blocks the export is the base model; the whole export computes what the base model
    with the official adapter applied computes."""
    from stable_audio_tools.models.factory import create_model_from_config
    from stable_audio_tools.models.lora.loader import load_and_apply_loras

    root, base_config, _ = lora_run
    base, merged = load_file(str(root / "base.safetensors")), load_file(str(root / "r" / "model.safetensors"))
    assert base.keys() == merged.keys(), "no adapter parameters left in the export"
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all("transformer.layers" in k for k in changed), sorted(changed)[:5]
    models = []
    for weights, adapters in ((merged, []), (base, [str(root / "r" / "lora.safetensors")])):
        model = create_model_from_config(base_config)
        model.load_state_dict(weights)
        load_and_apply_loras(model, adapters, "diffusion_cond")
        models.append(model.model.eval())
    x, t = torch.randn(1, 64, 64), torch.tensor([0.5])
    cond = dict(cross_attn_cond=torch.randn(1, 3, 64), global_cond=torch.randn(1, 128),
                input_concat_cond=torch.randn(1, 64, 64))
    with torch.no_grad():
        a, b = (m(x, t, **cond) for m in models)
    assert torch.allclose(a, b, atol=2e-3 * b.abs().max()), (a - b).abs().max()  # the adapter is stored in float16


@needs_lora
def test_upsample_and_evaluate_load_the_merged_export(lora_run, tmp_path):
    root, _, _ = lora_run
    sf.write(tmp_path / "in.wav", (0.2 * np.random.default_rng(0).standard_normal((8000, 1))).astype(np.float32), 8000)
    export = root / "r" / "model.safetensors"
    model = ["--model-config", str(export.with_suffix(".json")), "--weights", str(export), "--steps", "2",
             "--device", "cpu"]
    assert cli.main(["upsample", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out"), *model]) == 0
    assert [sf.info(str(p)).samplerate for p in (tmp_path / "out").glob("*.wav")] == [44100]
    (tmp_path / "refs" / "music").mkdir(parents=True)
    sf.write(tmp_path / "refs" / "music" / "a.wav", (0.2 * np.random.default_rng(1).standard_normal((22050, 2))
                                                     ).astype(np.float32), 44100)
    assert cli.main(["evaluate", str(tmp_path / "refs"), "--cutoffs", "8000", "--no-visqol", "-o",
                     str(tmp_path / "eval"), *model]) == 0
    assert "saga-sr" in (tmp_path / "eval" / "lsd.md").read_text()


def test_lora_blocks_that_cannot_run_are_one_line_errors(tmp_path, tiny_t5, dataset_config, capsys):
    config = demo_config(tiny_t5, name=SHIPPED)
    path = tmp_path / "lora.json"
    path.write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        run_train(str(path), dataset_config, tmp_path, "--max-steps", "1")
    line = one_line_error(capsys.readouterr().err)
    assert "--pretrained-ckpt-path" in line and "lora.json" in line
    config["training"]["lora_config"]["rnak"] = 4
    path.write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        run_train(str(path), dataset_config, tmp_path, "--max-steps", "1", "--pretrained-ckpt-path", "x")
    assert "did you mean 'rank'" in one_line_error(capsys.readouterr().err)
    if not assembly.FEATURES["lora"]:  # 0.0.19 would train the whole model, silently: it must say so instead
        del config["training"]["lora_config"]["rnak"]
        path.write_text(json.dumps(config))
        torch.manual_seed(0)
        from stable_audio_tools.models.factory import create_model_from_config
        from safetensors.torch import save_file

        save_file(create_model_from_config(demo_config(tiny_t5)).state_dict(), str(tmp_path / "base.safetensors"))
        with pytest.raises(SystemExit):
            run_train(str(path), dataset_config, tmp_path, "--max-steps", "1", "--pretrained-ckpt-path",
                      str(tmp_path / "base.safetensors"))
        assert "needs stable-audio-tools 0.0.20" in one_line_error(capsys.readouterr().err)
