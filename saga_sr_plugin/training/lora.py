"""LoRA fine-tuning of a trained SAGA-SR model through the official ``training.lora_config`` (0.0.20).

The official wrapper does the work: it freezes the DiT and the conditioners, adds the adapters
(``include``/``exclude`` pick the layers by name), trains them alone and turns EMA off. Its
checkpoints hold the adapter only. This module checks the block, says how many parameters train,
and writes both results of a run: the adapter the official way (``lora.safetensors``, for the
official tools' ``load_and_apply_loras`` and for stacking), and the model with the adapter merged
(``model.safetensors``), which ``saga-sr upsample``, ``evaluate`` and ``gui`` load as any export
and which runs as fast as the base model.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

from torch import nn
from torch.nn.utils import parametrize

from ..atomic import atomic_path
from ..configs import ConfigError, check_options

# what 0.0.20's DiffusionCondTrainingWrapper reads from training.lora_config
LORA_KEYS = ("rank", "alpha", "adapter_type", "include", "exclude")


def lora_block(model_config: dict) -> dict | None:
    return model_config.get("training", {}).get("lora_config")


def check_lora_block(model_config: dict, source: str, pretrained_ckpt_path: str | None,
                     resume_path: str | None = None) -> None:
    """A typo, a LoRA without a model to adapt, or a resume the adapter-only checkpoints cannot give."""
    block = lora_block(model_config)
    if block is None:
        return
    if not isinstance(block, dict):
        raise ConfigError(f"{source}: training.lora_config must be an object such as {{\"rank\": 8, \"include\": "
                          "[\"transformer.layers\"]}")
    check_options(block, LORA_KEYS, "training.lora_config", source, "the official wrapper reads")
    if not pretrained_ckpt_path:
        raise ConfigError(f"{source}: training.lora_config fine-tunes a trained model: pass --pretrained-ckpt-path "
                          "(a SAGA-SR export, e.g. runs/saga_demo/model.safetensors)")
    if "arc" in model_config.get("training", {}):
        raise ConfigError(f"{source}: training.lora_config and training.arc cannot be combined; drop one")
    if resume_path:
        raise ConfigError(f"{source}: a LoRA run's checkpoints hold the adapter only (the official wrapper's "
                          f"choice), so --ckpt-path cannot resume one; continue from {resume_path} with "
                          "training.lora_ckpt_path in the model config instead")


def trainable_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, all) parameter counts."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def export_lora(wrapper: tp.Any, run_dir: Path) -> Path:
    """Write the adapter the official way, then merge it into the model in place (for the usual export)."""
    adapter = run_dir / "lora.safetensors"
    with atomic_path(adapter) as tmp:
        wrapper.export_lora_safetensors(str(tmp))
    merge_adapters(wrapper.diffusion)
    return adapter


def merge_adapters(module: nn.Module) -> int:
    """Fold every parametrization (the adapters) into its weight; the number of layers merged. Torch's own
    removal: 0.0.20's ``merge_lora`` deletes from the dict it iterates and fails ("dictionary changed size")."""
    merged = 0
    for layer in list(module.modules()):
        if parametrize.is_parametrized(layer):
            for name in list(layer.parametrizations.keys()):
                parametrize.remove_parametrizations(layer, name, leave_parametrized=True)
            merged += 1
    return merged
