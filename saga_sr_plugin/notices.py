"""Known-harmless notices of stable-audio-tools 0.0.19 and 0.0.20, silenced narrowly at import; every other one stays.

- ``models/transformer.py`` prints "No module named 'flash_attn'" and "flash_attn not installed,
  disabling Flash Attention" at import (0.0.20 also "flash_attn varlen/bert_padding not available,
  disabling varlen attention"): the official DiT then uses PyTorch's own attention
  (SDPA), as it does on every machine without the optional flash-attn wheel. These
  lines are dropped; anything else printed during that import is printed as it was.
- The official T5 conditioner enters ``torch.cuda.amp.autocast`` on every call: a
  FutureWarning (the API is deprecated) on current torch and, on a machine without CUDA,
  a UserWarning that it disables itself. Both are filtered by their exact text; the
  CUDA one only where CUDA is absent, where it is always true and never actionable.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import sys
import typing as tp
import warnings

FLASH_ATTN_LINES = ("No module named 'flash_attn'", "flash_attn not installed, disabling Flash Attention",
                    # 0.0.20's transformer, without the same optional wheel
                    "flash_attn varlen/bert_padding not available, disabling varlen attention")
NOTICE_MODULE = "stable_audio_tools.models.transformer"


@contextlib.contextmanager
def known_lines_dropped(dropped: tuple[str, ...] = FLASH_ATTN_LINES) -> tp.Iterator[None]:
    """Within the block, the exact ``dropped`` lines printed are dropped; every other line is printed."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        kept = [line for line in captured.getvalue().splitlines() if line.strip() not in dropped]
        if kept:
            print("\n".join(kept))


def import_quietly(module: str = NOTICE_MODULE, dropped: tuple[str, ...] = FLASH_ATTN_LINES) -> None:
    """Import ``module`` (once), dropping the exact ``dropped`` lines it prints."""
    if module in sys.modules:
        return
    with known_lines_dropped(dropped):
        importlib.import_module(module)


def filter_known_warnings(cuda_available: bool) -> None:
    warnings.filterwarnings("ignore", message=r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated",
                            category=FutureWarning)
    if not cuda_available:
        warnings.filterwarnings("ignore", message=r"User provided device_type of 'cuda', but CUDA is not available",
                                category=UserWarning)


def install() -> None:
    import torch

    import_quietly()
    filter_known_warnings(torch.cuda.is_available())
