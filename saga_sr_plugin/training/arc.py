"""ARC post-training of a trained SAGA-SR model on the official ``ARCTrainingWrapper``.

stable-audio-tools' factory builds ``ARCTrainingWrapper`` (adversarial relativistic-contrastive
post-training: a discriminator head on a DiT hidden layer, optional ODE warm-up on teacher
trajectories, optional contrastive term that rolls the ``prompt`` condition, EMA) whenever
``training.arc`` is in the model config. The loss, the two optimisers and the EMA are the
official ones. The plugin adds what the release cannot know about SAGA-SR:

- **weights.** ARC starts the student, the discriminator's base and the teacher from the same
  trained model. The official factory reads teacher and discriminator files with
  ``strict=False`` from a torch ``{"state_dict"}`` file only, so weights from another config
  would load nothing without a word; here all three come from ``--pretrained-ckpt-path``
  (the exported ``.safetensors`` of a SAGA-SR run) and must fit strictly.
- **the teacher's guidance.** The ODE warm-up calls its teacher with one ``cfg_scale``;
  SAGA-SR's teacher is eq. 4, two scales (``guidance_acoustic`` on z_l, ``guidance_text`` on
  the caption) with the low-res conditioner's own null: :class:`Eq4Teacher`.
- **the student's sampling.** A post-trained model runs without guidance (one DiT pass a
  step); the config's ``saga_sr`` block must say so, so the exported config alone makes
  ``saga-sr upsample`` run the student as trained.
"""
from __future__ import annotations

import copy
import typing as tp

import torch
from torch import nn
from stable_audio_tools.models.diffusion import ConditionedDiffusionModelWrapper
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.factory import create_training_wrapper_from_config

from .. import compat
from ..configs import ConfigError, check_options
from ..inference.sampling import make_guided_model, passes_per_step
from ..inference.settings import UpsampleSettings
from ..models.weights import check_state_dict_fits

# What the installed release's ARCTrainingWrapper and factory read from training.arc (compat, item 4).
ARC_KEYS = compat.ARC_KEYS
# Read by the official factory, refused here: the teacher and discriminator are the pretrained model.
FACTORY_WEIGHT_KEYS = compat.ARC_WEIGHT_KEYS
DISCRIMINATOR_KEYS = compat.ARC_DISCRIMINATOR_KEYS
ODE_WARMUP_KEYS = (*compat.ARC_ODE_KEYS, "guidance_acoustic", "guidance_text")
NOISE_DISTS = ("uniform", "logit_normal", "trunc_logit_normal", "one_shot", "denoised", "logsnr_uniform")


def is_arc(model_config: dict) -> bool:
    return "arc" in model_config.get("training", {})


def check_arc_config(model_config: dict, source: str) -> dict:
    """The ``training.arc`` block and the student's ``saga_sr`` block, checked before anything is built."""
    arc = model_config["training"]["arc"]
    if not isinstance(arc, dict):
        raise ConfigError(f"{source}: training.arc must be an object, got {type(arc).__name__}")
    for key in arc:
        if key in FACTORY_WEIGHT_KEYS:
            raise ConfigError(f"{source}: training.arc.{key}: the teacher and the discriminator start from the model "
                              "given by --pretrained-ckpt-path (loaded strictly); remove the key")
    check_options(arc, ARC_KEYS, "training.arc", source)
    disc = arc.get("discriminator")
    if not isinstance(disc, dict) or "dit_hidden_layer" not in disc:
        raise ConfigError(f"{source}: training.arc.discriminator.dit_hidden_layer is required (the DiT layer whose "
                          "hidden states the discriminator head reads)")
    check_options(disc, DISCRIMINATOR_KEYS, "training.arc.discriminator", source)
    depth = model_config["model"]["diffusion"]["config"].get("depth")
    layer = disc["dit_hidden_layer"]
    if not isinstance(layer, int) or isinstance(layer, bool) or not 1 <= layer <= (depth or layer):
        raise ConfigError(f"{source}: training.arc.discriminator.dit_hidden_layer must be an integer in [1, {depth}] "
                          f"(the DiT's depth), got {layer!r}")
    if disc.get("type", "convnext") not in ("convnext", "conv"):
        raise ConfigError(f"{source}: training.arc.discriminator.type must be 'convnext' or 'conv', got {disc['type']!r}")
    width = model_config["model"]["diffusion"]["config"].get("embed_dim", 768)
    if disc.get("type", "convnext") == "conv" and width % 32:
        raise ConfigError(f"{source}: the 'conv' discriminator head normalises in 32 groups: the DiT's embed_dim "
                          f"({width}) must be a multiple of 32, or use type 'convnext'")
    for role, dist in arc.get("noise_dist", {}).items():
        if role not in ("generator", "discriminator") or dist not in NOISE_DISTS:
            raise ConfigError(f"{source}: training.arc.noise_dist.{role} = {dist!r}: roles are generator and "
                              f"discriminator, distributions {', '.join(NOISE_DISTS)}")
    warmup = arc.get("ode_warmup")
    if warmup is not None:
        if "cfg" in warmup:
            raise ConfigError(f"{source}: training.arc.ode_warmup.cfg is the official single guidance scale; "
                              "SAGA-SR's teacher uses eq. 4: give guidance_acoustic and guidance_text instead")
        check_options(warmup, ODE_WARMUP_KEYS, "training.arc.ode_warmup", source)
    settings = UpsampleSettings.from_config(model_config)
    if passes_per_step(settings.guidance_acoustic, settings.guidance_text) != 1:
        raise ConfigError(f"{source}: a post-trained (ARC) model samples without guidance: set saga_sr.guidance_acoustic "
                          f"and saga_sr.guidance_text to 1.0 (got {settings.guidance_acoustic} and "
                          f"{settings.guidance_text}), so its exported config runs it as trained")
    return arc


CONDITION_KEYS = ("input_concat_cond", "cross_attn_cond", "cross_attn_mask", "global_cond", "prepend_cond",
                  "prepend_cond_mask")


class Eq4Teacher(nn.Module):
    """The frozen teacher as the official ODE warm-up calls it, answering with eq. 4.

    0.0.19's warm-up calls ``teacher(x, t, cond=..., cfg_scale=..., batch_cfg=True)`` and reads
    ``teacher.conditioner`` and ``teacher.dist_shift``; 0.0.20's calls
    ``teacher.get_conditioning_inputs(cond)`` and samples ``teacher.model(x, t, **inputs, cfg_scale=...)``
    with ``teacher.sampling_dist_shift``. Both are answered here (the two call shapes, not a release
    check); the single ``cfg_scale`` is replaced by the two scales, evaluated as one forward of 3B items
    (``inference.sampling``). It stays in eval mode when Lightning calls ``train()`` on the wrapper: in
    training mode the low-res conditioner would drop z_l for a tenth of the batch.
    """

    def __init__(self, teacher: ConditionedDiffusionModelWrapper, lowres_id: str, scale_acoustic: float,
                 scale_text: float):
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.lowres_id = lowres_id
        self.scale_acoustic = scale_acoustic
        self.scale_text = scale_text

    @property
    def conditioner(self) -> nn.Module:
        return self.teacher.conditioner

    @property
    def dist_shift(self) -> tp.Any:
        return getattr(self.teacher, "dist_shift", None)

    @property
    def sampling_dist_shift(self) -> tp.Any:
        return getattr(self.teacher, "sampling_dist_shift", self.dist_shift)

    def get_conditioning_inputs(self, cond: dict) -> dict:
        return self.teacher.get_conditioning_inputs(cond)

    def train(self, mode: bool = True) -> "Eq4Teacher":
        return super().train(False)

    @torch.no_grad()
    def guided(self, x: torch.Tensor, t: torch.Tensor, inputs: dict) -> torch.Tensor:
        null = self.teacher.conditioner.conditioners[self.lowres_id].null_like(inputs["input_concat_cond"])
        return make_guided_model(self.teacher.model, inputs, null, self.scale_acoustic, self.scale_text)(x, t)

    @property
    def model(self) -> tp.Callable[..., torch.Tensor]:
        """The backbone call of 0.0.20's warm-up: ``model(x, t, **conditioning inputs, cfg_scale=..., ...)``."""
        return lambda x, t, **kwargs: self.guided(x, t, {k: kwargs.get(k) for k in CONDITION_KEYS})

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict, **_: tp.Any) -> torch.Tensor:
        return self.guided(x, t, self.teacher.get_conditioning_inputs(cond))


def lowres_id_of(model_config: dict) -> str:
    ids = model_config["model"]["diffusion"].get("input_concat_ids", [])
    if len(ids) != 1:
        raise ConfigError(f"SAGA-SR's teacher needs one input-concat (low-res latent) condition, got {ids}")
    return ids[0]


def factory_config(model_config: dict) -> dict:
    """The config the official factory is given: the discriminator's base built from the model
    config (its weights are loaded strictly afterwards), no teacher (attached afterwards)."""
    config = copy.deepcopy(model_config)
    arc = config["training"]["arc"]
    arc["use_model_as_discriminator"] = True
    arc["use_model_as_teacher"] = False
    return config


def build_arc_wrapper(model_config: dict, model: nn.Module, source: str, weights: dict[str, torch.Tensor] | None,
                      weights_source: str = "--pretrained-ckpt-path") -> nn.Module:
    """The official ``ARCTrainingWrapper`` around ``model``, with the discriminator's base (and the
    teacher, when the config has an ODE warm-up) holding ``weights``.

    ``weights=None`` builds the structure only, for loading a whole ARC checkpoint into (export, resume).
    """
    arc = check_arc_config(model_config, source)
    if weights is not None:
        check_state_dict_fits(model, weights, weights_source, source)
    wrapper = create_training_wrapper_from_config(factory_config(model_config), model)
    if weights is not None:
        # every part the discriminator's base has (0.0.20 deletes its pretransform, 0.0.19 keeps it: compat, item 5)
        own = wrapper.discriminator.state_dict()
        wrapper.discriminator.load_state_dict({k: weights[k] for k in own})
    warmup = arc.get("ode_warmup")
    if warmup is not None and warmup.get("warmup_steps", 0) > 0:
        teacher = create_model_from_config(model_config)
        if weights is not None:
            teacher.load_state_dict(weights)
        wrapper.teacher_model = Eq4Teacher(teacher, lowres_id_of(model_config),
                                           warmup.get("guidance_acoustic", 1.4), warmup.get("guidance_text", 1.2))
    return wrapper
