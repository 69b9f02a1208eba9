"""train_entry.py on bad input: one line naming the problem, before any step (and before the log floods)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import one_line_error

from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.data import metadata
from saga_sr_plugin.training import assembly


def dataset_file(tmp_path, folder) -> str:
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"dataset_type": "audio_dir", "random_crop": True, "datasets": [
        {"id": "d", "path": str(folder), "custom_metadata_module": "saga_sr_plugin.data.metadata"}]}))
    return str(path)


def train(*args: str):
    from saga_sr_plugin.interface import train as train_entry

    return train_entry.main(["--batch-size", "2", "--num-workers", "1", "--max-steps", "1", *args])


def test_a_training_set_of_only_corrupt_files_stops_in_one_line(tmp_path, demo_config_file, capsys):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for i in range(40):
        (folder / f"c{i:02d}.wav").write_bytes(np.random.default_rng(i).bytes(3000))
    with pytest.raises(SystemExit) as exit_:
        train("--model-config", demo_config_file, "--dataset-config", dataset_file(tmp_path, folder),
              "--save-dir", str(tmp_path / "runs"))
    captured = capsys.readouterr()
    line = one_line_error(captured.err)
    assert exit_.value.code == 2 and "none of the 16 files probed (of 40) could be read" in line
    assert "corrupt/c" in line and "Format not recognised" in line and len((captured.out + captured.err).splitlines()) < 30


def test_some_corrupt_files_are_counted_and_training_goes_on(tmp_path, demo_model_config):
    from saga_sr_plugin.data.demo_assets import write_split

    folder = tmp_path / "mixed"
    write_split(folder, 6, np.random.default_rng(0), 0.5)
    (folder / "broken.wav").write_bytes(b"RIFF....not audio")
    before = metadata.counters["unreadable audio file"]
    config = json.loads(open(dataset_file(tmp_path, folder)).read())
    loader = assembly.build_dataloader(config, "dataset.json", demo_model_config, batch_size=2, num_workers=1)
    assert len(loader.dataset) == 7 and metadata.counters["unreadable audio file"] == before + 1


def test_an_empty_training_folder_is_one_line(tmp_path, demo_config_file, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_:
        train("--model-config", demo_config_file, "--dataset-config", dataset_file(tmp_path, tmp_path / "empty"),
              "--save-dir", str(tmp_path / "runs"))
    line = one_line_error(capsys.readouterr().err)
    assert exit_.value.code == 2 and "dataset.json: no audio files found under" in line and "empty" in line


def test_a_model_config_that_is_a_json_array_is_one_line(tmp_path, dataset_config, capsys):
    path = tmp_path / "model.json"
    path.write_text("[]")
    with pytest.raises(SystemExit) as exit_:
        train("--model-config", str(path), "--dataset-config", dataset_config, "--save-dir", str(tmp_path / "r"))
    line = one_line_error(capsys.readouterr().err)
    assert exit_.value.code == 2 and f"model config {path} must hold a JSON object ({{...}}), not a list" in line


@pytest.mark.parametrize("flag, value, message", [
    ("--batch-size", "0", "argument --batch-size: must be at least 1, got 0"),
    ("--precision", "8", "argument --precision: invalid choice: '8'"),
    ("--num-workers", "two", "argument --num-workers: 'two' is not an integer"),
    ("--gradient-clip-val", "nan", "argument --gradient-clip-val: must be a finite number, got nan"),
])
def test_bad_flags_are_refused_when_read(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        train(flag, value)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
