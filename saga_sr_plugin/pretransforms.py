"""A latent scale for any official pretransform.

The official ``autoencoder`` pretransform divides its latents by ``scale`` so the
diffusion model sees roughly unit-variance data; the parameter-free ``wavelet`` and
``patched`` types have no such option, and their latents are audio-level small
(std ~0.05) with sub-bands orders of magnitude apart. Rectified flow from unit noise
then spends nearly all of t in pure noise and the quiet high bands drown in leftover
noise. ``saga_scaled`` wraps any official pretransform with a per-channel (or single)
scale, given in the JSON config::

    {"type": "saga_scaled", "config": {"scale": [..64 floats..] or 0.05,
                                       "pretransform": {"type": "wavelet", "config": {...}}}}
"""
from __future__ import annotations

import typing as tp

import torch
from stable_audio_tools.models.pretransforms import Pretransform


class ScaledPretransform(Pretransform):
    """encode(x) = inner.encode(x) / scale, decode(z) = inner.decode(z * scale); scale per latent channel."""

    def __init__(self, inner: Pretransform, scale: float | tp.Sequence[float]):
        super().__init__(enable_grad=inner.enable_grad, io_channels=inner.io_channels, is_discrete=inner.is_discrete)
        self.inner = inner
        self.encoded_channels = inner.encoded_channels
        self.downsampling_ratio = inner.downsampling_ratio
        values = torch.as_tensor(scale, dtype=torch.float32).reshape(-1)
        if len(values) not in (1, inner.encoded_channels):
            raise ValueError(f"saga_scaled: scale has {len(values)} values; give 1 or one per latent channel "
                             f"({inner.encoded_channels})")
        if not (values > 0).all():
            raise ValueError("saga_scaled: every scale must be positive")
        # not named ``scale``: the official pre-encoded training step divides latents by a
        # pretransform's ``scale`` (a float), and encode() has applied this one already
        self.register_buffer("latent_scale", values[None, :, None], persistent=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.inner.encode(x)
        return z / self.latent_scale.to(z.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner.decode(z * self.latent_scale.to(z.dtype))


def scaled_from_config(config: dict, sample_rate: int, build_official: tp.Callable[[dict, int], Pretransform]) -> ScaledPretransform:
    if "pretransform" not in config or "scale" not in config:
        raise ValueError("the 'saga_scaled' pretransform needs config.pretransform (an official pretransform "
                         "config) and config.scale")
    unknown = set(config) - {"pretransform", "scale", "scale_source"}
    if unknown:
        raise ValueError(f"the 'saga_scaled' pretransform has no option(s) {sorted(unknown)}; "
                         "it takes pretransform, scale and an optional scale_source note")
    return ScaledPretransform(build_official(config["pretransform"], sample_rate), config["scale"])


PLUGIN_PRETRANSFORMS = {"saga_scaled": scaled_from_config}
