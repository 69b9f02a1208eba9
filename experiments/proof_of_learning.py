#!/usr/bin/env python
"""Proof of learning on CPU: train seeds through ``train_entry.py``, then score LSD on held-out clips.

For each seed: ``train_entry.py`` on the training set (time-limited; Lightning's CSV
logger records the loss and the SR-demo validation LSD), export the EMA weights,
upsample the held-out references simulated at 4 kHz and 8 kHz cutoffs with
``saga-sr evaluate``'s protocol and code (each reference's caption from its folder's
``captions.jsonl``), and compare LSD with the unprocessed and sinc-resampled inputs,
per category (first-level folders). Writes under ``--out``: ``results.md`` (mean ± std
over seeds of the per-seed means), the per-file CSV, ``learning_curves.png``, and WAVs
+ spectrogram PNGs of a few held-out clips per seed (``seedN/examples``).

    .venv/bin/python experiments/proof_of_learning.py --seeds 0 1 2 --max-time 00:00:10:00   # demo set
    .venv/bin/python experiments/real_audio.py                                               # real recordings
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SYSTEM = "saga-sr"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from saga_sr_plugin.interface.setting_flags import add_set_argument

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model-config", default="model_configs/saga_demo_config.json")
    p.add_argument("--dataset-config", default=None, help="training data (default: the demo set)")
    p.add_argument("--eval-dir", default=None, help="held-out references, category subfolders (default: demo val)")
    p.add_argument("--demo-dir", default=None, help="clips for the validation LSD while training (default: eval dir)")
    p.add_argument("--title", default="Proof of learning: demo config on CPU")
    p.add_argument("--max-time", default="00:00:15:00", help="training wall time per seed (DD:HH:MM:SS)")
    p.add_argument("--max-steps", type=int, default=100000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="Euler steps (config default)")
    p.add_argument("--cutoffs", type=float, nargs="+", default=[4000, 8000])
    p.add_argument("--out", default="runs/proof_of_learning")
    p.add_argument("--demo-every", type=int, default=0,
                   help="validation LSD interval while training (0: only at the end; demos cost training time)")
    p.add_argument("--demo-count", type=int, default=3)
    p.add_argument("--examples", type=int, default=2, help="held-out clips per category written as WAV + PNG")
    p.add_argument("--skip-training", action="store_true", help="reuse the exported weights under --out")
    p.add_argument("--train-only", action="store_true", help="train and export every seed, evaluate later")
    p.add_argument("--target-rolloff", default=None,
                   help="f_h at evaluation: a number, auto (from each input) or oracle (each reference's own; "
                        "config default)")
    add_set_argument(p)   # --set NAME=VALUE: any saga_sr setting at evaluation, e.g. --set slope_cap_db=none
    p.add_argument("--eval-name", default="", help="suffix of the result files (to keep several evaluations)")
    p.add_argument("--precision", default="32", help="Lightning precision of training (bf16-mixed on a GPU)")
    p.add_argument("--num-workers", type=int, default=1, help="data workers per training run")
    p.add_argument("--device", default="auto", help="evaluation device: auto (the GPU when there is one), cpu, cuda")
    return p.parse_args(argv)


def learning_curves(out: Path, seeds: list[int], path: Path) -> str | None:
    """Validation LSD (and training loss) against steps, one line per seed, from the CSV logs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    found = False
    for seed in seeds:
        metrics = out / f"seed{seed}" / "csv" / "metrics.csv"
        if not metrics.exists():
            continue
        rows = list(csv.DictReader(metrics.open()))
        for key, ax in (("val/lsd_4k", axes[0]), ("val/lsd_8k", axes[0]), ("train/loss", axes[1])):
            points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
            if points:
                found = True
                steps, values = zip(*points)
                if key == "train/loss":  # smoothed: one point per 50 logged steps
                    k = 50
                    steps = steps[k - 1::k]
                    values = [sum(values[i:i + k]) / len(values[i:i + k]) for i in range(0, len(values) - k + 1, k)]
                ax.plot(steps, values, label=f"seed {seed} {key.split('/')[-1]}")
    if not found:
        plt.close(fig)
        return None
    axes[0].set(xlabel="step", ylabel="LSD (NU-Wave 2)", title="validation LSD of the EMA model")
    axes[1].set(xlabel="step", ylabel="loss", title="training loss (mean of 50 steps)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch
    from saga_sr_plugin.interface import train as train_entry
    from saga_sr_plugin.training.callbacks import run_sr_examples, write_examples
    from saga_sr_plugin.data.demo_assets import ensure_demo_assets
    from saga_sr_plugin.evaluation.protocol import (evaluate, list_references, load_reference, markdown_table,
                                                    plot_summary, reference_rolloffs, write_csv)
    from saga_sr_plugin.inference.upsampler import Upsampler
    from saga_sr_plugin.evaluation.metrics import mean_std
    from saga_sr_plugin.data.sidecar import captions_under

    if args.eval_dir is None:
        eval_dir = ensure_demo_assets() / "audio" / "val"
    else:
        eval_dir = Path(args.eval_dir)
    captions = captions_under(eval_dir)
    out = Path(args.out)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    all_rows, timings = [], {}
    if args.skip_training and (out / "results.json").exists():  # keep the training times of the run being re-scored
        timings = {int(k): tuple(v) for k, v in json.loads((out / "results.json").read_text())["timings"].items()}
    for seed in args.seeds:
        name = f"seed{seed}"
        weights = out / name / "model.safetensors"
        if not args.skip_training:
            start = time.time()
            extra = ["--dataset-config", args.dataset_config] if args.dataset_config else []
            if args.demo_every:
                extra += ["--demo-dir", args.demo_dir or str(eval_dir), "--demo-count", str(args.demo_count)]
            run = train_entry.main(["--model-config", args.model_config, "--save-dir", str(out), "--name", name,
                                    "--max-time", args.max_time, "--max-steps", str(args.max_steps),
                                    "--batch-size", str(args.batch_size), "--num-workers", str(args.num_workers),
                                    "--precision", args.precision, "--seed", str(seed),
                                    "--checkpoint-every", "1000000", "--demo-every", str(args.demo_every),
                                    "--logger", "csv", *extra])
            timings[seed] = (time.time() - start, run.trainer.global_step)
            (out / name / "timing.json").write_text(json.dumps(timings[seed]))
        if args.train_only:
            continue
        if seed not in timings and (out / name / "timing.json").exists():
            timings[seed] = tuple(json.loads((out / name / "timing.json").read_text()))
        cached = out / name / f"rows{args.eval_name}.json"
        if args.skip_training and cached.exists():  # this seed was already scored with these settings
            all_rows += json.loads(cached.read_text())
            continue
        upsampler = Upsampler.load(str(weights.with_suffix(".json")), str(weights), device=device)
        oracle = args.target_rolloff == "oracle"
        target = None if oracle or args.target_rolloff is None else (
            args.target_rolloff if args.target_rolloff == "auto" else float(args.target_rolloff))
        settings = dataclasses.replace(upsampler.settings(steps=args.steps, seed=seed, target_rolloff=target),
                                       **dict(args.settings))
        system = upsampler.system(settings, captions=captions,
                                  target_rolloffs=reference_rolloffs(eval_dir) if oracle else None)

        torch.manual_seed(seed)
        rows = evaluate(eval_dir, {SYSTEM: system}, args.cutoffs, seed=0,
                        save_inputs=str(out / "inputs") if seed == args.seeds[0] else None).rows
        for r in rows:
            r["seed"] = seed
        all_rows += rows
        cached.write_text(json.dumps(rows))
        by_category: dict[str, list[Path]] = {}
        for f in list_references(eval_dir):
            by_category.setdefault(f.relative_to(eval_dir).parts[0], []).append(f)
        chosen = [f for files in by_category.values() for f in files[:args.examples]]
        references = [(f.relative_to(eval_dir).as_posix().replace("/", "_"), load_reference(f),
                       captions.get(f.relative_to(eval_dir).as_posix(), "")) for f in chosen]
        write_examples(run_sr_examples(upsampler, references, args.cutoffs, settings=dataclasses.replace(settings, seed=0),
                                       oracle=oracle),
                       out / name / f"examples{args.eval_name}")

    if args.train_only:
        return {}
    out.mkdir(parents=True, exist_ok=True)
    write_csv([{k: v for k, v in r.items() if k != "seed"} for r in all_rows], out / f"lsd_per_file{args.eval_name}.csv")
    plot_summary(all_rows, out / f"lsd{args.eval_name}.png")
    curves = learning_curves(out, args.seeds, out / "learning_curves.png")
    categories = sorted({r["category"] for r in all_rows}) + ["all"]
    lines = [f"# {args.title}", "",
             f"seeds {args.seeds}; training per seed: " + ", ".join(
                 f"seed {s}: {t / 60:.1f} min, {n} steps" for s, (t, n) in timings.items()), "",
             "Per-seed mean over held-out clips, then mean ± std over seeds (LSD, lower is better; NU-Wave 2 "
             "convention unless named ssr):", "",
             "| category | metric | cutoff | unprocessed | sinc | saga-sr | change vs unprocessed |",
             "|---|---|---|---|---|---|---|"]
    summary = {}
    for category in categories:
        for metric in ("nuwave2/lsd", "nuwave2/lsd_lf", "nuwave2/lsd_hf", "ssr/lsd"):
            for cutoff in args.cutoffs:
                cells = {}
                for system_name in ("unprocessed", "sinc", SYSTEM):
                    per_seed = []
                    for seed in args.seeds:
                        vals = [r[metric] for r in all_rows if r["seed"] == seed and r["system"] == system_name
                                and r["cutoff_hz"] == int(cutoff) and category in (r["category"], "all")]
                        if vals:
                            per_seed.append(sum(vals) / len(vals))
                    cells[system_name] = mean_std(per_seed)
                change = (cells[SYSTEM][0] / cells["unprocessed"][0] - 1) * 100
                summary[f"{category}/{metric}/{int(cutoff)}"] = {k: v[0] for k, v in cells.items()}
                lines.append(f"| {category} | {metric} | {int(cutoff) // 1000} kHz | " + " | ".join(
                    f"{m:.3f} ± {s:.3f}" for m, s in cells.values()) + f" | {change:+.1f} % |")
    lines += ["", f"Learning curves: {curves}" if curves else "",
              "", "Per-file detail (all seeds pooled):", markdown_table(all_rows, ("nuwave2/lsd",))]
    report = "\n".join(lines)
    (out / f"results{args.eval_name}.md").write_text(report)
    (out / f"results{args.eval_name}.json").write_text(json.dumps({"timings": timings, "args": vars(args), "summary": summary},
                                                 indent=2))
    print(report)
    return summary


if __name__ == "__main__":
    main()
