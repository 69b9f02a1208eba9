"""Shared fixtures: tiny local models and small configs, all built on CPU inside the tests."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import saga_sr_plugin  # noqa: F401  registers the conditioners
from saga_sr_plugin.data.demo_assets import save_tiny_t5

ROOT = Path(__file__).resolve().parents[1]
SR = 44100


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> str:
    return str(save_tiny_t5(tmp_path_factory.mktemp("tiny_t5")))


def demo_config(t5_path: str, sample_size: int = 8192, name: str = "saga_demo_config.json") -> dict:
    config = json.loads((ROOT / "model_configs" / name).read_text())
    for entry in config["model"]["conditioning"]["configs"]:
        if entry["type"] == "saga_t5":
            entry["config"]["t5_model_name"] = t5_path
    config["sample_size"] = sample_size
    config["training"]["log_every_n_steps"] = 1   # 0.0.20 writes metrics to the loggers every N steps (compat, item 6)
    return config


@pytest.fixture(scope="session")
def demo_model_files(tmp_path_factory) -> tuple[str, str]:
    """(config, weights) of a randomly initialised demo model (8192-sample windows), saved once."""
    from safetensors.torch import save_file
    from stable_audio_tools.models.factory import create_model_from_config

    root = tmp_path_factory.mktemp("model")
    config = demo_config(str(save_tiny_t5(root / "t5")), sample_size=8192)
    torch.manual_seed(0)
    save_file(create_model_from_config(config).state_dict(), str(root / "model.safetensors"))
    (root / "model.json").write_text(json.dumps(config))
    return str(root / "model.json"), str(root / "model.safetensors")


@pytest.fixture
def demo_model_config(tiny_t5) -> dict:
    return demo_config(tiny_t5)


@pytest.fixture
def demo_config_file(tmp_path, demo_model_config) -> str:
    path = tmp_path / "model_config.json"
    path.write_text(json.dumps(demo_model_config))
    return str(path)


def sine(freq: float, seconds: float = 1.0, channels: int = 2, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    return (amp * torch.sin(2 * torch.pi * freq * t)).repeat(channels, 1)


def lowpassed(x: torch.Tensor, cutoff_hz: float) -> torch.Tensor:
    """Brick-wall low-pass (FFT bins above ``cutoff_hz`` zeroed), same length."""
    spec = torch.fft.rfft(x)
    spec[..., torch.fft.rfftfreq(x.shape[-1], 1 / SR) > cutoff_hz] = 0
    return torch.fft.irfft(spec, n=x.shape[-1])


def white_noise(seconds: float = 1.0, channels: int = 2, seed: int = 0, amp: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return amp * torch.randn(channels, int(seconds * SR), generator=g)


def copy_config(config: dict) -> dict:
    return copy.deepcopy(config)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def write_demo_dataset(root: Path, clips: int = 4, seed: int = 3, seconds: float = 0.5) -> str:
    """``clips`` captioned demo clips under ``root/clips`` and an official ``audio_dir`` dataset config for them."""
    from saga_sr_plugin.data.demo_assets import write_split

    write_split(root / "clips", clips, np.random.default_rng(seed), seconds)
    path = root / "dataset.json"
    path.write_text(json.dumps({"dataset_type": "audio_dir", "random_crop": True, "drop_last": True,
                                "datasets": [{"id": "d", "path": str(root / "clips"),
                                              "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}))
    return str(path)


@pytest.fixture(scope="module")
def dataset_config(tmp_path_factory) -> str:
    """Four 0.5 s demo clips through the official dataset config (one set per test module)."""
    return write_demo_dataset(tmp_path_factory.mktemp("data"))


# ---------------------------------------------------------------- shared by several test folders
@pytest.fixture(scope="module")
def dataset(dataset_config) -> str:
    return dataset_config


@pytest.fixture
def config_file(tmp_path, tiny_t5) -> str:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(demo_config(tiny_t5, sample_size=8192)))
    return str(path)


def logged(run_dir: Path, key: str = "train/loss") -> list[float]:
    """The values of ``key`` a run with ``--logger csv`` wrote (both releases log there; only 0.0.19 also fills
    Lightning's ``callback_metrics``)."""
    import csv

    with open(Path(run_dir) / "csv" / "metrics.csv") as f:
        return [float(row[key]) for row in csv.DictReader(f) if row.get(key)]


def one_line_error(err: str) -> str:
    """The single ``error:`` line a command printed instead of a traceback (progress bars may precede it)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run_train(config: str, dataset: str, out: Path, *extra: str):
    from saga_sr_plugin.interface import train as train_entry

    return train_entry.main(["--model-config", config, "--dataset-config", dataset, "--save-dir", str(out),
                             "--name", "r", "--batch-size", "2", "--num-workers", "1", "--checkpoint-every", "1000",
                             *extra])


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_ckpt(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, path)
    return path, marker
