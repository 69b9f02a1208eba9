#!/usr/bin/env python
"""Real recordings for SAGA-SR, from Debian's packages: clips, splits and a manifest.

    python experiments/real_audio_data.py [--out data/real] [--clip-seconds 1.486] [--no-install]

Sources (44.1 kHz; licences in /usr/share/doc/<package>/copyright):
- music: ``wesnoth-1.16-music`` (41 orchestral / folk tracks, Ogg Vorbis);
- speech: ``klettres-data`` (spoken letters and syllables, one speaker per language) and
  ``ktuberling-data`` (spoken words, one speaker per language). Files below 44.1 kHz
  (some ktuberling languages are 22.05 kHz) are dropped as references.

Each recording becomes 44.1 kHz stereo clips of ``--clip-seconds`` (mono is duplicated;
a tail shorter than half a clip is dropped, a recording shorter than a clip is one
shorter clip). Skipped and counted: unreadable files, rates below 44.1 kHz, silent
clips, and clips whose content stops below ``--min-kept-bandwidth-hz`` (2 kHz: the lowest
simulated cutoff, nothing to learn). Band-limited clips (content stopping below
``--min-bandwidth-hz``, 16 kHz) are references too, as the paper trains on them: they teach
the model that f_h says how much band to add (their f_h, measured on the clip, is low), so
``--band-limited-keep`` of them (default all; a stable hash of the clip chooses) go to the
training split, and those of the held-out speakers and tracks to ``val_band_limited/`` and
``test_band_limited/``; ``val/`` and ``test/`` keep only full-band clips, as before, so the
scored test clips do not change. ``--band-limited-keep 0`` is the previous data. Splits are disjoint
by speaker (= language within a package; a language code shared by both packages
stays in one split) and by music track. Writes ``OUT/{train,val,test}/{speech,music}/*.wav``,
``captions.jsonl`` per split root (category captions: "speech", "orchestral music"),
and ``OUT/manifest.json`` (every clip, its source, split and the counts). Idempotent:
a finished OUT with the same settings is left as it is.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import shutil
import subprocess
import sys
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np
import torch

from saga_sr_plugin.data.spectral import bandwidth_hz  # (the evaluation CSV reports the same)

PACKAGES = ("wesnoth-1.16-music", "klettres-data", "ktuberling-data")
SOURCES = {  # category, package, folder, depth of the speaker (language) folder below it (None: per file)
    "music": [("wesnoth", Path("/usr/share/games/wesnoth/1.16/data/core/music"), None)],
    "speech": [("klettres", Path("/usr/share/klettres"), 0), ("ktuberling", Path("/usr/share/ktuberling/sounds"), 0)],
}
CAPTIONS = {"speech": "speech", "music": "orchestral music"}
# Held-out speakers (languages, both packages) and a share of music tracks, fixed for reproducibility.
TEST_LANGUAGES = ("fr", "ru", "el", "he", "cs")
VAL_LANGUAGES = ("it", "sl", "nb")
MUSIC_SPLIT = {"test": 0.2, "val": 0.1}
SAMPLE_RATE = 44100


def install_packages(packages: tp.Sequence[str] = PACKAGES) -> None:
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        print(f"installing {' '.join(missing)} (apt-get)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True)


def language_of(path: Path, folder: Path, depth: int | None) -> str:
    """The speaker group: the language folder ('en_GB' and 'en' are one language), or the file itself."""
    if depth is None:
        return path.stem
    code = path.relative_to(folder).parts[depth]
    return code.split("@")[0].split("_")[0]


def split_of(category: str, group: str) -> str:
    if category == "speech":
        return "test" if group in TEST_LANGUAGES else "val" if group in VAL_LANGUAGES else "train"
    # music: a stable hash of the track name, so adding tracks never moves the others
    u = int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < MUSIC_SPLIT["test"] else "val" if u < MUSIC_SPLIT["test"] + MUSIC_SPLIT["val"] else "train"


def clips_of(audio: torch.Tensor, length: int) -> list[tuple[int, torch.Tensor]]:
    if audio.shape[-1] <= length:
        return [(0, audio)]
    out = []
    for start in range(0, audio.shape[-1], length):
        piece = audio[:, start:start + length]
        if piece.shape[-1] >= length // 2:
            out.append((start, piece))
    return out


def kept(name: str, share: float) -> bool:
    """A stable choice of ``share`` of the clips by name (adding clips never changes the others)."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def read_stereo_44k(path: Path, skipped: collections.Counter) -> torch.Tensor | None:
    """A recording as 44.1 kHz stereo (mono duplicated, higher rates resampled), or None with the reason
    counted in ``skipped`` (unreadable, below 44.1 kHz: such a file has nothing up there to learn or score)."""
    from saga_sr_plugin.data.audio_io import read_audio
    from saga_sr_plugin.data.audio_format import BadAudioError

    try:
        audio, rate = read_audio(path)
    except (BadAudioError, FileNotFoundError, OSError) as err:
        skipped["unreadable"] += 1
        print(f"skipped: {err}", file=sys.stderr)
        return None
    if rate < SAMPLE_RATE:
        skipped[f"below 44.1 kHz ({rate} Hz)"] += 1
        return None
    if rate != SAMPLE_RATE:
        import torchaudio.functional as AF
        audio = AF.resample(audio, rate, SAMPLE_RATE)
    return audio[:2] if audio.shape[0] >= 2 else audio.expand(2, -1)


def build(out: Path, clip_seconds: float, min_bandwidth_hz: float, sources: dict = SOURCES,
          band_limited_keep: float = 1.0, min_kept_bandwidth_hz: float = 2000.0) -> dict:
    from saga_sr_plugin.data.audio_io import list_audio_files, write_audio
    from saga_sr_plugin.data.sidecar import write_sidecar

    settings = {"clip_seconds": clip_seconds, "min_bandwidth_hz": min_bandwidth_hz, "version": 3,
                "band_limited_keep": band_limited_keep, "min_kept_bandwidth_hz": min_kept_bandwidth_hz,
                "sources": {c: [str(f) for _, f, _ in s] for c, s in sources.items()}}
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text()).get("settings") == settings:
        print(f"{out}: already built with these settings (manifest.json); nothing to do")
        return json.loads(manifest_path.read_text())
    for split in ("train", "val", "test", "val_band_limited", "test_band_limited"):  # a rebuild starts from nothing
        shutil.rmtree(out / split, ignore_errors=True)
    length = int(round(clip_seconds * SAMPLE_RATE))
    clips, skipped = [], collections.Counter()
    captions: dict[str, dict[str, dict]] = collections.defaultdict(dict)
    for category, entries in sources.items():
        for package, folder, depth in entries:
            for path in list_audio_files(folder):
                group = f"{package}:{language_of(path, folder, depth)}" if depth is not None else path.stem
                split = split_of(category, group.split(":")[-1])
                audio = read_stereo_44k(path, skipped)
                if audio is None:
                    continue
                for start, piece in clips_of(audio, length):
                    if piece.abs().max() < 1e-3:
                        skipped["silent clip"] += 1
                        continue
                    width = bandwidth_hz(piece)
                    rel = Path(category) / f"{package}_{path.relative_to(folder).with_suffix('').as_posix().replace('/', '_')}_{start // length:03d}.wav"
                    folder_of_clip = split
                    if width < min_kept_bandwidth_hz:
                        skipped[f"bandwidth below {min_kept_bandwidth_hz:.0f} Hz"] += 1
                        continue
                    if width < min_bandwidth_hz:
                        if not kept(rel.as_posix(), band_limited_keep):
                            skipped["band-limited clip not kept (--band-limited-keep)"] += 1
                            continue
                        folder_of_clip = split if split == "train" else f"{split}_band_limited"
                    write_audio(out / folder_of_clip / rel, piece, SAMPLE_RATE, subtype="PCM_16")
                    captions[folder_of_clip][rel.as_posix()] = {"caption": CAPTIONS[category], "model": "category label"}
                    clips.append({"split": split, "category": category, "path": f"{folder_of_clip}/{rel.as_posix()}",
                                  "source": str(path), "group": group, "start": start,
                                  "seconds": round(piece.shape[-1] / SAMPLE_RATE, 3), "bandwidth_hz": round(width),
                                  "band_limited": width < min_bandwidth_hz})
    for split, entries in captions.items():
        write_sidecar(out / split / "captions.jsonl", entries)
    counts = collections.Counter((c["split"], c["category"]) for c in clips)
    limited = collections.Counter((c["split"], c["category"]) for c in clips if c["band_limited"])
    manifest = {"settings": settings, "counts": {f"{s}/{c}": n for (s, c), n in sorted(counts.items())},
                "band_limited": {f"{s}/{c}": n for (s, c), n in sorted(limited.items())},
                "skipped": dict(skipped), "clips": clips}
    for (s, c), n in sorted(counts.items()):
        groups = sorted({x["group"] for x in clips if x["split"] == s and x["category"] == c})
        manifest.setdefault("groups", {})[f"{s}/{c}"] = groups
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def check_disjoint(manifest: dict) -> None:
    """Speakers/tracks of one split never appear in another (raises otherwise)."""
    seen: dict[str, str] = {}
    for clip in manifest["clips"]:
        key = clip["group"].split(":")[-1] if clip["category"] == "speech" else clip["group"]
        if seen.setdefault(f"{clip['category']}:{key}", clip["split"]) != clip["split"]:
            raise AssertionError(f"{key} is in {seen[clip['category'] + ':' + key]} and {clip['split']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/real")
    p.add_argument("--clip-seconds", type=float, default=65536 / SAMPLE_RATE)
    p.add_argument("--min-bandwidth-hz", type=float, default=16000.0,
                   help="a clip whose content stops below this is band-limited")
    p.add_argument("--band-limited-keep", type=float, default=1.0,
                   help="share of the band-limited clips kept as references (0: the previous data)")
    p.add_argument("--min-kept-bandwidth-hz", type=float, default=2000.0,
                   help="clips whose content stops below this are skipped")
    p.add_argument("--no-install", action="store_true", help="do not apt-get the packages (they must be there)")
    args = p.parse_args(argv)
    if not args.no_install:
        install_packages()
    if not 0.0 <= args.band_limited_keep <= 1.0:
        p.error(f"--band-limited-keep is a share in [0, 1], got {args.band_limited_keep}")
    manifest = build(Path(args.out), args.clip_seconds, args.min_bandwidth_hz,
                     band_limited_keep=args.band_limited_keep, min_kept_bandwidth_hz=args.min_kept_bandwidth_hz)
    check_disjoint(manifest)
    print(json.dumps({"counts": manifest["counts"], "band_limited": manifest["band_limited"],
                      "skipped": manifest["skipped"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
