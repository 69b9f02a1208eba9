"""SAGA-SR as a thin plugin over stable-audio-tools.

Importing the package registers the SAGA-SR conditioner and pretransform types with
the official model factory (``models.registry``) and applies the small compatibility
repairs the installed stable-audio-tools release needs (``compat``): at once if
stable-audio-tools is already imported, otherwise as soon as anything imports it
(``on_import``), so ``saga-sr --help`` and the settings imports no torch. Nothing else is
needed before ``create_model_from_config``.

The entry points a user needs are importable from here (loaded on first use)::

    from saga_sr_plugin import Upsampler, evaluate, visqol
    upsampler = Upsampler.load("model.json", "model.safetensors")
    result = upsampler.upsample_file("speech_8k.wav", "speech_8k_saga_sr.wav")
    print(visqol(result.audio, reference))   # against a full-band reference at 44.1 kHz

Layers, bottom to top (imports point down only; ``pyproject.toml``'s import-linter
contract checks it): ``models`` | ``data`` -> ``inference`` | ``captioning`` ->
``evaluation`` -> ``training`` -> ``interface``. ``configs``, ``atomic``, ``notices``, ``on_import``
and ``compat`` are small utilities every layer may use. docs/design.md maps each part onto the
paper and the official code.
"""
from __future__ import annotations

import importlib
import typing as tp

from .notices import known_lines_dropped
from .on_import import call_after_import

__version__ = "0.1.0"

# name -> the module that defines it (relative to the package)
PUBLIC = {
    "Upsampler": "inference.upsampler",
    "UpsampleResult": "inference.upsampler",
    "UpsampleSettings": "inference.settings",
    "evaluate": "evaluation.protocol",
    "simulate_input": "evaluation.protocol",
    "lsd": "evaluation.metrics",
    "visqol": "evaluation.visqol",
    "Captioner": "captioning.qwen2_audio",
    "caption_folder": "captioning.qwen2_audio",
    "load_exported_model": "models.loading",
    "export_checkpoint": "training.export",
    "read_audio": "data.audio_io",
    "write_audio": "data.audio_io",
}
__all__ = sorted(PUBLIC)


def _activate() -> None:
    """Register with the official factory; runs once, right after ``stable_audio_tools`` is imported."""
    from .notices import install as quiet_known_notices

    quiet_known_notices()   # before anything else imports stable-audio-tools' transformer
    from .compat import install as install_compat
    from .models.registry import register

    install_compat()
    register()


call_after_import("stable_audio_tools", _activate, around=known_lines_dropped)


def __getattr__(name: str) -> tp.Any:
    if name in PUBLIC:
        value = getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
