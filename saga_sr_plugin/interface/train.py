"""Train SAGA-SR on stable-audio-tools' official DiffusionCondTrainingWrapper (``python train_entry.py``).

Flags mirror the official ``train.py``. With no ``--dataset-config`` the embedded
demo runs: synthetic captioned audio and a tiny local T5 are made under
``demo_assets/`` and the small demo config trains on CPU in minutes. At the end the
EMA weights are exported through the official ``export_model`` (safetensors).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import typing as tp
from pathlib import Path

from .args import DefaultsHelpFormatter, finite, integer

DEFAULT_MODEL_CONFIG = "model_configs/saga_demo_config.json"
DEMO_DATASET_CONFIG = "model_configs/dataset_configs/demo_dataset.json"
DEMO_VAL_DATASET_CONFIG = "model_configs/dataset_configs/demo_val_dataset.json"


# What Lightning's Trainer accepts as ``precision`` (2.1 to 2.6), checked when the flag is read.
PRECISIONS = ("32", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64", "64-true", "16", "bf16",
              "transformer-engine", "transformer-engine-float16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    p.add_argument("--model-config", default=DEFAULT_MODEL_CONFIG)
    p.add_argument("--dataset-config", default=None, help="official audio_dir dataset config; default: the demo set")
    p.add_argument("--val-dataset-config", default=None)
    p.add_argument("--save-dir", default="runs")
    p.add_argument("--name", default="saga_sr")
    p.add_argument("--project", default="saga-sr", help="W&B project")
    p.add_argument("--ckpt-path", default=None, help="resume from this Lightning checkpoint")
    p.add_argument("--pretrained-ckpt-path", default=None, help="initialise from exported/ckpt weights")
    p.add_argument("--allow-config-mismatch", action="store_true",
                   help="start from --pretrained-ckpt-path weights exported with another model config (refused otherwise)")
    p.add_argument("--pretransform-ckpt-path", default=None, help="VAE weights (else model.pretransform.pretransform_ckpt_path)")
    p.add_argument("--remove-pretransform-weight-norm", default="", choices=["", "pre_load", "post_load"])
    p.add_argument("--batch-size", type=integer(1), default=4, help="per device")
    p.add_argument("--num-workers", type=integer(1), default=2)
    p.add_argument("--precision", default="32", choices=PRECISIONS, metavar="PRECISION",
                   help=f"Lightning precision: {', '.join(PRECISIONS)}")
    p.add_argument("--accum-batches", type=integer(1), default=None,
                   help="gradient accumulation; default: training.effective_batch_size / (batch x devices x nodes) "
                        "when the model config sets it, else 1")
    p.add_argument("--strategy", default="auto", help="auto, ddp, ddp_find_unused, deepspeed, fsdp (0.0.20, GPUs), or any Lightning strategy name")
    p.add_argument("--accelerator", default="auto", help="auto picks the GPU when there is one, else the CPU")
    p.add_argument("--devices", "--num-gpus", dest="devices", default="auto")
    p.add_argument("--num-nodes", type=integer(1), default=1)
    p.add_argument("--checkpoint-every", type=integer(1), default=10000)
    p.add_argument("--val-every", type=integer(1), default=None, help="validation interval in steps")
    p.add_argument("--max-steps", type=integer(1), default=None, help="default: training.max_steps of the model config")
    p.add_argument("--max-time", default=None, help="stop after this wall time, DD:HH:MM:SS (Lightning max_time)")
    p.add_argument("--gradient-clip-val", type=finite(minimum=0.0), default=0.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--logger", default="none", choices=["none", "wandb", "csv"],
                   help="wandb (offline: WANDB_MODE=offline), or Lightning's CSVLogger (SAVE_DIR/NAME/csv/metrics.csv)")
    p.add_argument("--demo-dir", default=None,
                   help="folder of high-res clips for SR demos and validation LSD (demo default: the demo's val split)")
    p.add_argument("--demo-every", type=integer(0), default=250, help="SR demo / validation LSD interval in steps (0: off)")
    p.add_argument("--demo-count", type=integer(1), default=3, help="clips used for the SR demos")
    p.add_argument("--demo-steps", type=integer(1), default=None,
                   help="sampler steps for the demos, the final one included (config default)")
    p.add_argument("--no-final-demo", action="store_true",
                   help="skip the SR demos written after the export (e.g. for a short resume)")
    p.add_argument("--export", default=None, help="exported EMA weights; default SAVE_DIR/NAME/model.safetensors")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--export-on-interrupt", action="store_true",
                   help="after Ctrl-C, also export the partial model (default: only save a resumable checkpoint)")
    return p.parse_args(argv)


def fail(message: str) -> tp.NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


class TrainingRun(tp.NamedTuple):
    """What a run leaves behind, for callers (tests, notebooks) that want to look at it."""

    trainer: tp.Any
    wrapper: tp.Any
    export_path: Path | None


def main(argv: list[str] | None = None) -> TrainingRun:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import pytorch_lightning as pl
    from ..models.weights import CheckpointError
    from ..training.export import export_model
    from ..configs import ConfigError, load_json, resolve_local_paths
    from ..data.demo_assets import ensure_demo_assets
    from ..training import assembly

    run_dir = Path(args.save_dir) / args.name
    try:
        # relative local paths (the T5 folder, VAE weights) beside the config first, then the working directory
        model_config = resolve_local_paths(load_json(args.model_config, "model config"),
                                           Path(args.model_config).resolve().parent)
        if args.dataset_config is None:
            demo_root = ensure_demo_assets()
            args.dataset_config = DEMO_DATASET_CONFIG
            args.demo_dir = args.demo_dir or str(demo_root / "audio" / "val")
            args.val_dataset_config = args.val_dataset_config or DEMO_VAL_DATASET_CONFIG
            args.val_every = args.val_every or 100
        dataset_config = load_json(args.dataset_config, "dataset config")
        assembly.check_strategy(args.strategy, args.accelerator)
        assembly.lora.check_lora_block(model_config, args.model_config, args.pretrained_ckpt_path, args.ckpt_path)

        pl.seed_everything(args.seed + int(os.environ.get("SLURM_PROCID", 0)), workers=True)
        train_dl = assembly.build_dataloader(dataset_config, args.dataset_config, model_config,
                                             args.batch_size, args.num_workers)
        val_dl = None
        if args.val_dataset_config:
            val_config = load_json(args.val_dataset_config, "validation dataset config")
            val_dl = assembly.build_dataloader(val_config, args.val_dataset_config, model_config,
                                               args.batch_size, args.num_workers, shuffle=False)
        model = assembly.build_model(model_config, args.model_config, args.pretrained_ckpt_path,
                                     args.pretransform_ckpt_path, args.remove_pretransform_weight_norm,
                                     args.allow_config_mismatch)
        wrapper = assembly.build_training_wrapper(model_config, model, args.model_config, args.pretrained_ckpt_path)
        if assembly.lora.lora_block(model_config) is not None:
            trained, total = assembly.lora.trainable_parameters(wrapper.diffusion)
            print(f"LoRA: {trained:,} of {total:,} parameters train ({100 * trained / total:.2f} %); EMA is off "
                  "(the official wrapper's choice for LoRA)")
        if args.ckpt_path:
            assembly.check_resume_checkpoint(args.ckpt_path, wrapper, args.model_config)
        strategy, strategy_callbacks = assembly.make_strategy(args.strategy, wrapper, args.accelerator, args.precision)
        if args.gradient_clip_val and assembly.arc.is_arc(model_config):
            raise ConfigError(f"{args.model_config}: ARC post-training steps its optimisers by hand and Lightning "
                              "cannot clip for it: drop --gradient-clip-val and set training.clip_grad_norm instead")
    except (ConfigError, CheckpointError, FileNotFoundError, OSError) as err:
        fail(str(err))

    logger = False
    if args.logger == "wandb":
        from pytorch_lightning.loggers import WandbLogger
        run_dir.mkdir(parents=True, exist_ok=True)  # wandb falls back to /tmp if its dir does not exist yet
        logger = WandbLogger(project=args.project, name=args.name, save_dir=str(run_dir))
        logger.experiment.config.update({"model_config": model_config, "dataset_config": dataset_config,
                                         "args": vars(args)}, allow_val_change=True)
    elif args.logger == "csv":
        from pytorch_lightning.loggers import CSVLogger
        logger = CSVLogger(str(run_dir), name="csv", version="")

    max_steps = args.max_steps if args.max_steps is not None else model_config["training"].get("max_steps", -1)
    callbacks = [
        pl.callbacks.ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), every_n_train_steps=args.checkpoint_every,
                                     save_top_k=-1, save_last=True),
        assembly.ModelConfigEmbedder(model_config),
    ]
    callbacks += strategy_callbacks
    interrupt = assembly.InterruptCheckpoint(run_dir / "checkpoints" / "interrupted.ckpt")
    callbacks.append(interrupt)
    demo_callback = None
    if args.demo_dir:
        from ..training.callbacks import SRDemoCallback, load_examples
        from ..data.sidecar import read_captions

        demo_callback = SRDemoCallback(model_config, load_examples(args.demo_dir, args.demo_count,
                                                                   read_captions(args.demo_dir)),
                                       every=args.demo_every, steps=args.demo_steps)
        callbacks.append(demo_callback)
    trainer = pl.Trainer(
        accelerator=args.accelerator, devices=args.devices, num_nodes=args.num_nodes, strategy=strategy,
        precision=args.precision, callbacks=callbacks,
        logger=logger, log_every_n_steps=1, max_steps=max_steps, max_time=args.max_time, max_epochs=-1 if max_steps > 0 else 10_000_000,
        default_root_dir=str(run_dir), gradient_clip_val=args.gradient_clip_val or None,
        val_check_interval=args.val_every if val_dl is not None else None,
        check_val_every_n_epoch=None if val_dl is not None and args.val_every else 1,
        num_sanity_val_steps=0, enable_progress_bar=True,
    )
    cores = os.cpu_count() or 1
    if type(trainer.accelerator).__name__ == "CPUAccelerator" and trainer.num_devices > cores:
        logging.getLogger("saga_sr.training").warning(
            "--devices %s asks for %d CPU processes on %d core(s): they will share the cores and each step will be "
            "slower, not faster; use --devices %d or fewer", args.devices, trainer.num_devices, cores, cores)
    try:
        trainer.accumulate_grad_batches = assembly.gradient_accumulation(
            model_config, args.model_config, args.batch_size, trainer.num_devices * trainer.num_nodes,
            args.accum_batches)
    except ConfigError as err:
        fail(str(err))
    try:
        trainer.fit(wrapper, train_dl, val_dl, ckpt_path=args.ckpt_path)
    except SystemExit:  # Lightning >= 2.2 exits after handling Ctrl-C; the checkpoint is saved by then
        if interrupt.saved is None:
            raise
    if interrupt.interrupted:
        assembly.report_interrupt(interrupt, sys.argv if argv is None else ["train_entry.py", *argv])
        if not args.export_on_interrupt:
            raise SystemExit(130)

    if args.no_export or not trainer.is_global_zero:
        return TrainingRun(trainer, wrapper, None)
    export_path = Path(args.export) if args.export else run_dir / "model.safetensors"
    what = "EMA weights"
    if assembly.lora.lora_block(model_config) is not None:
        adapter = assembly.lora.export_lora(wrapper, export_path.parent)
        print(f"saved the LoRA adapter to {adapter} (the official format); merging it into the model")
        what = "the model with its LoRA merged"
    export_model(wrapper, export_path, model_config, config_source=args.model_config)
    print(f"exported {what} to {export_path} (config beside it: {export_path.with_suffix('.json')})")
    if interrupt.interrupted:
        raise SystemExit(130)
    if demo_callback is not None and not args.no_final_demo:
        from ..training.callbacks import write_examples

        print(f"final SR demos: {demo_callback.describe()} (--no-final-demo skips them, --demo-steps bounds them)",
              flush=True)
        examples = demo_callback.run(trainer, wrapper, progress=True)
        demo_dir = write_examples(examples, run_dir / "demo")
        print(f"SR demos (input / output / reference WAV + spectrogram PNG) in {demo_dir}:")
        print((demo_dir / "README.md").read_text())
    return TrainingRun(trainer, wrapper, export_path)

