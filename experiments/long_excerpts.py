#!/usr/bin/env python
"""Evaluation excerpts long enough for ViSQOL: clips of one speaker, track or collection joined in order.

    python experiments/long_excerpts.py --data data/real --folders val val_band_limited test test_band_limited
    python experiments/long_excerpts.py --data data/ood --folders . --out data/ood_long

ViSQOL reads at least 1 s and its scale is compressed on short clips (docs/evaluation.md), while the
real-audio speech clips are single letters and words of 0.2-1 s and the other sources' effects as short.
Each excerpt joins consecutive clips (in the manifest's order of source and start) of one group
(a speaker = a language of one package, a music track, an effects collection) until it is at least
``--min-seconds`` long; a group's remainder shorter than that is joined to its last excerpt, a group
shorter than that is one shorter excerpt (scored by LSD; ViSQOL leaves it out below 1 s). Music pieces
of one track are consecutive, so their excerpts are the recording itself. Writes
``OUT/<folder>/<category>/<group>_<n>.wav``, the captions (the category's, as the source clips have)
and ``OUT/manifest.json``; idempotent.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path

import torch

from saga_sr_plugin.data.audio_io import read_audio, write_audio
from saga_sr_plugin.data.sidecar import captions_under, sidecar_path, write_sidecar
from saga_sr_plugin.data.audio_format import SAMPLE_RATE


def excerpts(clips: list[dict], min_seconds: float) -> list[list[dict]]:
    """Consecutive clips grouped into runs of at least ``min_seconds``."""
    runs: list[list[dict]] = []
    current: list[dict] = []
    for clip in clips:
        current.append(clip)
        if sum(c["seconds"] for c in current) >= min_seconds:
            runs.append(current)
            current = []
    if current:
        if runs:
            runs[-1] += current
        else:
            runs.append(current)
    return runs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/real", help="a folder with manifest.json (real_audio_data / ood_audio_data)")
    p.add_argument("--folders", nargs="+", default=["val", "val_band_limited", "test", "test_band_limited"],
                   help="first path parts to take ('.' for a manifest whose paths start with the category)")
    p.add_argument("--out", default=None, help="default: DATA_long")
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--max-per-category", type=int, default=16, help="excerpts per folder and category")
    args = p.parse_args(argv)
    data = Path(args.data)
    out = Path(args.out or f"{data}_long")
    clips = json.loads((data / "manifest.json").read_text())["clips"]
    captions = captions_under(data)
    written = []
    for folder in args.folders:
        chosen = [c for c in clips if folder == "." or Path(c["path"]).parts[0] == folder]
        key = lambda c: (c["category"], c["group"])   # noqa: E731
        by_category: dict[str, list[list[dict]]] = {}
        for (category, _), members in itertools.groupby(sorted(chosen, key=lambda c: (*key(c), c["source"],
                                                                                        c["start"])), key=key):
            by_category.setdefault(category, []).extend(excerpts(list(members), args.min_seconds))
        sidecar = {}
        for category, runs in by_category.items():
            # round-robin over groups, so a few long tracks do not fill the category
            groups: dict[str, list[list[dict]]] = {}
            for run in runs:
                groups.setdefault(run[0]["group"], []).append(run)
            order = [r for batch in itertools.zip_longest(*groups.values()) for r in batch if r]
            for n, run in enumerate(order[:args.max_per_category]):
                name = f"{re.sub(r'[^A-Za-z0-9_-]+', '-', run[0]['group'])}_{n:03d}.wav"
                target = out / folder / category / name
                if not target.is_file():
                    audio = torch.cat([read_audio(data / c["path"])[0].expand(2, -1) for c in run], dim=-1)
                    write_audio(target, audio, SAMPLE_RATE)
                sidecar[f"{category}/{name}"] = {"caption": captions.get(run[0]["path"], ""), "model": "category"}
                written.append({"folder": folder, "path": str(target.relative_to(out)), "group": run[0]["group"],
                                "clips": [c["path"] for c in run], "seconds": round(sum(c["seconds"] for c in run), 3)})
        write_sidecar(sidecar_path(out / folder), sidecar)
    (out / "manifest.json").write_text(json.dumps({"min_seconds": args.min_seconds, "excerpts": written}, indent=2))
    lengths = [w["seconds"] for w in written]
    print(f"{len(written)} excerpts in {out}: {min(lengths):.1f}-{max(lengths):.1f} s, "
          f"{sum(s >= 1.0 for s in lengths)} at least 1 s")


if __name__ == "__main__":
    main()
