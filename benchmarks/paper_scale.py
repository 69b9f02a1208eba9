#!/usr/bin/env python
"""The paper model at full size on a GPU: training steps per precision and one upsampling.

    python benchmarks/paper_scale.py                       # on a CUDA GPU: the paper's sizes
    python benchmarks/paper_scale.py --smoke               # anywhere: tiny sizes, checks the script runs

Full paper config (``model_configs/saga_model_config.json``): DiT 1536 x 24, the Stable
Audio Open VAE architecture and a T5-base-sized encoder, all with random weights and
built locally (nothing is downloaded). For each precision it runs a few training steps
of the official ``DiffusionCondTrainingWrapper`` inside a Lightning fit and prints the
median step time and peak GPU memory; then it upsamples one input at 100 steps with
eq.-4 guidance and prints the real-time factor and peak memory, and the same with the few-step
student's sampling (``model_configs/saga_arc_config.json``'s saga_sr block: pingpong, log-SNR,
8 steps, no guidance; same random weights: the speed, not the quality). A failure is printed
(type, message, the innermost frames) and the run goes on; the exit code is 1 if
anything failed.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import traceback
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch

import saga_sr_plugin  # noqa: F401
from run import describe_comparison, time_inference, training_comparison, training_step_stats

T5_BASE = dict(d_model=768, num_layers=12, num_heads=12, d_kv=64, d_ff=3072)
T5_SMOKE = dict(d_model=768, num_layers=1, num_heads=4, d_kv=16, d_ff=256)


def paper_config(tmp: Path, depth: int, sample_size: int, t5: dict) -> dict:
    from saga_sr_plugin.data.demo_assets import save_tiny_t5

    config = json.loads((ROOT / "model_configs" / "saga_model_config.json").read_text())
    config["model"]["diffusion"]["config"]["depth"] = depth
    config["sample_size"] = sample_size
    t5_dir = save_tiny_t5(tmp / "t5", **t5)
    for entry in config["model"]["conditioning"]["configs"]:
        if entry["type"] == "saga_t5":
            entry["config"]["t5_model_name"] = str(t5_dir)  # dtype stays the config's (float16)
    return config


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "n/a (CPU)"


def report_failure(what: str, err: BaseException) -> None:
    frames = traceback.extract_tb(err.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    print(f"[{what}] ERROR {type(err).__name__}: {err}\n    at {where}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, default=24)
    p.add_argument("--sample-size", type=int, default=262144)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--train-steps", type=int, default=5, help="timed steps per precision (after 2 warm-up steps)")
    p.add_argument("--precisions", nargs="+", default=["32", "16-mixed", "bf16-mixed"])
    p.add_argument("--compare-precision", default="bf16-mixed",
                   help="precision of the on-the-fly vs pre-encoded vs bare-DiT comparison ('none' to skip)")
    p.add_argument("--strategies", nargs="+", default=["auto"],
                   help="also train with these strategies, at the last of --precisions, at world size 1: the memory "
                        "per GPU of ddp against fsdp (fsdp: stable-audio-tools 0.0.20, CUDA)")
    p.add_argument("--upsample-dtypes", nargs="*", default=["bfloat16"], help="none: no upsampling")
    p.add_argument("--upsample-seconds", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--window-batches", type=int, nargs="+", default=[1, 8], help="windows per sampler batch")
    p.add_argument("--upsample-steps", type=int, default=100)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (depth 1, 16384 samples, batch 1, 1-layer T5)")
    args = p.parse_args(argv)
    t5 = T5_BASE
    if args.smoke:
        args.depth, args.sample_size, args.batch_size, args.train_steps = 1, 16384, 1, 1
        args.upsample_seconds, args.upsample_steps, args.window_batches, t5 = [0.5], 2, [1, 2], T5_SMOKE

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device: {name}; torch {torch.__version__}; paper config, DiT depth {args.depth}, "
          f"{args.sample_size} samples, batch {args.batch_size}; random weights", flush=True)
    failures = 0

    def attempt(what: str, fn: tp.Callable[[], str]) -> None:
        nonlocal failures
        try:
            print(f"[{what}] {fn()}", flush=True)
        except Exception as err:  # noqa: BLE001  (report and go on: every case is checked)
            failures += 1
            report_failure(what, err)
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    with tempfile.TemporaryDirectory() as tmp:
        config = paper_config(Path(tmp), args.depth, args.sample_size, t5)

        def step(precision: str, cfg: dict = config, pre_encoded: bool = False) -> tuple[float, int]:
            return training_step_stats(cfg, args.batch_size, args.train_steps, warmup=2, precision=precision,
                                       pre_encoded=pre_encoded)

        for precision in args.precisions:
            attempt(f"train {precision}", lambda precision=precision: _describe(step(precision), args.train_steps))
        for strategy in (s for s in args.strategies if s != "auto"):  # memory per GPU, e.g. FSDP against the above
            attempt(f"train {args.precisions[-1]} {strategy}", lambda strategy=strategy: _describe(
                training_step_stats(config, args.batch_size, args.train_steps, warmup=2,
                                    precision=args.precisions[-1], strategy=strategy), args.train_steps))
        if args.compare_precision != "none":
            def compare() -> str:
                results = training_comparison(config, args.batch_size, args.train_steps, args.compare_precision, 2)
                return "\n    ".join(["steps compared:", *describe_comparison(results)])

            attempt(f"train {args.compare_precision}", compare)
        for dtype in args.upsample_dtypes:
            for seconds in args.upsample_seconds:
                for batch in args.window_batches:
                    def upsample(dtype: str = dtype, seconds: float = seconds, batch: int = batch) -> str:
                        rtf, peak = time_inference(config, seconds, args.upsample_steps, batch, getattr(torch, dtype))
                        return f"{args.upsample_steps} steps: RTF {rtf:.3f}, peak {gib(peak)}"

                    attempt(f"upsample {dtype} {seconds:g} s, {batch} window(s) per batch", upsample)

                    def upsample_student(dtype: str = dtype, seconds: float = seconds, batch: int = batch) -> str:
                        block = json.loads((ROOT / "model_configs" / "saga_arc_config.json").read_text())["saga_sr"]
                        chosen = {k: block[k] for k in ("sampler", "schedule", "guidance_acoustic", "guidance_text")}
                        steps = 2 if args.smoke else block["steps"]
                        rtf, peak = time_inference(config, seconds, steps, batch, getattr(torch, dtype), **chosen)
                        return f"student {chosen['sampler']} {steps} steps, no guidance: RTF {rtf:.3f}, peak {gib(peak)}"

                    attempt(f"upsample {dtype} {seconds:g} s, {batch} window(s) per batch", upsample_student)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


def _describe(stats: tuple[float, int], steps: int) -> str:
    return f"{stats[0] * 1000:.0f} ms/step (median of {steps}), peak {gib(stats[1])}"


if __name__ == "__main__":
    raise SystemExit(main())
