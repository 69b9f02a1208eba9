"""The per-file view and the f_h sweep, on generated results and a tiny model."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import SR

import per_file_view
import rolloff_sweep


def write_rows(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "category", "cutoff_hz", "system", "reference_bandwidth_hz",
                                                "nuwave2/lsd"])
        writer.writeheader()
        writer.writerows(rows)


def test_targets_table_counts_files_worse_than_their_input(tmp_path):
    rows = []
    for name, width, lsd_in, lsd_out in (("music/a.wav", 20000, 3.0, 2.0), ("music/b.wav", 6000, 1.0, 1.5)):
        rows += [{"file": name, "category": "music", "cutoff_hz": 4000, "system": "unprocessed",
                  "reference_bandwidth_hz": width, "nuwave2/lsd": lsd_in},
                 {"file": name, "category": "music", "cutoff_hz": 4000, "system": "sinc",
                  "reference_bandwidth_hz": width, "nuwave2/lsd": 9.0},
                 {"file": name, "category": "music", "cutoff_hz": 4000, "system": "saga-sr",
                  "reference_bandwidth_hz": width, "nuwave2/lsd": lsd_out}]
    write_rows(tmp_path / "a.csv", rows)
    out = tmp_path / "view.png"
    table = per_file_view.main([f"after={tmp_path / 'a.csv'}", "--out", str(out)])
    assert "| after | music | 4 kHz | 2.000 | 1.750 | -12.5 % | +50 % | 1 of 2 |" in table
    assert out.stat().st_size > 5000
    write_rows(tmp_path / "none.csv", rows[:2])
    with pytest.raises(SystemExit, match="no rows of saga-sr"):
        per_file_view.main([f"x={tmp_path / 'none.csv'}", "--out", str(out)])


def test_sweep_measures_the_output_at_each_asked_f_h(demo_model_files, tmp_path):
    config, weights = demo_model_files
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(config, model / "model.json")
    shutil.copy(weights, model / "model.safetensors")
    clips = tmp_path / "val" / "music"
    clips.mkdir(parents=True)
    sf.write(clips / "a.wav", (0.2 * np.random.default_rng(0).standard_normal((SR // 4, 2))).astype(np.float32), SR)
    rows = rolloff_sweep.main(["--model", f"tiny={model}", "--clips", str(tmp_path / "val"), "--rolloffs", "0.3", "0.7",
                               "--cutoffs", "4000", "--steps", "2", "--out", str(tmp_path / "sweep")])
    assert [r["target_rolloff"] for r in rows] == [0.3, 0.7]
    assert all(0 < r["output_rolloff"] < 1 and r["reference_rolloff"] > 0.5 for r in rows)
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 5000
    assert "| tiny | 4 kHz |" in (tmp_path / "sweep" / "sweep.md").read_text()
