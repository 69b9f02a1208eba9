#!/usr/bin/env python
"""Throughput of each stage on 1 process and on 2 (torchrun, or Lightning DDP for training), side by side.

    .venv/bin/python benchmarks/scale.py            # ~10 minutes on a 2-core CPU
    .venv/bin/python benchmarks/scale.py --only caption pre-encode

Each stage runs as its command would (``saga-sr ...`` under ``python -m torch.distributed.run
--nproc-per-node N``; ``train_entry.py --devices N --strategy ddp``) on the same synthetic data
and tiny random models. The rate is the stage's own where the command reports one (captioning,
pre-encoding: files or clips per second from the first file to the last, all ranks); otherwise
(evaluation, sharding) items per wall-clock second including start-up; training is the time per
optimizer step from the difference of two run lengths, so start-up cancels. On a CPU, N processes
share the cores (torchrun gives each one thread), so the number to read is how the work per
process holds up; on GPUs each rank has its own device.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np
import soundfile as sf

STAGES = ("caption", "pre-encode", "evaluate", "shard", "train")


def command(processes: int, *args: str) -> list[str]:
    """``saga-sr ARGS`` as one process, or under torchrun with ``processes`` ranks."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return [*(launch if processes > 1 else [sys.executable]), "-m", "saga_sr_plugin.interface.cli", *args]


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env={**os.environ, "WANDB_MODE": "offline"})
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd[:8])} ...: {out.stderr[-2000:]}")
    return time.perf_counter() - start, out.stdout + out.stderr


def audio_folder(folder: Path, files: int, seconds: float, rate: int = 44100, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        sf.write(folder / f"clip_{i:03d}.wav", (0.2 * rng.standard_normal((int(rate * seconds), 2))).astype(np.float32),
                 rate)
    return folder


def report(stage: str, unit: str, rates: dict[int, float], how: str) -> None:
    one = rates[1]
    for n, rate in rates.items():
        print(f"[{stage}] {n} process(es): {rate:.2f} {unit}/s in all, {rate / n:.2f} per process ({how})"
              + (f"; {rate / one:.2f}x one process" if n > 1 else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES))
    args = p.parse_args()
    from conftest import demo_config
    from saga_sr_plugin.captioning.tiny_model import save_tiny_qwen2_audio
    from saga_sr_plugin.data.demo_assets import save_tiny_t5

    print(f"CPU cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        config = demo_config(str(save_tiny_t5(tmp / "t5")), sample_size=32768)
        (tmp / "model.json").write_text(json.dumps(config))
        if "caption" in args.only:
            qwen = str(save_tiny_qwen2_audio(tmp / "qwen"))
            rates = {}
            for n in (1, 2):
                folder = audio_folder(tmp / f"cap{n}", 48, 6.0)
                _, log = timed(command(n, "caption", str(folder), "--model", qwen, "--device", "cpu",
                                       "--max-new-tokens", "16", "--batch-size", "4",
                                       "--report", str(tmp / f"cap{n}.json")))
                rates[n] = float(re.search(r"\(([\d.]+) files/s", log).group(1))
            report("caption", "files", rates, "48 files of 6 s, tiny Qwen2-Audio, 16 new tokens, the command's rate")
        if "pre-encode" in args.only:
            folder, rates = audio_folder(tmp / "pe", 32, 3.0), {}
            for n in (1, 2):
                timed(command(n, "pre-encode", str(folder), "-o", str(tmp / f"latents{n}"), "--model-config",
                              str(tmp / "model.json"), "-k", "2", "--device", "cpu", "--report", str(tmp / f"pe{n}.json")))
                rates[n] = json.loads((tmp / f"pe{n}.json").read_text())["clips_per_second"]
            report("pre-encode", "clips", rates, "32 files of 3 s, K = 2, demo wavelet VAE; all clips over the "
                                                 "slowest rank's time")
        if "evaluate" in args.only:
            from safetensors.torch import save_file
            from stable_audio_tools.models.factory import create_model_from_config

            save_file(create_model_from_config(config).state_dict(), str(tmp / "model.safetensors"))
            refs, rates = audio_folder(tmp / "refs" / "music", 8, 2.0).parent, {}
            for n in (1, 2):
                seconds, _ = timed(command(n, "evaluate", str(refs), "--model-config", str(tmp / "model.json"),
                                           "--weights", str(tmp / "model.safetensors"), "--steps", "8", "--cutoffs",
                                           "4000", "8000", "--no-visqol", "-o", str(tmp / f"eval{n}"), "--device",
                                           "cpu"))
                rates[n] = 8 / seconds
            report("evaluate", "files", rates, "8 references of 2 s at 2 cut-offs, demo model, 8 steps, no ViSQOL; "
                                               "wall clock with start-up")
        if "shard" in args.only:
            folder = audio_folder(tmp / "sh", 32, 3.0)
            seconds, _ = timed(command(1, "shard", str(folder), "-o", str(tmp / "shards"), "--files-per-shard", "8"))
            report("shard", "files", {1: 32 / seconds}, "32 files of 3 s into 4 tars; one process per corpus, "
                                                        "wall clock with start-up")
        if "train" in args.only:
            from conftest import write_demo_dataset

            dataset, rates = write_demo_dataset(tmp / "train", clips=16, seconds=1.0), {}
            small = demo_config(str(tmp / "t5"), sample_size=8192)
            (tmp / "small.json").write_text(json.dumps(small))
            for n in (1, 2):
                times = {}
                for steps in (4, 16):
                    times[steps], _ = timed([sys.executable, str(ROOT / "train_entry.py"), "--model-config",
                                             str(tmp / "small.json"), "--dataset-config", dataset, "--accelerator",
                                             "cpu", "--devices", str(n), "--strategy", "ddp" if n > 1 else "auto",
                                             "--max-steps", str(steps), "--batch-size", "2", "--num-workers", "1",
                                             "--checkpoint-every", "1000", "--save-dir", str(tmp / f"runs{n}_{steps}"),
                                             "--name", "r", "--no-final-demo", "--logger", "none"], cwd=tmp)
                rates[n] = 2 * n * 12 / (times[16] - times[4])
            report("train", "examples", rates, "demo config, 8192-sample crops, batch 2 per process; steps 5-16")


if __name__ == "__main__":
    main()
