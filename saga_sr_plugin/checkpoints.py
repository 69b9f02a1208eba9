"""Exporting trained weights through the official path, and loading them back strictly.

Export is ``DiffusionCondTrainingWrapper.load_from_checkpoint(...).export_model(...)``,
as the official ``unwrap_model.py`` does it: the exported file holds the EMA DiT.
Loading is strict: a checkpoint made with another config is an error that names
both files, never a silent partial load.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.models.utils import load_ckpt_state_dict
from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper

from . import registry  # noqa: F401  (plugin types must be registered before the factory runs)
from .configs import check_model_config, load_json


class CheckpointMismatchError(ValueError):
    """Weights that do not fit the model built from the given config."""


def check_state_dict_fits(module: nn.Module, state_dict: dict, weights: str, config: str) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {items[0]})")
        raise CheckpointMismatchError(
            f"weights {weights} do not fit the model built from {config}: {'; '.join(parts)}. "
            "Use the model config the checkpoint was trained with.")


def build_training_wrapper_for_export(model_config: dict) -> tuple[nn.Module, dict]:
    model = create_model_from_config(model_config)
    training = model_config["training"]
    return model, dict(
        model=model,
        lr=training.get("learning_rate"),
        optimizer_configs=training.get("optimizer_configs"),
        use_ema=training.get("use_ema", True),
        cfg_dropout_prob=training.get("cfg_dropout_prob", 0.1),
        timestep_sampler=training.get("timestep_sampler", "uniform"),
    )


def export_checkpoint(model_config_path: str, ckpt_path: str, output: str, use_safetensors: bool | None = None) -> Path:
    """Lightning checkpoint -> exported weights (EMA DiT if the config uses EMA)."""
    model_config = load_json(model_config_path, "model config")
    check_model_config(model_config, model_config_path)
    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    model, kwargs = build_training_wrapper_for_export(model_config)
    try:
        wrapper = DiffusionCondTrainingWrapper.load_from_checkpoint(ckpt_path, map_location="cpu", **kwargs)
    except RuntimeError:
        # The official loader's strict load failed deep in torch; say which config/checkpoint pair
        # is wrong (reading the checkpoint again only on this path keeps a good export to one read).
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False).get("state_dict", {})
        online = {k[len("diffusion."):]: v for k, v in state.items() if k.startswith("diffusion.")}
        check_state_dict_fits(model, online, ckpt_path, model_config_path)
        raise
    if use_safetensors is None:
        use_safetensors = str(output).endswith(".safetensors")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    wrapper.export_model(str(output), use_safetensors=use_safetensors)
    return Path(output)


def load_exported_model(model_config_path: str, weights_path: str) -> tuple[nn.Module, dict]:
    """The official factory's model with exported weights loaded strictly; returns (model, config)."""
    model_config = load_json(model_config_path, "model config")
    check_model_config(model_config, model_config_path)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"model weights not found: {weights_path}")
    model = create_model_from_config(model_config)
    state_dict = load_ckpt_state_dict(weights_path)
    if any(k.startswith("diffusion.") for k in state_dict):  # a Lightning checkpoint, not an export
        raise CheckpointMismatchError(
            f"{weights_path} is a training checkpoint; export it first: "
            f"saga-sr export --model-config {model_config_path} --ckpt-path {weights_path} -o model.safetensors")
    check_state_dict_fits(model, state_dict, weights_path, model_config_path)
    model.load_state_dict(state_dict)
    return model.eval().requires_grad_(False), model_config


def embed_config(checkpoint: dict, model_config: dict) -> None:
    """Store the model config in a Lightning checkpoint (what the official train.py does)."""
    checkpoint["model_config"] = json.loads(json.dumps(model_config))
