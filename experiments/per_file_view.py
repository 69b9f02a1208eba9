#!/usr/bin/env python
"""Where the model helps and where it hurts: per-file LSD change against each reference's bandwidth.

    python experiments/per_file_view.py before=runs/real_audio/lsd_per_file_before_ood.csv \
        after=runs/real_audio_bl/lsd_per_file_auto_ood.csv --out docs/img/ood_per_file.png

Reads ``saga-sr evaluate`` / ``real_audio.py`` per-file CSVs (one per NAME=CSV; every row of the
model's system, ``saga-sr`` or ``saga-sr-oracle``, is compared with the ``unprocessed`` row of the
same file and cutoff) and draws, per cutoff, the change in NU-Wave 2 LSD against the reference's
own bandwidth (``reference_bandwidth_hz``), one marker per file, one colour per CSV. Prints, per CSV,
category and cutoff, the mean LSD of input and output, the change of the means, the worst file
and how many files are more than 25 % worse than their input (the issue's targets).
"""
from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path


METRIC = "nuwave2/lsd"
MODEL_SYSTEMS = ("saga-sr", "saga-sr-oracle")


def paired(path: Path) -> list[dict]:
    """One row per (file, cutoff): category, bandwidth, input LSD, output LSD (the seeds' mean, if several)."""
    rows = list(csv.DictReader(open(path)))
    inputs, outputs = {}, {}
    for r in rows:
        key = (r["file"], int(r["cutoff_hz"]))
        if r["system"] == "unprocessed":
            inputs.setdefault(key, []).append(float(r[METRIC]))
        elif r["system"] in MODEL_SYSTEMS:
            outputs.setdefault(key, []).append((float(r[METRIC]), r))
    out = []
    for key, values in sorted(outputs.items()):
        if key not in inputs:
            continue
        first = values[0][1]
        out.append({"file": key[0], "cutoff_hz": key[1], "category": first["category"],
                    "bandwidth_hz": float(first.get("reference_bandwidth_hz") or "nan"),
                    "input": statistics.mean(inputs[key]), "output": statistics.mean(v for v, _ in values)})
    if not out:
        raise SystemExit(f"{path}: no rows of {' or '.join(MODEL_SYSTEMS)} with an unprocessed row to compare")
    return out


def target_table(runs: dict[str, list[dict]]) -> str:
    lines = ["| run | category | cutoff | input LSD | output LSD | change | worst file | files > +25 % |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        for category in sorted({r["category"] for r in rows}):
            for cutoff in sorted({r["cutoff_hz"] for r in rows}):
                sel = [r for r in rows if r["category"] == category and r["cutoff_hz"] == cutoff]
                mi, mo = statistics.mean(r["input"] for r in sel), statistics.mean(r["output"] for r in sel)
                changes = [r["output"] / r["input"] - 1 for r in sel]
                lines.append(f"| {name} | {category} | {cutoff // 1000} kHz | {mi:.3f} | {mo:.3f} | "
                             f"{100 * (mo / mi - 1):+.1f} % | {100 * max(changes):+.0f} % | "
                             f"{sum(c > 0.25 for c in changes)} of {len(sel)} |")
    return "\n".join(lines)


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cutoffs = sorted({r["cutoff_hz"] for rows in runs.values() for r in rows})
    markers = {"speech": "o", "music": "s", "effects": "^"}
    fig, axes = plt.subplots(1, len(cutoffs), figsize=(5.2 * len(cutoffs), 4), squeeze=False)
    for ax, cutoff in zip(axes[0], cutoffs):
        for i, (name, rows) in enumerate(runs.items()):
            for category in sorted({r["category"] for r in rows}):
                sel = [r for r in rows if r["cutoff_hz"] == cutoff and r["category"] == category]
                ax.scatter([r["bandwidth_hz"] / 1000 for r in sel], [100 * (r["output"] / r["input"] - 1) for r in sel],
                           color=f"C{i}", marker=markers.get(category, "x"), s=22, alpha=0.75,
                           label=f"{name}: {category}")
        ax.axhline(0, color="k", lw=0.8)
        ax.axhline(25, color="grey", ls=":", lw=0.8)
        ax.axvline(cutoff / 1000, color="grey", ls="--", lw=0.8)
        ax.set(xlabel="reference bandwidth (kHz)", ylabel="LSD change vs the input (%)",
               title=f"{cutoff // 1000} kHz input (dashed: the cutoff; dotted: +25 %)")
        ax.set_yscale("symlog", linthresh=100)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="NAME=CSV")
    p.add_argument("--out", default="runs/per_file_view.png")
    args = p.parse_args(argv)
    runs = {}
    for spec in args.runs:
        if "=" not in spec:
            p.error(f"{spec!r}: give NAME=CSV")
        name, path = spec.split("=", 1)
        if not Path(path).is_file():
            p.error(f"{path}: no such CSV (run experiments/real_audio.py or saga-sr evaluate first)")
        runs[name] = paired(Path(path))
    plot(runs, Path(args.out))
    table = target_table(runs)
    print(table)
    print(f"wrote {args.out}")
    return table


if __name__ == "__main__":
    main()
