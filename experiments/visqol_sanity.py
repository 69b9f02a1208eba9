#!/usr/bin/env python
"""How ViSQOL (audio mode) behaves on this project's material: the issue's sanity figures, and how
stable the score is on short excerpts.

    python experiments/visqol_sanity.py [--source FILE ...] [--seconds 1.49 3 6 10] [--offsets 5]

For each source recording and excerpt length, ``--offsets`` excerpts spread over the recording are
scored against themselves, brick-wall low-passed at 16 / 8 / 4 kHz, and simulated as the evaluation
simulates an input (``evaluation.protocol.simulate_input``) at 4 and 8 kHz. Each excerpt is scored
three times, its start moved by 0, 10 and 50 ms: the same music, so any change is the metric's own
noise. Prints the mean over excerpts and, after "~", that noise (the std over the three starts,
averaged over the excerpts): a length whose noise is a sizeable part of the differences between
conditions is too short to rank systems by.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from saga_sr_plugin.data.audio_io import read_audio
from saga_sr_plugin.data.audio_format import SAMPLE_RATE
from saga_sr_plugin.evaluation.protocol import simulate_input
from saga_sr_plugin.evaluation.visqol import visqol

DEFAULT_SOURCES = ("/usr/share/games/wesnoth/1.16/data/core/music/knalgan_theme.ogg",
                   "/usr/share/games/wesnoth/1.16/data/core/music/battle-epic.ogg")


SHIFTS = (0, 441, 2205)   # samples: 0, 10 and 50 ms


def brickwall(x: torch.Tensor, cutoff_hz: float) -> torch.Tensor:
    spectrum = torch.fft.rfft(x.double())
    spectrum[..., torch.fft.rfftfreq(x.shape[-1], 1 / SAMPLE_RATE) > cutoff_hz] = 0
    return torch.fft.irfft(spectrum, n=x.shape[-1]).float()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", nargs="+", default=list(DEFAULT_SOURCES))
    p.add_argument("--seconds", type=float, nargs="+", default=[1.49, 3.0, 6.0, 10.0])
    p.add_argument("--offsets", type=int, default=5)
    args = p.parse_args(argv)
    conditions = {"itself": lambda x, n: x, "low-pass 16 kHz": lambda x, n: brickwall(x, 16000),
                  "low-pass 8 kHz": lambda x, n: brickwall(x, 8000), "low-pass 4 kHz": lambda x, n: brickwall(x, 4000),
                  "simulated 8 kHz input": lambda x, n: simulate_input(x, 8000, name=n),
                  "simulated 4 kHz input": lambda x, n: simulate_input(x, 4000, name=n)}
    print("| source | excerpt | " + " | ".join(conditions) + " |")
    print("|---|---|" + "---|" * len(conditions))
    for source in args.source:
        audio, rate = read_audio(source)
        if rate != SAMPLE_RATE:
            raise SystemExit(f"{source}: {rate} Hz; give 44.1 kHz recordings")
        for seconds in args.seconds:
            n = int(seconds * SAMPLE_RATE)
            starts = [round(i * (audio.shape[-1] - n) / max(args.offsets - 1, 1)) for i in range(args.offsets)]
            starts = [min(s, audio.shape[-1] - n - SHIFTS[-1]) for s in starts]
            cells = []
            for name, degrade in conditions.items():
                scores = [[visqol(degrade(audio[:, s + d:s + d + n], f"{Path(source).stem}{s}"), audio[:, s + d:s + d + n])
                           for d in SHIFTS] for s in starts]
                mean = statistics.mean(v for row in scores for v in row)
                noise = statistics.mean(statistics.pstdev(row) for row in scores)
                cells.append(f"{mean:.2f} ~{noise:.2f}")
            print(f"| {Path(source).stem} | {seconds:g} s | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
