"""SAGA-SR as a thin plugin over stable-audio-tools.

Importing the package registers the SAGA-SR conditioner types with the official
model factory and applies the small compatibility repairs stable-audio-tools 0.0.19
needs on a current stack (``compat``); nothing else is needed before
``create_model_from_config``.
"""
from .compat import install as _install_compat
from .registry import register as _register

_install_compat()
_register()

__version__ = "0.1.0"
