"""LSD against DiT passes per window (NFE) for each official sampler and schedule, training-free.

    .venv/bin/python experiments/sampler_curve.py runs/saga_sr demo_assets/audio/val --clips 4 -o runs/sampler_curve
    .venv/bin/python experiments/sampler_curve.py runs/real_audio/seed0 data/real/val_eval --clips 2 \
        --cutoffs 4000 8000 --steps 1 2 4 8 16 32 --guided euler:linear_quadratic dpmpp:logsnr \
        --guided-steps 2 4 8 16 32 100 --student runs/real_audio_arc/seed0 -o runs/sampler_curve_real

For a trained model (a run folder with model.json and model.safetensors) and a folder of
full-band references: each reference simulated at each cutoff, upsampled with every sampler x
schedule x step count without guidance (both scales 1: one pass a step), and for the
``--guided`` sampler/schedule pairs (default: all) with eq. 4's guidance (3 passes a step) at
``--guided-steps``; a ``--student`` run (ARC post-trained) adds its own sampler at ``--steps``.
Scored with NU-Wave 2 LSD and LSD-LF. Writes ``curve.csv`` and ``curve.png`` (LSD
against NFE, one line per sampler, schedule and guidance) and prints the table. The other
``saga_sr`` settings are the model config's.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import time
from pathlib import Path



def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("references", type=Path)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--cutoffs", type=float, nargs="+", default=[4000])
    p.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16, 32, 100])
    p.add_argument("--samplers", nargs="+", default=["euler", "dpmpp", "pingpong"])
    p.add_argument("--schedules", nargs="+", default=["linear_quadratic", "linear", "logsnr"])
    p.add_argument("--guided", nargs="*", default=None,
                   help="SAMPLER:SCHEDULE pairs run with eq. 4's guidance (default: every pair)")
    p.add_argument("--guided-steps", type=int, nargs="+", default=None, help="steps of the guided runs (default --steps)")
    p.add_argument("--student", type=Path, default=None, help="run folder of an ARC post-trained student")
    p.add_argument("--student-schedules", nargs="+", default=None, help="default: the student config's own")
    p.add_argument("--plot-only", action="store_true", help="redraw curve.png from the output folder's curve.csv")
    p.add_argument("--append", action="store_true",
                   help="keep the rows of an earlier curve.csv in the output folder (same references and clips)")
    p.add_argument("--no-envelope", action="store_true", help="score without the added band's envelope matching")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("runs/sampler_curve"))
    args = p.parse_args(argv)

    import saga_sr_plugin  # noqa: F401
    from saga_sr_plugin.data.sidecar import read_captions
    from saga_sr_plugin.evaluation.metrics import lsd
    from saga_sr_plugin.inference.sampling import passes_per_step
    from saga_sr_plugin.inference.settings import MIN_STEPS
    from saga_sr_plugin.inference.upsampler import Upsampler
    from saga_sr_plugin.training.callbacks import load_examples, run_sr_examples

    def load(run: Path):
        return Upsampler.load(str(run / "model.json"), str(run / "model.safetensors"), device="cpu")

    upsampler = load(args.run)
    references = load_examples(str(args.references), args.clips, read_captions(str(args.references)))
    base = upsampler.settings()
    if args.no_envelope:
        base = dataclasses.replace(base, envelope_margin_db=None)
    rows = []
    earlier = args.output_dir / "curve.csv"
    if (args.append or args.plot_only) and earlier.exists():
        with open(earlier, newline="") as f:
            rows = [{k: (v if k in ("model", "sampler", "schedule", "guidance") else
                         int(v) if k in ("steps", "nfe") else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]
    guided = ({tuple(g.split(":")) for g in args.guided} if args.guided is not None
              else set(itertools.product(args.samplers, args.schedules)))
    runs = [("teacher", upsampler, sampler, sched, (1.0, 1.0), steps)
            for sampler, sched, steps in itertools.product(args.samplers, args.schedules, args.steps)]
    runs += [("teacher", upsampler, sampler, sched, (base.guidance_acoustic, base.guidance_text), steps)
             for sampler, sched in sorted(guided) for steps in (args.guided_steps or args.steps)]
    if args.student:
        student = load(args.student)
        own = student.settings()
        runs += [("student", student, own.sampler, sched, (1.0, 1.0), steps)
                 for sched in (args.student_schedules or [own.schedule]) for steps in args.steps]
    for model_name, model, sampler, sched, (s_a, s_t), steps in ([] if args.plot_only else runs):
        if steps < MIN_STEPS[sched]:
            continue
        model_base = base if model is upsampler else model.settings()
        if args.no_envelope:
            model_base = dataclasses.replace(model_base, envelope_margin_db=None)
        settings = dataclasses.replace(model_base, sampler=sampler, schedule=sched, steps=steps,
                                       guidance_acoustic=s_a, guidance_text=s_t)
        start = time.perf_counter()
        examples = run_sr_examples(model, references, args.cutoffs, settings=settings)
        seconds = time.perf_counter() - start
        scores = [lsd(e.output, e.reference, cutoff_hz=e.cutoff_hz) for e in examples]
        row = {"model": model_name, "sampler": sampler, "schedule": sched, "guidance": f"{s_a}/{s_t}", "steps": steps,
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
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, metric, label in zip(axes, ("lsd", "lsd_lf"), ("LSD (NU-Wave 2)", "LSD-LF (below the cutoff)")):
        keys = sorted({(r["model"], r["sampler"], r["schedule"], r["guidance"]) for r in rows})
        colours = plt.cm.tab20(np.linspace(0, 1, max(len(keys), 2)))
        for colour, key in zip(colours, keys):
            line = sorted((r for r in rows if (r["model"], r["sampler"], r["schedule"], r["guidance"]) == key),
                          key=lambda r: r["nfe"])
            style = "-" if key[0] == "student" else ("-." if key[3] != "1.0/1.0" else "--")
            ax.plot([r["nfe"] for r in line], [r[metric] for r in line], marker="o", linestyle=style, color=colour,
                    linewidth=2.5 if key[0] == "student" else 1.0,
                    label=f"{key[0]}: {key[1]} / {key[2]} / {'eq. 4' if key[3] != '1.0/1.0' else 'no guidance'}")
        ax.set_xscale("log")
        ax.set_xlabel("DiT passes per window (NFE)")
        ax.set_ylabel(label)
    axes[0].axhline(rows[0]["lsd_input"], color="grey", linewidth=0.8, label="unprocessed input")
    axes[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(args.output_dir / "curve.png", dpi=110)
    print(f"wrote {args.output_dir / 'curve.csv'} and {args.output_dir / 'curve.png'}")


if __name__ == "__main__":
    main()
