"""Overlapping windows of the model's sample size, and the crossfade that joins their outputs.

Long inputs go through the model one window at a time (or a batch of windows), so
memory stays flat in the input's length; the output buffer lives in host memory.
"""
from __future__ import annotations

import typing as tp

import torch
from tqdm.auto import tqdm


def crossfade_weights(length: int, fade_in: int, fade_out: int) -> torch.Tensor:
    """Ones with linear ramps: overlapping ramps of neighbouring windows sum to one."""
    w = torch.ones(length, dtype=torch.float64, device="cpu")  # the crossfade accumulates on the CPU
    if fade_in:
        w[:fade_in] = (torch.arange(fade_in, dtype=torch.float64, device="cpu") + 0.5) / fade_in
    if fade_out:
        w[length - fade_out:] = torch.flip((torch.arange(fade_out, dtype=torch.float64, device="cpu") + 0.5)
                                           / fade_out, [0])
    return w


def window_starts(length: int, window: int, hop: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window, hop))
    return starts + [length - window]


class Crossfader:
    """One input cut into overlapping windows, and the crossfaded output they are added back to.

    Inputs shorter than a window are zero-padded and trimmed back. The output buffer
    lives in host memory; windows may be added in any order.
    """

    def __init__(self, audio: torch.Tensor, window: int, overlap: int):
        self.channels, self.length = audio.shape
        self.padded = torch.nn.functional.pad(audio, (0, max(0, window - self.length)))
        total = self.padded.shape[-1]
        self.window = window
        self.starts = window_starts(total, window, window - overlap)
        self.out = torch.zeros(self.channels, total, dtype=torch.float64, device="cpu")
        self.norm = torch.zeros(total, dtype=torch.float64, device="cpu")
        self.added = 0

    def __len__(self) -> int:
        return len(self.starts)

    def piece(self, i: int) -> torch.Tensor:
        return self.padded[:, self.starts[i]:self.starts[i] + self.window]

    def add(self, i: int, y: torch.Tensor) -> None:
        start, starts, window = self.starts[i], self.starts, self.window
        fade_in = 0 if i == 0 else (starts[i - 1] + window - start)
        fade_out = 0 if i == len(starts) - 1 else (start + window - starts[i + 1])
        w = crossfade_weights(window, fade_in, fade_out)
        self.out[:, start:start + window] += y.double().cpu() * w
        self.norm[start:start + window] += w
        self.added += 1

    @property
    def complete(self) -> bool:
        return self.added == len(self.starts)

    def result(self) -> torch.Tensor:
        return (self.out / self.norm.clamp(min=1e-12))[:, :self.length].float()


def process_in_windows(audio: torch.Tensor, window: int, overlap: int,
                       fn: tp.Callable[[torch.Tensor, int], torch.Tensor], progress: bool = False) -> torch.Tensor:
    """Apply ``fn(window_audio, index)`` over overlapping windows, one at a time, and crossfade the results."""
    fader = Crossfader(audio, window, overlap)
    for i in tqdm(range(len(fader)), desc="windows", unit="win", disable=not progress or len(fader) == 1):
        fader.add(i, fn(fader.piece(i), i))
    return fader.result()
