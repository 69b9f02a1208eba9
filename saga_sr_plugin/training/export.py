"""Exporting trained weights through the official path.

Export is the official ``DiffusionCondTrainingWrapper.export_model``, as the official
``unwrap_model.py`` calls it: the exported file holds the EMA DiT, and a portable config goes
beside it. The checkpoint is read by the plugin's own weights-only reader and loaded strictly
into the wrapper the official code builds (not through Lightning's ``load_from_checkpoint``,
whose unpickling follows the installed Lightning's default: Lightning 2.5 runs code from the
file). The export records the model-defining part of its config (``models.weights.model_identity``)
in the file, so loading it with another config is refused. Loading it back is
``models.loading.load_exported_model``.
The official ``ARCTrainingWrapper`` has no ``export_model`` of its own; it holds the same
``diffusion`` and ``diffusion_ema``, so the official ``DiffusionCondTrainingWrapper.export_model``
is called on it.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import torch
from torch import nn
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper
from stable_audio_tools.training.factory import create_training_wrapper_from_config

from ..atomic import atomic_path, write_text
from ..configs import resolve_local_paths
from ..inference.settings import check_saga_sr_block
from ..models.loading import read_model_config
from ..models.weights import check_state_dict_fits, identity_metadata, read_checkpoint
from .arc import build_arc_wrapper, is_arc


def export_checkpoint(model_config_path: str, ckpt_path: str, output: str, use_safetensors: bool | None = None,
                      overwrite: bool = False) -> Path:
    """Lightning checkpoint -> exported weights (EMA DiT if the config uses EMA) and a portable config.

    The checkpoint is read weights-only by :func:`read_checkpoint` (no code from it runs, on any
    stack) and must fit the wrapper built from the config strictly. An existing ``output`` (or its
    ``.json``) is kept unless ``overwrite``.
    """
    model_config = read_model_config(model_config_path)
    check_saga_sr_block(model_config.get("saga_sr", {}), model_config_path)
    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    existing = [p for p in (Path(output), Path(output).with_suffix(".json")) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(map(str, existing))} already exist(s): pass --overwrite to replace, or "
                              "choose another -o")
    if is_arc(model_config):
        wrapper = load_arc_checkpoint(model_config, model_config_path, ckpt_path)
    else:
        state = read_checkpoint(ckpt_path).get("state_dict", {})
        wrapper = create_training_wrapper_from_config(model_config, create_model_from_config(model_config))
        check_state_dict_fits(wrapper, state, ckpt_path, model_config_path)
        wrapper.load_state_dict(state)
    export_model(wrapper, output, model_config, use_safetensors, config_source=model_config_path)
    return Path(output)


def load_arc_checkpoint(model_config: dict, model_config_path: str, ckpt_path: str) -> nn.Module:
    """A Lightning checkpoint of ARC post-training in the official ``ARCTrainingWrapper``, strictly."""
    wrapper = build_arc_wrapper(model_config, create_model_from_config(model_config), model_config_path, weights=None)
    state = read_checkpoint(ckpt_path).get("state_dict", {})
    check_state_dict_fits(wrapper, state, ckpt_path, model_config_path)
    wrapper.load_state_dict(state)
    return wrapper


def export_model(wrapper: nn.Module, output: str | os.PathLike, model_config: dict,
                 use_safetensors: bool | None = None, config_base: str | os.PathLike = ".",
                 config_source: str | os.PathLike | None = None) -> Path:
    """The official ``export_model`` (EMA weights), written atomically, with a portable config beside it.

    The config goes to ``output`` with the suffix ``.json``; local paths in it (the T5
    folder, the VAE weights) are made absolute against ``config_base``, so the export
    loads from any working directory. The file records the model-defining part of the config
    and ``config_source`` (safetensors metadata; a ``saga_sr`` entry in a ``.ckpt``).
    """
    output = Path(output)
    if use_safetensors is None:
        use_safetensors = output.suffix == ".safetensors"
    exporter = getattr(wrapper, "export_model", None)
    if exporter is None:  # ARCTrainingWrapper: the official DiffusionCondTrainingWrapper's export on its attributes
        exporter = functools.partial(DiffusionCondTrainingWrapper.export_model, wrapper)
    with atomic_path(output) as tmp:
        exporter(str(tmp), use_safetensors=use_safetensors)
        record_identity(tmp, identity_metadata(model_config, config_source), use_safetensors)
    write_text(output.with_suffix(".json"), json.dumps(resolve_local_paths(model_config, config_base), indent=2))
    return output


def record_identity(path: Path, metadata: dict[str, str], use_safetensors: bool) -> None:
    """Add ``metadata`` to an exported file: the safetensors header's metadata, or a ``saga_sr`` entry of a
    torch file (strings only, so a weights-only read takes it)."""
    if use_safetensors:
        from safetensors.torch import load_file, save_file

        save_file(load_file(str(path)), str(path), metadata=metadata)
    else:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
        checkpoint["saga_sr"] = metadata
        torch.save(checkpoint, str(path))


def embed_config(checkpoint: dict, model_config: dict) -> None:
    """Store the model config in a Lightning checkpoint (what the official train.py does)."""
    checkpoint["model_config"] = json.loads(json.dumps(model_config))
