"""Exporting trained weights through the official path.

Export is ``DiffusionCondTrainingWrapper.load_from_checkpoint(...).export_model(...)``,
as the official ``unwrap_model.py`` does it: the exported file holds the EMA DiT, and
a portable config goes beside it. Loading it back is ``models.loading.load_exported_model``.
The official ``ARCTrainingWrapper`` has no ``export_model`` of its own; it holds the same
``diffusion`` and ``diffusion_ema``, so the official ``DiffusionCondTrainingWrapper.export_model``
is called on it.
"""
from __future__ import annotations

import functools
import json
import os
import pickle
from pathlib import Path

from torch import nn
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper

from ..atomic import atomic_path, write_text
from ..configs import resolve_local_paths
from ..inference.settings import check_saga_sr_block
from ..models.loading import read_model_config
from ..models.weights import UNREADABLE, check_state_dict_fits, read_checkpoint, unreadable_error
from .arc import build_arc_wrapper, is_arc


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
    model_config = read_model_config(model_config_path)
    check_saga_sr_block(model_config.get("saga_sr", {}), model_config_path)
    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    if is_arc(model_config):
        export_model(load_arc_checkpoint(model_config, model_config_path, ckpt_path), output, model_config,
                     use_safetensors)
        return Path(output)
    model, kwargs = build_training_wrapper_for_export(model_config)
    try:
        # Lightning reads the file with torch's default, weights_only=True (torch >= 2.6).
        wrapper = DiffusionCondTrainingWrapper.load_from_checkpoint(ckpt_path, map_location="cpu", **kwargs)
    except pickle.UnpicklingError as err:
        raise unreadable_error(ckpt_path, err) from err
    except UNREADABLE as err:
        # Corrupt file, or the official strict load failed deep in torch: read it again (weights
        # only; this path alone, so a good export stays one read) and say which it is.
        state = read_checkpoint(ckpt_path).get("state_dict", {})
        online = {k[len("diffusion."):]: v for k, v in state.items() if k.startswith("diffusion.")}
        check_state_dict_fits(model, online, ckpt_path, model_config_path)
        raise unreadable_error(ckpt_path, err) from err
    export_model(wrapper, output, model_config, use_safetensors)
    return Path(output)


def load_arc_checkpoint(model_config: dict, model_config_path: str, ckpt_path: str) -> nn.Module:
    """A Lightning checkpoint of ARC post-training in the official ``ARCTrainingWrapper``, strictly."""
    wrapper = build_arc_wrapper(model_config, create_model_from_config(model_config), model_config_path, weights=None)
    state = read_checkpoint(ckpt_path).get("state_dict", {})
    check_state_dict_fits(wrapper, state, ckpt_path, model_config_path)
    wrapper.load_state_dict(state)
    return wrapper


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
    exporter = getattr(wrapper, "export_model", None)
    if exporter is None:  # ARCTrainingWrapper: the official DiffusionCondTrainingWrapper's export on its attributes
        exporter = functools.partial(DiffusionCondTrainingWrapper.export_model, wrapper)
    with atomic_path(output) as tmp:
        exporter(str(tmp), use_safetensors=use_safetensors)
    write_text(output.with_suffix(".json"), json.dumps(resolve_local_paths(model_config, config_base), indent=2))
    return output


def embed_config(checkpoint: dict, model_config: dict) -> None:
    """Store the model config in a Lightning checkpoint (what the official train.py does)."""
    checkpoint["model_config"] = json.loads(json.dumps(model_config))
