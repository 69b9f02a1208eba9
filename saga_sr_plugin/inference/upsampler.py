"""Upsampling any input to 44.1 kHz with a trained SAGA-SR model.

Load once (:meth:`Upsampler.load`: official factory + exported EMA weights), then
:meth:`Upsampler.upsample` as often as needed. Each window of the model's sample size
is resampled to 44.1 kHz, encoded by the low-res conditioner, sampled with an official
loop (the paper's Euler by default) under eq. 4 guidance, decoded by the VAE; windows overlap and
are crossfaded, and the low band is finally replaced by the input's.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import typing as tp
from pathlib import Path

import torch
from tqdm.auto import tqdm

from stable_audio_tools.models.conditioners import NumberConditioner, T5Conditioner

from ..data.audio_format import SAMPLE_RATE, BadAudioError
from ..data.audio_io import prepare_input, read_audio, write_audio
from ..data.spectral import (ROLLOFF_BINS, ROLLOFF_N_FFT, content_edge_bin, own_content_end_bin,
                             rolloff_bin_of_spectrum, rolloff_ratio, summed_magnitude)
from ..models.conditioners import LowResLatentConditioner
from ..models.loading import load_exported_model
from .postprocess import replace_low_frequencies
from .sampling import sample_guided
from .settings import AUTO, UpsampleSettings, check_postprocess_variant, check_saga_sr_block
from .target_rolloff import features_of
from .windows import Crossfader, window_starts

log = logging.getLogger("saga_sr.inference")
SPECTRUM_PIECE = 2 ** 19   # samples (11.9 s) per piece of the input's summed spectrum


class UpsampleResult(tp.NamedTuple):
    audio: torch.Tensor          # (channels, samples) at 44.1 kHz, the input's duration
    sample_rate: int
    caption: str
    input_rolloff: float         # normalised f_l of the whole input (roll-off bin / 1025)
    input_cutoff_hz: float       # detected input cutoff: the LFR boundary
    lfr_level_ratio: float | None    # mean over windows of the LFR's r (None: LFR off)
    added_band_gain_db: float        # strongest cut the added-band cap applied (0: none)
    target_rolloff: float = 0.9      # the f_h the model was given (the settings', the job's or the auto rule's)
    peak_gain_db: float = 0.0        # gain applied so the output does not clip (settings.peak_limit_dbfs; 0: none)
    variants: dict[str, torch.Tensor] = {}   # the same sampling post-processed as each variant asked (e.g. raw)


@dataclasses.dataclass
class UpsampleJob:
    """One input for :meth:`Upsampler.upsample_many`; ``load()`` returns (audio, sample rate)."""

    name: str
    load: tp.Callable[[], tuple[torch.Tensor, int]]
    caption: str | None = None
    target_rolloff: float | None = None   # this input's f_h (e.g. an evaluation's oracle); None: the settings'
    nyquist_hz: float | None = None       # the band its recording rate allowed, when it arrives resampled to
                                          # 44.1 kHz already (an evaluation's simulated cutoff); None: its rate's


@dataclasses.dataclass
class _Track:
    """One post-processing of an input's windows: its boundary, crossfade and what the caps did."""

    settings: UpsampleSettings
    fader: Crossfader
    cutoff: int
    ratios: list[float] = dataclasses.field(default_factory=list)
    gains: list[float] = dataclasses.field(default_factory=lambda: [0.0])


@dataclasses.dataclass
class _InFlight:
    job: UpsampleJob
    tracks: dict[str, _Track]        # "" is the settings' own; the others are the variants'
    channels: int
    caption: str
    rolloff: int
    target_rolloff: float
    error: Exception | None = None   # set when a window of this input came out unusable

    @property
    def fader(self) -> Crossfader:
        return self.tracks[""].fader


def peak_safe(audio: torch.Tensor, limit_dbfs: float | None) -> tuple[torch.Tensor, float]:
    """``audio`` scaled as a whole so its peak is at most ``limit_dbfs`` (None: unchanged); and the gain in dB."""
    peak = float(audio.abs().max()) if audio.numel() else 0.0
    if limit_dbfs is None or peak <= 10 ** (limit_dbfs / 20):
        return audio, 0.0
    gain_db = limit_dbfs - 20 * math.log10(peak)
    return audio * 10 ** (gain_db / 20), gain_db


def short_caption(caption: str, limit: int = 80) -> str:
    """A caption fit for one log or progress line."""
    return repr(caption) if len(caption) <= limit else f"{caption[:limit]!r}... ({len(caption)} characters)"


MUTED_DB = -120.0   # a cut this deep means the input window was (digitally) silent


def added_band_cap_note(gains_db: tp.Sequence[float], cap_db: float | None) -> str:
    """One line on what ``max_added_band_db`` did to an input's windows, in figures a person can use."""
    muted = [g for g in gains_db if g <= MUTED_DB]
    lowered = [g for g in gains_db if MUTED_DB < g < 0]
    parts = []
    if lowered:
        parts.append(f"lowered in {len(lowered)} of {len(gains_db)} window(s) (by {-sum(lowered) / len(lowered):.1f} dB "
                     f"on average, at most {-min(lowered):.1f} dB)")
    if muted:
        parts.append(f"muted in {len(muted)} window(s) where the input is silent")
    return f"the generated band was {' and '.join(parts)} (max_added_band_db {cap_db:g})" if parts else ""


def _find_conditioner(model: torch.nn.Module, kind: type, what: str) -> str:
    found = [k for k, c in model.conditioner.conditioners.items() if isinstance(c, kind)]
    if not found:
        raise ValueError(f"the model has no {what} conditioner; is this a SAGA-SR config?")
    return found[0]


class Upsampler:
    """A loaded SAGA-SR model and the settings to run it."""

    def __init__(self, model: torch.nn.Module, model_config: dict, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, captioner: tp.Callable[[torch.Tensor, int], str] | None = None,
                 prepare: bool = True):
        """``prepare=False`` leaves device, mode and gradients alone (a model borrowed from training)."""
        self.model = model.to(device).eval().requires_grad_(False) if prepare else model
        self.model_config = model_config
        self.device = torch.device(device)
        self.dtype = dtype
        self.captioner = captioner
        self.window = int(model_config["sample_size"])
        ratio = getattr(model.pretransform, "downsampling_ratio", 1) if model.pretransform is not None else 1
        if self.window % ratio:
            raise ValueError(f"sample_size {self.window} is not a multiple of the pretransform's ratio {ratio}")
        self.latent_ratio = ratio
        self.lowres_id = _find_conditioner(model, LowResLatentConditioner, "low-res latent (saga_lowres_latent)")
        self.text_id = _find_conditioner(model, T5Conditioner, "text (saga_t5)")
        diffusion = model_config["model"]["diffusion"]
        rolloff_ids = [k for k in diffusion.get("global_cond_ids", [])
                       if isinstance(model.conditioner.conditioners[k], NumberConditioner)]
        if len(rolloff_ids) != 2:
            raise ValueError(f"expected two roll-off ids (input, target) in global_cond_ids, got {rolloff_ids}")
        self.rolloff_input_id, self.rolloff_target_id = rolloff_ids

    @classmethod
    def load(cls, model_config_path: str, weights_path: str, device: str = "auto", dtype: str = "float32",
             captioner: tp.Callable[[torch.Tensor, int], str] | None = None,
             allow_config_mismatch: bool = False) -> "Upsampler":
        """Config + exported weights (refused when exported with another config, unless ``allow_config_mismatch``)."""
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, config = load_exported_model(model_config_path, weights_path, allow_config_mismatch)
        check_saga_sr_block(config.get("saga_sr", {}), model_config_path)
        return cls(model.to(getattr(torch, dtype)), config, device, getattr(torch, dtype), captioner)

    def overlap_samples(self, settings: UpsampleSettings) -> int:
        """Samples two neighbouring windows share: ``settings.overlap`` of a window, whole latent frames."""
        return int(self.window * settings.overlap) // self.latent_ratio * self.latent_ratio

    def settings(self, **overrides: tp.Any) -> UpsampleSettings:
        return UpsampleSettings.from_config(self.model_config, **overrides)

    @torch.no_grad()
    def generate_windows(self, windows: tp.Sequence[torch.Tensor], captions: tp.Sequence[str],
                         settings: UpsampleSettings, seeds: tp.Sequence[int], progress: bool = False,
                         on_step: tp.Callable[[int], None] | None = None,
                         target_rolloffs: tp.Sequence[float] | None = None) -> torch.Tensor:
        """Stereo windows (2, sample_size) of low-res audio at 44.1 kHz -> generated (B, 2, sample_size).

        All windows go through each Euler step together (eq. 4: one forward of 3B items).
        Window i's noise comes from ``seeds[i]`` alone, so a window's output does not
        depend on which others share its batch. f_l is each window's roll-off, as
        training computed it per clip. f_h is ``target_rolloffs[i]`` per window when given (an
        input's auto or oracle value), else ``settings.target_rolloff``, which must then be a number.
        """
        if target_rolloffs is None:
            if isinstance(settings.target_rolloff, str):
                raise ValueError(f"target_rolloff {settings.target_rolloff!r} is chosen per input: pass "
                                 "target_rolloffs, or upsample through upsample() / upsample_many()")
            target_rolloffs = [float(settings.target_rolloff)] * len(windows)
        items = [{self.text_id: caption, self.rolloff_input_id: rolloff_ratio(w.cpu()),
                  self.rolloff_target_id: f_h, self.lowres_id: w.to(self.device, self.dtype)}
                 for w, caption, f_h in zip(windows, captions, target_rolloffs)]
        cond = self.model.conditioner(items, self.device)
        inputs = self.model.get_conditioning_inputs(cond)
        inputs = {k: (v.to(self.dtype) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in inputs.items()}
        zl = inputs["input_concat_cond"]
        null = self.model.conditioner.conditioners[self.lowres_id].null_like(zl)
        noise = torch.cat([torch.randn((1, *zl.shape[1:]), generator=torch.Generator(device="cpu").manual_seed(seed),
                                       device="cpu") for seed in seeds]).to(self.device, self.dtype)
        with tqdm(total=settings.steps, desc=f"{len(windows)} window(s): steps", unit="step", leave=False,
                  disable=not progress) as bar:
            def step_done(_: tp.Any) -> None:
                bar.update(1)
                if on_step is not None:
                    on_step(len(windows))

            latent = sample_guided(self.model.model, noise, inputs, null, settings, callback=step_done)
        return self.model.pretransform.decode(latent.to(self.dtype)).float()

    def caption_for(self, audio: torch.Tensor, caption: str | None, name: str = "input") -> str:
        """The given caption, else the captioner's, else the text null; a caption longer than the text
        encoder reads is said to be cut (the encoder truncates it silently)."""
        if caption is None:
            caption = "" if self.captioner is None else self.captioner(audio, SAMPLE_RATE)
        text = self.model.conditioner.conditioners[self.text_id]
        tokens = len(text.tokenizer(caption)["input_ids"]) if caption else 0
        if tokens > text.max_length:
            log.warning("%s: the caption has %d tokens; the text encoder reads its first %d, the rest is cut (%s)",
                        name, tokens, text.max_length, short_caption(caption))
        return caption

    def window_count(self, length: int, settings: UpsampleSettings) -> int:
        """Windows an input of ``length`` samples at 44.1 kHz goes through."""
        return len(window_starts(max(length, self.window), self.window, self.window - self.overlap_samples(settings)))

    def upsample(self, audio: torch.Tensor, sample_rate: int, caption: str | None = None,
                 settings: UpsampleSettings | None = None, progress: bool = False,
                 name: str = "input", on_step: tp.Callable[[int], None] | None = None,
                 target_rolloff: float | None = None, nyquist_hz: float | None = None,
                 variants: dict[str, UpsampleSettings] | None = None) -> UpsampleResult:
        """(channels, samples) at any rate >= 4 kHz -> (channels, samples) at 44.1 kHz, same duration.

        ``caption=None`` asks the captioner (if any) and otherwise uses the text null ("").
        ``name`` (e.g. the file) is what error messages call the input. The input's windows
        go through the sampler ``settings.batch_size`` at a time (default: 8 on a GPU, 1 on the CPU).
        ``on_step(n)`` is called after each Euler step of a batch of ``n`` windows (a progress bar;
        an exception it raises stops the sampling). ``target_rolloff`` and ``nyquist_hz``: see :class:`UpsampleJob`.
        """
        job = UpsampleJob(name, lambda: (audio, sample_rate), caption, target_rolloff, nyquist_hz)
        _, result = next(self.upsample_many([job], settings, progress, on_step, variants))
        if isinstance(result, Exception):
            raise result
        return result

    def upsample_file(self, path: str | os.PathLike, output: str | os.PathLike | None = None,
                      caption: str | None = None, settings: UpsampleSettings | None = None) -> UpsampleResult:
        """Upsample an audio file (any rate from 4 kHz); write the 44.1 kHz result to ``output`` if given."""
        audio, sample_rate = read_audio(path)
        result = self.upsample(audio, sample_rate, caption=caption, settings=settings)
        if output is not None:
            write_audio(output, result.audio, result.sample_rate)
        return result

    def _admit(self, job: UpsampleJob, settings: UpsampleSettings,
               variants: dict[str, UpsampleSettings]) -> _InFlight:
        audio, sample_rate = job.load()
        x = prepare_input(audio, sample_rate, job.name).cpu()
        stereo = x.expand(2, -1) if x.shape[0] == 1 else x
        overlap = self.overlap_samples(settings)
        # The input's summed spectrum (over pieces of about 12 s, so memory stays flat; shorter pieces,
        # one per model window, put the zero padding of their ends into the spectrum: broadband leakage
        # that moves a dull input's edge and slope); never above the input's Nyquist (abrupt edges and
        # the resampler's transition band leak a little energy above it).
        piece = max(self.window, SPECTRUM_PIECE)
        spectrum = sum(summed_magnitude(stereo[:, s:s + piece]) for s in range(0, stereo.shape[-1], piece))
        nyquist_bin = int(min(sample_rate, SAMPLE_RATE) / 2 / (SAMPLE_RATE / ROLLOFF_N_FFT))
        rolloff = rolloff_bin_of_spectrum(spectrum)
        edge = min(max(rolloff, content_edge_bin(spectrum)), nyquist_bin)
        # the band the input's rate allowed (or the evaluation's simulated cutoff): known only below full band
        limit_hz = min(sample_rate / 2, job.nyquist_hz or SAMPLE_RATE / 2)
        limit_bin = int(limit_hz / (SAMPLE_RATE / ROLLOFF_N_FFT))
        known_limit = limit_hz < SAMPLE_RATE / 2
        if job.target_rolloff is not None:
            target = float(job.target_rolloff)
        elif settings.target_rolloff == AUTO:
            target = settings.rule.predict(features_of(spectrum, min(edge, limit_bin)),
                                           limit_bin / ROLLOFF_BINS if known_limit else None)
        else:
            target = float(settings.target_rolloff)
        # the input's own components past a gap, below the band its rate (or the evaluation) gives, are kept
        content = own_content_end_bin(spectrum, edge, min(limit_bin, nyquist_bin)) if known_limit else edge
        boundaries = {"rolloff": min(rolloff, nyquist_bin), "content": content,
                      # the known band limit keeps every bin the input's rate allowed (its own content included)
                      "band_limit": limit_bin if known_limit else edge}
        tracks = {name: _Track(s, Crossfader(stereo, self.window, overlap), boundaries[s.lfr_boundary])
                  for name, s in {"": settings, **variants}.items()}
        return _InFlight(job, tracks, x.shape[0], self.caption_for(stereo, job.caption, job.name), rolloff, target)

    @staticmethod
    def _postprocess(track: _Track, y: torch.Tensor, lowres: torch.Tensor) -> torch.Tensor:
        """One generated window through a track's post-processing (the LFR and the caps that follow it)."""
        s = track.settings
        if not s.low_frequency_replacement:
            return y
        replaced = replace_low_frequencies(y, lowres, track.cutoff, s)
        track.ratios.append(replaced.level_ratio)
        track.gains.append(replaced.band_gain_db)
        return replaced.audio

    def _track_audio(self, state: _InFlight, track: _Track, name: str) -> tuple[torch.Tensor, float]:
        out = track.fader.result()
        if state.channels == 1:
            out = out.mean(dim=0, keepdim=True)
        what = f"{state.job.name}{f' ({name})' if name else ''}"
        message = added_band_cap_note(track.gains[1:], track.settings.max_added_band_db)
        if message:
            log.info("%s: %s", what, message)
        limit = track.settings.peak_limit_dbfs
        out, peak_gain_db = peak_safe(out, limit)
        if peak_gain_db < 0:
            log.info("%s: the output peaked at %+.1f dBFS; scaled by %.1f dB to %.1f dBFS so it does not clip "
                     "(saga_sr.peak_limit_dbfs; --no-peak-limit keeps the level and writes float WAV)", what,
                     limit - peak_gain_db, peak_gain_db, limit)
        return out, peak_gain_db

    def _finish(self, state: _InFlight) -> UpsampleResult:
        main = state.tracks[""]
        out, peak_gain_db = self._track_audio(state, main, "")
        variants = {name: self._track_audio(state, track, name)[0] for name, track in state.tracks.items() if name}
        ratio = sum(main.ratios) / len(main.ratios) if main.ratios else None
        return UpsampleResult(out, SAMPLE_RATE, state.caption, state.rolloff / ROLLOFF_BINS,
                              main.cutoff * SAMPLE_RATE / ROLLOFF_N_FFT, ratio, min(main.gains), state.target_rolloff,
                              peak_gain_db, variants)

    def upsample_many(self, jobs: tp.Iterable[UpsampleJob], settings: UpsampleSettings | None = None,
                      progress: bool = False, on_step: tp.Callable[[int], None] | None = None,
                      variants: dict[str, UpsampleSettings] | None = None
                      ) -> tp.Iterator[tuple[UpsampleJob, UpsampleResult | Exception]]:
        """Upsample many inputs, windows of several inputs sharing each batch of ``settings.batch_size``.

        Yields ``(job, result)`` in input order as each input completes; a job whose input
        cannot be used yields its exception (``BadAudioError``, ``FileNotFoundError``,
        ``OSError``) and the others go on. Inputs are loaded only when their windows are
        needed, so memory holds about one batch of windows and the inputs they come from.
        ``variants``: other post-processings of the same sampled windows (``result.variants[name]``),
        e.g. the raw decoded output beside the processed one at no extra sampling; they may differ from
        ``settings`` only in post-processing options (``settings.POSTPROCESS_FIELDS``).
        """
        settings = settings or self.settings()
        variants = dict(variants or {})
        for name, variant in variants.items():
            check_postprocess_variant(settings, variant, name)
        batch_size = settings.batch_size or (8 if self.device.type == "cuda" else 1)
        pending = iter(jobs)
        queue: list[tuple[_InFlight, int]] = []
        in_flight: list[_InFlight | tuple[UpsampleJob, Exception]] = []
        exhausted = False
        bar = tqdm(total=0, desc="windows", unit="win", disable=not progress)
        while True:
            while len(queue) < batch_size and not exhausted:
                job = next(pending, None)
                if job is None:
                    exhausted = True
                    break
                try:
                    state = self._admit(job, settings, variants)
                except (BadAudioError, FileNotFoundError, OSError) as err:
                    in_flight.append((job, err))
                    continue
                in_flight.append(state)
                queue += [(state, i) for i in range(len(state.fader))]
                bar.total += len(state.fader)
                bar.refresh()
            batch, queue = queue[:batch_size], queue[batch_size:]
            if batch:
                generated = self.generate_windows([st.fader.piece(i) for st, i in batch], [st.caption for st, _ in batch],
                                                  settings, [settings.seed + i for _, i in batch], progress,
                                                  on_step, [st.target_rolloff for st, _ in batch])
                for (state, i), y in zip(batch, generated):
                    if state.error is not None or not torch.isfinite(y).all():
                        state.error = state.error or BadAudioError(
                            f"{state.job.name}: the model generated NaN or inf samples (window {i + 1} of "
                            f"{len(state.fader)}); check the weights and --dtype (float16 can overflow)")
                        for track in state.tracks.values():
                            track.fader.add(i, torch.zeros_like(y))
                        continue
                    for track in state.tracks.values():
                        track.fader.add(i, self._postprocess(track, y, state.fader.piece(i)))
                bar.update(len(batch))
            while in_flight and (isinstance(in_flight[0], tuple) or in_flight[0].fader.complete):
                done = in_flight.pop(0)
                if isinstance(done, tuple):
                    yield done
                else:
                    yield done.job, (done.error if done.error is not None else self._finish(done))
            if exhausted and not queue and not in_flight:
                break
        bar.close()

    def system(self, settings: UpsampleSettings | None = None, caption: str | None = "",
               captions: dict[str, str] | None = None, target_rolloffs: dict[str, float] | None = None,
               variants: dict[str, UpsampleSettings] | None = None) -> "UpsamplerSystem":
        """This model as an evaluation system: ``many(inputs)`` batches windows across inputs.

        Each input's caption is ``captions[relative path]`` when given, else ``caption``
        (``None``: the captioner, if any); its f_h is ``target_rolloffs[relative path]`` when given
        (the oracle: each reference's own roll-off), else the settings'. Each input is told its
        simulated cutoff as the band its rate allowed, as a file at 2 x cutoff would tell. ``variants``
        (e.g. ``{"raw": ...}``): the same sampling post-processed otherwise, scored as systems of their own."""
        return UpsamplerSystem(self, settings or self.settings(), caption, captions or {}, target_rolloffs or {},
                               variants or {})


def raw_settings(settings: UpsampleSettings) -> UpsampleSettings:
    """The model's decoded output as it comes: no low-frequency replacement, no caps, no peak gain."""
    return dataclasses.replace(settings, low_frequency_replacement=False, peak_limit_dbfs=None)


@dataclasses.dataclass
class UpsamplerSystem:
    """``evaluation.protocol.evaluate``'s batched-system protocol over :meth:`Upsampler.upsample_many`.

    ``many`` returns, per input, an exception or ``{"": processed output, variant name: output, ...}``."""

    upsampler: Upsampler
    settings: UpsampleSettings
    caption: str | None = ""
    captions: dict[str, str] = dataclasses.field(default_factory=dict)
    target_rolloffs: dict[str, float] = dataclasses.field(default_factory=dict)
    variants: dict[str, UpsampleSettings] = dataclasses.field(default_factory=dict)

    def many(self, inputs: tp.Sequence[tuple[torch.Tensor, int, float, str]]
             ) -> list[dict[str, torch.Tensor] | Exception]:
        jobs = [UpsampleJob(f"{rel} ({cutoff:.0f} Hz input)", (lambda a=audio, r=rate: (a, r)),
                            self.captions.get(Path(rel).as_posix(), self.caption),
                            self.target_rolloffs.get(Path(rel).as_posix()), nyquist_hz=cutoff)
                for audio, rate, cutoff, rel in inputs]
        return [r if isinstance(r, Exception) else {"": r.audio, **r.variants}
                for _, r in self.upsampler.upsample_many(jobs, self.settings, variants=self.variants)]

    def __call__(self, lowres: torch.Tensor, sample_rate: int, cutoff: float, rel: str) -> torch.Tensor:
        out = self.many([(lowres, sample_rate, cutoff, rel)])[0]
        if isinstance(out, Exception):
            raise out
        return out[""]
