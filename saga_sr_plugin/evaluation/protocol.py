"""The paper's evaluation protocol: simulate inputs at fixed cutoffs, score LSD per file/category/cutoff.

Systems: ``unprocessed`` (the simulated low-res input itself), ``sinc`` (the input
decimated to 2 x cutoff and sinc-interpolated back to 44.1 kHz, torchaudio's
windowed-sinc resampler), and any callable or folder of outputs.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import typing as tp
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..data.audio_io import list_audio_files, read_audio, write_audio
from ..data.simulation import (FILTER_TYPES, SAMPLE_RATE, BadAudioError, LowPassSpec, apply_lowpass, bandwidth_hz,
                               rolloff_ratio)
from .metrics import CONVENTIONS, all_lsd, mean_std

log = logging.getLogger("saga_sr.evaluate")
REFERENCE_EXTS = (".wav", ".flac", ".ogg", ".oga", ".mp3")
System = tp.Callable[[torch.Tensor, int, float, str], torch.Tensor]  # (lowres 44.1k, rate, cutoff, relpath) -> 44.1k


def eval_lowpass(cutoff_hz: float, seed: int, name: str) -> LowPassSpec:
    """Filter type and order drawn as in training, from a seed fixed per (file, cutoff)."""
    rng = np.random.default_rng([seed, int(cutoff_hz), sum(map(ord, name))])
    return LowPassSpec(float(cutoff_hz), FILTER_TYPES[rng.integers(len(FILTER_TYPES))], int(rng.integers(2, 11)))


def simulate_input(reference: torch.Tensor, cutoff_hz: float, seed: int = 0, name: str = "") -> torch.Tensor:
    """The low-res input at 44.1 kHz, as training simulates it (zero-phase low-pass, down to 2 x cutoff, back)."""
    return apply_lowpass(reference, eval_lowpass(cutoff_hz, seed, name)).float()


def sinc_baseline(lowres: torch.Tensor, cutoff_hz: float) -> torch.Tensor:
    low_rate = int(round(2 * cutoff_hz))
    down = AF.resample(lowres, SAMPLE_RATE, low_rate)
    return AF.resample(down, low_rate, SAMPLE_RATE)[..., : lowres.shape[-1]]


def list_references(folder: str | os.PathLike) -> list[Path]:
    files = list_audio_files(folder, REFERENCE_EXTS, what="reference folder")
    if not files:
        raise FileNotFoundError(f"no audio files ({', '.join(REFERENCE_EXTS)}) under {folder}")
    return files


def category_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else "all"


def load_reference(path: Path) -> torch.Tensor:
    """A mono/stereo reference at 44.1 kHz; lower-rate files are refused (they have nothing above their Nyquist)."""
    audio, sr = read_audio(path)
    if sr < SAMPLE_RATE:
        raise BadAudioError(f"{path}: recorded at {sr} Hz; references must be full-band recordings at "
                            f"{SAMPLE_RATE} Hz or more (use lower-rate files as inputs to upsample, not as references)")
    if audio.shape[0] > 2:
        raise BadAudioError(f"{path}: {audio.shape[0]} channels; references must be mono or stereo")
    if audio.abs().max() < 1e-5:
        raise BadAudioError(f"{path}: silent (peak below 1e-5); LSD against silence measures nothing")
    if sr != SAMPLE_RATE:
        audio = AF.resample(audio, sr, SAMPLE_RATE)
    return audio


def reference_rolloffs(references: str | os.PathLike) -> dict[str, float]:
    """Each reference's own normalised roll-off (its f_h, as training measures it), by relative path: the
    oracle f_h of an evaluation. Unusable references are left out (``evaluate`` skips and names them)."""
    root = Path(references)
    values = {}
    for path in list_references(root):
        try:
            values[path.relative_to(root).as_posix()] = rolloff_ratio(load_reference(path))
        except (BadAudioError, FileNotFoundError, ValueError, RuntimeError):
            continue
    return values


@dataclasses.dataclass
class EvaluationReport:
    """Rows (one per file, cutoff and system) and the files that could not be scored, with the reason."""

    rows: list[dict]
    failed: list[str]
    total: int

    @property
    def scored(self) -> int:
        return len({r["file"] for r in self.rows})


Input = tuple[torch.Tensor, int, float, str]   # (low-res at 44.1 kHz, rate, cutoff, relative path)


def _run_system(system: System | str | tp.Any, inputs: list[Input]) -> list[torch.Tensor | Exception]:
    """Outputs of one system for many inputs; a failing input gives its exception, the others go on.

    A system with a ``many(inputs)`` method gets all inputs at once (the model batches
    windows across files); a callable gets one at a time; a string is a folder of outputs.
    """
    if hasattr(system, "many"):
        return list(system.many(inputs))
    outputs: list[torch.Tensor | Exception] = []
    for lowres, sr, cutoff, rel in inputs:
        try:
            if callable(system):
                outputs.append(system(lowres, sr, cutoff, rel))
            else:
                audio, rate = read_audio(Path(system) / str(int(cutoff)) / Path(rel).with_suffix(".wav"))
                outputs.append(AF.resample(audio, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else audio)
        except (BadAudioError, FileNotFoundError, ValueError, RuntimeError) as err:
            outputs.append(err)
    return outputs


def evaluate(references: str | os.PathLike, systems: dict[str, System | str], cutoffs: tp.Sequence[float] = (4000, 8000),
             seed: int = 0, baselines: bool = True, save_inputs: str | None = None,
             chunk_files: int = 16) -> EvaluationReport:
    """Score every reference; a system is a callable, an object with ``many(inputs)``, or a folder of
    outputs named ``<cutoff>/<relative path>`` (e.g. ``4000/music/song.wav``). References are taken
    ``chunk_files`` at a time, so a batching system sees the inputs of several files together. A file
    that fails (unreadable, silent, low-rate, a missing or bad output) is skipped whole, named and
    counted; the others are scored."""
    root = Path(references)
    rows: list[dict] = []
    failed: list[str] = []
    files = list_references(root)
    bar = tqdm(total=len(files), desc="evaluate", unit="file")

    def fail(path: Path, err: BaseException) -> None:
        failed.append(str(err) if str(path) in str(err) else f"{path}: {err}")
        log.warning("skipped %s (%d skipped so far)", failed[-1], len(failed))

    for first in range(0, len(files), chunk_files):
        prepared: dict[Path, tuple[torch.Tensor, dict[float, torch.Tensor]]] = {}
        for path in files[first:first + chunk_files]:
            rel = path.relative_to(root)
            try:
                ref = load_reference(path)
                lows = {c: simulate_input(ref, c, seed, str(rel)) for c in cutoffs}
            except (BadAudioError, FileNotFoundError, ValueError, RuntimeError) as err:
                fail(path, err)
                continue
            prepared[path] = (ref, lows)
            if save_inputs:
                for c, lowres in lows.items():
                    write_audio(Path(save_inputs) / str(int(c)) / rel.with_suffix(".wav"), lowres, SAMPLE_RATE)
        keys = [(path, c) for path in prepared for c in cutoffs]
        outputs: dict[tuple[Path, float], dict[str, torch.Tensor | Exception]] = {k: {} for k in keys}
        if baselines:
            for path, c in keys:
                lowres = prepared[path][1][c]
                outputs[(path, c)].update(unprocessed=lowres, sinc=sinc_baseline(lowres, c))
        for name, system in systems.items():
            inputs = [(prepared[p][1][c], SAMPLE_RATE, c, str(p.relative_to(root))) for p, c in keys]
            for key, out in zip(keys, _run_system(system, inputs)):
                outputs[key][name] = out
        for path, (ref, _) in prepared.items():
            errors = [o for c in cutoffs for o in outputs[(path, c)].values() if isinstance(o, Exception)]
            if errors:
                fail(path, errors[0])
                continue
            width, own_rolloff = round(bandwidth_hz(ref)), round(rolloff_ratio(ref), 4)
            for c in cutoffs:
                for name, out in outputs[(path, c)].items():
                    if out.shape[0] != ref.shape[0]:
                        out = out.mean(dim=0, keepdim=True).expand(ref.shape[0], -1)
                    rows.append({"file": str(path.relative_to(root)), "category": category_of(path, root),
                                 "cutoff_hz": int(c), "system": name, "reference_bandwidth_hz": width,
                                 "reference_rolloff": own_rolloff,
                                 **all_lsd(out, ref, SAMPLE_RATE, c)})
        bar.update(len(files[first:first + chunk_files]))
        bar.set_postfix(skipped=len(failed))
    bar.close()
    if failed:
        log.warning("%d of %d reference file(s) skipped", len(failed), len(files))
    return EvaluationReport(rows, failed, len(files))


METRIC_COLUMNS = [f"{c}{u}/{k}" for c in CONVENTIONS for u in ("", "_unified") for k in ("lsd", "lsd_lf", "lsd_hf")]


def summarise(rows: list[dict], metric: str = "nuwave2/lsd") -> dict[tuple[str, int, str], tuple[float, float, int]]:
    """(category incl. 'all', cutoff, system) -> (mean, std, n) of one metric."""
    groups: dict[tuple[str, int, str], list[float]] = {}
    for r in rows:
        for cat in {r["category"], "all"}:
            groups.setdefault((cat, r["cutoff_hz"], r["system"]), []).append(r[metric])
    return {k: (*mean_std(v), len(v)) for k, v in groups.items()}


def markdown_table(rows: list[dict], metrics: tp.Sequence[str] = ("nuwave2/lsd", "nuwave2/lsd_hf", "ssr/lsd")) -> str:
    lines = []
    for metric in metrics:
        convention = metric.split("/")[0]
        summary = summarise(rows, metric)
        cutoffs = sorted({k[1] for k in summary})
        systems = list(dict.fromkeys(r["system"] for r in rows))
        categories = sorted({k[0] for k in summary}, key=lambda c: (c == "all", c))
        lines.append(f"\n**{metric}** (convention: {convention}{', energy-unified' if 'unified' in convention else ''};"
                     " lower is better; mean ± std over files)\n")
        lines.append("| category | system | " + " | ".join(f"{c // 1000} kHz" for c in cutoffs) + " |")
        lines.append("|---|---|" + "---|" * len(cutoffs))
        for cat in categories:
            for system in systems:
                cells = []
                for c in cutoffs:
                    m, s, n = summary.get((cat, c, system), (float("nan"), float("nan"), 0))
                    cells.append(f"{m:.2f} ± {s:.2f}")
                lines.append(f"| {cat} | {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "category", "cutoff_hz", "system", "reference_bandwidth_hz",
                                                "reference_rolloff", *METRIC_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)


def plot_summary(rows: list[dict], path: str | os.PathLike, metric: str = "nuwave2/lsd") -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(rows, metric)
    cutoffs = sorted({k[1] for k in summary})
    systems = list(dict.fromkeys(r["system"] for r in rows))
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(cutoffs) * len(systems) / 2, 3.5))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        means = [summary[("all", c, system)][0] for c in cutoffs]
        stds = [summary[("all", c, system)][1] for c in cutoffs]
        ax.bar(np.arange(len(cutoffs)) + i * width, means, width, yerr=stds, label=system, capsize=3)
    ax.set_xticks(np.arange(len(cutoffs)) + width * (len(systems) - 1) / 2, [f"{c // 1000} kHz input" for c in cutoffs])
    ax.set_ylabel(f"LSD ({metric}, lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return str(path)
