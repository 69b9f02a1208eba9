#!/usr/bin/env python
"""An out-of-domain evaluation set from Debian packages the real-audio training never draws from.

    python experiments/ood_audio_data.py [--out data/ood] [--per-category 16] [--no-install]

Sources (44.1 kHz or more; licences in /usr/share/doc/<package>/copyright):
- speech: ``tuxpaint-stamps-default``, the stamps' spoken descriptions (``*_desc*.ogg``: volunteers
  and school children reading the stamp names, a dozen languages; other speakers, other words
  and other microphones than klettres / ktuberling);
- music: ``colobot-common-sounds`` (21 electronic / ambient tracks) and ``frozen-bubble-data``'s
  three tunes (the training's music is wesnoth's orchestral soundtrack);
- effects: sounds the training has no category for: tuxpaint stamp sounds (animals, vehicles,
  objects; its spoken letters and numbers under ``symbols/`` are left out), ``lomiri-sounds``
  (ringtones, notifications), ``sound-theme-freedesktop`` (desktop events; its spoken channel
  names are left out) and ``frozen-bubble-data``'s game sounds.

One clip of ``--clip-seconds`` per recording, from its middle (a recording shorter than a clip is
one shorter clip; under 0.25 s it is skipped), 44.1 kHz stereo (mono duplicated, 48 / 96 kHz
resampled). Band-limited references are kept on purpose: how a model behaves where the reference
holds little is what this set is for; each clip's bandwidth is in the manifest. Skipped and counted:
unreadable files, rates below 44.1 kHz, silent clips, too short recordings. ``--per-category``
recordings per category are chosen round-robin over groups (speech: language; music: track;
effects: package and folder), so one ringtone collection cannot fill the set. Writes
``OUT/{speech,music,effects}/*.wav``, ``OUT/captions.jsonl`` (the caption a user of the real-audio
model gives it: its training categories "speech" and "orchestral music", and the text null "" for
effects, a category it was never trained with) and ``OUT/manifest.json``. Idempotent.
"""
from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import random
import shutil
import sys
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch

from real_audio_data import SAMPLE_RATE, install_packages, read_stereo_44k
from saga_sr_plugin.data.spectral import bandwidth_hz

PACKAGES = ("tuxpaint-stamps-default", "colobot-common-sounds", "frozen-bubble-data", "lomiri-sounds",
            "sound-theme-freedesktop")
TRAINING_PACKAGES = ("wesnoth-1.16-music", "klettres-data", "ktuberling-data")  # never a source here


class Source(tp.NamedTuple):
    category: str
    package: str
    folder: Path
    include: tuple[str, ...]           # fnmatch patterns on the path relative to folder
    exclude: tuple[str, ...] = ()
    group: str = "file"                # "file", "folder" or "desc_language" (tuxpaint: the language suffix)


STAMPS = Path("/usr/share/tuxpaint/stamps")
FROZEN = Path("/usr/share/games/frozen-bubble/snd")
SOURCES = (
    Source("speech", "tuxpaint-stamps-default", STAMPS, ("*_desc*.ogg",), group="desc_language"),
    Source("music", "colobot-common-sounds", Path("/usr/share/games/colobot/music"), ("*.ogg",)),
    Source("music", "frozen-bubble-data", FROZEN, ("*zik*.ogg",)),
    Source("effects", "tuxpaint-stamps-default", STAMPS, ("*.ogg",), ("*_desc*", "symbols/*"), group="folder"),
    Source("effects", "lomiri-sounds", Path("/usr/share/sounds/lomiri"), ("*.ogg", "*.oga", "*.wav"), group="folder"),
    Source("effects", "sound-theme-freedesktop", Path("/usr/share/sounds/freedesktop/stereo"), ("*.oga",),
           ("audio-channel-*", "audio-test-signal*"), group="folder"),
    Source("effects", "frozen-bubble-data", FROZEN, ("*.ogg",), ("*zik*",), group="folder"),
)
CAPTIONS = {"speech": "speech", "music": "orchestral music", "effects": ""}
MIN_SECONDS = 0.25


def matches(rel: str, source: Source) -> bool:
    name = rel.split("/")[-1]
    def hit(patterns: tp.Sequence[str]) -> bool:
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)
    return hit(source.include) and not hit(source.exclude)


def group_of(rel: str, source: Source) -> str:
    """Who or what a recording belongs to, so the choice spreads over speakers, tracks and collections."""
    if source.group == "desc_language":  # cat_desc_fr.ogg -> fr; cat_desc.ogg -> en (tuxpaint's default)
        tail = Path(rel).stem.split("_desc")[-1].strip("_").split(".")[0]
        return f"{source.package}:{tail or 'en'}"
    if source.group == "folder":
        return f"{source.package}:{Path(rel).parent.parts[0] if Path(rel).parent.parts else '.'}"
    return f"{source.package}:{Path(rel).stem}"


def candidates(sources: tp.Sequence[Source]) -> dict[str, list[tuple[Source, Path, str]]]:
    """Every matching recording per category: (source, path, group), sorted."""
    from saga_sr_plugin.data.audio_io import list_audio_files

    found: dict[str, list[tuple[Source, Path, str]]] = collections.defaultdict(list)
    for source in sources:
        for path in list_audio_files(source.folder, what=f"{source.package} folder (is the package installed?)"):
            rel = path.relative_to(source.folder).as_posix()
            if matches(rel, source):
                found[source.category].append((source, path, group_of(rel, source)))
    return found


def round_robin(items: list[tuple[Source, Path, str]], seed: int) -> list[tuple[Source, Path, str]]:
    """A fixed shuffle of each group, then one recording of each group in turn."""
    rng = random.Random(seed)
    groups: dict[str, list] = collections.defaultdict(list)
    for item in items:
        groups[item[2]].append(item)
    queues = []
    for name in sorted(groups):
        members = sorted(groups[name], key=lambda x: str(x[1]))
        rng.shuffle(members)
        queues.append(members)
    rng.shuffle(queues)
    order = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order


def middle_clip(audio: torch.Tensor, length: int) -> tuple[int, torch.Tensor]:
    if audio.shape[-1] <= length:
        return 0, audio
    start = (audio.shape[-1] - length) // 2
    return start, audio[:, start:start + length]


def build(out: Path, clip_seconds: float, per_category: int, seed: int = 0,
          sources: tp.Sequence[Source] = SOURCES) -> dict:
    from saga_sr_plugin.data.audio_io import write_audio
    from saga_sr_plugin.data.sidecar import write_sidecar

    settings = {"clip_seconds": clip_seconds, "per_category": per_category, "seed": seed, "version": 1,
                "sources": [[s.category, s.package, str(s.folder), list(s.include), list(s.exclude)] for s in sources]}
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text()).get("settings") == settings:
        print(f"{out}: already built with these settings (manifest.json); nothing to do")
        return json.loads(manifest_path.read_text())
    for category in {s.category for s in sources}:
        shutil.rmtree(out / category, ignore_errors=True)
    length = int(round(clip_seconds * SAMPLE_RATE))
    clips, skipped, captions = [], collections.Counter(), {}
    for category, items in sorted(candidates(sources).items()):
        taken = 0
        for source, path, group in round_robin(items, seed):
            if taken >= per_category:
                break
            audio = read_stereo_44k(path, skipped)
            if audio is None:
                continue
            if audio.shape[-1] < MIN_SECONDS * SAMPLE_RATE:
                skipped[f"shorter than {MIN_SECONDS} s"] += 1
                continue
            start, piece = middle_clip(audio, length)
            if piece.abs().max() < 1e-3:
                skipped["silent clip"] += 1
                continue
            name = f"{source.package}_{path.relative_to(source.folder).with_suffix('').as_posix().replace('/', '_')}"
            rel = f"{category}/{name.replace(' ', '_')}.wav"
            write_audio(out / rel, piece, SAMPLE_RATE, subtype="PCM_16")
            captions[rel] = {"caption": CAPTIONS[category], "model": "category label"}
            clips.append({"category": category, "path": rel, "source": str(path), "package": source.package,
                          "group": group, "start": start, "seconds": round(piece.shape[-1] / SAMPLE_RATE, 3),
                          "bandwidth_hz": round(bandwidth_hz(piece))})
            taken += 1
        if taken < per_category:
            print(f"{category}: only {taken} of {per_category} recordings usable", file=sys.stderr)
    write_sidecar(out / "captions.jsonl", captions)
    counts = collections.Counter(c["category"] for c in clips)
    manifest = {"settings": settings, "counts": dict(sorted(counts.items())), "skipped": dict(skipped),
                "groups": {c: sorted({x["group"] for x in clips if x["category"] == c}) for c in counts},
                "clips": clips}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def check_out_of_domain(manifest: dict, training_packages: tp.Sequence[str] = TRAINING_PACKAGES) -> None:
    """No clip comes from a package the training draws from (raises otherwise)."""
    shared = sorted({c["package"] for c in manifest["clips"]} & set(training_packages))
    if shared:
        raise AssertionError(f"out-of-domain set uses training package(s) {shared}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/ood")
    p.add_argument("--clip-seconds", type=float, default=65536 / SAMPLE_RATE)
    p.add_argument("--per-category", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="the fixed choice of recordings")
    p.add_argument("--no-install", action="store_true", help="do not apt-get the packages (they must be there)")
    args = p.parse_args(argv)
    if not args.no_install:
        install_packages(PACKAGES)
    manifest = build(Path(args.out), args.clip_seconds, args.per_category, args.seed)
    check_out_of_domain(manifest)
    widths = collections.defaultdict(list)
    for clip in manifest["clips"]:
        widths[clip["category"]].append(clip["bandwidth_hz"])
    print(json.dumps({"counts": manifest["counts"], "skipped": manifest["skipped"],
                      "bandwidth_hz_median": {c: sorted(w)[len(w) // 2] for c, w in widths.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
