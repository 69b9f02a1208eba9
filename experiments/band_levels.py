"""Where an LSD comes from: per-band LSD and level of written examples against their references.

    .venv/bin/python experiments/band_levels.py --pool runs/real_audio/seed*/examples_test_output_to_input

Reads the ``<name>_<cutoff>k_{reference,input,output}.wav`` triples that
``proof_of_learning.py`` writes (``callbacks.write_examples``), and prints one markdown
row per folder, category, cutoff and signal (input / output): the NU-Wave 2 LSD of each
band and the band's level against the reference's (dB, + is too loud), and how well the
output's band from the cutoff to 16 kHz follows the reference's loudness over time
(``envelope r``; for the input, its own band below the cutoff: the timing it holds),
averaged over the folder's clips. A whole-band LSD mixes a band that is won with one that is lost; this
shows which is which.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path


EDGES_HZ = (0, 4000, 8000, 12000, 16000, 22050)
TRIPLE = re.compile(r"(?P<category>[^_]+)_.*_(?P<cutoff>\d+)k_reference\.wav$")


def envelope_correlation(estimate, reference, cutoff_hz: float, sample_rate: int, high_hz: float = 16000.0,
                         estimate_band: tuple[float, float] | None = None, n_fft: int = 2048, hop: int = 512) -> float:
    """Pearson r over frames between the energy (dB, floored at -100 dB) of the reference's band
    [cutoff_hz, high_hz) and the estimate's ``estimate_band`` (default the same band): does the
    added band rise and fall with the reference's (1), or stay on (about 0)? With the input's
    own band below the cutoff as ``estimate_band``: how much of that timing the input holds."""
    import torch

    def frames_db(x, lo_hz, hi_hz):
        x = torch.as_tensor(x, dtype=torch.float64).mean(0)
        spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), return_complex=True)
        lo, hi = int(lo_hz / sample_rate * n_fft), int(hi_hz / sample_rate * n_fft)
        return 10 * torch.log10(spec[lo:hi].abs().pow(2).sum(0).clamp(min=1e-10))

    a = frames_db(estimate, *(estimate_band or (cutoff_hz, high_hz)))
    b = frames_db(reference, cutoff_hz, high_hz)
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    denominator = float(a.norm() * b.norm())
    return float((a * b).sum()) / denominator if denominator > 0 else float("nan")


def band_rows(folder: Path | list[Path], edges: tuple[float, ...] = EDGES_HZ) -> list[dict]:
    """One row per (category, cutoff, signal), means over the clips of the folder (or folders, pooled)."""
    from saga_sr_plugin.data.audio_io import read_audio
    from saga_sr_plugin.evaluation.metrics import lsd_by_band

    groups: dict[tuple[str, int, str], list[list[dict[str, float]]]] = collections.defaultdict(list)
    folders = [folder] if isinstance(folder, Path) else list(folder)
    references = []
    for f in folders:
        found = sorted(f.glob("*_reference.wav"))
        if not found:
            raise FileNotFoundError(f"no *_reference.wav examples under {f} (written by proof_of_learning.py)")
        references += found
    for ref_path in references:
        match = TRIPLE.match(ref_path.name)
        if match is None:
            print(f"skipped {ref_path}: not named <category>_<name>_<cutoff>k_reference.wav", file=sys.stderr)
            continue
        reference, rate = read_audio(ref_path)
        for signal in ("input", "output"):
            path = ref_path.with_name(ref_path.name.replace("_reference.wav", f"_{signal}.wav"))
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing beside {ref_path.name}")
            key = (match["category"], int(match["cutoff"]), signal)
            estimate = read_audio(path)[0]
            bands = lsd_by_band(estimate, reference, edges, sample_rate=rate)
            cutoff = int(match["cutoff"]) * 1000  # the input: its own band below the cutoff
            bands.append({"envelope_r": envelope_correlation(estimate, reference, cutoff, rate,
                                                             estimate_band=(0, cutoff) if signal == "input" else None)})
            groups[key].append(bands)
    rows = []
    label = str(folders[0]) if len(folders) == 1 else f"{len(folders)} folders"
    for (category, cutoff, signal), clips in sorted(groups.items()):
        row = {"folder": label, "category": category, "cutoff_khz": cutoff, "signal": signal, "clips": len(clips)}
        for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
            name = f"{lo / 1000:g}-{hi / 1000:g} kHz"
            row[name] = (sum(c[i]["lsd"] for c in clips) / len(clips), sum(c[i]["level_db"] for c in clips) / len(clips))
        row["envelope_r"] = sum(c[-1]["envelope_r"] for c in clips) / len(clips)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    bands = [k for k in rows[0] if k.endswith("kHz")]
    lines = ["| folder | category | cutoff | signal | clips | " + " | ".join(bands) + " | envelope r |",
             "|---" * (6 + len(bands)) + "|"]
    for r in rows:
        cells = [f"{r[b][0]:.2f} ({r[b][1]:+.1f} dB)" for b in bands]
        lines.append(f"| {r['folder']} | {r['category']} | {r['cutoff_khz']} kHz | {r['signal']} | {r['clips']} | "
                     + " | ".join(cells) + f" | {r['envelope_r']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="examples folders (seedN/examples*)")
    p.add_argument("--pool", action="store_true", help="one row per category, cutoff and signal over all folders "
                                                       "(e.g. the seeds of one run)")
    args = p.parse_args(argv)
    groups = [args.folders] if args.pool else [[f] for f in args.folders]
    text = markdown([row for folders in groups for row in band_rows(folders)])
    print("LSD (NU-Wave 2) per band, the band's level against the reference's in brackets, and the\n"
          "correlation of the cutoff-16 kHz band's frame energies (dB) with the reference's\n\n" + text)
    return text


if __name__ == "__main__":
    main()
