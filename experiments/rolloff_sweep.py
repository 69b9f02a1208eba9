#!/usr/bin/env python
"""Does the output follow f_h? Upsample validation clips at several f_h and measure what came out.

    python experiments/rolloff_sweep.py --model before=runs/real_audio/seed0 --model after=runs/real_audio_bl/seed0 \
        --clips data/real/val data/real/val_band_limited --out runs/rolloff_sweep

For each model (a folder with the exported ``model.json`` / ``model.safetensors``), each asked
f_h in ``--rolloffs`` and each of ``--per-category`` clips per category of every ``--clips``
folder (a fixed random choice), simulated at 4 and 8 kHz as the evaluation does: the output's own
roll-off (measured as training measures f_h on a reference, so a model that follows f_h puts
its outputs on the diagonal) and the level of its band above the cutoff against the input's
whole-band level (dB). The references' own values are drawn as the target. Writes
``OUT/sweep.csv``, ``OUT/sweep.md`` and ``OUT/sweep.png``.
"""
from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def band_level_db(audio, cutoff_hz: float, whole) -> float:
    from saga_sr_plugin.evaluation.levels import band_power, ratio_db

    return ratio_db(band_power(audio, cutoff_hz, 22050.0), band_power(whole, 0.0, 22050.0))


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, metavar="NAME=FOLDER")
    p.add_argument("--clips", nargs="+", default=["data/real/val", "data/real/val_band_limited"])
    p.add_argument("--per-category", type=int, default=3)
    p.add_argument("--rolloffs", type=float, nargs="+", default=[0.2, 0.35, 0.5, 0.65, 0.8])
    p.add_argument("--cutoffs", type=float, nargs="+", default=[4000, 8000])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--out", default="runs/rolloff_sweep")
    args = p.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from tqdm.auto import tqdm

    from saga_sr_plugin.atomic import write_text
    from saga_sr_plugin.data.audio_io import list_audio_files
    from saga_sr_plugin.data.sidecar import captions_under
    from saga_sr_plugin.data.audio_format import SAMPLE_RATE
    from saga_sr_plugin.data.spectral import rolloff_ratio
    from saga_sr_plugin.evaluation.protocol import load_reference, simulate_input
    from saga_sr_plugin.inference.upsampler import Upsampler

    rng = random.Random(0)
    clips = []
    for folder in map(Path, args.clips):
        captions = captions_under(folder)
        for category in sorted(d.name for d in folder.iterdir() if d.is_dir()):
            files = list_audio_files(folder / category)
            for f in sorted(rng.sample(files, min(args.per_category, len(files)))):
                clips.append((f"{folder.name}/{category}/{f.name}", load_reference(f),
                              captions.get(f"{category}/{f.name}", "")))
    rows = []
    for spec in args.model:
        name, folder = spec.split("=", 1)
        upsampler = Upsampler.load(str(Path(folder) / "model.json"), str(Path(folder) / "model.safetensors"), "cpu")
        total = len(args.rolloffs) * len(clips) * len(args.cutoffs)
        with tqdm(total=total, desc=f"{name}: upsampling", unit="clip") as bar:
            for f_h in args.rolloffs:
                settings = upsampler.settings(steps=args.steps, target_rolloff=f_h)
                for rel, ref, caption in clips:
                    for cutoff in args.cutoffs:
                        low = simulate_input(ref, cutoff, 0, rel)
                        out = upsampler.upsample(low, SAMPLE_RATE, caption=caption, settings=settings).audio
                        rows.append({"model": name, "clip": rel, "cutoff_hz": int(cutoff), "target_rolloff": f_h,
                                     "output_rolloff": round(rolloff_ratio(out), 4),
                                     "reference_rolloff": round(rolloff_ratio(ref), 4),
                                     "output_band_db": round(band_level_db(out, cutoff, low), 2),
                                     "reference_band_db": round(band_level_db(ref, cutoff, low), 2)})
                        bar.update(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    lines = ["| model | cutoff | " + " | ".join(f"f_h {v:g}" for v in args.rolloffs) + " | references |",
             "|---|---|" + "---|" * (len(args.rolloffs) + 1)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for m_i, model in enumerate(models):
        for c_i, cutoff in enumerate(args.cutoffs):
            sel = [r for r in rows if r["model"] == model and r["cutoff_hz"] == int(cutoff)]
            roll = [np.median([r["output_rolloff"] for r in sel if r["target_rolloff"] == v]) for v in args.rolloffs]
            level = [np.median([r["output_band_db"] for r in sel if r["target_rolloff"] == v]) for v in args.rolloffs]
            ref_roll = np.median([r["reference_rolloff"] for r in sel])
            ref_level = np.median([r["reference_band_db"] for r in sel])
            lines.append(f"| {model} | {cutoff / 1000:g} kHz | " + " | ".join(
                f"{a:.3f} ({b:+.1f} dB)" for a, b in zip(roll, level)) + f" | {ref_roll:.3f} ({ref_level:+.1f} dB) |")
            style = dict(color=f"C{m_i}", ls="-" if c_i == 0 else "--", marker="o", ms=3)
            axes[0].plot(args.rolloffs, roll, label=f"{model}, {cutoff / 1000:g} kHz", **style)
            axes[1].plot(args.rolloffs, level, label=f"{model}, {cutoff / 1000:g} kHz", **style)
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8, label="follows f_h exactly")
    axes[0].set(xlabel="asked f_h", ylabel="output roll-off (median)", title="does the output's roll-off follow f_h?")
    axes[1].set(xlabel="asked f_h", ylabel="band above the cutoff, dB vs the input (median)",
                title="level of the added band")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=110)
    note = (f"Median over {len(clips)} clips ({', '.join(args.clips)}): the output's roll-off, and in brackets its "
            "band above the cutoff against the input's whole-band level; last column: the references' own.\n\n")
    write_text(out / "sweep.md", note + "\n".join(lines) + "\n")
    print(note + "\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
