"""stable-audio-tools 0.0.19 on a current stack, from the plugin side (nothing vendored).

The 0.0.19 release (the newest on PyPI) predates two changes that break it on a
current PyTorch; both are repaired here by swapping one name in the official module,
so the official code keeps doing the work:

- ``InverseLR`` (the paper's scheduler) passes ``verbose`` to ``LRScheduler.__init__``,
  which torch 2.7 removed. :class:`InverseLR` slots a base class into the MRO that
  drops that argument; the official ``__init__``, ``get_lr`` and closed form are
  inherited unchanged. Installed only where torch no longer takes ``verbose``.
- The official ``audio_dir`` dataset reads files with ``torchaudio.load``; from
  torchaudio 2.9 that needs TorchCodec and a system FFmpeg. The dataset module's
  ``torchaudio`` is replaced by :class:`_SoundfileTorchaudio`, which is torchaudio with
  ``load`` done by soundfile (libsndfile: wav, flac, ogg/vorbis/opus, mp3, aiff). The
  official ``load_file`` (and its resampling) still runs. Installed on every stack,
  so both read files the same way.

:func:`install` is idempotent; importing ``saga_sr_plugin`` calls it.
"""
from __future__ import annotations

import importlib
import inspect
import os
import typing as tp

import numpy as np
import soundfile as sf
import torch
from torch.optim.lr_scheduler import _LRScheduler

DATASET_MODULE = "stable_audio_tools.data.dataset"
SCHEDULER_MODULE = "stable_audio_tools.training.utils"


def scheduler_takes_verbose() -> bool:
    return "verbose" in inspect.signature(torch.optim.lr_scheduler.LRScheduler.__init__).parameters


class _LRSchedulerWithoutVerbose(_LRScheduler):
    """Accepts the ``verbose`` argument torch >= 2.7 no longer has, and drops it."""

    def __init__(self, optimizer: torch.optim.Optimizer, last_epoch: int = -1, verbose: tp.Any = None):
        super().__init__(optimizer, last_epoch)


def _compat_inverse_lr(official: type) -> type:
    # MRO: InverseLR, official InverseLR, _LRSchedulerWithoutVerbose, _LRScheduler, ...: the official
    # ``super().__init__(optimizer, last_epoch, verbose)`` lands in the class that drops ``verbose``.
    return type("InverseLR", (official, _LRSchedulerWithoutVerbose),
                {"__doc__": "stable-audio-tools' InverseLR on a torch without LRScheduler(verbose).",
                 "__module__": __name__, "_saga_official": official})


def soundfile_load(uri: tp.Any, *args: tp.Any, **kwargs: tp.Any) -> tuple[torch.Tensor, int]:
    """``torchaudio.load``'s contract, ``(float32 (channels, frames), rate)``, read by soundfile.

    ``uri`` is a path or a file-like object (the official webdataset decoder passes
    bytes in a ``BytesIO``); torchaudio's ``format``/``backend`` options are not needed.
    """
    try:
        data, rate = sf.read(uri if hasattr(uri, "read") else os.fspath(uri), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        name = uri if not hasattr(uri, "read") else "<in-memory audio>"
        raise RuntimeError(f"{name}: cannot decode audio with soundfile ({err})") from err
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


class _SoundfileTorchaudio:
    """The ``torchaudio`` module with ``load`` replaced by :func:`soundfile_load`."""

    load = staticmethod(soundfile_load)

    def __init__(self, torchaudio: tp.Any):
        self._torchaudio = torchaudio

    def __getattr__(self, name: str) -> tp.Any:
        return getattr(self._torchaudio, name)


def install() -> None:
    """Apply the repairs this stack needs to the official modules; safe to call repeatedly."""
    dataset = importlib.import_module(DATASET_MODULE)
    if not isinstance(dataset.torchaudio, _SoundfileTorchaudio):
        dataset.torchaudio = _SoundfileTorchaudio(dataset.torchaudio)
    if not scheduler_takes_verbose():
        utils = importlib.import_module(SCHEDULER_MODULE)
        if not hasattr(utils.InverseLR, "_saga_official"):
            utils.InverseLR = _compat_inverse_lr(utils.InverseLR)
