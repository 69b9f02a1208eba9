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
from stable_audio_tools.models.pretransforms import Pretransform, WaveletPretransform


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


class WaveletPacketPretransform(Pretransform):
    """The official one-level wavelet split applied to every band, ``levels`` times: 2**levels
    equal bands of ``sample_rate / 2**(levels + 1)`` Hz each, in frequency order, latent channel
    ``band * channels + audio channel``.

    The official ``wavelet`` pretransform is a pyramid: only the low band is split again and
    the top octave (11-22 kHz at 44.1 kHz) is one band spread over 2**(levels-1) polyphase
    channels, so no channel holds "above 16 kHz" and a small model fills the octave evenly.
    Here each latent channel is one band: a per-channel level, and an empty band, are
    per-channel facts a small model can learn (docs/real_audio.md, "Pretransform").
    """

    def __init__(self, channels: int, levels: int, wavelet: str = "bior4.4"):
        super().__init__(enable_grad=False, io_channels=channels, is_discrete=False)
        if levels < 1:
            raise ValueError(f"saga_wavelet_packet: levels must be at least 1, got {levels}")
        self.split = WaveletPretransform(channels, 1, wavelet)  # the official one-level filter bank
        self.channels, self.levels = channels, levels
        self.downsampling_ratio = 2 ** levels
        self.encoded_channels = channels * self.downsampling_ratio
        # splitting a high band mirrors its spectrum, so the tree's node order is the Gray code
        # of the frequency order: frequency band f is node f ^ (f >> 1)
        bands = torch.arange(self.downsampling_ratio)
        self.register_buffer("node_of_band", bands ^ (bands >> 1), persistent=False)
        self.register_buffer("band_of_node", torch.argsort(bands ^ (bands >> 1)), persistent=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], self.channels
        for _ in range(self.levels):  # (n, nodes * c, L) -> (n, 2 * nodes * c, L / 2); node k -> 2k, 2k + 1
            x = self.split.encode(x.reshape(-1, c, x.shape[-1])).reshape(n, -1, x.shape[-1] // 2)
        x = x.reshape(n, self.downsampling_ratio, c, -1)[:, self.node_of_band]
        return x.reshape(n, self.encoded_channels, -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        n, c = z.shape[0], self.channels
        z = z.reshape(n, self.downsampling_ratio, c, -1)[:, self.band_of_node].reshape(n, self.encoded_channels, -1)
        for _ in range(self.levels):
            z = self.split.decode(z.reshape(-1, 2 * c, z.shape[-1])).reshape(n, -1, z.shape[-1] * 2)
        return z


def wavelet_packet_from_config(config: dict, sample_rate: int,
                               build_official: tp.Callable[[dict, int], Pretransform]) -> WaveletPacketPretransform:
    unknown = set(config) - {"channels", "levels", "wavelet"}
    if unknown or not {"channels", "levels"} <= set(config):
        raise ValueError(f"the 'saga_wavelet_packet' pretransform takes channels, levels and an optional wavelet "
                         f"(the official 'wavelet' type's options); got {sorted(config)}")
    return WaveletPacketPretransform(**config)


PLUGIN_PRETRANSFORMS = {"saga_scaled": scaled_from_config, "saga_wavelet_packet": wavelet_packet_from_config}
