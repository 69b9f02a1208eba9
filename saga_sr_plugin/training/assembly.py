"""Training assembly: official dataloader, model factory, training wrapper and Lightning Trainer.

The plugin adds only what the official ``train.py`` (not shipped in the 0.0.19 wheel)
cannot do for SAGA-SR: resolve the metadata module, pass the simulation settings to
the workers, count the unreadable clips the official dataset replaces, pick the accelerator,
export at the end.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import typing as tp
from pathlib import Path

import pytorch_lightning as pl
import soundfile as sf
import torch
from stable_audio_tools.data.dataset import create_dataloader_from_config
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.models.utils import copy_state_dict, remove_weight_norm_from_model
from stable_audio_tools.training.factory import create_training_wrapper_from_config

from ..atomic import atomic_path
from ..compat import FEATURES, RELEASE
from ..configs import ConfigError
from ..data import metadata
from ..data.dataset_config import SHARD_TYPES, resolve_dataset_config
from ..inference.settings import check_saga_sr_block
from ..models.checks import check_model_config
from ..models.loading import load_pretransform_weights
from ..models.weights import check_same_model, check_state_dict_fits, read_checkpoint, read_weights
from . import arc, lora
from .export import embed_config


def count_load_failures(dataset: torch.utils.data.Dataset) -> None:
    """Count and log files the official dataset cannot read.

    The official ``audio_dir`` dataset prints the error and substitutes a random other
    clip; this wrapper around its ``load_file`` adds a running count (per worker) under
    ``metadata.counters["unreadable audio file"]`` so the loss of data is visible.
    """
    load_file = getattr(dataset, "load_file", None)
    if load_file is None or getattr(load_file, "_saga_counting", False):
        return

    def counting_load_file(filename: str) -> torch.Tensor:
        try:
            audio = load_file(filename)
        except Exception as err:
            metadata.count("unreadable audio file", f"{filename}: {err}")
            raise
        if not torch.isfinite(audio).all():
            metadata.count("non-finite audio file", filename)
            raise ValueError(f"{filename} contains NaN or inf samples")
        return audio

    counting_load_file._saga_counting = True  # type: ignore[attr-defined]
    dataset.load_file = counting_load_file


def build_dataloader(dataset_config: dict, source: str, model_config: dict, batch_size: int,
                     num_workers: int, shuffle: bool = True) -> torch.utils.data.DataLoader:
    if num_workers < 1:
        raise ConfigError("--num-workers must be at least 1 (the official dataloader uses persistent workers)")
    pre_encoded = bool(model_config.get("training", {}).get("pre_encoded", False))
    resolved = resolve_dataset_config(dataset_config, source, pre_encoded)
    if pre_encoded:
        check_pre_encoded_data(resolved, source, model_config)
    try:
        metadata.configure(dataset_config.get("saga_sr"))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: bad \"saga_sr\" simulation block: {err}") from err
    empty = ConfigError(f"{source}: no {'pre-encoded clips (.npy)' if pre_encoded else 'audio files'} found under "
                        f"{[d['path'] for d in resolved['datasets']]}")
    try:
        loader = create_dataloader_from_config(
            resolved, batch_size=batch_size, num_workers=num_workers, shuffle=shuffle,
            sample_rate=model_config["sample_rate"], sample_size=model_config["sample_size"],
            audio_channels=model_config.get("audio_channels", 2),
        )
    except ValueError as err:  # torch's RandomSampler refuses an empty dataset before we can count it
        if "num_samples should be a positive integer" in str(err):
            raise empty from err
        raise
    if resolved["dataset_type"] in SHARD_TYPES:
        return loader  # a stream of shards: no length, no file list; bad samples are the metadata module's counts
    n = len(loader.dataset)
    if n == 0:
        raise empty
    if not pre_encoded:
        probe_readable(loader.dataset.filenames, source)
    if loader.drop_last and n < batch_size:
        raise ConfigError(f"{source}: {n} clips is fewer than --batch-size {batch_size} with drop_last; "
                          "lower the batch size or set \"drop_last\": false")
    count_load_failures(loader.dataset)
    return loader


def probe_readable(filenames: tp.Sequence[str], source: str, probes: int = 16) -> None:
    """Read the header and first frames of up to ``probes`` files spread over the list.

    The official dataset replaces an unreadable file by a random other one, recursively:
    on a set where nothing reads, that is thousands of printed errors and a RecursionError.
    Here all probes failing stops the run in one line; some failing is a counted warning
    (training goes on; the running count is ``metadata.counters``).
    """
    picked = [filenames[round(i * (len(filenames) - 1) / max(probes - 1, 1))] for i in range(min(probes, len(filenames)))]
    picked = list(dict.fromkeys(picked))
    failed = []
    for name in picked:
        try:
            sf.read(name, frames=1024, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as err:
            failed.append(f"{name} ({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__})")
    if failed and len(failed) == len(picked):
        raise ConfigError(f"{source}: none of the {len(picked)} files probed (of {len(filenames)}) could be read as "
                          f"audio, e.g. {'; '.join(failed[:3])}: check the dataset folder and the files' format")
    for failure in failed:
        metadata.count("unreadable audio file", failure)


def check_pre_encoded_data(dataset_config: dict, source: str, model_config: dict) -> None:
    """The first clip's JSON must match the model's clip length: a mismatch fails here, not in the DiT."""
    for entry in dataset_config["datasets"]:
        first = next(Path(entry["path"]).rglob("*.json"), None)
        if first is None:
            continue
        info = json.loads(first.read_text())
        if info.get("sample_size") != model_config["sample_size"] or "rolloff_lr" not in info:
            raise ConfigError(f"{source}: {first} was pre-encoded for sample_size {info.get('sample_size')}, the model "
                              f"config has {model_config['sample_size']} (or it is not SAGA-SR data): pre-encode "
                              "again with this model config")


def build_model(model_config: dict, source: str, pretrained_ckpt_path: str | None = None,
                pretransform_ckpt_path: str | None = None,
                remove_pretransform_weight_norm: str = "", allow_config_mismatch: bool = False) -> torch.nn.Module:
    """The official factory's model; ``pretrained_ckpt_path`` must come from the same model config
    (``models.weights.check_same_model``) unless ``allow_config_mismatch``."""
    check_model_config(model_config, source)
    check_saga_sr_block(model_config.get("saga_sr", {}), source)
    if arc.is_arc(model_config):
        arc.check_arc_config(model_config, source)
        if not pretrained_ckpt_path:
            raise ConfigError(f"{source}: training.arc post-trains a trained SAGA-SR model: pass its exported weights "
                              "with --pretrained-ckpt-path (the student, the teacher and the discriminator's base all "
                              "start from them)")
    if pretrained_ckpt_path:
        if not os.path.isfile(pretrained_ckpt_path):
            raise FileNotFoundError(f"--pretrained-ckpt-path not found: {pretrained_ckpt_path}")
        check_same_model(pretrained_ckpt_path, model_config, source, allow_config_mismatch)
    model = create_model_from_config(model_config)
    if pretrained_ckpt_path:
        copy_state_dict(model, read_weights(pretrained_ckpt_path))
    if remove_pretransform_weight_norm == "pre_load":
        remove_weight_norm_from_model(model.pretransform)
    load_pretransform_weights(model.pretransform, model_config, source, pretransform_ckpt_path)
    if remove_pretransform_weight_norm == "post_load":
        remove_weight_norm_from_model(model.pretransform)
    return model


def build_training_wrapper(model_config: dict, model: torch.nn.Module, source: str = "model config",
                           pretrained_ckpt_path: str | None = None) -> pl.LightningModule:
    """The official factory's wrapper: ``DiffusionCondTrainingWrapper``, or ``ARCTrainingWrapper`` when the config
    has ``training.arc`` (its teacher and discriminator from ``pretrained_ckpt_path``: ``training.arc``)."""
    if arc.is_arc(model_config):
        if not pretrained_ckpt_path:
            raise ConfigError(f"{source}: training.arc needs --pretrained-ckpt-path (the model to post-train)")
        return arc.build_arc_wrapper(model_config, model, source, read_weights(pretrained_ckpt_path),
                                     pretrained_ckpt_path)
    if lora.lora_block(model_config) is not None:
        require_release("lora", f"{source}: training.lora_config (LoRA fine-tuning)",
                        "on this stack fine-tune the whole model (drop training.lora_config)")
    return create_training_wrapper_from_config(model_config, model)


class ModelConfigEmbedder(pl.Callback):
    """Keeps the model config inside every Lightning checkpoint."""

    def __init__(self, model_config: dict):
        self.model_config = model_config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        embed_config(checkpoint, self.model_config)


def check_resume_checkpoint(ckpt_path: str, wrapper: pl.LightningModule, model_source: str) -> None:
    if not os.path.isfile(ckpt_path):
        raise ConfigError(f"--ckpt-path not found: {ckpt_path}")
    state = read_checkpoint(ckpt_path).get("state_dict", {})
    check_state_dict_fits(wrapper, state, ckpt_path, model_source)


# What the official train.py (0.0.20) gives its FSDP strategy; the precision comes from --precision.
FSDP_OPTIONS = {"sharding_strategy": "FULL_SHARD", "limit_all_gathers": True, "use_orig_params": True}


def require_release(feature: str, what: str, instead: str) -> None:
    """A one-line error when ``feature`` is only in stable-audio-tools 0.0.20 and this is 0.0.19."""
    if not FEATURES[feature]:
        raise ConfigError(f"{what} needs stable-audio-tools 0.0.20 (this is {RELEASE}): install the 0.0.20 stack "
                          f"(Python 3.10, docs/INSTALL.md); {instead}")


def check_strategy(name: str, accelerator: str = "auto") -> None:
    """What can be said before a model is built: FSDP needs 0.0.20 and a CUDA GPU."""
    if name == "fsdp":
        require_release("fsdp_ema", "--strategy fsdp (FSDP with the official FSDP-aware EMA)",
                        "on this stack use --strategy ddp or deepspeed")
        if accelerator == "cpu" or not torch.cuda.is_available():
            raise ConfigError("--strategy fsdp runs on CUDA GPUs only (Lightning's FSDP strategy refuses other "
                              "accelerators): on the CPU use --strategy ddp")


def make_strategy(name: str, wrapper: pl.LightningModule | None = None, accelerator: str = "auto",
                  precision: str | None = None) -> tuple[tp.Any, list[pl.Callback]]:
    """Lightning's own strategies and the callbacks they need. 'deepspeed' gets the official train.py's
    stage-2 settings; 'fsdp' is 0.0.20's FSDP strategy with its pre-wrap callback, which shards the
    DiT's transformer blocks and keeps the EMA whole on every rank (its FSDP-aware update)."""
    if name == "deepspeed":
        try:
            from pytorch_lightning.strategies import DeepSpeedStrategy
            return DeepSpeedStrategy(stage=2, contiguous_gradients=True, overlap_comm=True, reduce_scatter=True,
                                     reduce_bucket_size=5e8, allgather_bucket_size=5e8, load_full_weights=True), []
        except (ImportError, RuntimeError, pl.utilities.exceptions.MisconfigurationException) as err:
            raise ConfigError(f"--strategy deepspeed needs the deepspeed package (pip install deepspeed): {err}") from err
    if name == "ddp_find_unused":
        from pytorch_lightning.strategies import DDPStrategy
        return DDPStrategy(find_unused_parameters=True), []
    if name == "fsdp":
        check_strategy(name, accelerator)
        if wrapper is None:
            raise ValueError("--strategy fsdp needs the training wrapper it shards")
        from stable_audio_tools.training.fsdp import create_fsdp_strategy_and_callback

        strategy, pre_wrap = create_fsdp_strategy_and_callback(wrapper, precision=precision, **FSDP_OPTIONS)
        return strategy, [pre_wrap]
    return name, []


def gradient_accumulation(model_config: dict, source: str, batch_size: int, world_size: int,
                          explicit: int | None = None) -> int:
    """Accumulation steps that make ``training.effective_batch_size`` (the paper: 256) true.

    effective = per-device batch x devices x nodes x accumulation; an explicit
    ``--accum-batches`` wins (and is reported when it changes the effective batch).
    """
    effective = model_config.get("training", {}).get("effective_batch_size")
    per_step = batch_size * world_size
    if arc.is_arc(model_config):  # manual optimisation: Lightning cannot accumulate for it
        if effective or (explicit or 1) > 1:
            raise ConfigError(f"{source}: ARC post-training (training.arc) steps its two optimisers by hand, which "
                              "Lightning cannot accumulate gradients for: drop training.effective_batch_size and "
                              "--accum-batches, and reach the batch with --batch-size x devices x nodes")
        return 1
    if explicit is not None:
        if explicit < 1:
            raise ConfigError(f"--accum-batches must be at least 1, got {explicit}")
        if effective and explicit * per_step != effective:
            print(f"note: --accum-batches {explicit} gives an effective batch of {explicit * per_step}, "
                  f"not training.effective_batch_size {effective} of {source}")
        return explicit
    if not effective:
        return 1
    if effective % per_step:
        fits = [b for b in range(1, effective + 1) if effective % (b * world_size) == 0][-4:]
        raise ConfigError(f"{source}: training.effective_batch_size {effective} is not a multiple of --batch-size "
                          f"{batch_size} x {world_size} device(s) = {per_step}; use a batch size in {fits} (or "
                          "pass --accum-batches to override)")
    accumulation = effective // per_step
    print(f"effective batch {effective} = batch {batch_size} x {world_size} device(s) x {accumulation} accumulated "
          f"step(s) (training.effective_batch_size of {source})")
    return accumulation


class InterruptCheckpoint(pl.Callback):
    """On Ctrl-C, save a resumable Lightning checkpoint before Lightning shuts the run down."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.interrupted = False
        self.saved: Path | None = None
        self.step = 0

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt):
            return
        self.interrupted, self.step = True, trainer.global_step
        with atomic_path(self.path) as tmp:
            trainer.save_checkpoint(str(tmp))
        self.saved = self.path


def report_interrupt(interrupt: InterruptCheckpoint, argv: list[str]) -> None:
    """Tell the user where the run stopped and the exact command that resumes it."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning >= 2.2 leaves Ctrl-C ignored
    args = list(argv)
    if "--ckpt-path" in args:
        i = args.index("--ckpt-path")
        del args[i:i + 2]
    command = " ".join(shlex.quote(a) for a in [sys.executable, *args, "--ckpt-path", str(interrupt.saved)])
    print(f"\ninterrupted at step {interrupt.step}; resumable checkpoint: {interrupt.saved}\n"
          f"resume with:\n  {command}", file=sys.stderr)
