"""Upsampling any input to 44.1 kHz with a trained SAGA-SR model.

Load once (:meth:`Upsampler.load`: official factory + exported EMA weights), then
:meth:`Upsampler.upsample` as often as needed. Each window of the model's sample size
is resampled to 44.1 kHz, encoded by the low-res conditioner, sampled with the
official Euler loop under eq. 4 guidance, decoded by the VAE; windows overlap and
are crossfaded, and the low band is finally replaced by the input's.
"""
from __future__ import annotations

import dataclasses
import logging
import typing as tp

import torch
import torchaudio.functional as AF
from tqdm.auto import tqdm

from .audio_io import MIN_SAMPLE_RATE
from .checkpoints import load_exported_model
from .conditioners import LowResLatentConditioner
from .configs import check_saga_sr_block
from .postprocess import RATIO_RULES, replace_low_frequencies
from .sampling import sample_guided
from .simulation import (ROLLOFF_BINS, ROLLOFF_N_FFT, SAMPLE_RATE, BadAudioError, as_channels_first,
                         rolloff_bin_of_spectrum, rolloff_ratio, summed_magnitude)
from stable_audio_tools.models.conditioners import NumberConditioner, T5Conditioner

log = logging.getLogger("saga_sr.inference")
SILENCE_PEAK = 1e-5


@dataclasses.dataclass
class UpsampleSettings:
    """Sampling and post-processing options; defaults are the paper's (``saga_sr`` block of the config)."""

    steps: int = 100
    guidance_acoustic: float = 1.4   # s_a, on the low-res latent
    guidance_text: float = 1.2       # s_t, on the caption
    target_rolloff: float = 0.9      # normalised f_h in [0, 1]: 0.9 ~ 19.8 kHz of content, 1.0 = full band
    schedule_threshold: float = 0.025
    overlap: float = 0.125           # fraction of a window shared with the next one
    low_frequency_replacement: bool = True
    lfr_ratio_rule: str = "cutoff_magnitude"   # the authors' level match (postprocess.RATIO_RULES)
    max_added_band_db: float | None = 12.0     # generated band at most this far above the input's energy
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise ValueError(f"steps must be at least 2, got {self.steps}")
        if not 0.0 <= self.target_rolloff <= 1.0:
            raise ValueError(f"target roll-off is normalised to [0, 1] (bin / 1025; 1.0 = 22.05 kHz), "
                             f"got {self.target_rolloff}")
        if not 0.0 <= self.overlap < 0.5:
            raise ValueError(f"overlap must be in [0, 0.5), got {self.overlap}")
        if self.lfr_ratio_rule not in RATIO_RULES:
            raise ValueError(f"lfr_ratio_rule must be one of {list(RATIO_RULES)}, got {self.lfr_ratio_rule!r}")

    @classmethod
    def from_config(cls, model_config: dict, **overrides: tp.Any) -> "UpsampleSettings":
        block = dict(model_config.get("saga_sr", {}))
        check_saga_sr_block(block, "model config")
        block.pop("caption_model", None)
        block.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**block)


class UpsampleResult(tp.NamedTuple):
    audio: torch.Tensor          # (channels, samples) at 44.1 kHz, the input's duration
    sample_rate: int
    caption: str
    input_rolloff: float         # normalised f_l of the whole input (roll-off bin / 1025)
    input_cutoff_hz: float       # detected input cutoff: the LFR boundary
    lfr_level_ratio: float | None    # mean over windows of the LFR's r (None: LFR off)
    added_band_gain_db: float        # strongest cut the added-band cap applied (0: none)


def crossfade_weights(length: int, fade_in: int, fade_out: int) -> torch.Tensor:
    """Ones with linear ramps: overlapping ramps of neighbouring windows sum to one."""
    w = torch.ones(length, dtype=torch.float64, device="cpu")  # the crossfade accumulates on the CPU
    if fade_in:
        w[:fade_in] = (torch.arange(fade_in, dtype=torch.float64, device="cpu") + 0.5) / fade_in
    if fade_out:
        w[length - fade_out:] = torch.flip((torch.arange(fade_out, dtype=torch.float64, device="cpu") + 0.5)
                                           / fade_out, [0])
    return w


def window_starts(length: int, window: int, hop: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window, hop))
    return starts + [length - window]


def process_in_windows(audio: torch.Tensor, window: int, overlap: int,
                       fn: tp.Callable[[torch.Tensor, int], torch.Tensor], progress: bool = False) -> torch.Tensor:
    """Apply ``fn(window_audio, index)`` over overlapping windows and crossfade the results.

    Inputs shorter than a window are zero-padded and trimmed back. Only one window's
    work is alive at a time, so memory beyond the output buffer does not grow with length.
    """
    channels, length = audio.shape
    padded = torch.nn.functional.pad(audio, (0, max(0, window - length)))
    total = padded.shape[-1]
    hop = window - overlap
    starts = window_starts(total, window, hop)
    out = torch.zeros(channels, total, dtype=torch.float64, device="cpu")  # output buffer: host memory
    norm = torch.zeros(total, dtype=torch.float64, device="cpu")
    for i, start in enumerate(tqdm(starts, desc="windows", unit="win", disable=not progress or len(starts) == 1)):
        y = fn(padded[:, start:start + window], i)
        fade_in = 0 if i == 0 else (starts[i - 1] + window - start)
        fade_out = 0 if i == len(starts) - 1 else (start + window - starts[i + 1])
        w = crossfade_weights(window, fade_in, fade_out)
        out[:, start:start + window] += y.double().cpu() * w
        norm[start:start + window] += w
    return (out / norm.clamp(min=1e-12))[:, :length].float()


def prepare_input(audio: torch.Tensor, sample_rate: int, what: str = "input") -> torch.Tensor:
    """``what`` names the input in errors (the CLI passes the file name)."""
    """Checked (channels, samples) at 44.1 kHz; mono stays mono, more than 2 channels is an error."""
    x = as_channels_first(audio, what)
    if x.shape[0] > 2:
        raise BadAudioError(f"{what}: {x.shape[0]} channels; SAGA-SR is a stereo model: downmix to mono or "
                            "stereo first (e.g. ffmpeg -ac 2)")
    if sample_rate < MIN_SAMPLE_RATE:
        raise BadAudioError(f"{what}: sample rate {sample_rate} Hz is below the supported {MIN_SAMPLE_RATE} Hz")
    if x.shape[-1] < 2:
        raise BadAudioError(f"{what}: too short ({x.shape[-1]} samples)")
    if x.abs().max() < SILENCE_PEAK:
        raise BadAudioError(f"{what}: silent (peak below {SILENCE_PEAK}); there is nothing to upsample")
    if sample_rate != SAMPLE_RATE:
        x = AF.resample(x, sample_rate, SAMPLE_RATE)
    return x


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
             captioner: tp.Callable[[torch.Tensor, int], str] | None = None) -> "Upsampler":
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, config = load_exported_model(model_config_path, weights_path)
        return cls(model.to(getattr(torch, dtype)), config, device, getattr(torch, dtype), captioner)

    def settings(self, **overrides: tp.Any) -> UpsampleSettings:
        return UpsampleSettings.from_config(self.model_config, **overrides)

    @torch.no_grad()
    def generate_window(self, lowres: torch.Tensor, caption: str, settings: UpsampleSettings, index: int,
                        progress: bool = False) -> torch.Tensor:
        """One stereo window (2, sample_size) of low-res audio at 44.1 kHz -> generated audio.

        f_l is the window's roll-off, as training computed it on each clip.
        """
        item = {self.text_id: caption, self.rolloff_input_id: rolloff_ratio(lowres.cpu()),
                self.rolloff_target_id: settings.target_rolloff, self.lowres_id: lowres.to(self.device, self.dtype)}
        cond = self.model.conditioner([item], self.device)
        inputs = self.model.get_conditioning_inputs(cond)
        inputs = {k: (v.to(self.dtype) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in inputs.items()}
        zl = inputs["input_concat_cond"]
        null = self.model.conditioner.conditioners[self.lowres_id].null_like(zl)
        generator = torch.Generator(device="cpu").manual_seed(settings.seed + index)
        noise = torch.randn(zl.shape, generator=generator, device="cpu").to(self.device, self.dtype)
        with tqdm(total=settings.steps, desc=f"window {index + 1} steps", unit="step", leave=False,
                  disable=not progress) as bar:
            latent = sample_guided(self.model.model, noise, inputs, null, settings.steps, settings.guidance_acoustic,
                                   settings.guidance_text, settings.schedule_threshold,
                                   callback=lambda _: bar.update(1))
        audio = self.model.pretransform.decode(latent.to(self.dtype))
        return audio[0].float()

    def caption_for(self, audio: torch.Tensor, caption: str | None) -> str:
        if caption is not None:
            return caption
        if self.captioner is None:
            return ""
        return self.captioner(audio, SAMPLE_RATE)

    def upsample(self, audio: torch.Tensor, sample_rate: int, caption: str | None = None,
                 settings: UpsampleSettings | None = None, progress: bool = False,
                 name: str = "input") -> UpsampleResult:
        """(channels, samples) at any rate >= 4 kHz -> (channels, samples) at 44.1 kHz, same duration.

        ``caption=None`` asks the captioner (if any) and otherwise uses the text null ("").
        ``name`` (e.g. the file) is what error messages call the input.
        """
        settings = settings or self.settings()
        x = prepare_input(audio, sample_rate, name).cpu()
        channels = x.shape[0]
        stereo = x.expand(2, -1) if channels == 1 else x
        caption = self.caption_for(stereo, caption)
        overlap = int(self.window * settings.overlap) // self.latent_ratio * self.latent_ratio

        # The LFR boundary: the whole input's 98.5 % roll-off bin (summed window by window, so
        # memory stays flat), never above the input's Nyquist (abrupt edges and the resampler's
        # transition band leak a little energy above it).
        spectrum = sum(summed_magnitude(stereo[:, s:s + self.window]) for s in range(0, stereo.shape[-1], self.window))
        nyquist_bin = int(min(sample_rate, SAMPLE_RATE) / 2 / (SAMPLE_RATE / ROLLOFF_N_FFT))
        rolloff = rolloff_bin_of_spectrum(spectrum)
        cutoff = min(rolloff, nyquist_bin)
        ratios: list[float] = []
        gains: list[float] = [0.0]

        def window_fn(lowres: torch.Tensor, index: int) -> torch.Tensor:
            generated = self.generate_window(lowres, caption, settings, index, progress)
            if not settings.low_frequency_replacement:
                return generated
            replaced = replace_low_frequencies(generated, lowres, cutoff_bin=cutoff, ratio_rule=settings.lfr_ratio_rule,
                                               max_added_band_db=settings.max_added_band_db)
            ratios.append(replaced.level_ratio)
            gains.append(replaced.band_gain_db)
            return replaced.audio

        out = process_in_windows(stereo, self.window, overlap, window_fn, progress=progress)
        ratio = sum(ratios) / len(ratios) if ratios else None
        if channels == 1:
            out = out.mean(dim=0, keepdim=True)
        if min(gains) < 0:
            log.info("%s: the generated band was limited by up to %.1f dB (max_added_band_db %s)", name, min(gains),
                     settings.max_added_band_db)
        return UpsampleResult(out, SAMPLE_RATE, caption, rolloff / ROLLOFF_BINS, cutoff * SAMPLE_RATE / ROLLOFF_N_FFT, ratio,
                              min(gains))
