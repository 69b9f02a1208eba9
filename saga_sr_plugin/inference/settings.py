"""Sampling and post-processing settings, each declared once: the model config's ``saga_sr`` block.

Every field of :class:`UpsampleSettings` carries its :class:`Setting`: the help, the choices or
range, the words that turn it off, the commands that offer it as a flag and the page control.
``interface.setting_flags`` builds the ``upsample`` / ``evaluate`` flags and the experiments'
``--set NAME=VALUE`` overrides from it, ``interface.gui`` its controls, and ``__post_init__``
checks values against it. Adding a setting is one field here and the code that uses it.

No torch here (``saga-sr --help`` reads this module): the names of the samplers, schedules and
LFR rules are declared here, and the modules that implement them import them.
"""
from __future__ import annotations

import dataclasses
import math
import typing as tp

from ..configs import ConfigError, check_options

AUTO = "auto"     # target_rolloff: f_h from each input's own spectrum (target_rolloff.py)
SAMPLER_NAMES = ("euler", "dpmpp", "pingpong")   # the official samplers (sampling.SAMPLERS)
SCHEDULES = ("linear_quadratic", "linear", "logsnr")
MIN_STEPS = {"linear_quadratic": 2, "linear": 1, "logsnr": 1}  # the linear-quadratic needs a linear and a quadratic part
RATIO_RULES = ("cutoff_magnitude", "band_energy", "none", "output_to_input")   # postprocess.level_ratio
LFR_BOUNDARIES = ("rolloff", "content", "band_limit")
BOTH = ("upsample", "evaluate")


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one setting is offered: help, accepted values, off word, flags and page control."""

    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    words: tuple[str, ...] = ()          # words accepted besides a number (target_rolloff: "auto")
    off: str | None = None               # the flag that turns it off: None (or False for a switch)
    off_help: str = ""
    commands: tuple[str, ...] = ()       # the saga-sr commands with a --flag for it (off flags: every command)
    control: tuple[float, float, float] | None = None   # the page's slider (min, max, step); choices: a dropdown
    label: str | None = None             # the page's label (default: the help's first clause)
    postprocess: bool = False            # applied after the sampler: variants of one sampling may differ in it

    @property
    def page_label(self) -> str:
        return self.label or self.help.split(";")[0].split(" (")[0]


def setting(default: tp.Any, help: str, **how: tp.Any) -> tp.Any:
    """A dataclass field whose declaration (``Setting``) travels in its metadata."""
    return dataclasses.field(default=default, metadata={"setting": Setting(help, **how)})


@dataclasses.dataclass
class UpsampleSettings:
    """Sampling and post-processing options; defaults are the paper's (``saga_sr`` block of the config)."""

    steps: int = setting(100, "sampler steps (1 needs schedule linear or logsnr)", minimum=1, commands=BOTH,
                         control=(1, 200, 1), label="sampler steps")
    sampler: str = setting("euler", "official sampler: euler (the paper's), dpmpp, pingpong (post-trained models)",
                           choices=SAMPLER_NAMES, commands=BOTH, label="sampler (official)")
    schedule: str = setting("linear_quadratic", "t-schedule: linear_quadratic (the paper's, Movie Gen's), linear "
                            "(the official samplers' own), logsnr (the official generation's and ARC's)",
                            choices=SCHEDULES, commands=BOTH, label="t-schedule")
    guidance_acoustic: float = setting(1.4, "s_a, eq. 4's scale on the low-res latent", commands=("upsample",),
                                       control=(0.0, 5.0, 0.05), label="s_a (low-res latent guidance)")
    guidance_text: float = setting(1.2, "s_t, eq. 4's scale on the caption", commands=("upsample",),
                                   control=(0.0, 5.0, 0.05), label="s_t (caption guidance)")
    target_rolloff: float | str = setting(
        0.9, "normalised target roll-off f_h in [0, 1] (bin/1025; 0.9 = 19.8 kHz, 1.0 = full band), or 'auto': "
             "from each input's own spectrum (docs/inference.md)", minimum=0.0, maximum=1.0, words=(AUTO,),
        commands=BOTH, label="target roll-off f_h: a number in [0, 1] (0.9 ~ 19.8 kHz, 1.0 = full band) or auto "
                             "(from the input)")
    target_rolloff_rule: dict | None = setting(None, "the auto rule's coefficients (None: the defaults)")
    schedule_threshold: float = setting(0.025, "the linear-quadratic schedule's switch from linear to quadratic")
    overlap: float = setting(0.125, "fraction of a window shared with the next one, in [0, 0.5)")
    low_frequency_replacement: bool = setting(
        True, "low-frequency replacement: the input's own band below the boundary, kept", off="--no-lfr",
        label="low-frequency replacement",
        off_help="skip the low-frequency replacement (and what follows it)", postprocess=True)
    lfr_ratio_rule: str = setting("cutoff_magnitude", "level match of the kept and generated bands "
                                  "(cutoff_magnitude: the authors')", choices=RATIO_RULES, postprocess=True)
    lfr_boundary: str = setting(
        "content", "LFR boundary: below the input's 98.5 % roll-off (rolloff, the authors'), where its content "
                   "ends (content), or the band its rate (or the evaluation's cutoff) allows (band_limit); "
                   "docs/inference.md", choices=LFR_BOUNDARIES, commands=BOTH, postprocess=True)
    max_added_band_db: float | None = setting(12.0, "generated band at most this far above the input's energy (dB)",
                                              postprocess=True)
    envelope_margin_db: float | None = setting(
        None, "keep the added band within this many dB of the input's envelope continued above the cutoff "
              "(docs/inference.md)", minimum=0.0, off="--no-envelope",
        off_help="no envelope matching of the added band (the paper)", commands=("upsample",), postprocess=True)
    slope_cap_db: float | None = setting(
        None, "keep the added band at most this many dB above the input's spectrum continued with its own slope "
              "(docs/inference.md)", off="--no-slope-cap", off_help="no slope cap of the added band (the paper)",
        commands=("upsample",), postprocess=True)
    slope_cap_per_frame: bool = setting(False, "the slope cap's bound following the input's top octave frame by "
                                               "frame (measured no better on the real-audio validation split)",
                                        postprocess=True)
    peak_limit_dbfs: float | None = setting(
        -0.1, "an output peaking above this is scaled down to it as a whole, with a logged note",
        off="--no-peak-limit", off_help="keep the output's level even above 0 dBFS (a .wav is then written as float, "
                                        "which does not clip)", postprocess=True)
    batch_size: int | None = setting(None, "windows (of one or several files) per sampler batch; bounds GPU memory; "
                                           "none: 8 on a GPU, 1 on the CPU (where batching measured ~10 % slower "
                                           "per window)", minimum=1, commands=BOTH)
    seed: int = setting(0, "sampling noise (evaluate: also the simulated filters)", commands=BOTH, label="seed")

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_value(field.name, getattr(self, field.name), field.metadata["setting"])
        if not 0.0 <= self.overlap < 0.5:
            raise ValueError(f"overlap must be in [0, 0.5), got {self.overlap}")
        if self.target_rolloff_rule is not None:
            _ = self.rule   # a typo in the rule's block is an error now, not at the first input
        if not isinstance(self.steps, int) or self.steps < MIN_STEPS[self.schedule]:
            raise ValueError(f"steps must be an integer of at least {MIN_STEPS[self.schedule]} with the {self.schedule} "
                             f"schedule, got {self.steps!r}" + (" (1-step sampling: schedule linear or logsnr)"
                                                                if self.schedule == "linear_quadratic" else ""))

    @property
    def rule(self) -> tp.Any:
        """The auto f_h rule (``target_rolloff.TargetRolloffRule``), built on first use (it needs torch)."""
        if getattr(self, "_rule", None) is None:
            from .target_rolloff import TargetRolloffRule

            object.__setattr__(self, "_rule", TargetRolloffRule.from_block(self.target_rolloff_rule))
        return self._rule

    @classmethod
    def from_config(cls, model_config: dict, **overrides: tp.Any) -> "UpsampleSettings":
        block = dict(model_config.get("saga_sr", {}))
        check_saga_sr_block(block, "model config")
        block.pop("caption_model", None)
        block.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**block)


def check_value(name: str, value: tp.Any, how: Setting) -> None:
    """One value against its declaration: a bad one is a ValueError that names the setting."""
    if value is None or isinstance(value, (bool, dict)):
        return
    if how.choices is not None:
        if value not in how.choices:
            raise ValueError(f"{name} must be one of {list(how.choices)}, got {value!r}")
        return
    if isinstance(value, str):
        if value not in how.words:
            raise ValueError(f"{name} is a number{' or ' + repr(how.words[0]) if how.words else ''}, got {value!r}")
        return
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (how.minimum is not None and value < how.minimum) or (how.maximum is not None and value > how.maximum):
        low = "-inf" if how.minimum is None else f"{how.minimum:g}"
        high = "inf" if how.maximum is None else f"{how.maximum:g}"
        raise ValueError(f"{name} must be at least {low}, got {value}" if how.maximum is None
                         else f"{name} must be in [{low}, {high}], got {value}")


POSTPROCESS_FIELDS = tuple(f.name for f in dataclasses.fields(UpsampleSettings) if f.metadata["setting"].postprocess)


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
    check_options(block, known, "saga_sr", source)
