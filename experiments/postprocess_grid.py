#!/usr/bin/env python
"""Which post-processing does a listener prefer? Every candidate chain on the same sampled outputs.

    python experiments/postprocess_grid.py --run runs/real_audio/seed0 \\
        --clips data/real/val data/real/val_band_limited [--per-category 6] [--out runs/postprocess_grid]

Each validation clip is simulated at each cutoff and sampled ONCE by the model of ``--run``; the
grid of post-processings (LFR boundary x level match x slope cap, and the raw decode) is applied to
those same windows (``Upsampler.upsample_many``'s variants), so the chains differ in nothing else.
Every output is scored by ViSQOL and LSD (NU-Wave 2) against its reference. Per chain: the mean
over groups (set x category x cutoff) of ViSQOL and LSD, the groups where its ViSQOL is below the
unprocessed input's, and the files whose LSD-LF is more than 0.05 above their input's (the issue's
three targets). Writes ``OUT/grid.md``, ``OUT/grid.json``, the per-group tables ``OUT/per_group.md`` and the
per-file ``OUT/lsd_per_file.csv``. ``--chains`` scores only some chains (e.g. a recipe before and after).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
from pathlib import Path

from saga_sr_plugin.data.audio_io import list_audio_files
from saga_sr_plugin.data.sidecar import captions_under
from saga_sr_plugin.evaluation.protocol import evaluate, markdown_table, summarise, write_csv
from saga_sr_plugin.inference.upsampler import Upsampler, raw_settings
from saga_sr_plugin.interface.setting_flags import parse_assignment

GRID = Path(__file__).resolve().parent / "grids" / "postprocess.json"
CHAIN_KEYS = ("lfr_boundary", "lfr_ratio_rule", "slope_cap_db")   # what a --chains BOUNDARY/RATIO/CAP names
MAIN = "m"


def load_grid(path: str | Path) -> list[dict]:
    """The chains of a grid file: every combination of its ``grid`` values, each with its ``fixed`` settings."""
    spec = json.loads(Path(path).read_text())
    names, values = zip(*spec["grid"].items())
    return [{**spec.get("fixed", {}), **dict(zip(names, combo))} for combo in itertools.product(*values)]


def parse_chain(text: str) -> dict:
    """``BOUNDARY/RATIO/CAP`` (e.g. content/output_to_input/3, cap ``none``) as settings, typed by their declaration."""
    return {"envelope_margin_db": None,
            **dict(parse_assignment(f"{k}={v}") for k, v in zip(CHAIN_KEYS, text.split("/"), strict=True))}


def chain_name(chain: dict) -> str:
    cap = chain.get("slope_cap_db")
    return (f"{chain.get('lfr_boundary')} / {chain.get('lfr_ratio_rule')} / "
            f"{'no cap' if cap is None else f'cap {cap:g} dB'}")


def link_references(folders: list[str], per_category: int, out: Path) -> tuple[Path, dict[str, str]]:
    """``out/refs/<set>-<category>/<clip>``: symlinks to the first ``per_category`` clips of each category,
    and their captions (from the folders' captions.jsonl) by the linked path."""
    root, captions = out / "refs", {}
    for folder in map(Path, folders):
        own = captions_under(folder)
        for category in sorted(p.name for p in folder.iterdir() if p.is_dir()):
            target = root / f"{folder.name}-{category}"
            target.mkdir(parents=True, exist_ok=True)
            for clip in list_audio_files(folder / category)[:per_category]:
                link = target / clip.name
                if not link.exists():
                    link.symlink_to(clip.resolve())
                captions[f"{target.name}/{clip.name}"] = own.get(f"{category}/{clip.name}", "")
    return root, captions


def grid_table(rows: list[dict], names: dict[str, str]) -> tuple[str, list[dict]]:
    visqol, lsd, lsd_lf = (summarise(rows, m) for m in ("visqol", "nuwave2/lsd", "nuwave2/lsd_lf"))   # NaN-free means
    groups = sorted({(k[0], k[1]) for k in visqol if k[0] != "all"})
    inputs = {(r["file"], r["cutoff_hz"]): r["nuwave2/lsd_lf"] for r in rows if r["system"] == "unprocessed"}
    table = []
    for system, label in names.items():
        below = [f"{cat} {c // 1000} kHz" for cat, c in groups
                 if visqol[(cat, c, system)][0] < visqol[(cat, c, "unprocessed")][0]]
        lf_worse = sum(1 for r in rows if r["system"] == system and r["nuwave2/lsd_lf"] - inputs[(r["file"], r["cutoff_hz"])] > 0.05)
        table.append({"chain": label, "visqol": statistics.mean(visqol[(cat, c, system)][0] for cat, c in groups),
                      "lsd": statistics.mean(lsd[(cat, c, system)][0] for cat, c in groups),
                      "lsd_lf": statistics.mean(lsd_lf[(cat, c, system)][0] for cat, c in groups),
                      "groups_below_input": below, "files_lf_worse": lf_worse})
    table.sort(key=lambda row: -row["visqol"])
    lines = [f"Mean over {len(groups)} groups ({', '.join(f'{g} {c // 1000}k' for g, c in groups)}); ViSQOL higher is "
             "better, LSD lower; 'groups below input': where ViSQOL is below the unprocessed input's; 'LF worse': "
             "(file, cutoff) pairs whose LSD-LF is more than 0.05 above their input's.\n",
             "| chain | ViSQOL | LSD | LSD-LF | groups below input | LF worse |", "|---|---|---|---|---|---|"]
    for row in table:
        lines.append(f"| {row['chain']} | {row['visqol']:.3f} | {row['lsd']:.3f} | {row['lsd_lf']:.3f} | "
                     f"{len(row['groups_below_input'])} | {row['files_lf_worse']} |")
    return "\n".join(lines) + "\n", table


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a folder with model.json and model.safetensors")
    p.add_argument("--clips", nargs="+", required=True, help="folders of <category>/<clip> references")
    p.add_argument("--per-category", type=int, default=6)
    p.add_argument("--cutoffs", type=float, nargs="+", default=[4000, 8000])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--out", default="runs/postprocess_grid")
    p.add_argument("--grid", default=str(GRID), help="a grid file (experiments/grids/*.json)")
    p.add_argument("--chains", nargs="+", default=None, metavar="BOUNDARY/RATIO/CAP",
                   help="only these chains, e.g. content/output_to_input/3 band_limit/cutoff_magnitude/none "
                        "(default: the grid file's)")
    args = p.parse_args(argv)
    out = Path(args.out)
    refs, captions = link_references(args.clips, args.per_category, out)
    run = Path(args.run)
    upsampler = Upsampler.load(str(run / "model.json"), str(run / "model.safetensors"), "cpu")
    base = upsampler.settings(steps=args.steps)
    variants, names = {}, {"unprocessed": "unprocessed input", "sinc": "sinc", f"{MAIN}-raw": "raw decode"}
    variants["raw"] = raw_settings(base)
    chains = load_grid(args.grid) if args.chains is None else [parse_chain(text) for text in args.chains]
    for chain in chains:
        key = f"{chain['lfr_boundary']}-{chain['lfr_ratio_rule']}-{chain['slope_cap_db']}"
        variants[key] = dataclasses.replace(base, **chain)
        names[f"{MAIN}-{key}"] = chain_name(chain)
    report = evaluate(refs, {MAIN: upsampler.system(base, captions=captions, variants=variants)}, args.cutoffs)
    rows = [r for r in report.rows if r["system"] != MAIN]   # the config's own chain is one of the grid's
    write_csv(rows, out / "lsd_per_file.csv")
    text, table = grid_table(rows, names)
    (out / "grid.md").write_text(f"# Post-processing grid on {', '.join(args.clips)} ({run})\n\n" + text)
    (out / "grid.json").write_text(json.dumps(table, indent=2))
    named = [{**r, "system": names.get(r["system"], r["system"])} for r in rows]
    (out / "per_group.md").write_text(markdown_table(named, ("visqol", "nuwave2/lsd", "nuwave2/lsd_lf")))
    print(text)


if __name__ == "__main__":
    main()
