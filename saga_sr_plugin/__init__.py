"""SAGA-SR as a thin plugin over stable-audio-tools.

Importing the package registers the SAGA-SR conditioner and pretransform types with
the official model factory (``models.registry``) and applies the small compatibility
repairs the installed stable-audio-tools release needs (``compat``, the one module where
releases 0.0.19 and 0.0.20 differ);
nothing else is needed before ``create_model_from_config``.

Layers, bottom to top (imports point down only; ``pyproject.toml``'s import-linter
contract checks it): ``models`` | ``data`` -> ``inference`` | ``captioning`` ->
``evaluation`` -> ``training`` -> ``interface``. ``configs``, ``atomic``, ``notices`` and ``compat``
are small utilities every layer may use. docs/design.md maps each part onto the paper and the
official code.
"""
from .notices import install as _quiet_known_notices

_quiet_known_notices()  # before anything imports stable-audio-tools' transformer

from .models.registry import register as _register  # noqa: E402
from .compat import install as _install_compat  # noqa: E402

_install_compat()
_register()

__version__ = "0.1.0"
