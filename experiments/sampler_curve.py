"""LSD against DiT passes per window (NFE) for each official sampler and schedule, training-free.

    .venv/bin/python experiments/sampler_curve.py runs/saga_sr demo_assets/audio/val --clips 4 -o runs/sampler_curve

For a trained model (a run folder with model.json and model.safetensors) and a folder of
full-band references: each reference simulated at each cutoff, upsampled with every sampler x
schedule x step count, with eq. 4's guidance (3 passes a step) and without it (both scales 1:
one pass), and scored (NU-Wave 2 LSD and LSD-LF). Writes ``curve.csv`` and ``curve.png`` (LSD
against NFE, one line per sampler, schedule and guidance) and prints the table. The other
``saga_sr`` settings are the model config's.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("references", type=Path)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--cutoffs", type=float, nargs="+", default=[4000])
    p.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16, 32, 100])
    p.add_argument("--samplers", nargs="+", default=["euler", "dpmpp", "pingpong"])
    p.add_argument("--schedules", nargs="+", default=["linear_quadratic", "linear"])
    p.add_argument("--no-envelope", action="store_true", help="score without the added band's envelope matching")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("runs/sampler_curve"))
    args = p.parse_args(argv)

    import saga_sr_plugin  # noqa: F401
    from saga_sr_plugin.data.sidecar import read_captions
    from saga_sr_plugin.evaluation.metrics import lsd
    from saga_sr_plugin.inference.sampling import passes_per_step
    from saga_sr_plugin.inference.upsampler import Upsampler
    from saga_sr_plugin.training.callbacks import load_examples, run_sr_examples

    upsampler = Upsampler.load(str(args.run / "model.json"), str(args.run / "model.safetensors"), device="cpu")
    references = load_examples(str(args.references), args.clips, read_captions(str(args.references)))
    base = upsampler.settings()
    if args.no_envelope:
        base = dataclasses.replace(base, envelope_margin_db=None)
    rows = []
    guidance = [(base.guidance_acoustic, base.guidance_text), (1.0, 1.0)]
    for sampler, sched, (s_a, s_t), steps in itertools.product(args.samplers, args.schedules, guidance, args.steps):
        if steps < 2:
            continue
        settings = dataclasses.replace(base, sampler=sampler, schedule=sched, steps=steps,
                                       guidance_acoustic=s_a, guidance_text=s_t)
        start = time.perf_counter()
        examples = run_sr_examples(upsampler, references, args.cutoffs, settings=settings)
        seconds = time.perf_counter() - start
        scores = [lsd(e.output, e.reference, cutoff_hz=e.cutoff_hz) for e in examples]
        row = {"sampler": sampler, "schedule": sched, "guidance": f"{s_a}/{s_t}", "steps": steps,
               "nfe": steps * passes_per_step(s_a, s_t), "lsd": sum(s["lsd"] for s in scores) / len(scores),
               "lsd_lf": sum(s["lsd_lf"] for s in scores) / len(scores),
               "lsd_input": sum(e.lsd_input for e in examples) / len(examples),
               "seconds_per_example": seconds / len(examples)}
        rows.append(row)
        print(" ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with open(args.output_dir / "curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in sorted({(r["sampler"], r["schedule"], r["guidance"]) for r in rows}):
        line = sorted((r for r in rows if (r["sampler"], r["schedule"], r["guidance"]) == key), key=lambda r: r["nfe"])
        ax.plot([r["nfe"] for r in line], [r["lsd"] for r in line], marker="o",
                linestyle="-" if key[2] != "1.0/1.0" else "--", label=" / ".join(key))
    ax.axhline(rows[0]["lsd_input"], color="grey", linewidth=0.8, label="unprocessed input")
    ax.set_xscale("log")
    ax.set_xlabel("DiT passes per window (NFE)")
    ax.set_ylabel("LSD (NU-Wave 2)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output_dir / "curve.png", dpi=110)
    print(f"wrote {args.output_dir / 'curve.csv'} and {args.output_dir / 'curve.png'}")


if __name__ == "__main__":
    main()
