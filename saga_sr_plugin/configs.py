"""Reading and checking JSON configs, so typos fail early with the file and the fix named."""
from __future__ import annotations

import copy
import difflib
import importlib.util
import json
import os
from pathlib import Path


class ConfigError(ValueError):
    """A config that cannot work; the message names the file and what to change."""


def load_json(path: str | os.PathLike, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what} {path} is not valid JSON: line {err.lineno}, column {err.colno}: {err.msg}") from err


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_model_config(config: dict, source: str = "model config") -> None:
    """Structural checks the official factory would only fail on deep inside torch."""
    if config.get("model_type") != "diffusion_cond":
        raise ConfigError(f"{source}: SAGA-SR needs model_type 'diffusion_cond', got {config.get('model_type')!r}")
    for key in ("sample_rate", "sample_size", "model", "training"):
        if key not in config:
            raise ConfigError(f"{source}: missing top-level key {key!r}")
    model = config["model"]
    diffusion = model.get("diffusion", {})
    ids = [c.get("id") for c in model.get("conditioning", {}).get("configs", [])]
    for list_key in ("cross_attention_cond_ids", "global_cond_ids", "input_concat_ids", "prepend_cond_ids"):
        for cond_id in diffusion.get(list_key, []):
            if cond_id not in ids:
                raise ConfigError(f"{source}: model.diffusion.{list_key} names {cond_id!r}, which is not a "
                                  f"conditioning id{_suggest(cond_id, ids)}; ids defined: {ids}")
    objective = diffusion.get("diffusion_objective", "v")
    if objective != "rectified_flow":
        raise ConfigError(f"{source}: SAGA-SR trains with diffusion_objective 'rectified_flow', got {objective!r}")
    dit = diffusion.get("config", {})
    concat_ids = diffusion.get("input_concat_ids", [])
    if concat_ids and dit.get("input_concat_dim", 0) != model.get("io_channels"):
        raise ConfigError(f"{source}: model.diffusion.config.input_concat_dim must equal model.io_channels "
                          f"({model.get('io_channels')}) for the low-res latent, got {dit.get('input_concat_dim')}")
    global_ids = diffusion.get("global_cond_ids", [])
    cond_dim = model.get("conditioning", {}).get("cond_dim")
    if global_ids and dit.get("global_cond_dim") != cond_dim * len(global_ids):
        raise ConfigError(f"{source}: model.diffusion.config.global_cond_dim must be cond_dim x "
                          f"{len(global_ids)} = {cond_dim * len(global_ids)}, got {dit.get('global_cond_dim')}")
    if cond_dim is not None and dit.get("cond_token_dim") not in (None, cond_dim):
        raise ConfigError(f"{source}: model.diffusion.config.cond_token_dim must equal conditioning.cond_dim ({cond_dim})")
    if diffusion.get("type", "dit") == "dit":
        check_dit_config(dit, source)
    effective = config["training"].get("effective_batch_size")
    if effective is not None and (not isinstance(effective, int) or isinstance(effective, bool) or effective < 1):
        raise ConfigError(f"{source}: training.effective_batch_size must be a positive integer, got {effective!r}")
    check_saga_sr_block(config.get("saga_sr", {}), source)


def dit_config_keys() -> set[str]:
    """What the official DiT accepts: DiffusionTransformer's arguments and those its
    ContinuousTransformer and TransformerBlocks take through ``**kwargs``."""
    import inspect

    from stable_audio_tools.models.dit import DiffusionTransformer
    from stable_audio_tools.models.transformer import ContinuousTransformer, TransformerBlock

    keys: set[str] = set()
    for cls in (DiffusionTransformer, ContinuousTransformer, TransformerBlock):
        keys |= {name for name, p in inspect.signature(cls.__init__).parameters.items()
                 if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    # set by DiffusionTransformer / ContinuousTransformer themselves, not by the config
    return keys - {"dim", "dim_in", "dim_out", "dim_heads", "cross_attend", "dim_context", "layer_ix",
                   "diffusion_objective"}


def check_dit_config(dit: dict, source: str) -> None:
    """Unknown keys and widths the official DiT cannot build with, caught when the config is read."""
    known = sorted(dit_config_keys())
    for key in dit:
        if key not in known:
            raise ConfigError(f"{source}: model.diffusion.config has no option {key!r}{_suggest(key, known)}; "
                              f"the official DiT takes: {', '.join(known)}")
    embed_dim, heads = dit.get("embed_dim", 768), dit.get("num_heads", 8)
    if not isinstance(embed_dim, int) or not isinstance(heads, int) or embed_dim < 1 or heads < 1:
        raise ConfigError(f"{source}: model.diffusion.config embed_dim and num_heads must be positive integers, "
                          f"got {embed_dim!r} and {heads!r}")
    if embed_dim % heads:
        fits = [h for h in range(1, min(embed_dim, 64) + 1) if embed_dim % h == 0]
        raise ConfigError(f"{source}: model.diffusion.config.embed_dim {embed_dim} is not divisible by num_heads "
                          f"{heads} (the official DiT uses heads of embed_dim // num_heads channels); "
                          f"num_heads that fit: {fits}")


def check_saga_sr_block(block: dict, source: str) -> None:
    """The model config's ``saga_sr`` block (inference defaults): a typo is an error, not a silent default."""
    import dataclasses

    from .inference import UpsampleSettings  # here: inference imports this module

    if not isinstance(block, dict):
        raise ConfigError(f"{source}: \"saga_sr\" must be an object, got {type(block).__name__}")
    known = [f.name for f in dataclasses.fields(UpsampleSettings)] + ["caption_model"]
    for key in block:
        if key not in known:
            raise ConfigError(f"{source}: saga_sr has no option {key!r}{_suggest(key, known)}; known: {', '.join(known)}")


def resolve_metadata_module(value: str, source: str) -> str:
    """A ``custom_metadata_module`` may be a file path or a module name; return a file path."""
    if os.path.isfile(value):
        return value
    if not value.endswith(".py") and "/" not in value:
        try:
            spec = importlib.util.find_spec(value)
        except ModuleNotFoundError:
            spec = None
        if spec is not None and spec.origin:
            return spec.origin
    raise ConfigError(f"{source}: custom_metadata_module {value!r} is neither a file nor an importable module; "
                      "use 'saga_sr_plugin.metadata' for SAGA-SR's data simulation")


METADATA_MODULES = {"audio_dir": "saga_sr_plugin.metadata", "pre_encoded": "saga_sr_plugin.pre_encoded"}


def resolve_dataset_config(config: dict, source: str, pre_encoded: bool | None = None) -> dict:
    """Copy of the dataset config with metadata modules as file paths and folders checked.

    ``pre_encoded`` is the model config's ``training.pre_encoded``: the dataset type must match it.
    """
    kind = config.get("dataset_type")
    if kind not in METADATA_MODULES:
        raise ConfigError(f"{source}: SAGA-SR trains on the 'audio_dir' dataset type (simulated on the fly) or "
                          f"'pre_encoded' (saga-sr pre-encode), got {kind!r}")
    if pre_encoded is not None and (kind == "pre_encoded") != pre_encoded:
        raise ConfigError(f"{source}: dataset_type {kind!r} but the model config has training.pre_encoded "
                          f"{str(pre_encoded).lower()}; pre-encoded data needs \"pre_encoded\": true (and raw audio "
                          "needs it false)")
    module_name = METADATA_MODULES[kind]
    datasets = []
    for entry in config.get("datasets", []):
        entry = dict(entry)
        if not os.path.isdir(entry.get("path", "")):
            raise ConfigError(f"{source}: dataset {entry.get('id')!r}: folder not found: {entry.get('path')!r}")
        module = entry.get("custom_metadata_module")
        if module is None:
            raise ConfigError(f"{source}: dataset {entry.get('id')!r} has no custom_metadata_module; SAGA-SR needs "
                              f"\"custom_metadata_module\": \"{module_name}\" for its low-res input")
        entry["custom_metadata_module"] = resolve_metadata_module(module, source)
        datasets.append(entry)
    if not datasets:
        raise ConfigError(f"{source}: 'datasets' is empty")
    return {**config, "datasets": datasets}


def _absolute_if_local(value: str, bases: list[Path], want_dir: bool) -> str:
    if not value or os.path.isabs(os.path.expanduser(value)):
        return os.path.expanduser(value) if value else value
    for base in bases:
        candidate = (base / value).resolve()
        if (candidate.is_dir() if want_dir else candidate.is_file()):
            return str(candidate)
    return value  # not local: a hub name, checked where it is loaded


def resolve_local_paths(config: dict, base: str | os.PathLike = ".") -> dict:
    """A copy of a model config whose relative local paths (the ``saga_t5`` folder, the VAE
    weights) are absolute: looked up against ``base`` (the config file's folder), then the
    working directory. Names that exist in neither place are left as they are (hub names)."""
    config = copy.deepcopy(config)
    bases = [Path(base).resolve(), Path.cwd()]
    model = config.get("model", {})
    for entry in model.get("conditioning", {}).get("configs", []):
        options = entry.get("config", {})
        if entry.get("type") == "saga_t5" and isinstance(options.get("t5_model_name"), str):
            options["t5_model_name"] = _absolute_if_local(options["t5_model_name"], bases, want_dir=True)
    pretransform = model.get("pretransform", {})
    if isinstance(pretransform.get("pretransform_ckpt_path"), str):
        pretransform["pretransform_ckpt_path"] = _absolute_if_local(pretransform["pretransform_ckpt_path"], bases,
                                                                    want_dir=False)
    return config
