"""The two conditioners SAGA-SR needs that stable-audio-tools does not have.

The roll-off conditions need no code: the official ``number`` conditioner (min 0,
max 1) is exactly a learnable Fourier embedding of the normalised roll-off.
"""
from __future__ import annotations

import logging
import os
import typing as tp
import warnings

import torch
from torch import nn
from stable_audio_tools.models.conditioners import Conditioner, PretransformConditioner, T5Conditioner
from stable_audio_tools.models.pretransforms import Pretransform

DEFAULT_NULL_LATENT = -5.0  # the authors' null z_l: a constant latent, not zeros


class LowResLatentConditioner(PretransformConditioner):
    """z_l for ``input_concat_ids``: the low-res audio encoded by the model's own pretransform.

    Takes raw low-res audio (channels, samples), encoded here, or a pre-encoded z_l
    (encoded_channels, frames) from ``saga-sr pre-encode``, used as it is. (The official
    ``pre_encoded_keys`` would bypass this conditioner and with it the z_l dropout.)
    In training mode each batch item's z_l is replaced by the null latent with
    probability ``dropout_prob`` (the official CFG dropout never touches input-concat
    conditions); in eval mode never. Inference guidance must use :meth:`null_like`.
    """

    def __init__(self, pretransform: Pretransform, output_dim: int, dropout_prob: float = 0.1,
                 null_value: float = DEFAULT_NULL_LATENT):
        super().__init__(pretransform, output_dim=pretransform.encoded_channels, save_pretransform=False)
        if not 0.0 <= dropout_prob < 1.0:
            raise ValueError(f"lowres latent dropout_prob must be in [0, 1), got {dropout_prob}")
        self.dropout_prob = dropout_prob
        self.null_value = null_value

    def null_like(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.full_like(latents, self.null_value)

    def is_latent(self, x: torch.Tensor) -> bool:
        """A pre-encoded z_l has the pretransform's latent channels (64), audio its io channels (1-2)."""
        channels = self.pretransform.encoded_channels
        return x.dim() >= 2 and x.shape[-2] == channels and channels != self.pretransform.io_channels

    def forward(self, audio: tp.Sequence[torch.Tensor] | torch.Tensor, device: tp.Any) -> list:
        items = list(audio) if isinstance(audio, (list, tuple)) else list(audio if audio.dim() == 3 else [audio])
        # the official WebDataset loader collates its batches once more: each item arrives as (1, C, T)
        items = [x[0] if torch.is_tensor(x) and x.dim() == 3 and x.shape[0] == 1 else x for x in items]
        latent = [self.is_latent(torch.as_tensor(x)) for x in items]
        if any(latent) and not all(latent):
            raise ValueError("a batch mixes pre-encoded z_l and raw low-res audio; pre-encode the whole dataset")
        if all(latent):
            latents = torch.stack([torch.as_tensor(x) for x in items]).to(device=device, dtype=torch.float32)
            mask = torch.ones(latents.shape[0], latents.shape[-1], device=latents.device)
        else:
            with torch.no_grad():
                latents, mask = super().forward(torch.stack([torch.as_tensor(x) for x in items]), device)
        if self.training and self.dropout_prob > 0:
            drop = torch.rand(latents.shape[0], 1, 1, device=latents.device) < self.dropout_prob
            latents = torch.where(drop, self.null_like(latents), latents)
        return [latents, mask]


def _resolve_t5_source(name_or_path: str) -> str:
    """Local directories win; anything else is a hub name (checked by transformers)."""
    expanded = os.path.expanduser(name_or_path)
    if os.path.isdir(expanded):
        unreadable = [f for f in sorted(os.listdir(expanded))
                      if os.path.isfile(os.path.join(expanded, f)) and not os.access(os.path.join(expanded, f), os.R_OK)]
        if unreadable:
            raise PermissionError(f"T5 text encoder {name_or_path}: permission denied reading {', '.join(unreadable)}: "
                                  "ask its owner to make the files readable (chmod a+r)")
        return expanded
    if os.sep in name_or_path and (name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1):
        # a hub id is "owner/name": more parts (or an explicit path) can only be a folder
        raise FileNotFoundError(f"T5 text encoder directory not found: {name_or_path} (relative paths in a model "
                                "config are looked up beside the config file, then in the working directory)")
    return name_or_path


class LocalT5Conditioner(T5Conditioner):
    """The official T5 conditioner, loadable by hub name *or* local directory.

    Empty captions (missing from the sidecar) become all-zero tokens with a zero
    mask: the same null the official CFG dropout feeds the DiT, rather than T5's
    embedding of an empty string, which the model would learn as a caption of its own.
    """

    def __init__(self, output_dim: int, t5_model_name: str = "t5-base", max_length: int = 128,
                 enable_grad: bool = False, project_out: bool = False, dtype: str = "float16"):
        from transformers import AutoTokenizer, T5EncoderModel

        source = _resolve_t5_source(t5_model_name)
        previous = logging.root.manager.disable
        logging.disable(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tokenizer = AutoTokenizer.from_pretrained(source)
                model = T5EncoderModel.from_pretrained(source)
        except OSError as err:
            raise OSError(
                f"could not load the T5 text encoder {t5_model_name!r}: pass a local directory made with "
                f"save_pretrained() or a hub name reachable from this machine ({err})"
            ) from err
        finally:
            logging.disable(previous)

        Conditioner.__init__(self, model.config.d_model, output_dim, project_out=project_out)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.enable_grad = enable_grad
        model = model.train(enable_grad).requires_grad_(enable_grad).to(getattr(torch, dtype))
        if enable_grad:
            self.model = model
        else:  # frozen: kept out of the state dict, like the official T5 conditioner
            self.__dict__["model"] = model

    def forward(self, texts: tp.Sequence[str], device: tp.Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The official forward, with the frozen T5 in its own dtype, outside any autocast region.

        0.0.19's forward means to run T5 under fp16 autocast but enters only its grad context, so
        under Lightning's bf16-mixed a float16 T5 computes its keys in bf16 while the position
        bias stays float16, and transformers' SDPA mask fill (bf16's minimum) overflows float16.
        A frozen encoder gains nothing from autocast: its weights' dtype is the choice.
        """
        texts = ["" if t is None else str(t) for t in texts]
        with torch.autocast(torch.device(device).type, enabled=False):
            embeddings, mask = super().forward(texts, device)
        present = torch.tensor([bool(t.strip()) for t in texts], device=embeddings.device)
        embeddings = embeddings * present[:, None, None].to(embeddings.dtype)
        mask = mask & present[:, None]
        return embeddings, mask


def lowres_latent_from_config(config: dict, pretransform: Pretransform | None) -> LowResLatentConditioner:
    if pretransform is None:
        raise ValueError("the 'saga_lowres_latent' conditioner encodes with the model's pretransform: "
                         "add model.pretransform to the model config")
    config = dict(config)
    config.pop("sample_rate", None)
    return LowResLatentConditioner(pretransform, **config)


def t5_from_config(config: dict, pretransform: Pretransform | None) -> LocalT5Conditioner:
    return LocalT5Conditioner(**config)


PLUGIN_CONDITIONERS: dict[str, tp.Callable[[dict, Pretransform | None], nn.Module]] = {
    "saga_lowres_latent": lowres_latent_from_config,
    "saga_t5": t5_from_config,
}
