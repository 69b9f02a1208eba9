"""SAGA-SR as a thin plugin over stable-audio-tools.

Importing the package registers the SAGA-SR conditioner types with the official
model factory; nothing else is needed before ``create_model_from_config``.
"""
from .registry import register as _register

_register()

__version__ = "0.1.0"
