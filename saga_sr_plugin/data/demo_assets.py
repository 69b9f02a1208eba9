"""Embedded default: a synthetic, captioned demo set and a tiny local T5, made on first use.

No hub download is possible on CI or on this project's machines, so the demo
makes everything it needs: full-band synthetic audio (harmonic tones whose partials
reach 20 kHz, noise hits, harmonic sweeps) with captions in ``captions.jsonl``, and a tiny
randomly initialised T5 encoder with a word-level tokenizer, saved with
``save_pretrained`` so that it loads through the same code as ``t5-base``.
"""
from __future__ import annotations

import json
import os
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..atomic import default_file_mode
from .sidecar import sidecar_path, write_sidecar

SAMPLE_RATE = 44100
DEMO_ROOT = Path("demo_assets")
TINY_T5_DIR = "tiny_t5"
MARKER = "demo_assets.json"
DEMO_VERSION = 3

WORDS = ("a an the bright dull sawtooth square synth note tone low high pitched short long "
         "burst of white noise like hi-hat cymbal rising falling chirp sweep with vibrato "
         "and bell soft loud organ chord").split()


@dataclass(frozen=True)
class DemoSpec:
    n_train: int = 48
    n_val: int = 8
    seconds: float = 2.0
    seed: int = 0


def _envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    attack = int(rng.uniform(0.002, 0.05) * SAMPLE_RATE)
    release = rng.uniform(1.5, 6.0)
    t = np.arange(n) / SAMPLE_RATE
    env = np.exp(-release * t)
    env[:attack] *= np.linspace(0, 1, attack, endpoint=False)
    return env


def _harmonic_tone(n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Band-unlimited additive tone: partials up to 20 kHz with 1/k (saw) or odd 1/k (square) weights."""
    f0 = 110.0 * 2 ** rng.uniform(0, 3)
    square = rng.random() < 0.5
    vibrato = rng.random() < 0.5
    t = np.arange(n) / SAMPLE_RATE
    phase = 2 * np.pi * f0 * t
    if vibrato:
        phase += 0.004 * f0 / 5.0 * np.sin(2 * np.pi * 5.0 * t) * 2 * np.pi
    x = np.zeros(n)
    for k in range(1, int(20000 // f0) + 1):
        if square and k % 2 == 0:
            continue
        x += np.sin(k * phase) / k
    x *= _envelope(n, rng)
    pitch = "low" if f0 < 220 else "high pitched" if f0 > 440 else "bright"
    caption = f"a {pitch} {'square' if square else 'sawtooth'} synth note" + (" with vibrato" if vibrato else "")
    return x, caption


def _noise_hit(n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    x = rng.standard_normal(n)
    hits = np.zeros(n)
    period = int(rng.uniform(0.12, 0.5) * SAMPLE_RATE)
    decay = rng.uniform(20, 60)
    for start in range(0, n, period):
        m = n - start
        hits[start:] += np.exp(-decay * np.arange(m) / SAMPLE_RATE)
    return x * hits, "short bursts of white noise like a hi-hat cymbal"


def _sweep(n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A harmonic synth sweep (a riser or a fall): sawtooth partials of a gliding fundamental up to 20 kHz.

    Demo set version 2 had a sine chirp from 200 Hz to 15-21 kHz instead: while it sweeps above the
    cutoff the input holds nothing of it, so no super-resolution model can bring it back, and the demo
    heard like hiss. A sweep's partials, like every harmonic sound's, continue what the input holds.
    """
    rising = rng.random() < 0.5
    f_lo, f_hi = 110.0, 110.0 * 2 ** rng.uniform(2, 3)
    f0 = np.geomspace(f_lo, f_hi, n) if rising else np.geomspace(f_hi, f_lo, n)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = np.zeros(n)
    for k in range(1, int(20000 // f_lo) + 1):
        x += np.where(k * f0 < 20000, np.sin(k * phase) / k, 0.0)
    t = np.arange(n) / SAMPLE_RATE
    x *= 0.6 + 0.4 * np.cos(2 * np.pi * 0.5 * t)
    return x, f"a {'rising' if rising else 'falling'} synth sweep"


GENERATORS = (_harmonic_tone, _harmonic_tone, _noise_hit, _sweep)


def make_clip(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, str]:
    """One stereo clip (samples, 2) peaking at -3 dBFS, and its caption.

    A full-band noise floor 45-65 dB below the peak (room tone, as in every real
    recording) is added: a digitally exact tone has bins at -300 dB between its
    partials, which no recording has and which would make LSD meaningless.
    """
    n = int(seconds * SAMPLE_RATE)
    x, caption = GENERATORS[int(rng.integers(len(GENERATORS)))](n, rng)
    pan = rng.uniform(0.3, 0.7)
    stereo = np.stack([x * (1 - pan), x * pan], axis=1)
    stereo *= 0.707 / max(np.abs(stereo).max(), 1e-9)
    floor_db = rng.uniform(-65, -45)
    stereo += 0.707 * 10 ** (floor_db / 20) * rng.standard_normal(stereo.shape)
    stereo *= 0.707 / max(np.abs(stereo).max(), 1e-9)
    return stereo.astype(np.float32), caption


def latent_channel_std(folder: str | Path, pretransform_config: dict, floor: float = 1e-4) -> list[float]:
    """Per-channel std of an official pretransform's latents over a folder of clips.

    This is how the demo config's ``saga_scaled`` scale was made (demo set version 3,
    wavelet-packet pretransform): ``latent_channel_std("demo_assets/audio/train", packet_config)``.
    """
    import torch
    from stable_audio_tools.models.factory import create_pretransform_from_config

    pretransform = create_pretransform_from_config(pretransform_config, SAMPLE_RATE)
    sums = None
    count = 0
    for path in sorted(Path(folder).rglob("*.wav")):
        audio, _ = sf.read(path, dtype="float32", always_2d=True)
        audio = audio[: len(audio) // pretransform.downsampling_ratio * pretransform.downsampling_ratio]
        with torch.no_grad():
            z = pretransform.encode(torch.from_numpy(audio.T.copy())[None]).double()
        sq = z.pow(2).sum(dim=(0, 2))
        sums = sq if sums is None else sums + sq
        count += z.shape[-1]
    std = (sums / count).sqrt().clamp(min=floor)
    return [float(f"{v:.4g}") for v in std]


def write_split(folder: Path, count: int, rng: np.random.Generator, seconds: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for i in range(count):
        audio, caption = make_clip(rng, seconds)
        name = f"clip_{i:03d}.wav"
        sf.write(folder / name, audio, SAMPLE_RATE, subtype="PCM_16")
        entries[name] = {"caption": caption, "model": "synthetic-demo"}
    write_sidecar(sidecar_path(folder), entries)


def save_tiny_t5(folder: Path, d_model: int = 64, seed: int = 0, num_layers: int = 2, num_heads: int = 4,
                 d_kv: int = 16, d_ff: int | None = None, words: tp.Sequence[str] = WORDS) -> Path:
    """A random T5 encoder (2 small layers by default) + word-level tokenizer over the demo captions' words.

    ``save_tiny_t5(f, d_model=768, num_layers=12, num_heads=12, d_kv=64, d_ff=3072)`` is a
    T5-base-sized stand-in for benchmarks.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")

    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(vocab), d_model=d_model, d_kv=d_kv, d_ff=d_ff or 2 * d_model,
                      num_layers=num_layers, num_heads=num_heads, decoder_start_token_id=0, pad_token_id=0,
                      eos_token_id=1)
    folder.mkdir(parents=True, exist_ok=True)
    T5EncoderModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    for file in folder.iterdir():   # safetensors stages through mkstemp (0600): the usual mode, as for exports
        if file.is_file():
            os.chmod(file, default_file_mode())
    return folder


def ensure_demo_assets(root: str | Path = DEMO_ROOT, spec: DemoSpec = DemoSpec()) -> Path:
    """Create ``root/{tiny_t5, audio/train, audio/val}`` unless the same version is already there."""
    root = Path(root)
    marker = root / MARKER
    wanted = {"version": DEMO_VERSION, **spec.__dict__}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return root
    rng = np.random.default_rng(spec.seed)
    save_tiny_t5(root / TINY_T5_DIR, seed=spec.seed)
    write_split(root / "audio" / "train", spec.n_train, rng, spec.seconds)
    write_split(root / "audio" / "val", spec.n_val, rng, spec.seconds)
    marker.write_text(json.dumps(wanted))
    return root
