"""Structural checks of a model config, before the official factory would fail deep inside torch.

The ``saga_sr`` block (inference defaults) is checked by ``inference.settings``; the
dataset config by ``data.dataset_config``.
"""
from __future__ import annotations

import inspect

from stable_audio_tools.models.dit import DiffusionTransformer
from stable_audio_tools.models.transformer import ContinuousTransformer, TransformerBlock

from ..configs import ConfigError, check_options, suggest


def check_model_config(config: dict, source: str = "model config") -> None:
    """Structural checks the official factory would only fail on deep inside torch."""
    if config.get("model_type") != "diffusion_cond":
        raise ConfigError(f"{source}: SAGA-SR needs model_type 'diffusion_cond', got {config.get('model_type')!r}")
    for key in ("sample_rate", "sample_size", "model", "training"):
        if key not in config:
            raise ConfigError(f"{source}: missing top-level key {key!r}")
    model = config["model"]
    diffusion = model.get("diffusion", {})
    ids = [c.get("id") for c in model.get("conditioning", {}).get("configs", [])]
    for list_key in ("cross_attention_cond_ids", "global_cond_ids", "input_concat_ids", "prepend_cond_ids"):
        for cond_id in diffusion.get(list_key, []):
            if cond_id not in ids:
                raise ConfigError(f"{source}: model.diffusion.{list_key} names {cond_id!r}, which is not a "
                                  f"conditioning id{suggest(cond_id, ids)}; ids defined: {ids}")
    objective = diffusion.get("diffusion_objective", "v")
    if objective != "rectified_flow":
        raise ConfigError(f"{source}: SAGA-SR trains with diffusion_objective 'rectified_flow', got {objective!r}")
    dit = diffusion.get("config", {})
    concat_ids = diffusion.get("input_concat_ids", [])
    if concat_ids and dit.get("input_concat_dim", 0) != model.get("io_channels"):
        raise ConfigError(f"{source}: model.diffusion.config.input_concat_dim must equal model.io_channels "
                          f"({model.get('io_channels')}) for the low-res latent, got {dit.get('input_concat_dim')}")
    global_ids = diffusion.get("global_cond_ids", [])
    cond_dim = model.get("conditioning", {}).get("cond_dim")
    if global_ids and dit.get("global_cond_dim") != cond_dim * len(global_ids):
        raise ConfigError(f"{source}: model.diffusion.config.global_cond_dim must be cond_dim x "
                          f"{len(global_ids)} = {cond_dim * len(global_ids)}, got {dit.get('global_cond_dim')}")
    if cond_dim is not None and dit.get("cond_token_dim") not in (None, cond_dim):
        raise ConfigError(f"{source}: model.diffusion.config.cond_token_dim must equal conditioning.cond_dim ({cond_dim})")
    if diffusion.get("type", "dit") == "dit":
        check_dit_config(dit, source)
    effective = config["training"].get("effective_batch_size")
    if effective is not None and (not isinstance(effective, int) or isinstance(effective, bool) or effective < 1):
        raise ConfigError(f"{source}: training.effective_batch_size must be a positive integer, got {effective!r}")


def dit_config_keys() -> set[str]:
    """What the official DiT accepts: DiffusionTransformer's arguments and those its
    ContinuousTransformer and TransformerBlocks take through ``**kwargs``."""
    keys: set[str] = set()
    for cls in (DiffusionTransformer, ContinuousTransformer, TransformerBlock):
        keys |= {name for name, p in inspect.signature(cls.__init__).parameters.items()
                 if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    # set by DiffusionTransformer / ContinuousTransformer themselves, not by the config
    return keys - {"dim", "dim_in", "dim_out", "dim_heads", "cross_attend", "dim_context", "layer_ix",
                   "diffusion_objective"}


def check_dit_config(dit: dict, source: str) -> None:
    """Unknown keys and widths the official DiT cannot build with, caught when the config is read."""
    known = sorted(dit_config_keys())
    check_options(dit, known, "model.diffusion.config", source, "the official DiT takes")
    embed_dim, heads = dit.get("embed_dim", 768), dit.get("num_heads", 8)
    if not isinstance(embed_dim, int) or not isinstance(heads, int) or embed_dim < 1 or heads < 1:
        raise ConfigError(f"{source}: model.diffusion.config embed_dim and num_heads must be positive integers, "
                          f"got {embed_dim!r} and {heads!r}")
    if embed_dim % heads:
        fits = [h for h in range(1, min(embed_dim, 64) + 1) if embed_dim % h == 0]
        raise ConfigError(f"{source}: model.diffusion.config.embed_dim {embed_dim} is not divisible by num_heads "
                          f"{heads} (the official DiT uses heads of embed_dim // num_heads channels); "
                          f"num_heads that fit: {fits}")
