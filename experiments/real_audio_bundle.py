#!/usr/bin/env python
"""Carry the real-audio data to a machine without network, within a size budget.

The lent GPU machine cannot install Debian packages and a device call carries 64 MiB at
most (the wheels take about half), while ``data/real`` is 1.6 GB of WAV. ``pack`` writes
a bundle of:

- the scored test clips and the validation-demo clips, lossless (FLAC), so a model
  trained anywhere is scored on exactly the clips of the CPU table;
- a seeded random subset of the training split, the same number of clips per category,
  as Ogg Vorbis at ``--vorbis-level`` (libsndfile's compression level; 0.2 keeps the
  clips' bandwidth and about 30 dB SNR: the sources are Vorbis already), as many as fit
  ``--budget-mb``;
- the captions of every clip and the tiny local T5.

``unpack`` decodes it back to 44.1 kHz 16-bit WAV with the layout ``real_audio.py``
expects (``train``, ``val``, ``test``, ``tiny_t5``), so ``real_audio.py --prepared`` runs
on it unchanged::

    .venv/bin/python experiments/real_audio_bundle.py pack --data data/real --out data/real_bundle
    python experiments/real_audio_bundle.py unpack --bundle data/real_bundle --out data/real_gpu
"""
from __future__ import annotations

import argparse
import io
import json
import random
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]

from saga_sr_plugin.data.sidecar import captions_under, write_sidecar

BUNDLE_VERSION = 1
LOSSLESS = {"format": "FLAC", "subtype": "PCM_16", "ext": ".flac"}


def encoded(audio: np.ndarray, rate: int, fmt: str, vorbis_level: float) -> bytes:
    buffer = io.BytesIO()
    if fmt == "OGG":
        sf.write(buffer, audio, rate, format="OGG", subtype="VORBIS", compression_level=vorbis_level)
    else:
        sf.write(buffer, audio, rate, format=LOSSLESS["format"], subtype=LOSSLESS["subtype"])
    return buffer.getvalue()


def clips_of_split(folder: Path) -> list[tuple[str, Path]]:
    """(relative key, resolved file) of every WAV under ``folder`` (test subsets are symlinks)."""
    return [(f.relative_to(folder).as_posix(), f.resolve()) for f in sorted(folder.rglob("*.wav"))]


def pack(data: Path, out: Path, budget_mb: float, vorbis_level: float, seed: int = 0,
         test_dir: str = "test_eval", val_dir: str = "val_demo") -> dict:
    """Write the bundle; returns its manifest (also ``out/bundle.json``)."""
    for needed in (data / "train", data / test_dir, data / val_dir, data / "tiny_t5"):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: build the data first "
                                    f"(experiments/real_audio_data.py, then experiments/real_audio.py)")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    budget = budget_mb * 2**20
    files: dict[str, dict] = {}
    used = 0

    def add(split: str, key: str, source: Path, caption: str, fmt: str) -> int:
        audio, rate = sf.read(source, dtype="float32", always_2d=True)
        blob = encoded(audio, rate, fmt, vorbis_level)
        name = Path(key).with_suffix(".ogg" if fmt == "OGG" else LOSSLESS["ext"])
        target = out / split / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        files[f"{split}/{name.as_posix()}"] = {"split": split, "wav": key, "caption": caption,
                                               "channels": audio.shape[1], "source": str(source)}
        return len(blob)

    for split, folder in (("test", data / test_dir), ("val", data / val_dir)):
        captions = captions_under(folder)
        for key, source in clips_of_split(folder):
            used += add(split, key, source, captions.get(key, ""), "FLAC")
    shutil.copytree(data / "tiny_t5", out / "tiny_t5")
    used += sum(f.stat().st_size for f in (out / "tiny_t5").iterdir())

    train_captions = captions_under(data / "train")
    by_category: dict[str, list[tuple[str, Path]]] = {}
    for key, source in clips_of_split(data / "train"):
        by_category.setdefault(key.split("/")[0], []).append((key, source))
    rng = random.Random(seed)
    for clips in by_category.values():
        rng.shuffle(clips)
    taken = {c: 0 for c in by_category}
    # round robin over categories, so they stay balanced until the budget is spent
    full = False
    while not full and any(taken[c] < len(by_category[c]) for c in by_category):
        for category, clips in by_category.items():
            if taken[category] >= len(clips):
                continue
            key, source = clips[taken[category]]
            size = add("train", key, source, train_captions.get(key, ""), "OGG")
            if used + size > budget:
                name = Path(key).with_suffix(".ogg")
                (out / "train" / name).unlink()
                del files[f"train/{name.as_posix()}"]
                full = True
                break
            used += size
            taken[category] += 1
    manifest = {"version": BUNDLE_VERSION, "source": str(data.resolve()), "seed": seed,
                "vorbis_level": vorbis_level, "budget_mb": budget_mb, "bytes": used,
                "train_clips": taken, "train_available": {c: len(v) for c, v in by_category.items()},
                "files": files}
    (out / "bundle.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def unpack(bundle: Path, out: Path) -> dict:
    """Decode the bundle into ``out/{train,val,test}`` WAVs with their captions; idempotent."""
    manifest_path = bundle / "bundle.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} is missing: {bundle} is not a bundle written by 'pack'")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("version") != BUNDLE_VERSION:
        raise ValueError(f"{manifest_path}: bundle version {manifest.get('version')}, this script reads "
                         f"{BUNDLE_VERSION}; pack it again")
    marker = out / "unpacked.json"
    stamp = {"bytes": manifest["bytes"], "files": len(manifest["files"])}
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return manifest
    captions: dict[str, dict[str, dict]] = {}
    for name, entry in manifest["files"].items():
        audio, rate = sf.read(bundle / name, dtype="float32", always_2d=True)
        if audio.shape[1] != entry["channels"]:
            raise ValueError(f"{bundle / name}: {audio.shape[1]} channels, the bundle says {entry['channels']}")
        target = out / entry["split"] / entry["wav"]
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, np.clip(audio, -1, 1), rate, subtype="PCM_16")
        captions.setdefault(entry["split"], {})[entry["wav"]] = {"caption": entry["caption"], "model": "category label"}
    for split, entries in captions.items():
        write_sidecar(out / split / "captions.jsonl", entries)
    shutil.copytree(bundle / "tiny_t5", out / "tiny_t5", dirs_exist_ok=True)
    marker.write_text(json.dumps(stamp))
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--data", default="data/real")
    a.add_argument("--out", default="data/real_bundle")
    a.add_argument("--budget-mb", type=float, default=30.0, help="total size of the bundle")
    a.add_argument("--vorbis-level", type=float, default=0.2)
    a.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("unpack")
    b.add_argument("--bundle", default="data/real_bundle")
    b.add_argument("--out", default="data/real_gpu")
    args = p.parse_args(argv)
    if args.command == "pack":
        m = pack(Path(args.data), Path(args.out), args.budget_mb, args.vorbis_level, args.seed)
    else:
        m = unpack(Path(args.bundle), Path(args.out))
    splits: dict[str, int] = {}
    for entry in m["files"].values():
        splits[entry["split"]] = splits.get(entry["split"], 0) + 1
    print(f"bundle {m['bytes'] / 2**20:.1f} MiB: {splits} clips; training clips per category "
          f"{m['train_clips']} of {m['train_available']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
