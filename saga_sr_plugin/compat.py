"""The one place where stable-audio-tools releases differ, as seen from the plugin (nothing vendored).

Two releases are supported: 0.0.19 (Python 3.10-3.12; the pinned and current stacks) and 0.0.20
(Python 3.10 only; its own pins: torch 2.7.1, Lightning 2.5.5). Every difference the plugin meets is
handled here, one comment each; no other module asks which release is installed.

1. ``InverseLR`` (the paper's scheduler): 0.0.19 passes ``verbose`` to ``LRScheduler.__init__``, which
   torch 2.7 removed; 0.0.20 no longer passes it. Where both hold (0.0.19 on torch >= 2.7) the official
   class gets a base that drops the argument (:func:`install`).
2. Audio reading: both datasets call ``torchaudio.load`` (0.0.20 also on in-memory WebDataset bytes);
   from torchaudio 2.9 that needs TorchCodec and FFmpeg. On every release the dataset module's
   ``torchaudio`` reads through soundfile, so all stacks read files alike (:func:`install`).
3. Sampler signatures: 0.0.19's ``sample_discrete_euler`` / ``sample_flow_dpmpp`` take ``steps`` or
   ``sigmas`` and ``sample_flow_pingpong`` has no ``disable_tqdm``; 0.0.20's take ``sigmas``
   positionally (no ``steps``, no ``sigma_max``) and pingpong has ``disable_tqdm``. The plugin always
   passes explicit ``sigmas`` by keyword; :func:`sampler_options` adds ``disable_tqdm`` where taken.
4. ARC options (``training.arc``): 0.0.20 reads more keys (denoiser loss, discriminator update
   interval, CLAP, LoRA; in the discriminator block hinge loss, R2 penalty, a frozen backbone, ...)
   and drops ``sampling``: :data:`ARC_KEYS` / :data:`ARC_DISCRIMINATOR_KEYS` / :data:`ARC_ODE_KEYS`
   are the installed release's.
5. The ARC discriminator base: 0.0.19 keeps its pretransform, 0.0.20 deletes it to save memory. The
   plugin loads the pretrained weights of every part the base has (``training.arc``), on both.
6. Training metrics: 0.0.19 logs ``train/loss`` with Lightning's ``self.log`` every step (progress bar,
   ``callback_metrics``); 0.0.20 averages them over ``training.log_every_n_steps`` (default 10) and
   writes them to the loggers only. :func:`logs_through_lightning` says which.
7. EMA: 0.0.19 uses ``ema_pytorch.EMA``, 0.0.20 a vendored ``training/ema.py``; both expose
   ``ema_model``, the only attribute the plugin reads.
8. FD metrics: 0.0.20 ships ``training/metrics/fad_metrics.py``, but importing it imports laion_clap,
   which fetches roberta-base's tokenizer from the Hugging Face hub at import time. Offline (CI, clusters
   without network) that import retries for minutes and then fails. So both releases use the libraries that
   module itself calls, scipy for the Fréchet distance and torchopenl3 for OpenL3 (mel256, 512 dimensions),
   and the official module is never imported (``evaluation/frechet.py``); no release difference is left.
9. FSDP and LoRA: ``training/fsdp.py`` (FSDP with an FSDP-aware EMA) and ``training.lora_config`` exist
   only in 0.0.20 (:data:`FEATURES`). Both releases read ``wds`` (WebDataset) datasets, local or S3.

:func:`install` is idempotent; importing ``saga_sr_plugin`` calls it.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import typing as tp

import numpy as np
import soundfile as sf
import torch
from torch.optim.lr_scheduler import _LRScheduler

RELEASE = importlib.metadata.version("stable-audio-tools")
IS_0_0_19 = RELEASE.startswith("0.0.19")
DATASET_MODULE = "stable_audio_tools.data.dataset"
SCHEDULER_MODULE = "stable_audio_tools.training.utils"

# 9. what only the newer release has
FEATURES = {"fsdp_ema": not IS_0_0_19, "lora": not IS_0_0_19}


# ---------------------------------------------------------------- 1. InverseLR and torch's `verbose`
def scheduler_takes_verbose() -> bool:
    return "verbose" in inspect.signature(torch.optim.lr_scheduler.LRScheduler.__init__).parameters


def official_passes_verbose(official: type) -> bool:
    """0.0.19's InverseLR takes (and forwards) ``verbose``; 0.0.20's has no such parameter."""
    return "verbose" in inspect.signature(official.__init__).parameters


class _LRSchedulerWithoutVerbose(_LRScheduler):
    """Accepts the ``verbose`` argument torch >= 2.7 no longer has, and drops it."""

    def __init__(self, optimizer: torch.optim.Optimizer, last_epoch: int = -1, verbose: tp.Any = None):
        super().__init__(optimizer, last_epoch)


def _compat_inverse_lr(official: type) -> type:
    # MRO: InverseLR, official InverseLR, _LRSchedulerWithoutVerbose, _LRScheduler, ...: the official
    # ``super().__init__(optimizer, last_epoch, verbose)`` lands in the class that drops ``verbose``.
    return type("InverseLR", (official, _LRSchedulerWithoutVerbose),
                {"__doc__": "stable-audio-tools' InverseLR on a torch without LRScheduler(verbose).",
                 "__module__": __name__, "_saga_official": official})


# ---------------------------------------------------------------- 2. audio reading
def soundfile_load(uri: tp.Any, *args: tp.Any, **kwargs: tp.Any) -> tuple[torch.Tensor, int]:
    """``torchaudio.load``'s contract, ``(float32 (channels, frames), rate)``, read by soundfile.

    ``uri`` is a path or a file-like object (the official webdataset decoder passes
    bytes in a ``BytesIO``); torchaudio's ``format``/``backend`` options are not needed.
    """
    try:
        data, rate = sf.read(uri if hasattr(uri, "read") else os.fspath(uri), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        name = uri if not hasattr(uri, "read") else "<in-memory audio>"
        raise RuntimeError(f"{name}: cannot decode audio with soundfile ({err})") from err
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


class _SoundfileTorchaudio:
    """The ``torchaudio`` module with ``load`` replaced by :func:`soundfile_load`."""

    load = staticmethod(soundfile_load)

    def __init__(self, torchaudio: tp.Any):
        self._torchaudio = torchaudio

    def __getattr__(self, name: str) -> tp.Any:
        return getattr(self._torchaudio, name)


def install() -> None:
    """Apply the repairs this stack needs to the official modules; safe to call repeatedly."""
    dataset = importlib.import_module(DATASET_MODULE)
    if not isinstance(dataset.torchaudio, _SoundfileTorchaudio):
        dataset.torchaudio = _SoundfileTorchaudio(dataset.torchaudio)
    utils = importlib.import_module(SCHEDULER_MODULE)
    if (not scheduler_takes_verbose() and not hasattr(utils.InverseLR, "_saga_official")
            and official_passes_verbose(utils.InverseLR)):
        utils.InverseLR = _compat_inverse_lr(utils.InverseLR)


# ---------------------------------------------------------------- 3. sampler signatures
def sampler_options(sampler: tp.Callable[..., tp.Any]) -> dict[str, tp.Any]:
    """Keyword options for an official sampler beyond ``sigmas`` and ``callback``: no progress bar of its own
    where it takes ``disable_tqdm`` (0.0.19's pingpong does not; extra keywords would reach the model)."""
    return {"disable_tqdm": True} if "disable_tqdm" in inspect.signature(sampler).parameters else {}


# ---------------------------------------------------------------- 4. ARC options of the installed release
if IS_0_0_19:
    ARC_KEYS = ("discriminator", "noise_dist", "ode_warmup", "sampling", "use_model_as_discriminator",
                "use_model_as_teacher")
    ARC_DISCRIMINATOR_KEYS = ("type", "config", "dit_hidden_layer", "contrastive", "include_grad_penalties", "weights")
    ARC_ODE_KEYS = ("warmup_steps", "refresh_rate", "sampling_steps")
else:
    ARC_KEYS = ("discriminator", "noise_dist", "ode_warmup", "use_model_as_discriminator", "use_model_as_teacher",
                "denoiser_loss_t_exponent", "denoiser_loss_weight", "disc_update_interval", "forward_sample_prob",
                "clap_config", "clap_loss_type", "lora")
    ARC_DISCRIMINATOR_KEYS = ("type", "config", "dit_hidden_layer", "contrastive", "contrastive_beta",
                              "disc_hinge_loss", "feature_matching_weight", "freeze_backbone", "grad_penalty_weight",
                              "include_grad_penalties", "include_r2_penalty", "layer_combine_mode",
                              "logit_center_weight", "lora", "reset_every", "weights")
    ARC_ODE_KEYS = ("warmup_steps", "refresh_rate", "sampling_steps", "sampler")
# keys both releases read that name other weights or models: the plugin's ARC takes all from the pretrained model
ARC_WEIGHT_KEYS = ("teacher_model", "teacher_model_ckpt", "teacher_model_config_path", "discriminator_base_model",
                   "discriminator_base_ckpt", "discriminator_base_model_config_path", "reuse_discriminator_as_teacher",
                   "model_self_discriminator")


# ---------------------------------------------------------------- 6. training metrics
def logs_through_lightning() -> bool:
    """True where the official wrapper logs ``train/loss`` with ``self.log`` (progress bar, callback_metrics)."""
    return IS_0_0_19
