"""SAGA-SR's data side, as a ``custom_metadata_module`` for the official ``audio_dir`` and ``wds`` datasets.

Point a dataset config at it by module name (``train_entry.py`` resolves it to this
file) or by path::

    {"id": "music", "path": "/data/music", "custom_metadata_module": "saga_sr_plugin.data.metadata"}

For each cropped clip it returns the simulated low-res clip (under ``__audio__`` so
the folder dataset pads/crops it like the main audio; at the top level for WebDataset
shards, whose official loader does not unpack ``__audio__``), both normalised roll-offs,
the caption and what the degradation was. The caption is the root's ``captions.jsonl``
entry for a folder, the sample's own JSON for a shard (``saga-sr shard`` copies the entry
there); per-segment captions give the crop the caption of the segment it overlaps most. With
``target_lowpass_hz`` set it first low-passes the target clip itself (in place: the official
dataset returns the tensor it hands over), as the authors' ``output_cut_off_freq_range`` does.
Simulation ranges come from the dataset config's ``saga_sr`` block, passed to the
workers through the ``SAGA_SR_SIMULATION`` environment variable.
"""
from __future__ import annotations

import json
import logging
import os
import random
import threading
from collections import Counter
from functools import lru_cache

import numpy as np
import torch

# Absolute imports: the official loader executes this file as a top-level module.
from saga_sr_plugin.data.sidecar import caption_at, read_sidecar, sidecar_path
from saga_sr_plugin.data.simulation import SimulationConfig, limit_target, simulate_low_res

ENV_SIMULATION = "SAGA_SR_SIMULATION"
log = logging.getLogger("saga_sr.data")

# Counted, logged fallbacks: visible in the logs, never silent.
counters: Counter = Counter()
_lock = threading.Lock()


def configure(options: dict | None) -> SimulationConfig:
    """Validate the dataset config's ``saga_sr`` block and hand it to the (future) workers."""
    config = SimulationConfig(**(options or {}))
    os.environ[ENV_SIMULATION] = json.dumps(options or {})
    _simulation_config.cache_clear()
    return config


@lru_cache(maxsize=1)
def _simulation_config() -> SimulationConfig:
    return SimulationConfig(**json.loads(os.environ.get(ENV_SIMULATION, "{}")))


@lru_cache(maxsize=64)
def _sidecar(root: str) -> dict[str, dict]:
    return read_sidecar(sidecar_path(root))


def count(reason: str, detail: str) -> None:
    with _lock:
        counters[reason] += 1
        n = counters[reason]
    if n <= 10 or n & (n - 1) == 0:  # the first ten, then every power of two
        log.warning("%s (%d so far): %s", reason, n, detail)


def is_shard_sample(info: dict) -> bool:
    """A WebDataset sample's JSON (``saga-sr shard`` writes ``relpath`` and no ``path``) rather than a file's info."""
    return "path" not in info


def caption_for(info: dict) -> str:
    """The crop's caption, or "" (the text null) when there is none."""
    relpath = info.get("relpath")
    if is_shard_sample(info):
        entry, where = info, f"{relpath} (its shard has no caption; run saga-sr caption before saga-sr shard)"
    else:
        path = info.get("path")
        if not path or not relpath:
            count("no relpath for caption lookup", str(path))
            return ""
        root = path[: len(path) - len(relpath)].rstrip("/\\") or "."
        entry, where = _sidecar(root).get(relpath.replace(os.sep, "/"), {}), f"{relpath} (no entry in {sidecar_path(root)})"
    seconds = float(entry.get("seconds") or 0.0)
    t_start, t_end = info.get("timestamps") or (0.0, 1.0)
    caption = caption_at(entry, float(t_start) * seconds, float(t_end) * seconds)
    if not caption.strip():
        count("missing caption", where)
    return caption


def get_custom_metadata(info: dict, audio: torch.Tensor) -> dict:
    rng = np.random.default_rng(random.getrandbits(64))
    config = _simulation_config()
    limited = limit_target(audio, rng, config)
    if limited is not audio:
        # the official datasets (0.0.19 and 0.0.20) return the very tensor they hand this module as the
        # target: the authors' target low-pass is applied to it in place, before f_h is measured on it
        audio.copy_(limited)
    pair = simulate_low_res(audio, rng, config)
    low_res = pair.low_res.clamp(-1, 1)
    return {
        # stable-audio-tools 0.0.19's training step reads md["padding_mask"][0]; its
        # audio_dir dataset stores a bare tensor, so wrap it as the wrapper expects.
        "padding_mask": [info["padding_mask"]] if torch.is_tensor(info.get("padding_mask")) else info.get("padding_mask"),
        **({"lr_audio": low_res} if is_shard_sample(info) else {"__audio__": {"lr_audio": low_res}}),
        "rolloff_lr": pair.rolloff_lr,
        "rolloff_hr": pair.rolloff_hr,
        "prompt": caption_for(info),
        "lr_cutoff_hz": pair.spec.cutoff_hz,
        "lr_filter": pair.spec.filter_type,
        "lr_order": pair.spec.order,
    }
