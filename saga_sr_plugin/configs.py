"""Reading JSON configs and resolving their local paths: shared by every layer.

What a config must hold is checked where it is used: the model's structure in
``models.checks``, the dataset config in ``data.dataset_config``, the ``saga_sr``
inference block in ``inference.settings``. Errors are :class:`ConfigError`, whose
message names the file and the fix.
"""
from __future__ import annotations

import copy
import difflib
import json
import os
import typing as tp
from pathlib import Path


class ConfigError(ValueError):
    """A config that cannot work; the message names the file and what to change."""


def load_json(path: str | os.PathLike, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what} {path} is not valid JSON: line {err.lineno}, column {err.colno}: {err.msg}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path} is not a text file (JSON): {err.reason} at byte {err.start}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"{what} {path} must hold a JSON object ({{...}}), not a {type(config).__name__}: "
                          "is it the right file?")
    return config


def check_options(block: tp.Iterable[str], known: tp.Sequence[str], where: str, source: str,
                  takes: str = "known") -> None:
    """A key of ``block`` that ``known`` lacks is a one-line error naming the file, the key and the closest
    option: a typo in a config must not become a silent default."""
    for key in block:
        if key not in known:
            raise ConfigError(f"{source}: {where} has no option {key!r}{suggest(key, list(known))}; "
                              f"{takes}: {', '.join(known)}")


def suggest(name: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _absolute_if_local(value: str, bases: list[Path], want_dir: bool) -> str:
    if not value or os.path.isabs(os.path.expanduser(value)):
        return os.path.expanduser(value) if value else value
    for base in bases:
        candidate = (base / value).resolve()
        if (candidate.is_dir() if want_dir else candidate.is_file()):
            return str(candidate)
    return value  # not local: a hub name, checked where it is loaded


def resolve_local_paths(config: dict, base: str | os.PathLike = ".") -> dict:
    """A copy of a model config whose relative local paths (the ``saga_t5`` folder, the VAE
    weights) are absolute: looked up against ``base`` (the config file's folder), then the
    working directory. Names that exist in neither place are left as they are (hub names)."""
    config = copy.deepcopy(config)
    bases = [Path(base).resolve(), Path.cwd()]
    model = config.get("model", {})
    for entry in model.get("conditioning", {}).get("configs", []):
        options = entry.get("config", {})
        if entry.get("type") == "saga_t5" and isinstance(options.get("t5_model_name"), str):
            options["t5_model_name"] = _absolute_if_local(options["t5_model_name"], bases, want_dir=True)
    pretransform = model.get("pretransform", {})
    if isinstance(pretransform.get("pretransform_ckpt_path"), str):
        pretransform["pretransform_ckpt_path"] = _absolute_if_local(pretransform["pretransform_ckpt_path"], bases,
                                                                    want_dir=False)
    return config
