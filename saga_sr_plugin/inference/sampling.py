"""SAGA-SR sampling: the linear-quadratic t-schedule and the two-scale guidance of eq. 4.

The loops themselves are the official ones, given explicit ``sigmas`` by keyword (both releases'
signatures take that; ``compat``, item 3): ``sample_discrete_euler``
(the paper's), ``sample_flow_dpmpp`` and ``sample_flow_pingpong`` (the sampler for
post-trained few-step models). This module supplies what they cannot: the schedules and a
model function that evaluates the three guidance terms as one batched forward of 3B items,
or, with both scales at 1 (guidance off), the conditional term alone in one pass of B.
"""
from __future__ import annotations

import typing as tp

import torch
from stable_audio_tools.inference.sampling import sample_discrete_euler, sample_flow_dpmpp, sample_flow_pingpong

from ..compat import sampler_options
from .settings import SAMPLER_NAMES, SCHEDULES, UpsampleSettings

# The official samplers by name. pingpong re-noises with torch's global generator at every step,
# so its outputs depend on the batch a window shares (the other two are deterministic per window).
SAMPLERS: dict[str, tp.Callable[..., torch.Tensor]] = dict(
    zip(SAMPLER_NAMES, (sample_discrete_euler, sample_flow_dpmpp, sample_flow_pingpong), strict=True))


def linear_quadratic_schedule(steps: int, threshold: float = 0.025, linear_steps: int | None = None,
                              device: torch.device | str | None = None) -> torch.Tensor:
    """Movie Gen's linear-quadratic schedule, as ``steps + 1`` times from 1 (noise) to 0 (data).

    In Movie Gen's direction (s = 0 noise, s = 1 data) the first ``linear_steps``
    (default half) move linearly from 0 to ``threshold`` (fine steps where the
    flow changes fastest), the rest follow a quadratic reaching 1 whose slope
    continues the linear part. stable-audio-tools integrates t from 1 to 0, so t = 1 - s.
    """
    if steps < 2:
        raise ValueError(f"the linear-quadratic schedule needs at least 2 steps, got {steps}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    n_lin = steps // 2 if linear_steps is None else linear_steps
    if not 1 <= n_lin < steps:
        raise ValueError(f"linear_steps must be in [1, {steps - 1}], got {n_lin}")
    n_quad = steps - n_lin
    slope = threshold / n_lin
    curvature = (1.0 - threshold - slope * n_quad) / n_quad**2
    if slope + 2 * curvature * n_quad < 0:  # the quadratic would turn back before reaching 1
        raise ValueError(f"threshold {threshold} is too large for {steps} steps with {n_lin} linear ones")
    i = torch.arange(steps + 1, dtype=torch.float64, device="cpu")  # float64 on the CPU, then moved
    k = (i - n_lin).clamp(min=0)
    s = torch.where(i <= n_lin, i * slope, threshold + slope * k + curvature * k**2)
    s[-1] = 1.0
    return (1.0 - s).float().to(device)


def guidance_batch(inputs: dict[str, tp.Any], null_input_concat: torch.Tensor) -> dict[str, tp.Any]:
    """The official conditioning inputs of B items -> 3B: [unconditional | low-res only | low-res + text].

    ``inputs`` is what ``ConditionedDiffusionModelWrapper.get_conditioning_inputs``
    returns. The text null is what the official CFG dropout feeds the DiT: the whole
    cross-attention sequence (text + roll-off tokens) zeroed. The z_l null is the
    low-res conditioner's own constant. The prepended roll-off (global) embedding is
    in all three terms, as in training, where it is never dropped.
    """
    zl = inputs["input_concat_cond"]
    if zl is None:
        raise ValueError("SAGA-SR guidance needs an input-concat (low-res latent) condition")
    cross = inputs["cross_attn_cond"]
    if cross is None:
        raise ValueError("SAGA-SR guidance needs a cross-attention (text) condition")
    null_cross = torch.zeros_like(cross)
    batch = {
        "input_concat_cond": torch.cat([null_input_concat, zl, zl]),
        "cross_attn_cond": torch.cat([null_cross, null_cross, cross]),
    }
    for key in ("cross_attn_mask", "global_cond", "prepend_cond", "prepend_cond_mask"):
        value = inputs.get(key)
        batch[key] = None if value is None else torch.cat([value, value, value])
    return batch


def combine_guidance(u_uncond: torch.Tensor, u_audio: torch.Tensor, u_full: torch.Tensor,
                     scale_acoustic: float, scale_text: float) -> torch.Tensor:
    """Eq. 4: u(0,0) + s_a [u(z_l,0) - u(0,0)] + s_t [u(z_l,c) - u(z_l,0)]."""
    return u_uncond + scale_acoustic * (u_audio - u_uncond) + scale_text * (u_full - u_audio)


def make_guided_model(dit: tp.Callable[..., torch.Tensor], inputs: dict[str, tp.Any], null_input_concat: torch.Tensor,
                      scale_acoustic: float, scale_text: float) -> tp.Callable[..., torch.Tensor]:
    """A ``model(x, t)`` for ``sample_discrete_euler``: the three terms of eq. 4 in ONE forward of 3B items.

    ``dit`` is the official ``DiTWrapper`` (``model.model``); its own single-scale CFG is
    off (``cfg_scale=1``) and so is its training-time dropout.
    """
    batch = guidance_batch(inputs, null_input_concat)

    def guided(x: torch.Tensor, t: torch.Tensor, **_: tp.Any) -> torch.Tensor:
        out = dit(torch.cat([x, x, x]), torch.cat([t, t, t]), cfg_scale=1.0, cfg_dropout_prob=0.0, **batch)
        u_uncond, u_audio, u_full = out.chunk(3)
        return combine_guidance(u_uncond, u_audio, u_full, scale_acoustic, scale_text)

    return guided


def make_sequential_guided_model(dit: tp.Callable[..., torch.Tensor], inputs: dict[str, tp.Any],
                                 null_input_concat: torch.Tensor, scale_acoustic: float,
                                 scale_text: float) -> tp.Callable[..., torch.Tensor]:
    """The same guidance as three separate forwards: the benchmark's reference, not for use."""
    batch = guidance_batch(inputs, null_input_concat)
    parts = [{k: (None if v is None else v.chunk(3)[i]) for k, v in batch.items()} for i in range(3)]

    def guided(x: torch.Tensor, t: torch.Tensor, **_: tp.Any) -> torch.Tensor:
        u = [dit(x, t, cfg_scale=1.0, cfg_dropout_prob=0.0, **p) for p in parts]
        return combine_guidance(*u, scale_acoustic, scale_text)

    return guided


def make_conditional_model(dit: tp.Callable[..., torch.Tensor], inputs: dict[str, tp.Any]) -> tp.Callable[..., torch.Tensor]:
    """u(z_t, z_l, c) alone, one forward of B items: eq. 4 at s_a = s_t = 1, in a third of the passes."""
    def conditional(x: torch.Tensor, t: torch.Tensor, **_: tp.Any) -> torch.Tensor:
        return dit(x, t, cfg_scale=1.0, cfg_dropout_prob=0.0, **inputs)

    return conditional


def logsnr_schedule(steps: int, logsnr_min: float = -6.0, logsnr_max: float = 2.0,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The official ``generate_diffusion_cond``'s times (and the ARC ODE warm-up's): log-SNR
    linear from -6 to 2, t = sigmoid(-log-SNR), the ends pinned to 1 and 0. Few steps land
    where the data is coarse (t near 1) and fine detail (t near 0.12) alike."""
    if steps < 1:
        raise ValueError(f"the log-SNR schedule needs at least 1 step, got {steps}")
    t = torch.sigmoid(-torch.linspace(logsnr_min, logsnr_max, steps + 1, dtype=torch.float64))
    t[0], t[-1] = 1.0, 0.0
    return t.float().to(device)


def schedule(name: str, steps: int, threshold: float = 0.025, device: torch.device | str | None = None) -> torch.Tensor:
    """``steps + 1`` times from 1 to 0: the paper's ``linear_quadratic``, the official samplers' own
    ``linear`` default, or the official generation's ``logsnr``."""
    if name == "linear_quadratic":
        return linear_quadratic_schedule(steps, threshold, device=device)
    if name == "linear":
        return torch.linspace(1.0, 0.0, steps + 1, device=device)
    if name == "logsnr":
        return logsnr_schedule(steps, device=device)
    raise ValueError(f"unknown schedule {name!r}; known: {list(SCHEDULES)}")


def passes_per_step(scale_acoustic: float, scale_text: float) -> int:
    """DiT passes per step: 3 with eq. 4's guidance, 1 with both scales at 1 (the conditional term)."""
    return 1 if scale_acoustic == 1.0 and scale_text == 1.0 else 3


def sample_guided(dit: tp.Callable[..., torch.Tensor], noise: torch.Tensor, inputs: dict[str, tp.Any],
                  null_input_concat: torch.Tensor, settings: UpsampleSettings,
                  callback: tp.Callable[[dict], None] | None = None) -> torch.Tensor:
    """Noise -> latent with the settings' official sampler (the paper's Euler by default), schedule (the
    paper's linear-quadratic) and eq. 4's scales (one pass per step when both are 1)."""
    s = settings
    sampler = s.sampler
    sigmas = schedule(s.schedule, s.steps, s.schedule_threshold, device=noise.device)
    if passes_per_step(s.guidance_acoustic, s.guidance_text) == 1:
        model = make_conditional_model(dit, inputs)
    else:
        model = make_guided_model(dit, inputs, null_input_concat, s.guidance_acoustic, s.guidance_text)
    return SAMPLERS[sampler](model, noise, sigmas=sigmas, callback=callback, **sampler_options(SAMPLERS[sampler]))
