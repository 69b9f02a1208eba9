#!/usr/bin/env python
"""Proof of learning on CPU: train the demo config, then score LSD on held-out demo clips.

For each seed: ``train_entry.py`` on the demo training split (time-limited), export
the EMA weights, upsample the held-out split simulated at 4 kHz and 8 kHz cutoffs
(the evaluation protocol of ``saga-sr evaluate``), and compare LSD with the
unprocessed and sinc-resampled inputs. Prints a Markdown table of mean ± std over
seeds and writes it, the per-file CSV, a plot and example audio under ``--out``.

    .venv/bin/python experiments/proof_of_learning.py --seeds 0 1 2 --max-time 00:00:15:00
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model-config", default="model_configs/saga_demo_config.json")
    p.add_argument("--max-time", default="00:00:15:00", help="training wall time per seed (DD:HH:MM:SS)")
    p.add_argument("--max-steps", type=int, default=100000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="Euler steps (config default)")
    p.add_argument("--cutoffs", type=float, nargs="+", default=[4000, 8000])
    p.add_argument("--out", default="runs/proof_of_learning")
    p.add_argument("--demo-every", type=int, default=0,
                   help="SR demo / val LSD interval while training (0: only at the end; demos cost training time)")
    p.add_argument("--skip-training", action="store_true", help="reuse the exported weights under --out")
    args = p.parse_args()

    import torch
    import train_entry
    from saga_sr_plugin.demo import ensure_demo_assets
    from saga_sr_plugin.evaluation import evaluate, markdown_table, plot_summary, write_csv
    from saga_sr_plugin.inference import Upsampler
    from saga_sr_plugin.metrics import mean_std
    from saga_sr_plugin.sidecar import read_captions

    demo = ensure_demo_assets()
    val_dir = demo / "audio" / "val"
    captions = read_captions(val_dir)
    out = Path(args.out)
    all_rows, timings = [], {}
    if args.skip_training and (out / "results.json").exists():  # keep the training times of the run being re-scored
        timings = {int(k): tuple(v) for k, v in json.loads((out / "results.json").read_text())["timings"].items()}
    for seed in args.seeds:
        name = f"seed{seed}"
        weights = out / name / "model.safetensors"
        if not args.skip_training:
            start = time.time()
            run = train_entry.main(["--model-config", args.model_config, "--save-dir", str(out), "--name", name,
                                    "--max-time", args.max_time, "--max-steps", str(args.max_steps),
                                    "--batch-size", str(args.batch_size), "--num-workers", "1", "--seed", str(seed),
                                    "--checkpoint-every", "1000000", "--demo-every", str(args.demo_every)])
            timings[seed] = (time.time() - start, run.trainer.global_step)
        upsampler = Upsampler.load(str(weights.with_suffix(".json")), str(weights), device="cpu")
        settings = upsampler.settings(steps=args.steps, seed=seed)

        def system(lowres, sr, cutoff, rel, upsampler=upsampler, settings=settings):
            return upsampler.upsample(lowres, sr, caption=captions.get(rel, ""), settings=settings).audio

        torch.manual_seed(seed)
        rows = evaluate(val_dir, {"saga-sr (demo)": system}, args.cutoffs, seed=0,
                        save_inputs=str(out / "inputs") if seed == args.seeds[0] else None).rows
        for r in rows:
            r["seed"] = seed
        all_rows += rows

    out.mkdir(parents=True, exist_ok=True)
    write_csv([{k: v for k, v in r.items() if k != "seed"} for r in all_rows], out / "lsd_per_file.csv")
    plot_summary(all_rows, out / "lsd.png")
    lines = ["# Proof of learning: demo config on CPU", "",
             f"seeds {args.seeds}; training per seed: " + ", ".join(
                 f"seed {s}: {t / 60:.1f} min, {n} steps" for s, (t, n) in timings.items()), "",
             "Per-seed mean over held-out clips, then mean ± std over seeds (LSD, lower is better):", "",
             "| metric | cutoff | unprocessed | sinc | saga-sr (demo) | change vs unprocessed |", "|---|---|---|---|---|---|"]
    for metric in ("nuwave2/lsd", "ssr/lsd", "nuwave2/lsd_hf", "nuwave2/lsd_lf"):
        for cutoff in args.cutoffs:
            cells = {}
            for system in ("unprocessed", "sinc", "saga-sr (demo)"):
                per_seed = []
                for seed in args.seeds:
                    vals = [r[metric] for r in all_rows if r["seed"] == seed and r["system"] == system
                            and r["cutoff_hz"] == int(cutoff)]
                    per_seed.append(sum(vals) / len(vals))
                cells[system] = mean_std(per_seed)
            change = (cells["saga-sr (demo)"][0] / cells["unprocessed"][0] - 1) * 100
            lines.append(f"| {metric} | {int(cutoff) // 1000} kHz | " + " | ".join(
                f"{m:.3f} ± {s:.3f}" for m, s in cells.values()) + f" | {change:+.1f} % |")
    lines += ["", "Per-file detail (all seeds pooled):", markdown_table(all_rows, ("nuwave2/lsd",))]
    report = "\n".join(lines)
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(json.dumps({"timings": timings, "args": vars(args)}, indent=2))
    print(report)


if __name__ == "__main__":
    main()
