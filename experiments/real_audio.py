#!/usr/bin/env python
"""Real recordings, end to end: data, 3 seeds of training on this CPU, evaluation per category.

    .venv/bin/python experiments/real_audio.py                 # 15 min of training per seed + evaluation (~4 min each)
    .venv/bin/python experiments/real_audio.py --max-time 00:00:05:00 --test-clips 8    # a quick look
    python experiments/real_audio.py --model-config model_configs/saga_real_gpu_config.json \
        --batch-size 32 --precision bf16-mixed --num-workers 4 --max-time 00:00:45:00 --out runs/real_audio_gpu

1. ``experiments/real_audio_data.py``: Debian's wesnoth music, klettres and ktuberling
   speech cut into 1.49 s 44.1 kHz stereo clips, splits disjoint by speaker (language)
   and track, silent clips skipped, band-limited references kept for training (idempotent);
2. a tiny local T5 whose vocabulary holds the two category captions ("speech",
   "orchestral music": no 7 B captioner runs here, and the category is what a user of
   the upsampler knows; see docs/real_audio.md);
3. ``experiments/proof_of_learning.py`` with ``model_configs/saga_real_cpu_config.json``:
   per seed ``train_entry.py`` through the official wrapper (time-limited, validation LSD
   on 4 val clips every ``--demo-every`` steps in ``seedN/csv/metrics.csv``), the EMA
   weights exported, then ``saga-sr evaluate``'s protocol on ``--test-clips`` held-out
   clips per category at 4 and 8 kHz with the unprocessed and sinc baselines.
4. with ``--ood DIR`` (``experiments/ood_audio_data.py``), the same trained seeds scored on
   that whole out-of-domain set as well (``*_ood`` files).
Writes ``runs/real_audio/{results.md, results.json, lsd_per_file.csv, lsd.png,
learning_curves.png, seedN/examples/*.wav|png}``.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CATEGORY_WORDS = ("speech", "orchestral", "music")


def ensure_t5(folder: Path) -> Path:
    from saga_sr_plugin.data.demo_assets import WORDS, save_tiny_t5

    if not (folder / "config.json").exists():
        save_tiny_t5(folder, words=(*WORDS, *CATEGORY_WORDS))
    return folder


def with_t5(model_config: Path, t5: Path, out: Path) -> Path:
    """The model config with its text encoder at ``t5``: the T5 belongs to the data (its vocabulary holds the
    category captions), so data unpacked elsewhere (``--data data/real_gpu``) brings its own. Unchanged
    configs are used as they are; otherwise the edited copy is ``out/model_config.json`` (written atomically:
    seeds may start side by side)."""
    from saga_sr_plugin.atomic import write_text

    config = json.loads(model_config.read_text())
    entries = [e for e in config["model"]["conditioning"]["configs"] if e["type"] == "saga_t5"]
    if all(Path(e["config"]["t5_model_name"]).resolve() == t5.resolve() for e in entries):
        return model_config
    for entry in entries:
        print(f"{model_config}: text encoder {entry['config']['t5_model_name']} -> {t5} (the data's)")
        entry["config"]["t5_model_name"] = str(t5)
    target = out / "model_config.json"
    out.mkdir(parents=True, exist_ok=True)
    write_text(target, json.dumps(config, indent=1))
    return target


def test_subset(test_dir: Path, out: Path, per_category: int, seed: int = 0) -> Path:
    """``per_category`` test clips per category (fixed random choice), linked under ``out`` with their captions."""
    from saga_sr_plugin.data.sidecar import captions_under, write_sidecar

    captions = captions_under(test_dir)
    marker = out / "subset.json"
    wanted = {"per_category": per_category, "seed": seed, "source": str(test_dir.resolve())}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return out
    shutil.rmtree(out, ignore_errors=True)  # another size or source: start from nothing
    rng = random.Random(seed)
    entries = {}
    for category in sorted(p.name for p in test_dir.iterdir() if p.is_dir()):
        files = sorted((test_dir / category).glob("*.wav"))
        for f in sorted(rng.sample(files, min(per_category, len(files)))):
            link = out / category / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(f.resolve())
            entries[f"{category}/{f.name}"] = {"caption": captions.get(f"{category}/{f.name}", "")}
    write_sidecar(out / "captions.jsonl", entries)
    marker.write_text(json.dumps(wanted))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/real")
    p.add_argument("--clip-seconds", type=float, default=65536 / 44100,
                   help="clip length of the data (the GPU recipe: 131072 / 44100)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--model-config", default="model_configs/saga_real_cpu_config.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-time", default="00:00:15:00", help="per seed (the documented table: 15 minutes)")
    p.add_argument("--test-clips", type=int, default=16, help="held-out clips per category scored")
    p.add_argument("--steps", type=int, default=None, help="Euler steps for evaluation (config default)")
    p.add_argument("--demo-every", type=int, default=400)
    p.add_argument("--out", default="runs/real_audio")
    p.add_argument("--skip-training", action="store_true", help="evaluate the exported weights under --out")
    p.add_argument("--train-only", action="store_true", help="train and export; evaluate later with --skip-training")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--target-rolloff", default=None, help="f_h at evaluation: a number, auto or oracle (config default)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                   help="a saga_sr setting at evaluation, passed on to proof_of_learning.py (repeatable)")
    p.add_argument("--eval-split", default="test", choices=["test", "val"],
                   help="score the held-out test split, or the validation split (to choose settings)")
    p.add_argument("--eval-name", default="")
    p.add_argument("--prepared", action="store_true",
                   help="--data is already built (e.g. unpacked by real_audio_bundle.py): do not run the data command")
    p.add_argument("--precision", default="32", help="Lightning precision of training (bf16-mixed on a GPU)")
    p.add_argument("--num-workers", type=int, default=1, help="data workers per training run")
    p.add_argument("--device", default="auto", help="evaluation device: auto, cpu, cuda")
    p.add_argument("--title", default="Real recordings: speech and music, trained on this CPU")
    p.add_argument("--ood", default=None, metavar="DIR",
                   help="also score this out-of-domain set (experiments/ood_audio_data.py; e.g. data/ood), "
                        "whole, beside the test split: results{eval_name}_ood.*")
    p.add_argument("--ood-only", action="store_true", help="score only the --ood set (trained seeds under --out)")
    args = p.parse_args(argv)

    import real_audio_data
    import proof_of_learning

    data = Path(args.data)
    if not args.prepared:
        real_audio_data.main(["--out", str(data), "--clip-seconds", str(args.clip_seconds),
                              *(["--no-install"] if args.no_install else [])])
    t5 = ensure_t5(data / "tiny_t5")
    model_config = with_t5(Path(args.model_config), t5, Path(args.out))
    eval_dir = test_subset(data / args.eval_split, data / f"{args.eval_split}_eval", args.test_clips)
    demo_dir = test_subset(data / "val", data / "val_demo", 2)
    dataset = {"dataset_type": "audio_dir", "random_crop": True, "drop_last": True,
               "datasets": [{"id": "real", "path": str(data / "train"),
                             "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}
    dataset_path = data / "train_dataset.json"
    text = json.dumps(dataset, indent=1)
    if not dataset_path.exists() or dataset_path.read_text() != text:  # seeds may start in parallel: no rewrite
        dataset_path.write_text(text)
    common = ["--model-config", str(model_config), "--dataset-config", str(dataset_path),
              "--demo-dir", str(demo_dir), "--demo-count", "4", "--batch-size", str(args.batch_size),
              "--seeds", *map(str, args.seeds), "--out", args.out, "--device", args.device,
              *(["--steps", str(args.steps)] if args.steps else []),
              *(["--target-rolloff", str(args.target_rolloff)] if args.target_rolloff else []),
              *(arg for text in args.settings for arg in ("--set", text))]
    if not args.ood_only:
        proof_of_learning.main(["--eval-dir", str(eval_dir), *common,
                                "--demo-every", str(args.demo_every), "--max-time", args.max_time,
                                "--title", args.title, "--precision", args.precision,
                                "--num-workers", str(args.num_workers),
                                *(["--skip-training"] if args.skip_training else []),
                                *(["--train-only"] if args.train_only else []),
                                "--eval-name", args.eval_name])
    if args.ood and not args.train_only:  # the trained seeds, on recordings from packages the training never saw
        proof_of_learning.main(["--eval-dir", args.ood, *common, "--skip-training", "--eval-name", f"{args.eval_name}_ood",
                                "--title", f"{args.title}: out-of-domain set {args.ood}"])


if __name__ == "__main__":
    main()
