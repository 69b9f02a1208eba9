"""Fréchet distance between embeddings of a system's outputs and of the references: the paper's FD.

Table 1 reports FD on OpenL3 embeddings of 400 clips per set. An embedder maps (channels, samples) at
its own rate to (frames, dim); the clips' frames are pooled per set, a Gaussian fitted to each side,
and their Fréchet distance taken with scipy. OpenL3 loads through ``torchopenl3``: ``pip install
'saga-sr[fd]'``. stable-audio-tools 0.0.20's ``fad_metrics`` calls the same two libraries, but importing
it imports laion_clap, which fetches a tokenizer from the hub at import (compat.py, item 8), so it is not
used on either release. torchopenl3 fetches its weights from GitHub on first use, so the first run needs the
network. Sets smaller than :data:`PAPER_CLIPS` are marked (the statistic is biased upward for small
sets, so such a value is comparable only with one from the same number of clips); fewer than
:data:`MIN_CLIPS` are refused.
"""
from __future__ import annotations

import dataclasses
import math
import typing as tp

import numpy as np
import torch
import torchaudio.functional as AF

PAPER_CLIPS = 400
MIN_CLIPS = 2


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings ((n, d) and (m, d))."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(root).all():   # a near-singular product: regularise as the usual FID code does
        offset = np.eye(cov_a.shape[0]) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root.real))


def load_openl3(device: str = "cpu", content_type: str = "music") -> torch.nn.Module:
    """OpenL3 (mel256, 512 dimensions) through torchopenl3, what 0.0.20's loader calls (compat.py, item 8)."""
    try:
        import torchopenl3

        return torchopenl3.core.load_audio_embedding_model(content_type=content_type, input_repr="mel256",
                                                          embedding_size=512).to(device).eval()
    except ImportError as err:
        raise ImportError(f"OpenL3 needs torchopenl3: pip install 'saga-sr[fd]' ({err})") from err
    except OSError as err:   # torchopenl3 fetches its weights from GitHub on first use
        raise OSError(f"could not load the OpenL3 weights (torchopenl3 downloads them on first use; this machine "
                      f"may be offline): run once with network access, or evaluate without --fd ({err})") from err


class Embedder(tp.Protocol):
    """What FD needs of an embedding model: its rate and (channels, samples) -> (frames, dim)."""

    sample_rate: int

    def __call__(self, audio: torch.Tensor) -> torch.Tensor: ...


@dataclasses.dataclass
class OpenL3:
    """OpenL3 (music content, mel256, 512 dimensions, one frame per second: the official metric's settings)."""

    device: str = "cpu"
    content_type: str = "music"
    sample_rate: int = 48000
    hop_seconds: float = 1.0

    def __post_init__(self) -> None:
        self.model = load_openl3(self.device, self.content_type)

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        import torchopenl3

        mono = audio.reshape(-1, audio.shape[-1]).mean(0, keepdim=True).float()
        emb, _ = torchopenl3.get_audio_embedding(mono, sr=self.sample_rate, model=self.model, center=True,
                                                 hop_size=self.hop_seconds, batch_size=32, sampler="julius",
                                                 verbose=False)
        return emb.reshape(-1, emb.shape[-1]).cpu()


EMBEDDERS: dict[str, tp.Callable[..., Embedder]] = {"openl3": OpenL3}


def embed(embedder: Embedder, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(frames, dim) float64 embeddings of one clip, resampled to the embedder's rate."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    x = x.reshape(-1, x.shape[-1])
    if sample_rate != embedder.sample_rate:
        x = AF.resample(x, sample_rate, embedder.sample_rate)
    out = torch.as_tensor(embedder(x), dtype=torch.float64)
    return out.reshape(-1, out.shape[-1])


class FrechetResult(tp.NamedTuple):
    value: float
    clips: int

    @property
    def note(self) -> str:
        return "" if self.clips >= PAPER_CLIPS else f"{self.clips} clips, below the paper's {PAPER_CLIPS}"

    def __str__(self) -> str:
        return f"{self.value:.2f}" + ("" if self.clips >= PAPER_CLIPS else "*")


def set_distance(estimates: tp.Sequence[torch.Tensor], references: tp.Sequence[torch.Tensor]) -> FrechetResult:
    """FD between two sets of per-clip embeddings ((frames, dim) each), frames pooled per set."""
    clips = min(len(estimates), len(references))
    if clips < MIN_CLIPS:
        raise ValueError(f"FD needs at least {MIN_CLIPS} clips per set, got {clips}")
    a, b = torch.cat(list(estimates)).numpy(), torch.cat(list(references)).numpy()
    value = float(frechet_distance(a, b))
    return FrechetResult(value if math.isfinite(value) else float("nan"), clips)
