"""Qwen2-Audio captions for SAGA-SR's text condition: an offline, resumable batch job.

Training captions come from the high-res clips, inference captions from the low-res
input (the :class:`Captioner` is shared). Defaults follow the authors: the *base*
``Qwen/Qwen2-Audio-7B`` with the plain prompt
``<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:``, greedy
decoding, mono 16 kHz audio. Instruct checkpoints (or any ``--chat-template`` run)
go through the processor's chat template with a content-only question.

Clip policy: Qwen2-Audio's Whisper encoder sees at most 30 s; a longer file is
captioned from its central 30 s (``clip_seconds``). The caption is stored per file
and applies to every random crop the dataset takes from it; for long recordings of
changing content, cut them into segments first (the authors captioned each 5.94 s
training segment).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import typing as tp
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from tqdm.auto import tqdm

from ..atomic import write_text
from ..data.audio_io import list_audio_files, read_audio
from ..data.audio_format import BadAudioError
from ..data.sidecar import read_sidecar, relative_key, sidecar_path, write_sidecar

log = logging.getLogger("saga_sr.caption")

DEFAULT_MODEL = "Qwen/Qwen2-Audio-7B"
BASE_PROMPT = "<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:"
# For chat models: ask for content only, never for quality or bandwidth, so the caption
# of a low-res input describes the same thing as the caption of its high-res original.
CONTENT_QUESTION = ("Describe the content of this audio in one sentence: the sound sources, instruments, "
                    "speakers and environment. Do not mention audio quality, bandwidth or noise.")
SILENCE_PEAK = 1e-4


class Captioner:
    """A Qwen2-Audio model and processor; ``caption(list of (audio, rate))`` -> captions."""

    def __init__(self, model: torch.nn.Module, processor: tp.Any, prompt: str | None = None,
                 chat_template: bool = False, max_new_tokens: int = 256, clip_seconds: float = 30.0,
                 name: str = ""):
        self.model = model.eval()
        self.processor = processor
        self.chat_template = chat_template
        self.prompt = prompt or (CONTENT_QUESTION if chat_template else BASE_PROMPT)
        self.max_new_tokens = max_new_tokens
        self.clip_seconds = clip_seconds
        self.name = name
        self.sampling_rate = int(processor.feature_extractor.sampling_rate)

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_MODEL, device: str = "auto", dtype: str = "auto",
             prompt: str | None = None, chat_template: bool | None = None, **kwargs: tp.Any) -> "Captioner":
        """Hub name or local folder (``save_pretrained`` layout). dtype auto: bf16 on CUDA, fp32 on CPU."""
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if str(device).startswith("cuda") else "float32"
        if chat_template is None:
            chat_template = "instruct" in str(name_or_path).lower()
        try:
            processor = AutoProcessor.from_pretrained(name_or_path)
            model = Qwen2AudioForConditionalGeneration.from_pretrained(name_or_path, dtype=getattr(torch, dtype))
        except OSError as err:
            raise OSError(f"could not load the captioning model {name_or_path!r}: give a local folder saved with "
                          f"save_pretrained() or a hub name reachable from this machine ({err})") from err
        processor.tokenizer.padding_side = "left"  # batched generation continues every prompt at its end
        return cls(model.to(device), processor, prompt, chat_template, name=str(name_or_path), **kwargs)

    def prepare(self, audio: torch.Tensor, sample_rate: int) -> np.ndarray:
        """Mono, the processor's rate, at most ``clip_seconds`` from the middle."""
        x = torch.as_tensor(audio, dtype=torch.float32)
        x = x.mean(dim=0) if x.ndim == 2 else x
        if sample_rate != self.sampling_rate:
            x = AF.resample(x, sample_rate, self.sampling_rate)
        limit = int(self.clip_seconds * self.sampling_rate)
        if x.shape[-1] > limit:
            start = (x.shape[-1] - limit) // 2
            x = x[start:start + limit]
        return x.numpy()

    def _text(self) -> str:
        if not self.chat_template:
            return self.prompt
        conversation = [{"role": "user", "content": [{"type": "audio", "audio_url": "clip"},
                                                     {"type": "text", "text": self.prompt}]}]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)

    @torch.no_grad()
    def caption(self, items: tp.Sequence[tuple[torch.Tensor, int]]) -> list[str]:
        audios = [self.prepare(a, sr) for a, sr in items]
        texts = [self._text()] * len(audios)
        inputs = self.processor(text=texts, audio=audios, sampling_rate=self.sampling_rate, return_tensors="pt",
                                padding=True)
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()
                  if torch.is_tensor(v)}
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        captions = self.processor.batch_decode(new_tokens, skip_special_tokens=True,
                                               clean_up_tokenization_spaces=False)
        return [c.strip() for c in captions]

    def caption_one(self, audio: torch.Tensor, sample_rate: int) -> str:
        return self.caption([(audio, sample_rate)])[0]


@dataclasses.dataclass
class CaptionReport:
    captioned: int = 0
    already_done: int = 0
    failed: list[dict] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def files_per_second(self) -> float:
        return self.captioned / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {"captioned": self.captioned, "already_done": self.already_done, "failed_count": len(self.failed),
                "failed": self.failed, "seconds": round(self.seconds, 3),
                "files_per_second": round(self.files_per_second, 4)}


def _load_for_caption(path: Path) -> tuple[torch.Tensor, int]:
    audio, sr = read_audio(path)
    if audio.abs().max() < SILENCE_PEAK:
        raise BadAudioError(f"{path}: silent (peak below {SILENCE_PEAK})")
    return audio, sr


def caption_folder(root: str | os.PathLike, captioner: Captioner, batch_size: int = 8, overwrite: bool = False,
                   files: tp.Sequence[Path] | None = None, report: CaptionReport | None = None) -> CaptionReport:
    """Caption every audio file under ``root`` into ``root/captions.jsonl``; resumable.

    Files already in the sidecar are skipped (unless ``overwrite``); after each batch
    the sidecar is rewritten atomically, so an interrupted run keeps all finished batches.
    """
    root = Path(root)
    report = report or CaptionReport()
    files = list(files) if files is not None else list_audio_files(root, what="folder to caption")
    path = sidecar_path(root)
    entries = read_sidecar(path) if path.exists() else {}
    todo = []
    for f in files:
        key = relative_key(f, root)
        if not overwrite and entries.get(key, {}).get("caption", "").strip():
            report.already_done += 1
        else:
            todo.append(f)
    start = time.time()
    bar = tqdm(total=len(todo), desc=f"caption {root}", unit="file")
    for i in range(0, len(todo), batch_size):
        batch, loaded = todo[i:i + batch_size], []
        for f in batch:
            try:
                loaded.append((f, *_load_for_caption(f)))
            except (BadAudioError, FileNotFoundError) as err:
                report.failed.append({"path": str(f), "reason": str(err)})
                log.warning("not captioned (%d so far): %s", len(report.failed), err)
        if loaded:
            captions = captioner.caption([(a, sr) for _, a, sr in loaded])
            for (f, audio, sr), caption in zip(loaded, captions):
                entries[relative_key(f, root)] = {"caption": caption, "model": captioner.name,
                                                  "prompt": captioner.prompt, "seconds": round(audio.shape[-1] / sr, 3)}
                if not caption:
                    log.warning("empty caption for %s", f)
            write_sidecar(path, entries)
            report.captioned += len(loaded)
        bar.update(len(batch))
        elapsed = time.time() - start
        bar.set_postfix(files_per_s=f"{report.captioned / max(elapsed, 1e-9):.2f}", failed=len(report.failed))
    bar.close()
    report.seconds += time.time() - start
    return report


def read_file_list(list_path: str | os.PathLike, root: str | os.PathLike) -> list[Path]:
    """Paths from a text file, one per line (absolute, or relative to ``root``); they must lie under ``root``."""
    root = Path(root).resolve()
    files = []
    for number, line in enumerate(Path(list_path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line) if Path(line).is_absolute() else root / line
        if root not in path.resolve().parents:
            raise ValueError(f"{list_path}:{number}: {line} is not under the sidecar root {root}")
        files.append(path)
    return files


def caption_folders(roots: tp.Sequence[str], captioner: Captioner, batch_size: int = 8, overwrite: bool = False,
                    report_path: str | None = None, file_list: str | None = None) -> CaptionReport:
    """Caption every folder in ``roots``; with ``file_list``, only the listed files of the single root."""
    report = CaptionReport()
    if file_list is not None and len(roots) != 1:
        raise ValueError("a file list needs exactly one folder: the root its sidecar belongs to")
    for root in roots:
        files = read_file_list(file_list, root) if file_list else None
        caption_folder(root, captioner, batch_size, overwrite, files=files, report=report)
    if report_path:
        write_text(report_path, json.dumps(report.to_json(), indent=2))
    return report
