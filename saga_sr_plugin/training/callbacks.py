"""Super-resolution demos and validation LSD during training.

The official ``DiffusionCondDemoCallback`` generates from noise without the low-res
condition, which shows nothing about super-resolution. This callback takes a few fixed
validation clips, simulates them at fixed cutoffs, upsamples them with the EMA model
(the weights that get exported) through the same :class:`~saga_sr_plugin.inference.Upsampler`
users run, and logs LSD and, for W&B, input/output/reference audio and spectrograms.
"""
from __future__ import annotations

import contextlib
import logging
import typing as tp
from pathlib import Path

import pytorch_lightning as pl
import torch
from tqdm.auto import tqdm

from ..data.audio_format import SAMPLE_RATE
from ..data.audio_io import write_audio
from ..data.spectral import rolloff_ratio
from ..evaluation.levels import ADDED_BANDS_HZ, added_band_levels, window_boundary_steps
from ..evaluation.metrics import lsd
from ..evaluation.plots import save_spectrograms, spectrogram_figure
from ..evaluation.protocol import list_references, load_reference, simulate_input
from ..inference.settings import UpsampleSettings
from ..inference.upsampler import Upsampler

log = logging.getLogger("saga_sr.demo")


@contextlib.contextmanager
def ema_model_for_inference(wrapper: pl.LightningModule) -> tp.Iterator[torch.nn.Module]:
    """The wrapper's diffusion model with the EMA DiT swapped in, in eval mode; restored afterwards."""
    diffusion = wrapper.diffusion
    online = diffusion.model
    was_training = diffusion.training
    if getattr(wrapper, "diffusion_ema", None) is not None:
        diffusion.model = wrapper.diffusion_ema.ema_model
    diffusion.eval()
    try:
        yield diffusion
    finally:
        diffusion.model = online
        diffusion.train(was_training)


class SRExample(tp.NamedTuple):
    name: str
    cutoff_hz: float
    lowres: torch.Tensor
    output: torch.Tensor
    reference: torch.Tensor
    lsd: float          # NU-Wave 2 convention
    lsd_input: float    # the unprocessed input's
    band_levels: dict[str, float] = {}   # output minus reference level per band above the cutoff, dB
    boundary_steps: tuple[float, ...] = ()   # level steps at window hand-overs beyond the reference's, dB


def run_sr_examples(upsampler: Upsampler, references: tp.Sequence[tuple[str, torch.Tensor, str]],
                    cutoffs: tp.Sequence[float], steps: int | None = None, seed: int = 0,
                    settings: UpsampleSettings | None = None, oracle: bool = False, progress: bool = False,
                    **settings_overrides: tp.Any) -> list[SRExample]:
    """Upsample each (name, reference, caption) simulated at each cutoff, with ``settings`` (default: the
    model config's, with ``steps``, ``seed`` and the other overrides that are not None); each input is
    told its cutoff as its rate's limit, and ``oracle`` gives it the reference's own roll-off as f_h.
    ``progress``: one bar over all sampler steps of all windows."""
    examples = []
    settings = settings or upsampler.settings(steps=steps, seed=seed, **settings_overrides)
    overlap = upsampler.overlap_samples(settings)
    total = len(cutoffs) * sum(upsampler.window_count(ref.shape[-1], settings) for _, ref, _ in references) * settings.steps
    with tqdm(total=total, desc="SR demos", unit="window-step", disable=not progress) as bar:
        for name, ref, caption in references:
            for cutoff in cutoffs:
                lowres = simulate_input(ref, cutoff, seed=seed, name=name)
                out = upsampler.upsample(lowres, SAMPLE_RATE, caption=caption, settings=settings, nyquist_hz=cutoff,
                                         target_rolloff=rolloff_ratio(ref) if oracle else None,
                                         on_step=bar.update).audio
                examples.append(SRExample(name, cutoff, lowres, out, ref, lsd(out, ref)["lsd"], lsd(lowres, ref)["lsd"],
                                          added_band_levels(out, ref, cutoff),
                                          tuple(window_boundary_steps(out, ref, cutoff, upsampler.window, overlap))))
    return examples


def load_examples(folder: str, count: int, captions: dict[str, str] | None = None) -> list[tuple[str, torch.Tensor, str]]:
    files = list_references(folder)[:count]
    captions = captions or {}
    return [(f.name, load_reference(f), captions.get(f.relative_to(folder).as_posix(), "")) for f in files]


def write_examples(examples: tp.Sequence[SRExample], out_dir: str | Path) -> Path:
    """WAVs of input/output/reference and one spectrogram PNG per example; a Markdown summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bands = [f"{lo / 1000:g}-{hi / 1000:g} kHz" for lo, hi in ADDED_BANDS_HZ]
    lines = ["| clip | input cutoff | LSD input | LSD output | " + " | ".join(bands) + " | window step |",
             "|---" * (5 + len(bands)) + "|"]
    for ex in examples:
        stem = f"{Path(ex.name).stem}_{int(ex.cutoff_hz) // 1000}k"
        for kind, audio in (("input", ex.lowres), ("output", ex.output), ("reference", ex.reference)):
            write_audio(out / f"{stem}_{kind}.wav", audio, SAMPLE_RATE)
        save_spectrograms(out / f"{stem}.png", [("low-res input", ex.lowres, SAMPLE_RATE),
                                                 ("SAGA-SR output", ex.output, SAMPLE_RATE),
                                                 ("reference", ex.reference, SAMPLE_RATE)],
                          title=f"{ex.name}, {ex.cutoff_hz / 1000:g} kHz input")
        levels = [f"{ex.band_levels[b]:+.1f}" if b in ex.band_levels else "" for b in bands]
        step = f"{max(map(abs, ex.boundary_steps)):.1f}" if ex.boundary_steps else "-"
        lines.append(f"| {ex.name} | {ex.cutoff_hz / 1000:g} kHz | {ex.lsd_input:.3f} | {ex.lsd:.3f} | "
                     + " | ".join(levels) + f" | {step} |")
    (out / "README.md").write_text(
        "LSD: NU-Wave 2 convention, lower is better. Per band above the cutoff: the output's level minus the "
        "reference's, dB (+ too loud, - too quiet). Window step: the largest level step of the added band where "
        "two windows meet, beyond the reference's own step there, dB.\n\n" + "\n".join(lines) + "\n")
    return out


class SRDemoCallback(pl.Callback):
    """Every ``every`` steps: validation LSD of the EMA model on fixed clips, and SR demos for W&B."""

    def __init__(self, model_config: dict, examples: tp.Sequence[tuple[str, torch.Tensor, str]], every: int = 500,
                 cutoffs: tp.Sequence[float] = (4000, 8000), steps: int | None = None, media: int = 2):
        self.model_config = model_config
        self.examples = list(examples)
        self.every = every
        self.cutoffs = cutoffs
        self.steps = steps
        self.media = media
        self.last_step = -1

    def describe(self) -> str:
        """What :meth:`run` does, for the line printed before a run nobody should mistake for a hang."""
        steps = self.steps or UpsampleSettings.from_config(self.model_config).steps
        return (f"{len(self.examples)} clip(s) x {len(self.cutoffs)} cutoff(s), {steps} sampler steps per window "
                f"({', '.join(f'{c / 1000:g} kHz' for c in self.cutoffs)})")

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, wrapper: pl.LightningModule, progress: bool = False) -> list[SRExample]:
        with ema_model_for_inference(wrapper) as model:
            upsampler = Upsampler(model, self.model_config, device=wrapper.device, prepare=False)
            return run_sr_examples(upsampler, self.examples, self.cutoffs, self.steps, progress=progress)

    def on_train_batch_end(self, trainer, wrapper, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every <= 0 or step == self.last_step or step % self.every != 0 or step == 0:
            return
        self.last_step = step
        if not trainer.is_global_zero:
            return
        examples = self.run(trainer, wrapper)
        metrics = {}
        for cutoff in self.cutoffs:
            chosen = [e for e in examples if e.cutoff_hz == cutoff]
            metrics[f"val/lsd_{int(cutoff) // 1000}k"] = sum(e.lsd for e in chosen) / len(chosen)
            metrics[f"val/lsd_input_{int(cutoff) // 1000}k"] = sum(e.lsd_input for e in chosen) / len(chosen)
        log.info("step %d: %s", step, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        self.log_to(trainer, metrics, examples[: self.media * len(self.cutoffs)], step)

    @staticmethod
    def log_to(trainer: pl.Trainer, metrics: dict, examples: list[SRExample], step: int) -> None:
        from pytorch_lightning.loggers import WandbLogger

        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
            if isinstance(logger, WandbLogger):
                import matplotlib.pyplot as plt
                import wandb

                media = {}
                for ex in examples:
                    key = f"demo/{Path(ex.name).stem}_{int(ex.cutoff_hz) // 1000}k"
                    for kind, audio in (("input", ex.lowres), ("output", ex.output), ("reference", ex.reference)):
                        media[f"{key}/{kind}"] = wandb.Audio(audio.T.numpy(), sample_rate=SAMPLE_RATE, caption=kind)
                    fig = spectrogram_figure([("input", ex.lowres, SAMPLE_RATE), ("output", ex.output, SAMPLE_RATE),
                                              ("reference", ex.reference, SAMPLE_RATE)])
                    media[f"{key}/spectrograms"] = wandb.Image(fig)
                    plt.close(fig)
                media["trainer/global_step"] = step  # the step axis Lightning's WandbLogger uses
                logger.experiment.log(media)
