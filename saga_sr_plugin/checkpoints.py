"""Exporting trained weights through the official path, and loading them back strictly.

Export is ``DiffusionCondTrainingWrapper.load_from_checkpoint(...).export_model(...)``,
as the official ``unwrap_model.py`` does it: the exported file holds the EMA DiT.
Loading is strict: a checkpoint made with another config is an error that names
both files, never a silent partial load.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import typing as tp
from pathlib import Path

import torch
from torch import nn
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.models.utils import load_ckpt_state_dict
from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper

from . import registry  # noqa: F401  (plugin types must be registered before the factory runs)
from .atomic import atomic_path, write_text
from .configs import check_model_config, load_json, resolve_local_paths


class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be used; the message names the file and why."""


class CheckpointMismatchError(CheckpointError):
    """Weights that do not fit the model built from the given config."""


# Globals a checkpoint of this package may ask the unpickler for, beyond torch's weights-only set
# (tensors, dtypes, OrderedDict, plain containers). Measured on train_entry checkpoints of both
# stacks (torch.serialization.get_unsafe_globals_in_checkpoint): none. Anything else is refused.
CHECKPOINT_GLOBALS: tuple[tp.Any, ...] = ()

_UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, AttributeError)


def _unreadable(path: str | os.PathLike, err: BaseException) -> CheckpointError:
    if isinstance(err, pickle.UnpicklingError):
        wanted = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err)))) or ["an object outside the weights-only set"]
        return CheckpointError(
            f"{path}: refused to load: the file asks to import {', '.join(wanted)}, and loading a checkpoint must not "
            "run code from it (a checkpoint of this package holds only tensors and plain data). Re-save it with "
            "tensors only, or export it with the stable-audio-tools code that made it.")
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CheckpointError(f"{path}: not a readable checkpoint ({reason}); the file may be truncated (an interrupted "
                           "copy or save) or not a torch/safetensors file: save or copy it again")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A torch/Lightning checkpoint, unpickled with ``weights_only=True``: no code from the file runs."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_GLOBALS)):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, *_UNREADABLE) as err:
        raise _unreadable(path, err) from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    return checkpoint


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict through the official ``load_ckpt_state_dict`` (.safetensors, or a .ckpt's
    ``state_dict`` loaded weights-only), with a corrupt or truncated file named in one line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights not found: {path}")
    try:
        return load_ckpt_state_dict(str(path))
    except (pickle.UnpicklingError, *_UNREADABLE) as err:
        raise _unreadable(path, err) from err
    except Exception as err:  # safetensors raises its own SafetensorError (a plain Exception subclass)
        if type(err).__name__ == "SafetensorError":
            raise _unreadable(path, err) from err
        raise


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
    """Lightning checkpoint -> exported weights (EMA DiT if the config uses EMA) and a portable config."""
    model_config = resolve_local_paths(load_json(model_config_path, "model config"),
                                       Path(model_config_path).resolve().parent)
    check_model_config(model_config, model_config_path)
    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    model, kwargs = build_training_wrapper_for_export(model_config)
    try:
        # Lightning reads the file with torch's default, weights_only=True (torch >= 2.6).
        wrapper = DiffusionCondTrainingWrapper.load_from_checkpoint(ckpt_path, map_location="cpu", **kwargs)
    except pickle.UnpicklingError as err:
        raise _unreadable(ckpt_path, err) from err
    except (*_UNREADABLE,) as err:
        # Corrupt file, or the official strict load failed deep in torch: read it again (weights
        # only; this path alone, so a good export stays one read) and say which it is.
        state = read_checkpoint(ckpt_path).get("state_dict", {})
        online = {k[len("diffusion."):]: v for k, v in state.items() if k.startswith("diffusion.")}
        check_state_dict_fits(model, online, ckpt_path, model_config_path)
        raise _unreadable(ckpt_path, err) from err
    export_model(wrapper, output, model_config, use_safetensors)
    return Path(output)


def export_model(wrapper: nn.Module, output: str | os.PathLike, model_config: dict,
                 use_safetensors: bool | None = None, config_base: str | os.PathLike = ".") -> Path:
    """The official ``export_model`` (EMA weights), written atomically, with a portable config beside it.

    The config goes to ``output`` with the suffix ``.json``; local paths in it (the T5
    folder, the VAE weights) are made absolute against ``config_base``, so the export
    loads from any working directory.
    """
    output = Path(output)
    if use_safetensors is None:
        use_safetensors = output.suffix == ".safetensors"
    with atomic_path(output) as tmp:
        wrapper.export_model(str(tmp), use_safetensors=use_safetensors)
    write_text(output.with_suffix(".json"), json.dumps(resolve_local_paths(model_config, config_base), indent=2))
    return output


def load_exported_model(model_config_path: str, weights_path: str) -> tuple[nn.Module, dict]:
    """The official factory's model with exported weights loaded strictly; returns (model, config).

    Relative local paths in the config (T5 folder, VAE weights) resolve against the
    config file's folder first, then the working directory.
    """
    model_config = resolve_local_paths(load_json(model_config_path, "model config"),
                                       Path(model_config_path).resolve().parent)
    check_model_config(model_config, model_config_path)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"model weights not found: {weights_path}")
    model = create_model_from_config(model_config)
    state_dict = read_weights(weights_path)
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
