"""Spectrogram figures: what a person looks at to judge super-resolution."""
from __future__ import annotations

import os
import typing as tp

import numpy as np
import torch

from ..atomic import atomic_path


def log_spectrogram(audio: torch.Tensor, sample_rate: int, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """dB magnitude of the channel mean, (bins, frames)."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    x = x.mean(dim=0) if x.ndim == 2 else x
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return (20 * torch.log10(spec.clamp(min=1e-5))).numpy()


def spectrogram_figure(panels: tp.Sequence[tuple[str, torch.Tensor, int]], title: str | None = None,
                       cutoff_hz: float | None = None):
    """A matplotlib figure with one spectrogram per (title, audio, sample_rate), side by side;
    ``cutoff_hz`` (the detected input cutoff) is drawn as a dashed line on every panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False, sharey=True)
    image = None
    for ax, (name, audio, sr) in zip(axes[0], panels):
        spec = log_spectrogram(audio, sr)
        seconds = spec.shape[1] * 512 / sr
        image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=-100, vmax=20,
                          extent=(0, seconds, 0, sr / 2000))
        ax.set_title(name)
        ax.set_xlabel("time (s)")
        if cutoff_hz is not None:
            ax.axhline(cutoff_hz / 1000, color="white", linestyle="--", linewidth=0.8, alpha=0.8)
    axes[0][0].set_ylabel("frequency (kHz)")
    if cutoff_hz is not None:
        axes[0][0].text(0.02, cutoff_hz / 1000, f" cutoff {cutoff_hz / 1000:.1f} kHz", color="white", fontsize=8,
                        va="bottom", transform=axes[0][0].get_yaxis_transform())
    fig.colorbar(image, ax=axes[0].tolist(), label="dB")
    if title:
        fig.suptitle(title)
    return fig


def save_spectrograms(path: str | os.PathLike, panels: tp.Sequence[tuple[str, torch.Tensor, int]],
                      title: str | None = None, cutoff_hz: float | None = None) -> str:
    import matplotlib.pyplot as plt

    fig = spectrogram_figure(panels, title, cutoff_hz)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return str(path)
