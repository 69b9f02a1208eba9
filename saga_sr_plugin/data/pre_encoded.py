"""SAGA-SR's data side for the official ``pre_encoded`` dataset (what ``saga-sr pre-encode`` wrote).

Point the dataset config's ``custom_metadata_module`` at it::

    {"dataset_type": "pre_encoded", "random_crop": false,
     "datasets": [{"id": "music", "path": "/data/latents/music", "custom_metadata_module": "saga_sr_plugin.data.pre_encoded"}]}

For each clip the official dataset loads z_h (``.npy``) and the JSON; this picks one of
the clip's K pre-encoded low-res versions at random, and returns its z_l (cropped like
z_h when the dataset crops), its f_l, the clip's f_h and caption.
"""
from __future__ import annotations

import random

import numpy as np
import torch

# Absolute imports: the official loader executes this file as a top-level module.
from saga_sr_plugin.data.metadata import count
from saga_sr_plugin.data.pre_encoding import ZL_SUFFIX


def get_custom_metadata(info: dict, audio: torch.Tensor | None) -> dict:
    latent_path = info["latent_filename"]
    zl_path = latent_path[: -len(".npy")] + ZL_SUFFIX
    with np.load(zl_path) as stored:
        versions = stored["z_l"]
    k = random.randrange(versions.shape[0])
    start = int(info.get("latent_crop_start", 0))
    length = int(info.get("latent_crop_length") or versions.shape[-1])
    caption = info.get("prompt", "")
    if not str(caption).strip():
        count("missing caption", f"{info.get('source', latent_path)} (pre-encoded without a caption)")
    return {
        "lr_audio": torch.from_numpy(versions[k, :, start:start + length].astype(np.float32)),
        "rolloff_lr": float(info["rolloff_lr"][k]),
        "rolloff_hr": float(info["rolloff_hr"]),
        "prompt": caption,
        "lr_cutoff_hz": info["lr_cutoff_hz"][k],
        "lr_filter": info["lr_filter"][k],
        "lr_order": info["lr_order"][k],
    }
