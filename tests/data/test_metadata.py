"""The metadata module through the official audio_dir dataset and dataloader."""
from __future__ import annotations

import json
import logging
import random

import numpy as np
import pytest
import soundfile as sf
import torch
from stable_audio_tools.models.factory import create_model_from_config

from saga_sr_plugin.training import assembly
from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.data.demo_assets import write_split
from saga_sr_plugin.data.sidecar import read_sidecar, sidecar_path, write_sidecar


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "clips"
    write_split(folder, 4, np.random.default_rng(3), 0.5)
    # one clip with no caption, one corrupt file, one file full of NaN
    sf.write(folder / "uncaptioned.wav", np.random.default_rng(0).normal(0, 0.2, (22050, 2)).astype(np.float32), 44100)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    sf.write(folder / "nan.wav", np.full((22050, 2), np.nan, dtype=np.float32), 44100, subtype="FLOAT")
    config = {"dataset_type": "audio_dir", "random_crop": False, "drop_last": False,
              "datasets": [{"id": "t", "path": str(folder), "custom_metadata_module": "saga_sr_plugin.data.metadata"}],
              "saga_sr": {"min_cutoff_hz": 3000, "max_cutoff_hz": 6000}}
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(config))
    return folder, config, str(path)


def test_items_carry_simulated_audio_rolloffs_and_captions(dataset, demo_model_config, caplog):
    folder, config, path = dataset
    captions = {k: v["caption"] for k, v in read_sidecar(sidecar_path(folder)).items()}
    loader = assembly.build_dataloader(config, path, demo_model_config, batch_size=2, num_workers=1)
    ds = loader.dataset
    names = [f.rsplit("/", 1)[-1] for f in ds.filenames]
    with caplog.at_level(logging.WARNING):
        items = {}
        for i, name in enumerate(names):
            audio, info = ds[i]
            items[name] = (audio, info)
    for name, caption in captions.items():
        audio, info = items[name]
        assert info["relpath"] == name and info["prompt"] == caption
        assert info["lr_audio"].shape == audio.shape == (2, demo_model_config["sample_size"])
        assert 0 <= info["rolloff_lr"] < 1 and 0 <= info["rolloff_hr"] < 1
        assert 3000 <= info["lr_cutoff_hz"] <= 6000 and info["lr_filter"] in ("cheby1", "butter", "bessel", "ellip")
        assert isinstance(info["padding_mask"], list) and info["padding_mask"][0].shape == (audio.shape[-1],)
    # the uncaptioned clip gets the text null, with a logged count
    assert items["uncaptioned.wav"][1]["prompt"] == ""
    assert "missing caption (1 so far): uncaptioned.wav" in caplog.text
    # unreadable files are replaced by another clip (official behaviour), counted and logged
    for bad in ("corrupt.wav", "nan.wav"):
        assert items[bad][1]["relpath"] != bad
    assert "unreadable audio file (1 so far)" in caplog.text and "corrupt.wav" in caplog.text
    assert "non-finite audio file (1 so far)" in caplog.text and "nan.wav" in caplog.text


def test_captions_reach_the_text_conditioner_through_the_official_collation(dataset, demo_model_config):
    folder, config, path = dataset
    write_sidecar(sidecar_path(folder), {"clip_000.wav": {"caption": "a bright saw tone"}})
    config["datasets"][0]["path"] = str(folder)
    loader = assembly.build_dataloader(config, path, demo_model_config, batch_size=2, num_workers=1)
    model = create_model_from_config(demo_model_config)
    idx = [f.rsplit("/", 1)[-1] for f in loader.dataset.filenames]
    batch = loader.collate_fn([loader.dataset[idx.index("clip_000.wav")], loader.dataset[idx.index("clip_001.wav")]])
    _, metadata = batch
    assert [m["prompt"] for m in metadata] == ["a bright saw tone", ""]
    embeddings, mask = model.conditioner(metadata, "cpu")["prompt"]
    direct, _ = model.conditioner.conditioners["prompt"](["a bright saw tone"], "cpu")
    assert torch.allclose(embeddings[0], direct[0])
    assert embeddings[0].abs().sum() > 0 and embeddings[1].abs().sum() == 0 and not mask[1].any()


def test_dataset_config_errors_name_the_file_and_the_fix(dataset, demo_model_config):
    folder, config, path = dataset
    del config["datasets"][0]["custom_metadata_module"]
    with pytest.raises(ConfigError, match="dataset.json.*saga_sr_plugin.data.metadata"):
        assembly.build_dataloader(config, path, demo_model_config, batch_size=2, num_workers=1)
    config["datasets"][0]["custom_metadata_module"] = "saga_sr_plugin.data.metadat"
    with pytest.raises(ConfigError, match="neither a file nor an importable module"):
        assembly.build_dataloader(config, path, demo_model_config, batch_size=2, num_workers=1)
    config["datasets"][0]["custom_metadata_module"] = "saga_sr_plugin.data.metadata"
    config["saga_sr"] = {"min_cutof_hz": 1000}
    with pytest.raises(ConfigError, match="dataset.json.*min_cutof_hz"):
        assembly.build_dataloader(config, path, demo_model_config, batch_size=2, num_workers=1)


@pytest.mark.parametrize("old, new", [("saga_sr_plugin.metadata", "data/metadata.py"),
                                      ("saga_sr_plugin.pre_encoded", "data/pre_encoded.py"),
                                      ("/old/venv/site-packages/saga_sr_plugin/metadata.py", "data/metadata.py")])
def test_dataset_configs_of_the_flat_layout_still_load_with_a_note(old, new, caplog):
    from saga_sr_plugin.data.dataset_config import resolve_metadata_module

    with caplog.at_level(logging.INFO, logger="saga_sr.data"):
        resolved = resolve_metadata_module(old, "old_dataset.json")
    assert resolved.replace("\\", "/").endswith(f"saga_sr_plugin/{new}")
    assert "old_dataset.json" in caplog.text and "saga_sr_plugin.data." in caplog.text


def test_the_target_low_pass_reaches_the_official_datasets_target_and_f_h(dataset, demo_model_config):
    """The authors' output_cut_off_freq_range through the official dataset: the batch's target is band-limited and
    f_h says so; the input's cutoff stays under it."""
    from saga_sr_plugin.data.audio_format import SAMPLE_RATE
    from saga_sr_plugin.data.spectral import bandwidth_hz

    folder, config, path = dataset
    config = {**config, "datasets": [{**config["datasets"][0]}],
              "saga_sr": {"min_cutoff_hz": 2000, "max_cutoff_hz": 16000, "target_lowpass_hz": [5000, 5001]}}
    loader = assembly.build_dataloader(config, path, demo_model_config, batch_size=2, num_workers=1)
    random.seed(0)   # the module draws from Python's random, as the official dataset's workers seed it
    for i, name in enumerate(loader.dataset.filenames):
        if name.endswith("clip_000.wav"):
            audio, info = loader.dataset[i]
            break
    assert bandwidth_hz(audio) < 6000   # the demo clips reach 20 kHz
    assert 0.1 < info["rolloff_hr"] < 0.35   # 7.7 kHz: the 98.5 % roll-off can sit in the resampler's leakage
    assert info["lr_cutoff_hz"] <= 0.94 * info["rolloff_hr"] * SAMPLE_RATE / 2 * 1025 / 1024 + 1


def test_the_control_holds_f_h_constant_and_bad_ranges_are_refused():
    from saga_sr_plugin.data.simulation import SimulationConfig, simulate_low_res
    from saga_sr_plugin.data import metadata

    audio = torch.randn(2, 22050) * 0.2
    pair = simulate_low_res(audio, np.random.default_rng(0), SimulationConfig(fixed_target_rolloff=0.6))
    assert pair.rolloff_hr == 0.6
    for bad in ({"target_lowpass_hz": [9000, 3000]}, {"target_lowpass_prob": 1.5}, {"fixed_target_rolloff": 2.0}):
        with pytest.raises(ValueError):
            metadata.configure(bad)
    metadata.configure({})
