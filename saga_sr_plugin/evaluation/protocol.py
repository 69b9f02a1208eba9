"""The paper's evaluation protocol: simulate inputs at fixed cutoffs, score each output per file,
category and cutoff by LSD (both conventions), ViSQOL (a perceptual, reference-based score) and,
per set, the Fréchet distance of an embedding (the paper's FD on OpenL3).

Systems: ``unprocessed`` (the simulated low-res input itself), ``sinc`` (the input
decimated to 2 x cutoff and sinc-interpolated back to 44.1 kHz, torchaudio's
windowed-sinc resampler), and any callable or folder of outputs. A system may answer each input
with several outputs (``{"": processed, "raw": ...}``: the model's raw decode beside the
post-processed output, from one sampling); each becomes a system of its own (``saga-sr-raw``).
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
from ..data.audio_format import SAMPLE_RATE, BadAudioError
from ..data.simulation import FILTER_TYPES, LowPassSpec, apply_lowpass
from ..data.spectral import bandwidth_hz, rolloff_ratio
from ..distributed import Share
from .frechet import Embedder, FrechetResult, embed, set_distance
from .metrics import CONVENTIONS, all_lsd, mean_std
from .visqol import visqol

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
    fd: dict[tuple[str, int, str], FrechetResult] = dataclasses.field(default_factory=dict)

    @property
    def scored(self) -> int:
        return len({r["file"] for r in self.rows})


Input = tuple[torch.Tensor, int, float, str]   # (low-res at 44.1 kHz, rate, cutoff, relative path)


def _run_system(system: System | str | tp.Any, inputs: list[Input]) -> list[torch.Tensor | dict | Exception]:
    """Outputs of one system for many inputs; a failing input gives its exception, the others go on.

    A system with a ``many(inputs)`` method gets all inputs at once (the model batches
    windows across files); a callable gets one at a time; a string is a folder of outputs.
    """
    if hasattr(system, "many"):
        return list(system.many(inputs))
    outputs: list[torch.Tensor | dict | Exception] = []
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


def _named_outputs(name: str, out: torch.Tensor | dict | Exception) -> dict[str, torch.Tensor | Exception]:
    """One system's answer for one input as {system name: output}: a variant ``v`` of ``name`` is ``name-v``."""
    if isinstance(out, dict):
        return {name if not key else f"{name}-{key}": audio for key, audio in out.items()}
    return {name: out}


def evaluate(references: str | os.PathLike, systems: dict[str, System | str], cutoffs: tp.Sequence[float] = (4000, 8000),
             seed: int = 0, baselines: bool = True, save_inputs: str | None = None,
             chunk_files: int = 16, perceptual: bool = True, embedder: Embedder | None = None,
             share: Share = Share()) -> EvaluationReport:
    """Score every reference; a system is a callable, an object with ``many(inputs)``, or a folder of
    outputs named ``<cutoff>/<relative path>`` (e.g. ``4000/music/song.wav``). References are taken
    ``chunk_files`` at a time, so a batching system sees the inputs of several files together. A file
    that fails (unreadable, silent, low-rate, a missing or bad output) is skipped whole, named and
    counted; the others are scored. ``perceptual``: ViSQOL per row (``visqol``); ``embedder``: the
    Fréchet distance per (category, cutoff, system) set and over all categories (``report.fd``).
    ``share``: under torchrun each rank scores every ``world``-th file; rank 0 gathers the rows, the
    failures and the embeddings and returns the whole report (in file order; the FD over all files),
    the other ranks an empty one."""
    root = Path(references)
    rows: list[dict] = []
    failed: list[str] = []
    every_file = list_references(root)
    files = share.take(every_file)
    embeddings: dict[tuple[str, int, str], list[torch.Tensor]] = {}
    bar = tqdm(total=len(files), desc=f"evaluate ({share.describe()})", unit="file")

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
                outputs[key].update(_named_outputs(name, out))
        for path, (ref, _) in prepared.items():
            errors = [o for c in cutoffs for o in outputs[(path, c)].values() if isinstance(o, Exception)]
            if errors:
                fail(path, errors[0])
                continue
            width, own_rolloff = round(bandwidth_hz(ref)), round(rolloff_ratio(ref), 4)
            category = category_of(path, root)
            ref_embedding = embed(embedder, ref, SAMPLE_RATE) if embedder is not None else None
            for c in cutoffs:
                if embedder is not None:
                    for group in (category, "all"):
                        embeddings.setdefault((group, int(c), "reference"), []).append(ref_embedding)
                for name, out in outputs[(path, c)].items():
                    if out.shape[0] != ref.shape[0]:
                        out = out.mean(dim=0, keepdim=True).expand(ref.shape[0], -1)
                    row = {"file": str(path.relative_to(root)), "category": category, "cutoff_hz": int(c),
                           "system": name, "reference_bandwidth_hz": width, "reference_rolloff": own_rolloff,
                           "seconds": round(ref.shape[-1] / SAMPLE_RATE, 3), **all_lsd(out, ref, SAMPLE_RATE, c)}
                    if perceptual:
                        row["visqol"] = visqol(out, ref, SAMPLE_RATE)
                    rows.append(row)
                    if embedder is not None:
                        emb = embed(embedder, out, SAMPLE_RATE)
                        for group in (category, "all"):
                            embeddings.setdefault((group, int(c), name), []).append(emb)
        bar.update(len(files[first:first + chunk_files]))
        bar.set_postfix(skipped=len(failed))
    bar.close()
    if share.grouped:
        gathered = share.gather((rows, failed, embeddings))
        if gathered is None:
            return EvaluationReport([], [], 0)
        order = {str(p.relative_to(root)): n for n, p in enumerate(every_file)}
        rows = sorted((r for part in gathered for r in part[0]), key=lambda r: order[r["file"]])  # stable per file
        failed = [f for part in gathered for f in part[1]]
        embeddings = {}
        for part in gathered:
            for key, estimates in part[2].items():
                embeddings.setdefault(key, []).extend(estimates)
    if failed:
        log.warning("%d of %d reference file(s) skipped", len(failed), len(every_file))
    fd = {}
    for (group, c, name), estimates in embeddings.items():
        if name != "reference" and len(estimates) >= 2:
            fd[(group, c, name)] = set_distance(estimates, embeddings[(group, c, "reference")])
    return EvaluationReport(rows, failed, len(every_file), fd)


METRIC_COLUMNS = [f"{c}{u}/{k}" for c in CONVENTIONS for u in ("", "_unified") for k in ("lsd", "lsd_lf", "lsd_hf")]
ROW_COLUMNS = ["file", "category", "cutoff_hz", "system", "reference_bandwidth_hz", "reference_rolloff", "seconds",
               *METRIC_COLUMNS, "visqol"]
HIGHER_IS_BETTER = ("visqol",)
DEFAULT_TABLE_METRICS = ("nuwave2/lsd", "nuwave2/lsd_lf", "visqol", "ssr/lsd")


def describe_metric(metric: str) -> str:
    if metric == "visqol":
        return ("**visqol** (ViSQOL v3 audio mode, MOS-LQO 1-5; higher is better; mean ± std over files; "
                "level-independent, so it judges the added band's shape, not its loudness)")
    convention = metric.split("/")[0]
    return (f"**{metric}** (convention: {convention}{', energy-unified' if 'unified' in convention else ''};"
            " lower is better; mean ± std over files)")


def summarise(rows: list[dict], metric: str = "nuwave2/lsd") -> dict[tuple[str, int, str], tuple[float, float, int]]:
    """(category incl. 'all', cutoff, system) -> (mean, std, n) of one metric (NaN values, e.g. ViSQOL of a clip
    shorter than it reads, are left out of mean, std and n)."""
    groups: dict[tuple[str, int, str], list[float]] = {}
    for r in rows:
        value = r.get(metric, float("nan"))
        for cat in {r["category"], "all"}:
            groups.setdefault((cat, r["cutoff_hz"], r["system"]), [])
            if value == value:
                groups[(cat, r["cutoff_hz"], r["system"])].append(value)
    return {k: (*mean_std(v), len(v)) for k, v in groups.items()}


def markdown_table(rows: list[dict], metrics: tp.Sequence[str] = DEFAULT_TABLE_METRICS,
                   fd: dict[tuple[str, int, str], FrechetResult] | None = None) -> str:
    """One table per metric (categories x systems x cutoffs), ViSQOL beside LSD, and the FD table if given."""
    lines = []
    for metric in [m for m in metrics if any(m in r for r in rows)]:
        summary = summarise(rows, metric)
        cutoffs = sorted({k[1] for k in summary})
        systems = list(dict.fromkeys(r["system"] for r in rows))
        categories = sorted({k[0] for k in summary}, key=lambda c: (c == "all", c))
        lines.append(f"\n{describe_metric(metric)}\n")
        lines.append("| category | system | " + " | ".join(f"{c // 1000} kHz" for c in cutoffs) + " |")
        lines.append("|---|---|" + "---|" * len(cutoffs))
        for cat in categories:
            for system in systems:
                cells = []
                for c in cutoffs:
                    m, s, n = summary.get((cat, c, system), (float("nan"), float("nan"), 0))
                    cells.append(f"{m:.2f} ± {s:.2f}")
                lines.append(f"| {cat} | {system} | " + " | ".join(cells) + " |")
        if metric == "visqol":
            short = sorted({r["file"] for r in rows if r.get("visqol") != r.get("visqol")})
            if short:
                lines.append(f"\nViSQOL left out {len(short)} file(s) shorter than it reads (1 s), e.g. {short[0]}.")
    if fd:
        lines.append("\n" + fd_table(fd))
    return "\n".join(lines) + "\n"


def fd_table(fd: dict[tuple[str, int, str], FrechetResult]) -> str:
    """FD per category, system and cutoff; sets below the paper's 400 clips are starred."""
    cutoffs = sorted({k[1] for k in fd})
    systems = list(dict.fromkeys(k[2] for k in fd))
    categories = sorted({k[0] for k in fd}, key=lambda c: (c == "all", c))
    lines = ["**FD** (Fréchet distance of the embeddings against the references'; lower is better)\n",
             "| category | system | " + " | ".join(f"{c // 1000} kHz" for c in cutoffs) + " |",
             "|---|---|" + "---|" * len(cutoffs)]
    for cat in categories:
        for system in systems:
            lines.append(f"| {cat} | {system} | " + " | ".join(str(fd[(cat, c, system)]) if (cat, c, system) in fd
                                                               else "-" for c in cutoffs) + " |")
    small = [r.clips for r in fd.values() if r.note]
    if small:
        lines.append(f"\n\\* from {min(small)}-{max(small)} clips per set, fewer than the paper's 400: FD is biased "
                     "upward for small sets, so compare it only with an FD of the same number of clips.")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in ROW_COLUMNS if any(c in r for r in rows)])
        writer.writeheader()
        writer.writerows(rows)


def plot_summary(rows: list[dict], path: str | os.PathLike, metric: str = "nuwave2/lsd") -> str:
    """Bars per system and cutoff (all categories): LSD, and ViSQOL beside it when scored."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [metric] + (["visqol"] if any("visqol" in r for r in rows) else [])
    systems = list(dict.fromkeys(r["system"] for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * (1.5 + 0.6 * len(systems)), 3.6), squeeze=False)
    for ax, name in zip(axes[0], panels):
        summary = summarise(rows, name)
        cutoffs = sorted({k[1] for k in summary})
        width = 0.8 / len(systems)
        for i, system in enumerate(systems):
            means = [summary[("all", c, system)][0] for c in cutoffs]
            stds = [summary[("all", c, system)][1] for c in cutoffs]
            ax.bar(np.arange(len(cutoffs)) + i * width, means, width, yerr=stds, label=system, capsize=3)
        ax.set_xticks(np.arange(len(cutoffs)) + width * (len(systems) - 1) / 2,
                      [f"{c // 1000} kHz input" for c in cutoffs])
        better = "higher" if name in HIGHER_IS_BETTER else "lower"
        ax.set_ylabel(f"{'ViSQOL MOS-LQO' if name == 'visqol' else 'LSD (' + name + ')'}, {better} is better")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return str(path)
