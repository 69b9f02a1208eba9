"""Make the plugin's conditioner (and pretransform) types buildable from JSON by the official factory.

stable-audio-tools builds conditioners in a hard-coded if/elif
(``create_multi_conditioner_from_conditioning_config``) that other modules import by
name. :func:`register` swaps that name, in every module that holds it, for a
function that builds the plugin's types and hands everything else to the original.
The same is done for ``create_pretransform_from_config`` (the plugin's ``saga_scaled``
latent scale). Idempotent: importing ``saga_sr_plugin`` calls it once; calling it
again is a no-op.
"""
from __future__ import annotations

import importlib
import typing as tp

from stable_audio_tools.models import conditioners as sat_conditioners
from stable_audio_tools.models.conditioners import MultiConditioner

from .conditioners import PLUGIN_CONDITIONERS
from .pretransforms import PLUGIN_PRETRANSFORMS

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

PRETRANSFORM_FACTORY_NAME = "create_pretransform_from_config"
PRETRANSFORM_MODULES = (
    "stable_audio_tools.models.factory",
    "stable_audio_tools.models.diffusion",
    "stable_audio_tools.models.conditioners",
    "stable_audio_tools.models.autoencoders",
    "stable_audio_tools.models.lm",
)
_original_pretransform_factory: tp.Callable[..., tp.Any] | None = None


def create_pretransform(config: dict[str, tp.Any], sample_rate: int):
    """Plugin pretransform types here, every other type by the official factory."""
    assert _original_pretransform_factory is not None, "saga_sr_plugin.models.registry.register() was not called"
    builder = PLUGIN_PRETRANSFORMS.get(config.get("type"))
    if builder is None:
        return _original_pretransform_factory(config, sample_rate)
    return builder(config.get("config", {}), sample_rate, create_pretransform)


def known_types() -> list[str]:
    return sorted(set(OFFICIAL_TYPES) | set(PLUGIN_CONDITIONERS))


def create_multi_conditioner(config: dict[str, tp.Any], pretransform=None) -> MultiConditioner:
    """Plugin types built here, official types by the official factory, order kept."""
    assert _original_factory is not None, "saga_sr_plugin.models.registry.register() was not called"
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
    """Install the plugin factories wherever the official ones are imported by name."""
    global _original_factory, _original_pretransform_factory
    if _original_factory is None:
        _original_factory = getattr(sat_conditioners, FACTORY_NAME)
    if _original_pretransform_factory is None:
        from stable_audio_tools.models import factory as sat_factory
        _original_pretransform_factory = getattr(sat_factory, PRETRANSFORM_FACTORY_NAME)
    _install(PATCHED_MODULES, FACTORY_NAME, create_multi_conditioner)
    _install(PRETRANSFORM_MODULES, PRETRANSFORM_FACTORY_NAME, create_pretransform)


def _install(module_names: tp.Iterable[str], name: str, function: tp.Callable) -> None:
    for module in _importable(module_names):
        if hasattr(module, name):
            setattr(module, name, function)


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
    return (all(getattr(m, FACTORY_NAME, None) is create_multi_conditioner for m in _importable(PATCHED_MODULES))
            and all(getattr(m, PRETRANSFORM_FACTORY_NAME, None) is create_pretransform
                    for m in _importable(PRETRANSFORM_MODULES)))
