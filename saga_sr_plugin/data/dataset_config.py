"""The dataset config: the official ``audio_dir`` / ``wds`` / ``pre_encoded`` types with SAGA-SR's metadata modules.

The official datasets load ``custom_metadata_module`` from a file path; a config may name
the module instead, and :func:`resolve_dataset_config` turns it into the file.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from ..configs import ConfigError

log = logging.getLogger("saga_sr.data")


def resolve_metadata_module(value: str, source: str) -> str:
    """A ``custom_metadata_module`` may be a file path or a module name; return a file path."""
    if os.path.isfile(value):
        return value
    legacy_file = Path(value)
    if legacy_file.parent.name == "saga_sr_plugin" and legacy_file.stem in ("metadata", "pre_encoded"):
        value = f"saga_sr_plugin.{legacy_file.stem}"  # a file path into the flat layout of 0.1.0
    if value in LEGACY_METADATA_MODULES:
        log.info("%s: custom_metadata_module %r is now %r (the old name still works; update the config to "
                 "silence this note)", source, value, LEGACY_METADATA_MODULES[value])
        value = LEGACY_METADATA_MODULES[value]
    if not value.endswith(".py") and "/" not in value:
        try:
            spec = importlib.util.find_spec(value)
        except ModuleNotFoundError:
            spec = None
        if spec is not None and spec.origin:
            return spec.origin
    raise ConfigError(f"{source}: custom_metadata_module {value!r} is neither a file nor an importable module; "
                      "use 'saga_sr_plugin.data.metadata' for SAGA-SR's data simulation")


METADATA_MODULES = {"audio_dir": "saga_sr_plugin.data.metadata", "wds": "saga_sr_plugin.data.metadata",
                    "s3": "saga_sr_plugin.data.metadata", "pre_encoded": "saga_sr_plugin.data.pre_encoded"}
SHARD_TYPES = ("wds", "s3")  # the official WebDataset loader ("s3" is its older name)
# Names written by versions before the package was split by concern (0.1.0's flat layout):
# dataset configs that hold them keep loading, with a note.
LEGACY_METADATA_MODULES = {"saga_sr_plugin.metadata": "saga_sr_plugin.data.metadata",
                           "saga_sr_plugin.pre_encoded": "saga_sr_plugin.data.pre_encoded"}


def resolve_dataset_config(config: dict, source: str, pre_encoded: bool | None = None) -> dict:
    """Copy of the dataset config with metadata modules as file paths and folders checked.

    ``pre_encoded`` is the model config's ``training.pre_encoded``: the dataset type must match it.
    """
    kind = config.get("dataset_type")
    if kind not in METADATA_MODULES:
        raise ConfigError(f"{source}: SAGA-SR trains on the 'audio_dir' dataset type (simulated on the fly), 'wds' "
                          f"(WebDataset shards of saga-sr shard) or 'pre_encoded' (saga-sr pre-encode), got {kind!r}")
    if kind in SHARD_TYPES and config.get("pre_encoded"):
        raise ConfigError(f"{source}: pre-encoded WebDataset shards are not SAGA-SR data (they lack z_l); use "
                          "saga-sr pre-encode's 'pre_encoded' folders, or audio shards from saga-sr shard")
    if kind in SHARD_TYPES and config.get("resampled_shards") is False and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise ConfigError(f"{source}: \"resampled_shards\": false on {os.environ['WORLD_SIZE']} processes: the official "
                          "WebDataset pipeline does not split shards by rank, so every rank would read the same "
                          "samples; leave resampled_shards at its default (true), which draws shards per rank")
    if pre_encoded is not None and (kind == "pre_encoded") != pre_encoded:
        raise ConfigError(f"{source}: dataset_type {kind!r} but the model config has training.pre_encoded "
                          f"{str(pre_encoded).lower()}; pre-encoded data needs \"pre_encoded\": true (and raw audio "
                          "needs it false)")
    module_name = METADATA_MODULES[kind]
    datasets = []
    for entry in config.get("datasets", []):
        entry = dict(entry)
        if kind in SHARD_TYPES and "s3_path" in entry:
            pass  # read by the official loader from S3; nothing to check here
        elif kind in SHARD_TYPES and not (os.path.isdir(entry.get("path", ""))
                                          and any(Path(entry["path"]).rglob("*.tar"))):
            raise ConfigError(f"{source}: dataset {entry.get('id')!r}: no .tar shards under {entry.get('path')!r} "
                              "(write them with saga-sr shard)")
        elif not os.path.isdir(entry.get("path", "")):
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
