"""Make the plugin's conditioner types buildable from JSON by the official factory.

stable-audio-tools builds conditioners in a hard-coded if/elif
(``create_multi_conditioner_from_conditioning_config``) that other modules import by
name. :func:`register` swaps that name, in every module that holds it, for a
function that builds the plugin's types and hands everything else to the original.
Idempotent: importing ``saga_sr_plugin`` calls it once; calling it again is a no-op.
"""
from __future__ import annotations

import importlib
import typing as tp

from stable_audio_tools.models import conditioners as sat_conditioners
from stable_audio_tools.models.conditioners import MultiConditioner

from .conditioners import PLUGIN_CONDITIONERS

FACTORY_NAME = "create_multi_conditioner_from_conditioning_config"
# Modules of stable-audio-tools 0.0.19 that import the factory by name.
PATCHED_MODULES = (
    "stable_audio_tools.models.conditioners",
    "stable_audio_tools.models.diffusion",
    "stable_audio_tools.models.lm",
)
# The types the official factory of 0.0.19 knows, for error messages only.
OFFICIAL_TYPES = ("t5", "clap_text", "clap_audio", "int", "number", "list", "phoneme", "lut",
                  "pretransform", "source_mix")

_original_factory: tp.Callable[..., MultiConditioner] | None = None


def known_types() -> list[str]:
    return sorted(set(OFFICIAL_TYPES) | set(PLUGIN_CONDITIONERS))


def create_multi_conditioner(config: dict[str, tp.Any], pretransform=None) -> MultiConditioner:
    """Plugin types built here, official types by the official factory, order kept."""
    assert _original_factory is not None, "saga_sr_plugin.registry.register() was not called"
    entries = config.get("configs", [])
    for entry in entries:
        if "type" not in entry or "id" not in entry:
            raise ValueError(f"conditioning entry {entry!r} needs an 'id' and a 'type'; known types: {known_types()}")
    official = [e for e in entries if e["type"] not in PLUGIN_CONDITIONERS]
    try:
        built = _original_factory({**config, "configs": official}, pretransform=pretransform)
    except ValueError as err:
        if "Unknown conditioner type" in str(err):
            raise ValueError(f"{err}; known types: {known_types()}") from err
        raise

    conditioners = {}
    for entry in entries:
        if entry["type"] in PLUGIN_CONDITIONERS:
            options = {"output_dim": config["cond_dim"], **entry.get("config", {})}
            try:
                conditioners[entry["id"]] = PLUGIN_CONDITIONERS[entry["type"]](options, pretransform)
            except TypeError as err:
                raise TypeError(f"conditioner {entry['id']!r} (type {entry['type']!r}): bad config option: {err}") from err
        else:
            conditioners[entry["id"]] = built.conditioners[entry["id"]]
    return MultiConditioner(conditioners, default_keys=built.default_keys, pre_encoded_keys=built.pre_encoded_keys)


def register() -> None:
    """Install :func:`create_multi_conditioner` wherever the official factory is imported."""
    global _original_factory
    if _original_factory is None:
        _original_factory = getattr(sat_conditioners, FACTORY_NAME)
    for module in _importable(PATCHED_MODULES):
        if hasattr(module, FACTORY_NAME):
            setattr(module, FACTORY_NAME, create_multi_conditioner)


def _importable(names: tp.Iterable[str]) -> list:
    """The modules that import here (``models.lm`` needs the optional x-transformers)."""
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return modules


def is_registered() -> bool:
    return all(getattr(m, FACTORY_NAME, None) is create_multi_conditioner for m in _importable(PATCHED_MODULES))
