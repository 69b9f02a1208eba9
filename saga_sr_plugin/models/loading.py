"""Building a SAGA-SR model (or only its VAE) through the official factory, with weights loaded strictly.

Relative local paths in a config (the T5 folder, the VAE weights) resolve against the
config file's folder first, then the working directory (``configs.resolve_local_paths``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from stable_audio_tools.models.factory import create_model_from_config, create_pretransform_from_config

from ..configs import ConfigError, load_json, resolve_local_paths
from . import registry  # noqa: F401  (plugin types must be registered before the factory runs)
from .checks import check_model_config
from .weights import CheckpointMismatchError, check_same_model, check_state_dict_fits, read_weights


def read_model_config(model_config_path: str) -> dict:
    """A model config file, checked, with its local paths made absolute."""
    model_config = resolve_local_paths(load_json(model_config_path, "model config"),
                                       Path(model_config_path).resolve().parent)
    check_model_config(model_config, model_config_path)
    return model_config


def load_exported_model(model_config_path: str, weights_path: str,
                        allow_config_mismatch: bool = False) -> tuple[nn.Module, dict]:
    """The official factory's model with exported weights loaded strictly; returns (model, config).

    Weights exported with another model config are refused even where the shapes fit
    (``models.weights.check_same_model``), unless ``allow_config_mismatch``.
    """
    model_config = read_model_config(model_config_path)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"model weights not found: {weights_path}")
    state_dict = read_weights(weights_path)
    if any(k.startswith("diffusion.") for k in state_dict):  # a Lightning checkpoint, not an export
        raise CheckpointMismatchError(
            f"{weights_path} is a training checkpoint; export it first: "
            f"saga-sr export --model-config {model_config_path} --ckpt-path {weights_path} -o model.safetensors")
    check_same_model(weights_path, model_config, model_config_path, allow_config_mismatch)
    model = create_model_from_config(model_config)
    check_state_dict_fits(model, state_dict, weights_path, model_config_path)
    model.load_state_dict(state_dict)
    return model.eval().requires_grad_(False), model_config


def load_pretransform_weights(pretransform: torch.nn.Module, model_config: dict, source: str,
                              ckpt_path: str | None = None) -> None:
    """VAE weights from ``ckpt_path`` or the config's ``pretransform_ckpt_path`` (if either is set), strictly."""
    ckpt_path = ckpt_path or model_config["model"].get("pretransform", {}).get("pretransform_ckpt_path")
    if not ckpt_path:
        return
    if not os.path.isfile(ckpt_path):
        raise ConfigError(f"pretransform checkpoint not found: {ckpt_path}")
    state = read_weights(ckpt_path)
    check_state_dict_fits(pretransform, state, ckpt_path, f"{source} (model.pretransform)")
    pretransform.load_state_dict(state)


def build_pretransform(model_config: dict, source: str, ckpt_path: str | None = None) -> torch.nn.Module:
    """Only the model's pretransform (the VAE), through the official factory: what pre-encoding needs."""
    check_model_config(model_config, source)
    pretransform = create_pretransform_from_config(model_config["model"]["pretransform"], model_config["sample_rate"])
    load_pretransform_weights(pretransform, model_config, source, ckpt_path)
    return pretransform
