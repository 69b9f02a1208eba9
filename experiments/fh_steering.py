#!/usr/bin/env python
"""Does f_h steer the model? The raw output's energy above the cutoff, per octave, as f_h is asked for.

    python experiments/fh_steering.py synthetic [--out runs/fh_steering] [--max-time 00:00:10:00]
    python experiments/fh_steering.py measure --model NAME=RUN_DIR ... --clips FOLDER [--cutoff 4000]

``synthetic`` builds a set whose references' bandwidth B is drawn from 3-21 kHz at every training
draw, independently of the input cutoff (full-band synthetic clips, the target low-passed by the
authors' ``output_cut_off_freq_range``: ``saga_sr.target_lowpass_hz``), so f_h is the only cue to B;
trains the demo config on it for at most ``--max-time`` (CPU), and a control whose f_h is held
constant (``saga_sr.fixed_target_rolloff``) on the same data for the same time; then measures both.

``measure`` upsamples each clip simulated at ``--cutoff`` with f_h in ``--rolloffs`` (only those above
the input's own f_l: training never shows f_h below f_l) and reads the **raw** output (no
low-frequency replacement, no caps), so nothing after the model moves the figure: the band energy in
octaves above the cutoff and in 12-20 kHz, mean over clips, dB re. full scale. Writes
``OUT/fh_steering.md``, ``.json`` and ``.png``. The target of issue 25: the steered model's 12-20 kHz
energy falls by at least 10 dB from f_h 0.9 to 0.5, the control's does not.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from saga_sr_plugin.data.audio_io import list_audio_files, read_audio
from saga_sr_plugin.data.demo_assets import ensure_demo_assets, write_split
from saga_sr_plugin.data.audio_format import SAMPLE_RATE
from saga_sr_plugin.data.spectral import rolloff_ratio
from saga_sr_plugin.evaluation.levels import band_power
from saga_sr_plugin.evaluation.protocol import simulate_input
from saga_sr_plugin.inference.upsampler import Upsampler, raw_settings

ROOT = Path(__file__).resolve().parents[1]
ROLLOFFS = (0.3, 0.5, 0.7, 0.9)
BANDS_HZ = ((4000, 8000), (8000, 12000), (12000, 16000), (16000, 22050), (12000, 20000))
STEERED = {"min_cutoff_hz": 2000, "max_cutoff_hz": 16000, "target_lowpass_hz": [3000, 21000]}
CONTROL = {**STEERED, "fixed_target_rolloff": 0.6}


def band_db(audio: torch.Tensor, lo: float, hi: float) -> float:
    return 10 * math.log10(max(band_power(audio, lo, hi), 1e-20))


def measure(upsampler: Upsampler, clips: list[tuple[str, torch.Tensor]], cutoff: float,
            rolloffs: tuple[float, ...], steps: int) -> dict:
    """{f_h: {band: mean dB}} of the raw output over the clips whose f_l is below that f_h."""
    settings = raw_settings(upsampler.settings(steps=steps, target_rolloff=0.9))
    levels: dict[float, dict[str, list[float]]] = {f: {} for f in rolloffs}
    for name, ref in clips:
        lowres = simulate_input(ref, cutoff, name=name)
        f_l = rolloff_ratio(lowres)
        for f_h in rolloffs:
            if f_h <= f_l:
                continue
            out = upsampler.upsample(lowres, SAMPLE_RATE, caption="", target_rolloff=f_h, nyquist_hz=cutoff,
                                     settings=settings).audio
            for lo, hi in BANDS_HZ:
                if lo >= cutoff:
                    levels[f_h].setdefault(f"{lo / 1000:g}-{hi / 1000:g} kHz", []).append(band_db(out, lo, hi))
    return {f: {band: float(np.mean(v)) for band, v in bands.items()} | {"clips": len(next(iter(bands.values()), []))}
            for f, bands in levels.items() if bands}


def load_clips(folder: str | Path, count: int, seconds: float | None = None) -> list[tuple[str, torch.Tensor]]:
    clips = []
    for path in list_audio_files(folder)[:count]:
        audio, rate = read_audio(path)
        if rate != SAMPLE_RATE:
            continue
        audio = audio.expand(2, -1) if audio.shape[0] == 1 else audio
        clips.append((path.name, audio[:, :int(seconds * SAMPLE_RATE)] if seconds else audio))
    return clips


def report(results: dict[str, dict], out: Path, title: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"# {title}\n", "Raw output (no LFR, no caps), mean band energy over the clips, dB re. full scale; "
             "only f_h above the input's own f_l.\n"]
    first = next(iter(next(iter(results.values())).values()))
    bands = [b for b in first if b != "clips"]
    for model, by_rolloff in results.items():
        lines += [f"\n**{model}**\n", "| f_h | clips | " + " | ".join(bands) + " |", "|---|---|" + "---|" * len(bands)]
        for f_h, levels in sorted(by_rolloff.items()):
            lines.append(f"| {f_h:g} | {levels['clips']} | " + " | ".join(f"{levels[b]:.1f}" for b in bands) + " |")
        if 0.9 in by_rolloff and 0.5 in by_rolloff and "12-20 kHz" in by_rolloff[0.9]:
            drop = by_rolloff[0.9]["12-20 kHz"] - by_rolloff[0.5]["12-20 kHz"]
            lines.append(f"\n12-20 kHz from f_h 0.9 to 0.5: {-drop:+.1f} dB ({'meets' if drop >= 10 else 'misses'} "
                         "the target of a fall of at least 10 dB)")
    fig, axes = plt.subplots(1, len(bands), figsize=(3.2 * len(bands), 3.2), sharey=True)
    for ax, band in zip(np.atleast_1d(axes), bands):
        for model, by_rolloff in results.items():
            xs = sorted(by_rolloff)
            ax.plot(xs, [by_rolloff[x][band] for x in xs], marker="o", label=model)
        ax.set_title(band)
        ax.set_xlabel("f_h asked for")
    np.atleast_1d(axes)[0].set_ylabel("raw output band energy (dB)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "fh_steering.png", dpi=110)
    plt.close(fig)
    text = "\n".join(lines) + f"\n\n![f_h sweep](fh_steering.png)\n"
    (out / "fh_steering.md").write_text(text)
    (out / "fh_steering.json").write_text(json.dumps({m: {str(k): v for k, v in r.items()} for m, r in results.items()},
                                                     indent=2))
    return text


def synthetic(args: argparse.Namespace) -> None:
    from saga_sr_plugin.interface import train as train_entry

    data = Path(args.data)
    if not (data / "test").is_dir():
        rng = np.random.default_rng(7)
        write_split(data / "train", args.train_clips, rng, 2.0)
        write_split(data / "test", args.test_clips, rng, 2.0)
    ensure_demo_assets()   # the demo config's tiny T5
    runs = {}
    for name, block in (("steered", STEERED), ("control", CONTROL)):
        config = data / f"{name}_dataset.json"
        config.write_text(json.dumps({"dataset_type": "audio_dir", "random_crop": True, "drop_last": True,
                                      "datasets": [{"id": name, "path": str(data / "train"),
                                                    "custom_metadata_module": "saga_sr_plugin.data.metadata"}],
                                      "saga_sr": block}))
        run = Path(args.out) / name
        if not (run / "model.safetensors").is_file():
            train_entry.main(["--model-config", str(ROOT / "model_configs" / "saga_demo_config.json"),
                              "--dataset-config", str(config), "--save-dir", args.out, "--name", name,
                              "--max-steps", "100000", "--max-time", args.max_time, "--demo-every", "0",
                              "--no-final-demo", "--logger", "csv", "--seed", str(args.seed)])
        runs[name] = run
    clips = load_clips(data / "test", args.test_clips)
    results = {name: measure(Upsampler.load(str(run / "model.json"), str(run / "model.safetensors"), "cpu"), clips,
                             args.cutoff, tuple(args.rolloffs), args.steps) for name, run in runs.items()}
    print(report(results, Path(args.out), f"synthetic set (B drawn 3-21 kHz), {args.cutoff / 1000:g} kHz input, "
                                           f"{len(clips)} clips, {args.max_time} of CPU training each"))


def measure_command(args: argparse.Namespace) -> None:
    clips = load_clips(args.clips, args.count, args.seconds)
    results = {}
    for spec in args.model:
        name, _, folder = spec.partition("=")
        upsampler = Upsampler.load(str(Path(folder) / "model.json"), str(Path(folder) / "model.safetensors"), "cpu")
        results[name] = measure(upsampler, clips, args.cutoff, tuple(args.rolloffs), args.steps)
    print(report(results, Path(args.out), f"{args.clips}, {args.cutoff / 1000:g} kHz input, {len(clips)} clips"))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("synthetic")
    s.add_argument("--data", default="data/fh_synth")
    s.add_argument("--out", default="runs/fh_steering")
    s.add_argument("--train-clips", type=int, default=96)
    s.add_argument("--test-clips", type=int, default=8)
    s.add_argument("--max-time", default="00:00:10:00")
    s.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("measure")
    m.add_argument("--model", nargs="+", required=True, help="NAME=RUN_DIR (model.json and model.safetensors)")
    m.add_argument("--clips", required=True)
    m.add_argument("--count", type=int, default=8)
    m.add_argument("--seconds", type=float, default=None)
    m.add_argument("--out", default="runs/fh_steering_real")
    for q in (s, m):
        q.add_argument("--cutoff", type=float, default=4000)
        q.add_argument("--rolloffs", type=float, nargs="+", default=list(ROLLOFFS))
        q.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    synthetic(args) if args.command == "synthetic" else measure_command(args)


if __name__ == "__main__":
    main()
