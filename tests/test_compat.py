"""stable-audio-tools 0.0.19 on both supported stacks: the InverseLR and audio-reading repairs."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from stable_audio_tools.data import dataset as sat_dataset
from stable_audio_tools.training import utils as sat_utils

from saga_sr_plugin import compat

from saga_sr_plugin.training import assembly
from conftest import demo_config

INVERSE_LR = {"type": "InverseLR", "config": {"inv_gamma": 1000, "power": 0.5, "warmup": 0.9}}


def closed_form(step: int, base: float = 1e-3, inv_gamma: float = 1000, power: float = 0.5, warmup: float = 0.9):
    return (1 - warmup ** (step + 1)) * base * (1 + step / inv_gamma) ** -power


def run_scheduler(make) -> list[float]:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1e-3)
    scheduler = make(optimizer)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(5):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def test_official_inverse_lr_runs_on_this_torch():
    """The paper's scheduler through the official factory; on torch >= 2.7 this needs the repair."""
    lrs = run_scheduler(lambda opt: sat_utils.create_scheduler_from_config(INVERSE_LR, opt))
    assert lrs == pytest.approx([closed_form(i) for i in range(6)], rel=1e-9)
    official = getattr(sat_utils.InverseLR, "_saga_official", sat_utils.InverseLR)
    if not compat.scheduler_takes_verbose() and compat.official_passes_verbose(official):
        assert sat_utils.InverseLR.__module__ == compat.__name__
    else:
        assert sat_utils.InverseLR is official   # nothing to repair (0.0.20's no longer passes verbose)


def test_the_repaired_inverse_lr_keeps_the_official_schedule_and_state():
    """The class used where torch has no ``verbose`` and the release passes it, checked on every stack that has it."""
    official = getattr(sat_utils.InverseLR, "_saga_official", sat_utils.InverseLR)
    if not compat.official_passes_verbose(official):
        pytest.skip("this release's InverseLR passes no verbose: nothing to repair")
    repaired = compat._compat_inverse_lr(official)
    lrs = run_scheduler(lambda opt: repaired(opt, **INVERSE_LR["config"], verbose=False))
    assert lrs == pytest.approx([closed_form(i) for i in range(6)], rel=1e-9)
    assert repaired.get_lr is official.get_lr and issubclass(repaired, official)

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1e-3)
    scheduler = repaired(optimizer, **INVERSE_LR["config"])
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    assert state["last_epoch"] == 3 and state["inv_gamma"] == 1000


def test_install_is_idempotent():
    before_reader, before_scheduler = sat_dataset.torchaudio, sat_utils.InverseLR
    compat.install()
    compat.install()
    assert sat_dataset.torchaudio is before_reader and sat_utils.InverseLR is before_scheduler
    assert isinstance(sat_dataset.torchaudio, compat._SoundfileTorchaudio)
    assert sat_dataset.torchaudio.transforms is torchaudio.transforms  # everything else is torchaudio's own


@pytest.fixture
def no_torchaudio_load(monkeypatch):
    """torchaudio >= 2.9 without TorchCodec/FFmpeg: its load cannot read anything."""
    def unavailable(*args, **kwargs):
        raise ImportError("TorchCodec is required for load")

    monkeypatch.setattr(torchaudio, "load", unavailable)


@pytest.mark.parametrize("suffix, rate", [(".wav", 44100), (".flac", 22050), (".ogg", 48000), (".mp3", 44100)])
def test_official_dataset_reads_audio_without_torchaudio_load(tmp_path, no_torchaudio_load, tiny_t5, suffix, rate):
    folder = tmp_path / "clips"
    folder.mkdir()
    t = np.arange(int(0.5 * rate)) / rate
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1)
    sf.write(str(folder / f"a{suffix}"), stereo, rate)
    config = {"dataset_type": "audio_dir", "random_crop": False, "drop_last": False,
              "datasets": [{"id": "x", "path": str(folder), "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}
    loader = assembly.build_dataloader(config, "ds.json", demo_config(tiny_t5), batch_size=1, num_workers=1)
    audio = loader.dataset.load_file(str(folder / f"a{suffix}"))  # the official load_file, resampling included
    assert audio.shape[0] == 2 and abs(audio.shape[-1] - 0.5 * 44100) < 0.02 * 44100
    spectrum = torch.fft.rfft(audio[0].double()).abs()
    assert abs(int(spectrum.argmax()) / 0.5 * (audio.shape[-1] / 44100 / 0.5) - 440) < 10  # 440 Hz stays 440 Hz


def test_official_webdataset_decoder_reads_bytes(no_torchaudio_load):
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((100, 2), dtype=np.float32), 16000, format="WAV")
    audio, rate = sat_dataset.audio_decoder("x.wav", buffer.getvalue())
    assert rate == 16000 and audio.shape == (2, 100)


def test_unreadable_file_error_names_the_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(RuntimeError, match="broken.wav"):
        compat.soundfile_load(bad)
