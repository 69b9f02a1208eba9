"""Sampling and post-processing settings: the model config's ``saga_sr`` block and its defaults."""
from __future__ import annotations

import dataclasses
import math
import typing as tp

from ..configs import ConfigError, suggest
from .postprocess import RATIO_RULES
from .sampling import MIN_STEPS, SAMPLERS, SCHEDULES
from .target_rolloff import AUTO, TargetRolloffRule

LFR_BOUNDARIES = ("rolloff", "content", "band_limit")
# What happens after the sampler: several of these can share one sampling (Upsampler.upsample_many's variants).
POSTPROCESS_FIELDS = ("low_frequency_replacement", "lfr_ratio_rule", "lfr_boundary", "max_added_band_db",
                      "envelope_margin_db", "slope_cap_db", "slope_cap_per_frame", "peak_limit_dbfs")


@dataclasses.dataclass
class UpsampleSettings:
    """Sampling and post-processing options; defaults are the paper's (``saga_sr`` block of the config)."""

    steps: int = 100
    sampler: str = "euler"           # official sampler: euler (the paper), dpmpp, pingpong (post-trained models)
    schedule: str = "linear_quadratic"   # the paper's (Movie Gen); "linear": the official samplers' own;
                                         # "logsnr": the official generation's (and ARC's)
    guidance_acoustic: float = 1.4   # s_a, on the low-res latent
    guidance_text: float = 1.2       # s_t, on the caption
    target_rolloff: float | str = 0.9    # normalised f_h in [0, 1]: 0.9 ~ 19.8 kHz of content, 1.0 = full band;
                                         # "auto": from each input by target_rolloff_rule (target_rolloff.py)
    target_rolloff_rule: dict | None = None   # the auto rule's coefficients (None: the defaults)
    schedule_threshold: float = 0.025
    overlap: float = 0.125           # fraction of a window shared with the next one
    low_frequency_replacement: bool = True
    lfr_ratio_rule: str = "cutoff_magnitude"   # the authors' level match (postprocess.RATIO_RULES)
    lfr_boundary: str = "content"    # "content": where the input's content ends; "rolloff": its 98.5 % roll-off
                                     # (the authors'); "band_limit": the band the input's rate (or the evaluation's
                                     # cutoff) allows, the content edge for full-rate inputs; docs/inference.md
    max_added_band_db: float | None = 12.0     # generated band at most this far above the input's energy
    envelope_margin_db: float | None = None    # keep the generated band within this many dB of the input's
                                               # envelope continued above the cutoff (None: off, the paper)
    slope_cap_db: float | None = None          # keep it at most this many dB above the input's spectrum
                                               # continued with its own slope (None: off, the paper)
    slope_cap_per_frame: bool = False          # that bound following the input's top octave frame by frame
                                               # (measured no better on the real-audio validation split)
    peak_limit_dbfs: float | None = -0.1       # an output peaking above this is scaled down to it as a whole, with a
                                               # logged note (None: levels kept; the CLI then writes float WAV)
    batch_size: int | None = None    # windows (of one or several inputs) per sampler batch; None: 8 on a GPU,
                                     # 1 on the CPU (where batching measured ~10 % slower per window)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("guidance_acoustic", "guidance_text", "schedule_threshold", "max_added_band_db", "envelope_margin_db",
                     "slope_cap_db", "peak_limit_dbfs"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if isinstance(self.target_rolloff, str):
            if self.target_rolloff != AUTO:
                raise ValueError(f"target roll-off is a number in [0, 1] or {AUTO!r}, got {self.target_rolloff!r}")
        elif not (isinstance(self.target_rolloff, (int, float)) and 0.0 <= self.target_rolloff <= 1.0):
            raise ValueError(f"target roll-off is normalised to [0, 1] (bin / 1025; 1.0 = 22.05 kHz) or {AUTO!r}, "
                             f"got {self.target_rolloff}")
        self.rule = TargetRolloffRule.from_block(self.target_rolloff_rule)
        if not 0.0 <= self.overlap < 0.5:
            raise ValueError(f"overlap must be in [0, 0.5), got {self.overlap}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.lfr_boundary not in LFR_BOUNDARIES:
            raise ValueError(f"lfr_boundary must be one of {list(LFR_BOUNDARIES)}, got {self.lfr_boundary!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {self.sampler!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if not isinstance(self.steps, int) or self.steps < MIN_STEPS[self.schedule]:
            raise ValueError(f"steps must be an integer of at least {MIN_STEPS[self.schedule]} with the {self.schedule} "
                             f"schedule, got {self.steps!r}" + (" (1-step sampling: schedule linear or logsnr)"
                                                                if self.schedule == "linear_quadratic" else ""))
        if self.lfr_ratio_rule not in RATIO_RULES:
            raise ValueError(f"lfr_ratio_rule must be one of {list(RATIO_RULES)}, got {self.lfr_ratio_rule!r}")

    @classmethod
    def from_config(cls, model_config: dict, **overrides: tp.Any) -> "UpsampleSettings":
        block = dict(model_config.get("saga_sr", {}))
        check_saga_sr_block(block, "model config")
        block.pop("caption_model", None)
        block.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**block)


def check_postprocess_variant(settings: UpsampleSettings, variant: UpsampleSettings, name: str) -> None:
    """A variant shares the sampling of ``settings``: only post-processing options may differ."""
    differ = [f.name for f in dataclasses.fields(UpsampleSettings)
              if f.name not in POSTPROCESS_FIELDS and getattr(settings, f.name) != getattr(variant, f.name)]
    if differ:
        raise ValueError(f"post-processing variant {name!r} changes the sampling ({', '.join(differ)}); "
                         f"a variant may change only {', '.join(POSTPROCESS_FIELDS)}")


def check_saga_sr_block(block: dict, source: str) -> None:
    """The model config's ``saga_sr`` block (inference defaults): a typo is an error, not a silent default."""
    if not isinstance(block, dict):
        raise ConfigError(f"{source}: \"saga_sr\" must be an object, got {type(block).__name__}")
    known = [f.name for f in dataclasses.fields(UpsampleSettings)] + ["caption_model"]
    for key in block:
        if key not in known:
            raise ConfigError(f"{source}: saga_sr has no option {key!r}{suggest(key, known)}; known: {', '.join(known)}")
