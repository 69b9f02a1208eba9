"""Catch device mistakes on a CPU-only machine.

On CPU every tensor lands on the same device, so a window or a buffer created without
``device=`` works here and crashes on CUDA (``torch.istft``: "input and window must be
on the same device"). :class:`FactoryDeviceAudit` is a ``TorchFunctionMode`` that
records every tensor factory called *from the plugin's own code* without an explicit
``device``: each one is a tensor that would stay on the CPU while the data is on a GPU.
Tensors meant to live on the CPU say so (``device="cpu"``).
"""
from __future__ import annotations

import sys

import torch
from torch.overrides import TorchFunctionMode

FACTORIES = {
    torch.hann_window, torch.hamming_window, torch.blackman_window, torch.kaiser_window, torch.bartlett_window,
    torch.zeros, torch.ones, torch.full, torch.empty, torch.eye, torch.arange, torch.linspace, torch.logspace,
    torch.rand, torch.randn, torch.randint, torch.randperm, torch.tensor,
}


class FactoryDeviceAudit(TorchFunctionMode):
    """Records ``module:line function`` for plugin-code factory calls without ``device=``."""

    def __init__(self, package: str = "saga_sr_plugin"):
        super().__init__()
        self.package = package
        self.violations: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            caller = sys._getframe(1)
            module = caller.f_globals.get("__name__", "")
            if module.split(".")[0] == self.package:
                self.violations.append(f"{module}:{caller.f_lineno} {getattr(func, '__name__', func)}")
        return func(*args, **kwargs)
