"""Reading and checking JSON configs, so typos fail early with the file and the fix named."""
from __future__ import annotations

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


def resolve_dataset_config(config: dict, source: str) -> dict:
    """Copy of the dataset config with metadata modules as file paths and folders checked."""
    if config.get("dataset_type") != "audio_dir":
        raise ConfigError(f"{source}: the SAGA-SR data simulation runs on the 'audio_dir' dataset type, "
                          f"got {config.get('dataset_type')!r}")
    datasets = []
    for entry in config.get("datasets", []):
        entry = dict(entry)
        if not os.path.isdir(entry.get("path", "")):
            raise ConfigError(f"{source}: dataset {entry.get('id')!r}: folder not found: {entry.get('path')!r}")
        module = entry.get("custom_metadata_module")
        if module is None:
            raise ConfigError(f"{source}: dataset {entry.get('id')!r} has no custom_metadata_module; SAGA-SR needs "
                              "\"custom_metadata_module\": \"saga_sr_plugin.metadata\" to simulate the low-res input")
        entry["custom_metadata_module"] = resolve_metadata_module(module, source)
        datasets.append(entry)
    if not datasets:
        raise ConfigError(f"{source}: 'datasets' is empty")
    return {**config, "datasets": datasets}
