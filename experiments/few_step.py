#!/usr/bin/env python
"""Few-step SAGA-SR: an ARC post-trained student against its eq. 4 teacher, side by side in one run.

    .venv/bin/python experiments/few_step.py --teacher runs/real_audio/seed0 --student runs/real_audio_arc/seed0 \\
        --student-labels ARC --references data/real/test_eval --out runs/few_step

Each run folder holds ``model.json`` + ``model.safetensors`` (train_entry's export). The
teacher runs the paper's sampler (Euler, linear-quadratic schedule, eq. 4: 3 DiT passes a
step) at ``--teacher-steps``; the student runs its exported config's sampler (pingpong,
log-SNR schedule, no guidance: 1 pass a step) at ``--student-steps``; ``--training-free``
adds the teacher with other samplers (``SAMPLER:SCHEDULE:STEPS:guided|unguided``). Every
system sees the same simulated inputs (``saga-sr evaluate``'s protocol, 4 and 8 kHz) and
is timed on this machine in this run; the DiT passes per window follow from the settings
(``inference.sampling.passes_per_step``; a counting DiT checks it in the tests). Writes ``results.md`` (per category x cutoff: LSD and LSD-LF,
NFE and seconds per window, ratios to the 100-step teacher), ``results.json``,
``lsd_per_file.csv`` and spectrograms of one clip per category (reference, teacher,
student) under ``spectrograms/``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch

import saga_sr_plugin  # noqa: F401
from saga_sr_plugin.data.sidecar import read_captions
from saga_sr_plugin.evaluation.plots import save_spectrograms
from saga_sr_plugin.evaluation.protocol import (
    evaluate, load_reference, simulate_input, summarise, write_csv)
from saga_sr_plugin.inference.sampling import passes_per_step
from saga_sr_plugin.inference.upsampler import Upsampler

SR = 44100


@dataclasses.dataclass
class TimedSystem:
    """An upsampler system that counts its windows and its wall time; DiT passes per window from its settings
    (``inference.sampling.passes_per_step``, checked against a counting DiT in tests/inference/test_samplers.py)."""

    upsampler: Upsampler
    system: tp.Any
    seconds: float = 0.0
    windows: int = 0
    outputs: dict = dataclasses.field(default_factory=dict)   # (relative path, cutoff) -> output, for band levels

    def many(self, inputs: list) -> list:
        start = time.perf_counter()
        out = self.system.many(inputs)
        self.seconds += time.perf_counter() - start
        self.windows += sum(self.upsampler.window_count(x.shape[-1], self.system.settings) for x, *_ in inputs)
        for (_, _, cutoff, rel), audio in zip(inputs, out):
            if isinstance(audio, dict):
                self.outputs[(rel, int(cutoff))] = audio[""]
        return out

    @property
    def nfe(self) -> float:
        s = self.system.settings
        return passes_per_step(s.guidance_acoustic, s.guidance_text) * s.steps

    @property
    def seconds_per_window(self) -> float:
        return self.seconds / max(self.windows, 1)


def load(run: Path, device: str) -> Upsampler:
    return Upsampler.load(str(run / "model.json"), str(run / "model.safetensors"), device=device)


def build_systems(teacher: Upsampler, students: dict[str, Upsampler], captions: dict[str, str],
                  args) -> dict[str, TimedSystem]:
    systems: dict[str, TimedSystem] = {}
    for steps in args.teacher_steps:
        settings = teacher.settings(steps=steps, sampler="euler", schedule="linear_quadratic")
        systems[f"teacher euler {steps}"] = TimedSystem(teacher, teacher.system(settings, "", captions))
    for spec in args.training_free:
        sampler, schedule, steps, guided = spec.split(":")
        if guided not in ("guided", "unguided"):
            raise SystemExit(f"--training-free {spec}: the last field is guided or unguided")
        scales = {} if guided == "guided" else {"guidance_acoustic": 1.0, "guidance_text": 1.0}
        settings = teacher.settings(steps=int(steps), sampler=sampler, schedule=schedule, **scales)
        systems[f"teacher {sampler}/{schedule} {steps} {guided}"] = TimedSystem(teacher, teacher.system(settings, "", captions))
    for label, student in students.items():
        for steps in args.student_steps:
            settings = student.settings(steps=steps)
            systems[f"{label} {settings.sampler} {steps}"] = TimedSystem(student, student.system(settings, "", captions))
    return systems


def table(rows: list[dict], systems: dict[str, TimedSystem], reference_system: str) -> str:
    lsd, lsd_lf = summarise(rows, "nuwave2/lsd"), summarise(rows, "nuwave2/lsd_lf")
    names = ["unprocessed", *systems]
    cats = sorted({k[0] for k in lsd}, key=lambda c: (c == "all", c))
    cutoffs = sorted({k[1] for k in lsd})
    lines = ["| category | cutoff | system | NFE / window | s / window | LSD | vs teacher | LSD-LF | vs input |",
             "|---|---|---|---|---|---|---|---|---|"]
    for cat in cats:
        for c in cutoffs:
            ref = lsd[(cat, c, reference_system)][0]
            lf_in = lsd_lf[(cat, c, "unprocessed")][0]
            for name in names:
                if (cat, c, name) not in lsd:
                    continue
                value, lf = lsd[(cat, c, name)][0], lsd_lf[(cat, c, name)][0]
                timed = systems.get(name)
                nfe = f"{timed.nfe:.0f}" if timed else "-"
                spw = f"{timed.seconds_per_window:.3f}" if timed else "-"
                lines.append(f"| {cat} | {c // 1000} kHz | {name} | {nfe} | {spw} | {value:.3f} | "
                             f"{100 * (value / ref - 1):+.1f} % | {lf:.3f} | {lf - lf_in:+.3f} |")
    return "\n".join(lines) + "\n"


def level_table(references: Path, systems: dict[str, TimedSystem]) -> str:
    """Each system's added band against the reference's, dB per band (+: too loud), mean over the files of a
    category and cutoff: what LSD folds into one number."""
    from saga_sr_plugin.evaluation.levels import added_band_levels

    cells: dict[tuple[str, int, str], dict[str, list[float]]] = {}
    bands: list[str] = []
    refs: dict[str, torch.Tensor] = {}
    for name, timed in systems.items():
        for (rel, cutoff), audio in timed.outputs.items():
            ref = refs.setdefault(rel, load_reference(references / rel))
            out = audio if audio.shape[0] == ref.shape[0] else audio.mean(0, keepdim=True).expand(ref.shape[0], -1)
            for band, db in added_band_levels(out, ref, cutoff).items():
                bands = bands if band in bands else [*bands, band]
                cells.setdefault((Path(rel).parts[0], cutoff, name), {}).setdefault(band, []).append(db)
    lines = ["| category | cutoff | system | " + " | ".join(bands) + " |", "|---|---|---|" + "---|" * len(bands)]
    for cat, cutoff, name in sorted(cells, key=lambda k: (k[0], k[1], list(systems).index(k[2]))):
        got = cells[(cat, cutoff, name)]
        lines.append(f"| {cat} | {cutoff // 1000} kHz | {name} | "
                     + " | ".join(f"{sum(got[b]) / len(got[b]):+.1f}" if b in got else "" for b in bands) + " |")
    return "\n".join(lines) + "\n"


def spectrograms(references: Path, systems: dict[str, TimedSystem], names: list[str], out: Path,
                 cutoff: float, seed: int) -> list[str]:
    """Reference, input and each named system's scored output for the first clip of every category."""
    written = []
    for category in sorted(p.name for p in references.iterdir() if p.is_dir()):
        scored = sorted(rel for rel, c in systems[names[0]].outputs if c == int(cutoff) and Path(rel).parts[0] == category)
        if not scored:
            continue
        rel = scored[0]
        ref = load_reference(references / rel)
        panels = [("reference", ref, SR), (f"input ({cutoff / 1000:.0f} kHz)", simulate_input(ref, cutoff, seed, rel), SR)]
        panels += [(f"{name} ({systems[name].nfe:.0f} NFE)", systems[name].outputs[(rel, int(cutoff))], SR) for name in names]
        path = out / f"{category}_{int(cutoff)}.png"
        save_spectrograms(path, panels, title=f"{rel}: teacher vs student")
        written.append(str(path))
    return written


def plot_learning_curves(runs: dict[str, Path], path: Path) -> str:
    """Validation LSD (the SR-demo callback's, in each run's csv/metrics.csv) and the adversarial losses per step."""
    import csv

    if not runs:
        return "none (no csv/metrics.csv in the student folders)"
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2))
    for label, run in runs.items():
        with open(run / "csv" / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for key, style in (("val/lsd_4k", "-"), ("val/lsd_8k", "--")):
            points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
            if points:
                ax.plot(*zip(*points), style, marker="o", label=f"{label}, {key[-2:]} input")
        for key, style in (("train/gen_loss", "-"), ("train/dis_loss", ":"), ("train/ode_mse_loss", "-.")):
            points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
            # Lightning's CSV rows repeat a metric's last value once it is no longer logged (the warm-up's)
            points = [pt for i, pt in enumerate(points) if i == 0 or pt[1] != points[i - 1][1]]
            if points:
                steps, values = zip(*points)
                smooth = [sum(values[max(0, i - 20):i + 1]) / len(values[max(0, i - 20):i + 1]) for i in range(len(values))]
                bx.plot(steps, smooth, style, label=f"{label}: {key.split('/')[1]}")
    ax.set_xlabel("post-training step")
    ax.set_ylabel("validation LSD (4 clips, 8 pingpong steps)")
    ax.legend(fontsize=7)
    bx.set_xlabel("post-training step")
    bx.set_ylabel("loss (running mean of 21)")
    bx.set_yscale("log")
    bx.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", type=Path, required=True, help="run folder of the model trained the paper's way")
    p.add_argument("--student", type=Path, nargs="*", default=[], help="run folders of ARC post-trained students")
    p.add_argument("--student-labels", nargs="*", default=None, help="their names in the table (default: the folders')")
    p.add_argument("--references", type=Path, required=True, help="44.1 kHz clips, one subfolder per category")
    p.add_argument("--cutoffs", type=float, nargs="+", default=[4000, 8000])
    p.add_argument("--teacher-steps", type=int, nargs="+", default=[100, 30])
    p.add_argument("--student-steps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--training-free", nargs="*", default=[],
                   help="more teacher systems, SAMPLER:SCHEDULE:STEPS:guided|unguided (e.g. dpmpp:logsnr:8:unguided)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/few_step"))
    args = p.parse_args(argv)

    teacher = load(args.teacher, args.device)
    labels = args.student_labels or [f"student {run.name}" for run in args.student]
    if len(labels) != len(args.student):
        raise SystemExit(f"--student-labels: {len(labels)} labels for {len(args.student)} students")
    students = {label: load(run, args.device) for label, run in zip(labels, args.student)}
    captions = read_captions(str(args.references))
    systems = build_systems(teacher, students, captions, args)
    report = evaluate(args.references, systems, args.cutoffs, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(report.rows, args.out / "lsd_per_file.csv")
    reference_system = f"teacher euler {max(args.teacher_steps)}"
    text = table(report.rows, systems, reference_system)
    timing = {name: {"nfe_per_window": s.nfe, "seconds_per_window": s.seconds_per_window, "windows": s.windows}
              for name, s in systems.items()}
    teacher_timing = timing[reference_system]
    ratios = "\n".join(f"- {name}: NFE x{teacher_timing['nfe_per_window'] / t['nfe_per_window']:.1f} fewer, wall time "
                       f"x{teacher_timing['seconds_per_window'] / t['seconds_per_window']:.1f} less per window"
                       for name, t in timing.items() if name != reference_system)
    curves = plot_learning_curves({label: run for label, run in zip(labels, args.student)
                                   if (run / "csv" / "metrics.csv").exists()}, args.out / "learning_curves.png")
    shown = [reference_system] + [n for n in systems if n.startswith("teacher ") and n.endswith("guided")]
    shown += [f"{label} {students[label].settings().sampler} {max(args.student_steps)}" for label in students]
    pngs = spectrograms(args.references, systems, shown, args.out / "spectrograms", min(args.cutoffs), args.seed)
    md = (f"# Few-step upsampling: student against teacher\n\nReferences {args.references} ({report.scored} of "
          f"{report.total} files scored), device {args.device}, one run: every system timed side by side.\n\n"
          f"{text}\nThe added band's level against the reference's, dB (+: too loud; mean over files):\n\n"
          f"{level_table(args.references, systems)}\nAgainst `{reference_system}`:\n\n{ratios}\n\nSpectrograms: {', '.join(pngs)}\n"
          f"Post-training curves: {curves}\n")
    (args.out / "results.md").write_text(md)
    (args.out / "results.json").write_text(json.dumps({"timing": timing, "rows": report.rows, "failed": report.failed},
                                                      indent=1))
    print(md)


if __name__ == "__main__":
    main()
