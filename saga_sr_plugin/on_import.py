"""Run a function right after a module is first imported (or now, if it already is).

Why: ``import saga_sr_plugin`` must register the plugin's types with stable-audio-tools (so the
official factory builds SAGA-SR from JSON), yet ``saga-sr --help`` and the settings the CLI is
built from must not import torch (16 s here). So the package registers when
``stable_audio_tools`` itself is imported, by whoever imports it first: the user's
``from stable_audio_tools.models.factory import ...`` imports the ``stable_audio_tools`` package
first, and the registration runs once that package has finished initialising, before the
user's line goes on.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import sys
import typing as tp


class _ThenCall(importlib.abc.Loader):
    """The module's own loader (within ``around``), then ``callback``."""

    def __init__(self, loader: importlib.abc.Loader, callback: tp.Callable[[], None],
                 around: tp.Callable[[], tp.ContextManager] = contextlib.nullcontext):
        self._loader, self._callback, self._around = loader, callback, around

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with self._around():
            self._loader.exec_module(module)
        self._callback()

    def __getattr__(self, name: str) -> tp.Any:   # resources, is_package, get_code: the module's own loader
        return getattr(self._loader, name)


class _Watch(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, callback: tp.Callable[[], None], around: tp.Callable[[], tp.ContextManager]):
        self.name, self.callback, self.around = name, callback, around

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)   # one shot; the other finders (an editable install's included) locate it
        spec = next((s for s in (f.find_spec(fullname, path, target) for f in sys.meta_path
                                 if hasattr(f, "find_spec")) if s is not None), None)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenCall(spec.loader, self.callback, self.around)
        return spec


def call_after_import(name: str, callback: tp.Callable[[], None],
                      around: tp.Callable[[], tp.ContextManager] = contextlib.nullcontext) -> None:
    """``callback()`` once the top-level module ``name`` has been imported: now, or when it first is
    (its import then runs within ``around()``: what it prints can be filtered)."""
    if name in sys.modules:
        callback()
    elif not any(isinstance(f, _Watch) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _Watch(name, callback, around))
