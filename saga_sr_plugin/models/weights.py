"""Reading checkpoints and weights safely and fitting them strictly.

Every read is weights-only (no code from the file runs) and a file that does not fit
the model built from a config is an error naming both files, never a partial load.
"""
from __future__ import annotations

import os
import pickle
import re
import typing as tp

import torch
from torch import nn
from stable_audio_tools.models.utils import load_ckpt_state_dict


class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be used; the message names the file and why."""


class CheckpointMismatchError(CheckpointError):
    """Weights that do not fit the model built from the given config."""


# Globals a checkpoint of this package may ask the unpickler for, beyond torch's weights-only set
# (tensors, dtypes, OrderedDict, plain containers). Measured on train_entry checkpoints of both
# stacks (torch.serialization.get_unsafe_globals_in_checkpoint): none. Anything else is refused.
CHECKPOINT_GLOBALS: tuple[tp.Any, ...] = ()

UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, AttributeError)


def unreadable_error(path: str | os.PathLike, err: BaseException) -> CheckpointError:
    wanted = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err))))
    if isinstance(err, pickle.UnpicklingError) and (wanted or "Unsupported global" in str(err)):
        wanted = wanted or ["an object outside the weights-only set"]
        return CheckpointError(
            f"{path}: refused to load: the file asks to import {', '.join(wanted)}, and loading a checkpoint must not "
            "run code from it (a checkpoint of this package holds only tensors and plain data). Re-save it with "
            "tensors only, or export it with the stable-audio-tools code that made it.")
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, pickle.UnpicklingError):  # torch's weights-only message: the pickler's own words last
        found = re.search(r"WeightsUnpickler error: ([^\n]+)", str(err))
        reason = found.group(1).strip() if found else "not a pickle"
    return CheckpointError(f"{path}: not a readable checkpoint ({reason}); the file may be truncated (an interrupted "
                           "copy or save) or not a torch/safetensors file: save or copy it again")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A torch/Lightning checkpoint, unpickled with ``weights_only=True``: no code from the file runs."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_GLOBALS)):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, *UNREADABLE) as err:
        raise unreadable_error(path, err) from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    return checkpoint


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict through the official ``load_ckpt_state_dict`` (.safetensors, or a .ckpt's
    ``state_dict`` loaded weights-only), with a corrupt or truncated file named in one line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights not found: {path}")
    try:
        return load_ckpt_state_dict(str(path))
    except (pickle.UnpicklingError, *UNREADABLE) as err:
        raise unreadable_error(path, err) from err
    except Exception as err:  # safetensors raises its own SafetensorError (a plain Exception subclass)
        if type(err).__name__ == "SafetensorError":
            raise unreadable_error(path, err) from err
        raise


def check_state_dict_fits(module: nn.Module, state_dict: dict, weights: str, config: str) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {items[0]})")
        raise CheckpointMismatchError(
            f"weights {weights} do not fit the model built from {config}: {'; '.join(parts)}. "
            "Use the model config the checkpoint was trained with.")
