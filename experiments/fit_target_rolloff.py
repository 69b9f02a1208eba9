#!/usr/bin/env python
"""Fit the ``auto`` f_h rule's coefficients on training clips and measure it on held-out ones.

    python experiments/fit_target_rolloff.py --data data/real [--clips 800] [--out runs/target_rolloff]

Each of ``--clips`` training clips (a fixed random choice, band-limited ones included) is
simulated once as training simulates it (cutoff 2-16 kHz clamped to the clip's content, the
four filter types), the rule's three input measures are taken from the low-res clip, and
least squares fits f_h (the clip's own roll-off) on them (``inference.target_rolloff.fit_rule``).
The fitted rule, the fixed f_h of the recipe (0.6) and f_l alone are then scored on the
validation clips, full-band and band-limited, simulated at 4 and 8 kHz as the evaluation does
(mean absolute error of the normalised f_h; the rule told the cutoff as its rate's limit).
Writes ``OUT/rule.json`` (a ``target_rolloff_rule`` block for a model config), ``OUT/fit.md``
and ``OUT/fit.png`` (predicted against true f_h).
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/real")
    p.add_argument("--clips", type=int, default=800, help="training clips the rule is fitted on")
    p.add_argument("--held-out", type=int, default=80, help="clips per validation folder it is scored on")
    p.add_argument("--fixed", type=float, default=0.6, help="the fixed f_h it is compared with")
    p.add_argument("--out", default="runs/target_rolloff")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import numpy as np
    from tqdm.auto import tqdm

    from saga_sr_plugin.atomic import write_text
    from saga_sr_plugin.data.audio_io import list_audio_files, read_audio
    from saga_sr_plugin.data.spectral import rolloff_ratio
    from saga_sr_plugin.data.simulation import simulate_low_res
    from saga_sr_plugin.evaluation.protocol import simulate_input
    from saga_sr_plugin.inference.target_rolloff import fit_rule, input_features

    data, out = Path(args.data), Path(args.out)
    rng = random.Random(args.seed)
    train = list_audio_files(data / "train", what="training split (run experiments/real_audio_data.py)")
    train = rng.sample(train, min(args.clips, len(train)))
    draw = np.random.default_rng(args.seed)
    features, targets = [], []
    for path in tqdm(train, desc="fit: training clips", unit="clip"):
        ref, _ = read_audio(path)
        pair = simulate_low_res(ref, draw)
        features.append(input_features(pair.low_res))
        targets.append(pair.rolloff_hr)
    rule = fit_rule(features, targets)
    lines = [f"# The auto f_h rule, fitted on {len(train)} training clips of {data}", "",
             f"`{json.dumps(rule.__dict__)}`", "",
             f"Mean absolute error of f_h (normalised, 0.01 = 215 Hz) on held-out clips at 4 and 8 kHz:", "",
             f"| clips | n | true f_h (median) | auto rule | fixed {args.fixed} | f_l |", "|---|---|---|---|---|---|"]
    scatter = {}
    for folder in ("val", "val_band_limited"):
        if not (data / folder).is_dir():
            continue
        files = list_audio_files(data / folder)
        files = rng.sample(files, min(args.held_out, len(files)))
        true, auto, fixed, own = [], [], [], []
        for path in tqdm(files, desc=f"score: {folder}", unit="clip"):
            ref, _ = read_audio(path)
            for cutoff in (4000, 8000):
                low = simulate_input(ref, cutoff, 0, path.name)
                f = input_features(low)
                true.append(rolloff_ratio(ref))
                auto.append(rule.predict(f, nyquist=cutoff / 22050 * 1024 / 1025))
                fixed.append(args.fixed)
                own.append(f.input_rolloff)
        t = np.array(true)
        mae = {k: float(np.abs(np.array(v) - t).mean()) for k, v in (("auto", auto), ("fixed", fixed), ("f_l", own))}
        lines.append(f"| {folder} | {len(t)} | {np.median(t):.3f} | {mae['auto']:.3f} | {mae['fixed']:.3f} | {mae['f_l']:.3f} |")
        scatter[folder] = (true, auto)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "rule.json", json.dumps({"target_rolloff_rule": rule.__dict__}, indent=1))
    write_text(out / "fit.md", "\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for folder, (true, auto) in scatter.items():
        ax.scatter(true, auto, s=8, alpha=0.6, label=folder)
    ax.axhline(args.fixed, color="grey", ls=":", label=f"fixed {args.fixed}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="reference f_h (its own roll-off)", ylabel="auto f_h (from the input)", xlim=(0, 1), ylim=(0, 1),
           title="auto f_h rule, 4 and 8 kHz inputs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fit.png", dpi=110)
    print("\n".join(lines))
    return rule.__dict__


if __name__ == "__main__":
    main()
