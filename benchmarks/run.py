#!/usr/bin/env python
"""SAGA-SR benchmarks: every ratio is measured side by side in this one run.

    .venv/bin/python benchmarks/run.py            # a few minutes on a 2-core CPU
    .venv/bin/python benchmarks/run.py --quick    # fewer repetitions
    .venv/bin/python benchmarks/run.py --only few-step   # one section (train, guidance, data, inference, memory, few-step, caption)

1. training step: SAGA-SR on the fly vs pre-encoded (the official ``pre_encoded`` switch)
   vs the same DiT through the bare official wrapper (no conditioning), all built by the
   official factories, timed inside a Lightning fit on one repeated batch;
2. guidance: eq. 4 as one batched forward of 3B items vs three sequential forwards;
3. data: low-res simulation + both roll-offs per 5.94 s stereo clip (per filter type);
4. inference: real-time factor of the demo model at 100 steps; 10 s and 60 s inputs with
   windows one at a time vs 8 per batch; peak memory (max RSS of a fresh process) for both;
5. few-step: the paper's sampler (Euler, 100 steps, eq. 4) against an ARC student's
   (``model_configs/saga_real_cpu_arc_config.json``'s saga_sr block: pingpong, linear, 8
   steps, no guidance) on the same weights: DiT passes per window counted, time per window;
6. captioning: captions/s of a tiny random Qwen2-Audio (the pipeline's own cost);
7. LoRA (stable-audio-tools 0.0.20): full fine-tuning (the demo config: AdamW on every weight,
   EMA on) against the shipped LoRA block (``saga_demo_lora_config.json``: rank 8 on the DiT's
   blocks, EMA off as the official wrapper sets it), each in a fresh process: trainable
   parameters, time per step, peak memory; and the trainable parameters of the paper's 1 B
   DiT both ways (built on the meta device: counted, not trained).
Uses the CUDA device when there is one.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np
import torch

import saga_sr_plugin  # noqa: F401


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def demo_config(tmp: Path, sample_size: int = 32768) -> dict:
    from saga_sr_plugin.data.demo_assets import save_tiny_t5

    config = json.loads((ROOT / "model_configs" / "saga_demo_config.json").read_text())
    t5 = tmp / "t5"
    if not t5.exists():
        save_tiny_t5(t5)
    for entry in config["model"]["conditioning"]["configs"]:
        if entry["type"] == "saga_t5":
            entry["config"]["t5_model_name"] = str(t5)
    config["sample_size"] = sample_size
    return config


def bare_config(config: dict) -> dict:
    """The same DiT (width, depth, heads, patch, pretransform) with no conditioning at all."""
    bare = copy.deepcopy(config)
    bare["model"]["conditioning"]["configs"] = []
    diffusion = bare["model"]["diffusion"]
    diffusion.update(cross_attention_cond_ids=[], global_cond_ids=[], input_concat_ids=[])
    for key in ("cond_token_dim", "global_cond_dim", "input_concat_dim"):
        diffusion["config"][key] = 0
    return bare


def time_training(config: dict, batch_size: int, steps: int, warmup: int = 3) -> float:
    return training_step_stats(config, batch_size, steps, warmup)[0]


def training_step_stats(config: dict, batch_size: int, steps: int, warmup: int = 3,
                        precision: str = "32", pre_encoded: bool = False, strategy: str = "auto") -> tuple[float, int]:
    """(median seconds per optimizer step, peak GPU bytes or 0 on CPU) of a Lightning fit on one repeated batch.

    ``pre_encoded``: the official ``training.pre_encoded`` switch, fed what ``saga-sr pre-encode``
    writes (z_h as the batch, z_l in the metadata), encoded once before timing. ``strategy``: as
    ``train_entry.py --strategy`` builds it (``fsdp``: 0.0.20's, at world size 1, on CUDA).
    """
    import pytorch_lightning as pl
    from stable_audio_tools.models.factory import create_model_from_config
    from stable_audio_tools.training.factory import create_training_wrapper_from_config

    torch.manual_seed(0)
    if pre_encoded:
        config = copy.deepcopy(config)
        config["training"]["pre_encoded"] = True
    model = create_model_from_config(config)
    wrapper = create_training_wrapper_from_config(config, model)
    n = config["sample_size"]
    reals, lowres = 0.3 * torch.randn(batch_size, 2, n), 0.3 * torch.randn(batch_size, 2, n)
    mask = torch.ones(n, dtype=torch.bool)
    if pre_encoded:
        with torch.no_grad():
            reals, lowres = model.pretransform.encode(reals), model.pretransform.encode(lowres)
        mask = torch.ones(reals.shape[-1], dtype=torch.bool)
    metadata = [{"prompt": "a bright sawtooth synth note", "rolloff_lr": 0.2, "rolloff_hr": 0.9,
                 "lr_audio": lowres[i], "padding_mask": [mask]} for i in range(batch_size)]
    loader = torch.utils.data.DataLoader([(reals, metadata)] * (steps + warmup), batch_size=None,
                                         collate_fn=lambda b: b)
    times: list[float] = []

    class Timer(pl.Callback):
        def on_train_batch_start(self, *args):
            sync()
            self.t = time.perf_counter()

        def on_train_batch_end(self, *args):
            sync()
            times.append(time.perf_counter() - self.t)

    from saga_sr_plugin.training.assembly import make_strategy

    strategy, strategy_callbacks = make_strategy(strategy, wrapper, "auto", precision)
    trainer = pl.Trainer(accelerator="auto", devices=1, max_steps=steps + warmup, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Timer(), *strategy_callbacks], precision=precision, strategy=strategy)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(wrapper, loader)
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return float(np.median(times[warmup:])), peak


COMPARISON = (  # (name, SAGA-SR conditioning?, pre-encoded?)
    ("bare DiT only (no conditioning, pre-encoded: DiT forward + backward + AdamW + EMA)", False, True),
    ("bare DiT + VAE encode of the batch (no conditioning, audio in)", False, False),
    ("SAGA-SR on the fly (VAE encodes z_h and z_l, T5)", True, False),
    ("SAGA-SR pre-encoded (saga-sr pre-encode data; T5 only)", True, True),
)


def training_comparison(config: dict, batch_size: int, steps: int, precision: str = "32",
                        warmup: int = 3) -> list[tuple[str, float, int]]:
    """The four training steps of COMPARISON, measured one after another in this process."""
    out = []
    for name, saga, pre_encoded in COMPARISON:
        cfg = config if saga else bare_config(config)
        out.append((name, *training_step_stats(cfg, batch_size, steps, warmup, precision, pre_encoded)))
    return out


def describe_comparison(results: list[tuple[str, float, int]]) -> list[str]:
    base = results[0][1]
    return [f"{name}: {t * 1000:.1f} ms/step, {t / base:.2f}x the bare DiT step"
            + (f", peak {peak / 2**30:.1f} GiB" if peak else "") for name, t, peak in results]


def time_guidance(config: dict, steps: int) -> tuple[float, float]:
    from stable_audio_tools.models.factory import create_model_from_config
    from saga_sr_plugin.inference.sampling import make_guided_model, make_sequential_guided_model

    model = create_model_from_config(config).to(device()).eval()
    n = config["sample_size"]
    cond = model.conditioner([{"prompt": "a tone", "rolloff_lr": 0.2, "rolloff_hr": 0.9,
                               "lr_audio": 0.3 * torch.randn(2, n)}], device())
    inputs = model.get_conditioning_inputs(cond)
    zl = inputs["input_concat_cond"]
    null = torch.full_like(zl, -5.0)
    x, t = torch.randn_like(zl), torch.tensor([0.5], device=zl.device)
    result = []
    for make in (make_guided_model, make_sequential_guided_model):
        fn = make(model.model, inputs, null, 1.4, 1.2)
        with torch.no_grad():
            for _ in range(3):
                fn(x, t)
            sync()
            start = time.perf_counter()
            for _ in range(steps):
                fn(x, t)
            sync()
        result.append((time.perf_counter() - start) / steps)
    return result[0], result[1]


def time_simulation(clips: int) -> dict[str, float]:
    from saga_sr_plugin.data.simulation import FILTER_TYPES, SimulationConfig, simulate_low_res

    rng = np.random.default_rng(0)
    out = {}
    for kind in FILTER_TYPES:
        config = SimulationConfig(filter_types=(kind,))
        times = []
        for _ in range(clips):
            audio = torch.from_numpy(0.3 * rng.standard_normal((2, 262144))).float()
            start = time.perf_counter()
            simulate_low_res(audio, rng, config)
            times.append(time.perf_counter() - start)
        out[kind] = float(np.mean(times))
    return out


MEMORY_SNIPPET = """
import resource, sys, torch, json
sys.path.insert(0, {root!r})
import saga_sr_plugin
from saga_sr_plugin.inference.upsampler import Upsampler
from stable_audio_tools.models.factory import create_model_from_config
config = json.load(open({config!r}))
up = Upsampler(create_model_from_config(config), config, device={device!r})
x = 0.3 * torch.randn(2, int({seconds} * 16000))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
up.upsample(x, 16000, caption="", settings=up.settings(steps={steps}, batch_size={batch_size}))
print(json.dumps({{"before_mb": before / 1024, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def peak_memory(config_path: str, seconds: float, steps: int, batch_size: int = 1) -> dict:
    """Max RSS of a fresh process before and after one upsampling (CPU memory; the output buffer included)."""
    code = MEMORY_SNIPPET.format(root=str(ROOT), config=config_path, device=device(), seconds=seconds, steps=steps,
                                 batch_size=batch_size)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_upsampling(config: dict, seconds: float, dtype: torch.dtype = torch.float32,
                     **settings: tp.Any) -> dict[str, float]:
    """One upsampling of ``seconds`` of random stereo at 16 kHz with the demo or paper model (random weights):
    wall seconds, windows, DiT items (counted by a hook on the DiT) and peak GPU bytes (0 on the CPU)."""
    from stable_audio_tools.models.factory import create_model_from_config
    from saga_sr_plugin.inference.upsampler import Upsampler

    torch.manual_seed(0)
    up = Upsampler(create_model_from_config(config).to(dtype), config, device=device(), dtype=dtype)
    chosen = up.settings(**settings)
    x = 0.3 * torch.randn(2, int(seconds * 16000))
    items: list[int] = []
    handle = up.model.model.register_forward_pre_hook(lambda _m, args: items.append(args[0].shape[0]))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    sync()
    start = time.perf_counter()
    up.upsample(x, 16000, caption="", settings=chosen)
    sync()
    elapsed = time.perf_counter() - start
    handle.remove()
    return {"seconds": elapsed, "windows": up.window_count(int(seconds * 44100), chosen), "dit_items": sum(items),
            "peak": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0}


def time_inference(config: dict, seconds: float, steps: int, batch_size: int = 1,
                   dtype: torch.dtype = torch.float32, **settings: tp.Any) -> tuple[float, int]:
    """(real-time factor, peak GPU bytes or 0) of one upsampling with windows ``batch_size`` at a time."""
    run = timed_upsampling(config, seconds, dtype, steps=steps, batch_size=batch_size, **settings)
    return run["seconds"] / seconds, run["peak"]


def time_sampling(config: dict, seconds: float, **settings: tp.Any) -> tuple[float, float]:
    """(seconds per window, DiT passes per window counted by a hook) of one upsampling with these settings."""
    run = timed_upsampling(config, seconds, **settings)
    return run["seconds"] / run["windows"], run["dit_items"] / run["windows"]


def time_captioning(tmp: Path, files: int, batch_size: int) -> float:
    from saga_sr_plugin.captioning.tiny_model import save_tiny_qwen2_audio
    from saga_sr_plugin.captioning.qwen2_audio import Captioner

    captioner = Captioner.load(str(save_tiny_qwen2_audio(tmp / "qwen")), device=device(), max_new_tokens=16)
    items = [(0.2 * torch.randn(2, 44100 * 6), 44100) for _ in range(files)]
    captioner.caption(items[:batch_size])
    start = time.perf_counter()
    for i in range(0, files, batch_size):
        captioner.caption(items[i:i + batch_size])
    return files / (time.perf_counter() - start)


LORA_SNIPPET = """
import json, resource, sys, torch
sys.path[:0] = [{root!r}, {benchmarks!r}]
import run as bench
from saga_sr_plugin.training.lora import trainable_parameters
from stable_audio_tools.models.factory import create_model_from_config
from stable_audio_tools.training.factory import create_training_wrapper_from_config
config = json.load(open({config!r}))
trained, total = trainable_parameters(create_training_wrapper_from_config(config, create_model_from_config(config)).diffusion)
seconds, gpu_peak = bench.training_step_stats(config, {batch_size}, {steps}, warmup=2)
print(json.dumps({{"trainable": trained, "total": total, "seconds": seconds, "gpu_peak_mb": gpu_peak / 2**20,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def lora_child(config: dict, tmp: Path, name: str, batch_size: int, steps: int) -> dict:
    """A training run of ``config`` in a fresh process (so its peak RSS is its own)."""
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(config))
    code = LORA_SNIPPET.format(root=str(ROOT), benchmarks=str(ROOT / "benchmarks"), config=str(path),
                               batch_size=batch_size, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def paper_dit_lora_counts() -> tuple[int, int]:
    """(all DiT parameters, LoRA parameters) of the paper's DiT with the shipped block, on the meta device."""
    from stable_audio_tools.models.dit import DiffusionTransformer
    from stable_audio_tools.models.lora.model import LoRAParametrization, add_lora
    from functools import partial

    paper = json.loads((ROOT / "model_configs" / "saga_model_config.json").read_text())
    block = json.loads((ROOT / "model_configs" / "saga_demo_lora_config.json").read_text())["training"]["lora_config"]
    with torch.device("meta"):
        dit = DiffusionTransformer(**paper["model"]["diffusion"]["config"])
        total = sum(p.numel() for p in dit.parameters())
        make = {torch.nn.Linear: {"weight": partial(LoRAParametrization.from_linear, rank=block["rank"],
                                                    lora_alpha=block["alpha"], adapter_type=block["adapter_type"])}}
        add_lora(dit, make, include=block["include"])
    adapters = sum(p.numel() for n, p in dit.named_parameters() if "lora" in n)
    return total, adapters


SECTIONS = ("train", "guidance", "data", "inference", "memory", "few-step", "caption", "lora")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run these sections only")
    args = p.parse_args()
    reps = 5 if args.quick else 15
    torch.manual_seed(0)
    print(f"device: {device()}  torch {torch.__version__}  threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = demo_config(tmp)
        config_path = tmp / "demo.json"
        config_path.write_text(json.dumps(config))

        if "train" in args.only:
            steps = training_comparison(config, 4, reps)
            print(f"\n[train] demo DiT, batch 4 x {config['sample_size']} samples:")
            for line in describe_comparison(steps):
                print(f"[train] {line}")

        if "guidance" in args.only:
            batched, sequential = time_guidance(config, reps * 4)
            print(f"[guidance] one {3}-item forward {batched * 1000:.2f} ms/step vs three forwards "
                  f"{sequential * 1000:.2f} ms/step: sequential/batched {sequential / batched:.2f}x")

        if "data" in args.only:
            sim = time_simulation(3 if args.quick else 8)
            print("[data] LR simulation + both roll-offs per 5.94 s stereo clip: "
                  + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sim.items())
                  + f"; mean {np.mean(list(sim.values())) * 1000:.0f} ms")

        if "inference" in args.only:
            rtf = time_inference(config, 10.0, 100)[0]
            print(f"[inference] demo model, 100 steps, 10 s stereo input: real-time factor {rtf:.2f} "
                  f"(processing seconds per audio second)")
            steps = 10 if args.quick else 25
            for seconds in (10.0, 60.0):
                one = time_inference(config, seconds, steps, batch_size=1)[0]
                batched = time_inference(config, seconds, steps, batch_size=8)[0]
                print(f"[windows] {seconds:.0f} s input, {steps} steps: RTF one window at a time {one:.3f}, "
                      f"8 windows per batch {batched:.3f} (per-window cost ratio batched/one {batched / one:.2f})")
        if "memory" in args.only:
            for batch_size in (1, 8):
                m10 = peak_memory(str(config_path), 10, 5, batch_size)
                m60 = peak_memory(str(config_path), 60, 5, batch_size)
                print(f"[memory] batch {batch_size}: peak RSS 10 s input {m10['peak_mb']:.0f} MB, 60 s input "
                      f"{m60['peak_mb']:.0f} MB (model loaded: {m10['before_mb']:.0f} MB); growth beyond the model: "
                      f"{(m10['peak_mb'] - m10['before_mb']):.0f} MB vs {(m60['peak_mb'] - m60['before_mb']):.0f} MB")

        if "few-step" in args.only:
            student = json.loads((ROOT / "model_configs" / "saga_real_cpu_arc_config.json").read_text())["saga_sr"]
            student = {k: student[k] for k in ("sampler", "schedule", "steps", "guidance_acoustic", "guidance_text")}
            t_teacher, nfe_teacher = time_sampling(config, 10.0, steps=100, sampler="euler", schedule="linear_quadratic",
                                                   guidance_acoustic=1.4, guidance_text=1.2)
            t_student, nfe_student = time_sampling(config, 10.0, **student)
            print(f"[few-step] demo model, 10 s input: teacher (euler, 100 steps, eq. 4) {nfe_teacher:.0f} DiT passes and "
                  f"{t_teacher:.3f} s per window; student ({student['sampler']}, {student['steps']} steps, no guidance) "
                  f"{nfe_student:.0f} passes and {t_student:.3f} s per window: NFE ratio teacher/student "
                  f"{nfe_teacher / nfe_student:.1f}x, time ratio {t_teacher / t_student:.1f}x")

        if "caption" in args.only:
            cps = time_captioning(tmp, 8 if args.quick else 16, 4)
            print(f"[caption] tiny random Qwen2-Audio, 6 s clips, batch 4, 16 new tokens: {cps:.2f} captions/s")

        if "lora" in args.only:
            from saga_sr_plugin.compat import FEATURES, RELEASE

            if not FEATURES["lora"]:
                print(f"[lora] skipped: training.lora_config needs stable-audio-tools 0.0.20 (this is {RELEASE})")
            else:
                lora = copy.deepcopy(config)
                shipped = json.loads((ROOT / "model_configs" / "saga_demo_lora_config.json").read_text())["training"]
                lora["training"].update(use_ema=False, lora_config=shipped["lora_config"])
                full, adapted = (lora_child(c, tmp, n, 4, reps) for c, n in ((config, "full"), (lora, "lora")))
                for name, r in (("full fine-tuning (EMA on)", full), ("LoRA rank 8, DiT blocks", adapted)):
                    print(f"[lora] demo model, batch 4 x {config['sample_size']} samples, {name}: {r['trainable']:,} "
                          f"of {r['total']:,} parameters train, {r['seconds'] * 1000:.0f} ms/step, peak RSS "
                          f"{r['peak_mb']:.0f} MB" + (f", peak GPU {r['gpu_peak_mb']:.0f} MB" if r['gpu_peak_mb'] else ""))
                print(f"[lora] LoRA/full: trainable {adapted['trainable'] / full['trainable']:.3f}, peak RSS "
                      f"{adapted['peak_mb'] / full['peak_mb']:.2f}, time per step {adapted['seconds'] / full['seconds']:.2f}")
                total, adapters = paper_dit_lora_counts()
                print(f"[lora] paper DiT (meta device, counted): {total:,} parameters; the shipped block trains "
                      f"{adapters:,} ({100 * adapters / total:.2f} %)")


if __name__ == "__main__":
    main()
