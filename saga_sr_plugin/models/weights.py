"""Reading checkpoints and weights safely and fitting them strictly.

Every read is weights-only (no code from the file runs) and a file that does not fit
the model built from a config is an error naming both files, never a partial load.
Exports carry the model-defining part of the config that made them (:func:`model_identity`),
so weights from another config are refused even where their shapes happen to fit.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import pickle
import re
import typing as tp

import torch
from torch import nn
from stable_audio_tools.models.utils import load_ckpt_state_dict


log = logging.getLogger("saga_sr.weights")


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


def check_readable(path: str | os.PathLike) -> None:
    """A file this user may not read is a permission problem, said as one (not "missing" or "truncated")."""
    if not os.access(path, os.R_OK):
        import pwd
        import stat

        info = os.stat(path)
        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = str(info.st_uid)
        raise CheckpointError(f"{path}: permission denied (mode {stat.filemode(info.st_mode)}, owner {owner}): ask its "
                              "owner to make it readable (chmod a+r), or copy it to a place you can read")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A torch/Lightning checkpoint, unpickled with ``weights_only=True``: no code from the file runs."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    check_readable(path)
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
    check_readable(path)
    try:
        return load_ckpt_state_dict(str(path))
    except (pickle.UnpicklingError, *UNREADABLE) as err:
        raise unreadable_error(path, err) from err
    except Exception as err:  # safetensors raises its own SafetensorError (a plain Exception subclass)
        if type(err).__name__ == "SafetensorError":
            raise unreadable_error(path, err) from err
        raise


# ---------------------------------------------------------------- which config made the weights
# Keys of a model config that say where a file lies, not what the model is: only the last path part counts.
LOCATION_KEYS = ("t5_model_name", "pretransform_ckpt_path")
# Keys that act only while training (the ARC configs set the low-res dropout to 0 for the same model).
TRAINING_ONLY_KEYS = ("dropout_prob",)
IDENTITY_KEY = "saga_sr.model_identity"     # safetensors metadata / checkpoint key: the identity as JSON
SOURCE_KEY = "saga_sr.model_config"         # the config file the export was made with
FINGERPRINT_KEY = "saga_sr.fingerprint"


def model_identity(model_config: dict) -> dict:
    """The part of a model config that defines the weights: the ``model`` block, rate and channels,
    with file locations reduced to their last part and training-only keys left out."""
    def clean(node: tp.Any) -> tp.Any:
        if isinstance(node, dict):
            return {k: (os.path.basename(os.path.normpath(v)) if k in LOCATION_KEYS and isinstance(v, str) else clean(v))
                    for k, v in node.items() if k not in TRAINING_ONLY_KEYS}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node
    return clean({"model_type": model_config.get("model_type"), "sample_rate": model_config.get("sample_rate"),
                  "audio_channels": model_config.get("audio_channels", 2),
                  "model": copy.deepcopy(model_config.get("model", {}))})


def fingerprint(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def identity_metadata(model_config: dict, source: str | os.PathLike | None) -> dict[str, str]:
    """What an export stores beside its tensors (safetensors metadata: strings only)."""
    identity = model_identity(model_config)
    return {IDENTITY_KEY: json.dumps(identity, sort_keys=True), FINGERPRINT_KEY: fingerprint(identity),
            SOURCE_KEY: str(source or "unknown")}


def read_identity(path: str | os.PathLike) -> tuple[dict, str] | None:
    """(identity, the config file it came from) stored in weights, or None for files without one: safetensors
    metadata, a ``.ckpt`` export's ``saga_sr`` entry, or the model config a training checkpoint embeds."""
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as err:  # SafetensorError: named by read_weights, which runs next
            log.debug("%s: no metadata read (%s)", path, err)
            return None
        return (json.loads(meta[IDENTITY_KEY]), meta.get(SOURCE_KEY, "unknown")) if IDENTITY_KEY in meta else None
    checkpoint = read_checkpoint(path)
    if isinstance(checkpoint.get("saga_sr"), dict) and IDENTITY_KEY in checkpoint["saga_sr"]:
        entry = checkpoint["saga_sr"]
        return json.loads(entry[IDENTITY_KEY]), entry.get(SOURCE_KEY, "unknown")
    if isinstance(checkpoint.get("model_config"), dict):   # a training checkpoint (ModelConfigEmbedder)
        return model_identity(checkpoint["model_config"]), f"the model config inside {path}"
    return None


def _differences(a: tp.Any, b: tp.Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differences(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where} ({json.dumps(a)[:40]} here, {json.dumps(b)[:40]} in the weights')"]


def check_same_model(weights: str | os.PathLike, model_config: dict, config_source: str,
                     allow_mismatch: bool = False) -> None:
    """Refuse weights exported from another model config than ``model_config`` (one line naming both).

    Weights without a stored identity (exported before this check existed) load with a note;
    ``allow_mismatch`` loads them anyway with a warning (the user means it).
    """
    stored = read_identity(weights)
    if stored is None:
        log.info("%s holds no record of the model config it was exported with (an export of an older version); "
                 "cannot check that it belongs to %s", weights, config_source)
        return
    identity, source = stored
    differences = _differences(model_identity(model_config), identity)
    if not differences:
        return
    message = (f"weights {weights} were exported with the model config {source}, not {config_source}: they differ "
               f"in {'; '.join(differences[:3])}" + (f" and {len(differences) - 3} more" if len(differences) > 3 else ""))
    if allow_mismatch:
        log.warning("%s (loading anyway: --allow-config-mismatch)", message)
        return
    raise CheckpointMismatchError(f"{message}. Use the config written beside the export, or pass "
                                  "--allow-config-mismatch if you mean it")


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
