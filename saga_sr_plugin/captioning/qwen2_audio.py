"""Qwen2-Audio captions for SAGA-SR's text condition: an offline, resumable batch job.

Training captions come from the high-res clips, inference captions from the low-res
input (the :class:`Captioner` is shared). Defaults follow the authors: the *base*
``Qwen/Qwen2-Audio-7B`` with the plain prompt
``<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:``, greedy
decoding, mono 16 kHz audio. Instruct checkpoints (or any ``--chat-template`` run)
go through the processor's chat template with a content-only question.

Clip policy: Qwen2-Audio's Whisper encoder sees at most 30 s; a longer file is
captioned from its central 30 s (``clip_seconds``), and that caption applies to every
crop the dataset takes from it. With ``segment_seconds`` (the authors captioned each
5.94 s training segment) each segment is captioned, and a crop takes the caption of the
segment it overlaps most (``data.sidecar.caption_at``). Under ``torchrun`` each rank
captions its share of the files into its own part, and rank 0 merges the parts.
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
from ..data.sidecar import (merge_parts, part_path, read_sidecar, read_with_parts, relative_key, segment_spans,
                            sidecar_path, write_sidecar)
from ..distributed import Share

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
    segments: int = 0
    already_done: int = 0
    failed: list[dict] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def files_per_second(self) -> float:
        return self.captioned / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def total(cls, reports: tp.Sequence["CaptionReport"]) -> "CaptionReport":
        """The reports of every rank as one (seconds: the slowest rank's, the job's wall time)."""
        return cls(sum(r.captioned for r in reports), sum(r.segments for r in reports),
                   sum(r.already_done for r in reports), [f for r in reports for f in r.failed],
                   max((r.seconds for r in reports), default=0.0))

    def to_json(self) -> dict:
        return {"captioned": self.captioned, "segments": self.segments, "already_done": self.already_done,
                "failed_count": len(self.failed),
                "failed": self.failed, "seconds": round(self.seconds, 3),
                "files_per_second": round(self.files_per_second, 4)}


def _load_for_caption(path: Path) -> tuple[torch.Tensor, int]:
    audio, sr = read_audio(path)
    if audio.abs().max() < SILENCE_PEAK:
        raise BadAudioError(f"{path}: silent (peak below {SILENCE_PEAK})")
    return audio, sr


def _segments_of(audio: torch.Tensor, sample_rate: int, segment_seconds: float | None,
                 hop_seconds: float | None) -> list[tuple[tuple[float, float] | None, torch.Tensor]]:
    """The stretches to caption: the whole file (``None``), or each segment with its span in seconds."""
    if segment_seconds is None:
        return [(None, audio)]
    spans = segment_spans(audio.shape[-1] / sample_rate, segment_seconds, hop_seconds or segment_seconds)
    return [((s, e), audio[..., round(s * sample_rate):round(e * sample_rate)]) for s, e in spans]


def _entry(captioner: Captioner, seconds: float, pieces: list[tuple[tuple[float, float] | None, str]],
           segment_seconds: float | None, hop_seconds: float | None) -> dict:
    entry = {"model": captioner.name, "prompt": captioner.prompt, "seconds": round(seconds, 3)}
    if segment_seconds is None:
        return {"caption": pieces[0][1], **entry}
    segments = [{"start": span[0], "end": span[1], "caption": text} for span, text in pieces]
    return {"caption": segments[len(segments) // 2]["caption"], **entry, "segments": segments,
            "segment_seconds": segment_seconds, "hop_seconds": hop_seconds or segment_seconds}


def caption_folder(root: str | os.PathLike, captioner: Captioner, batch_size: int = 8, overwrite: bool = False,
                   files: tp.Sequence[Path] | None = None, report: CaptionReport | None = None,
                   segment_seconds: float | None = None, hop_seconds: float | None = None,
                   share: Share = Share()) -> CaptionReport:
    """Caption the audio files under ``root`` into ``root/captions.jsonl``; resumable.

    ``segment_seconds``: caption each segment of that length every ``hop_seconds`` (default: the
    length) instead of each file's central ``clip_seconds``. ``share``: this process takes every
    ``world``-th file and, on many processes, writes its own part (``captions.part-R-of-W.jsonl``),
    rewritten atomically after each batch; the caller merges the parts once every rank is done
    (:func:`caption_folders`). A file already captioned the same way (in the sidecar or any part) is
    skipped unless ``overwrite``, so an interrupted run, on any number of processes, resumes.
    """
    root = Path(root)
    report = report or CaptionReport()
    if segment_seconds is not None and not 0 < segment_seconds <= captioner.clip_seconds:
        raise ValueError(f"--segment-seconds must be in (0, {captioner.clip_seconds:g}] (the encoder's "
                         f"window), got {segment_seconds}")
    if hop_seconds is not None and (segment_seconds is None or hop_seconds <= 0):
        raise ValueError("--hop-seconds needs --segment-seconds and must be positive")
    files = list(files) if files is not None else list_audio_files(root, what="folder to caption")
    if not share.distributed:
        merge_parts(root)  # a many-process run that was stopped: its parts join the sidecar first
    out_path = part_path(root, share.rank, share.world) if share.distributed else sidecar_path(root)
    done = read_with_parts(root)
    written = read_sidecar(out_path)
    how = {"segment_seconds": segment_seconds, "hop_seconds": (hop_seconds or segment_seconds)
           if segment_seconds is not None else None}
    todo = []
    for f in share.take(sorted(files)):
        entry = done.get(relative_key(f, root), {})
        same_way = all(entry.get(k) == v for k, v in how.items())
        if not overwrite and same_way and str(entry.get("caption", "")).strip():
            report.already_done += 1
        else:
            todo.append(f)
    start = time.time()
    bar = tqdm(total=len(todo), desc=f"caption {root} ({share.describe()})", unit="file")
    for i in range(0, len(todo), batch_size):
        batch, loaded = todo[i:i + batch_size], []
        for f in batch:
            try:
                loaded.append((f, *_load_for_caption(f)))
            except (BadAudioError, FileNotFoundError) as err:
                report.failed.append({"path": str(f), "reason": str(err)})
                log.warning("not captioned (%d so far): %s", len(report.failed), err)
        if loaded:
            pieces = [(n, span, piece, sr) for n, (_, audio, sr) in enumerate(loaded)
                      for span, piece in _segments_of(audio, sr, segment_seconds, hop_seconds)]
            texts: list[str] = []
            for j in range(0, len(pieces), batch_size):
                texts += captioner.caption([(piece, sr) for _, _, piece, sr in pieces[j:j + batch_size]])
            for n, (f, audio, sr) in enumerate(loaded):
                mine = [(span, text) for (m, span, _, _), text in zip(pieces, texts) if m == n]
                written[relative_key(f, root)] = _entry(captioner, audio.shape[-1] / sr, mine, segment_seconds,
                                                        hop_seconds)
                report.segments += len(mine)
                if not all(text for _, text in mine):
                    log.warning("empty caption for %s", f)
            write_sidecar(out_path, written if share.distributed else {**done, **written})
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
                    report_path: str | None = None, file_list: str | None = None,
                    segment_seconds: float | None = None, hop_seconds: float | None = None,
                    share: Share = Share()) -> CaptionReport:
    """Caption every folder in ``roots``; with ``file_list``, only the listed files of the single root.

    On many processes each rank captions its share into its part; once all are done (a barrier),
    rank 0 merges the parts into each sidecar and returns the total report (the others their own).
    """
    report = CaptionReport()
    if file_list is not None and len(roots) != 1:
        raise ValueError("a file list needs exactly one folder: the root its sidecar belongs to")
    for root in roots:
        files = read_file_list(file_list, root) if file_list else None
        caption_folder(root, captioner, batch_size, overwrite, files=files, report=report,
                       segment_seconds=segment_seconds, hop_seconds=hop_seconds, share=share)
    share.barrier()
    reports = share.gather(report)
    if not share.is_first:
        return report
    if share.distributed:
        for root in roots:
            merge_parts(root)
        report = CaptionReport.total(reports or [report])
    if report_path:
        write_text(report_path, json.dumps(report.to_json(), indent=2))
    return report
