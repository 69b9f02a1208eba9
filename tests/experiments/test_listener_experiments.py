"""The experiments of issue 25 on generated material: long excerpts, the post-processing grid, the f_h sweep."""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import soundfile as sf

from conftest import SR

import fh_steering
import long_excerpts
import postprocess_grid


def test_excerpts_join_one_groups_clips_to_the_minimum_length():
    clips = [{"seconds": s} for s in (0.5, 0.6, 2.0, 0.4, 0.3)]
    runs = long_excerpts.excerpts(clips, 1.0)
    assert [[c["seconds"] for c in run] for run in runs] == [[0.5, 0.6], [2.0, 0.4, 0.3]]   # a short tail joins
    assert long_excerpts.excerpts([{"seconds": 0.4}], 3.0) == [[{"seconds": 0.4}]]


def test_long_excerpts_of_a_manifest(tmp_path):
    data = tmp_path / "real"
    clips = []
    for group in ("fr", "de"):
        for i in range(4):
            path = f"val/speech/{group}_{i}.wav"
            (data / "val" / "speech").mkdir(parents=True, exist_ok=True)
            sf.write(data / path, 0.1 * np.ones((int(0.8 * SR), 2), np.float32), SR)
            clips.append({"path": path, "category": "speech", "group": group, "source": f"{group}.ogg",
                          "start": i, "seconds": 0.8})
    (data / "manifest.json").write_text(json.dumps({"clips": clips}))
    (data / "val" / "captions.jsonl").write_text("".join(
        json.dumps({"path": c["path"][4:], "caption": "speech"}) + "\n" for c in clips))
    long_excerpts.main(["--data", str(data), "--folders", "val", "--min-seconds", "1.5", "--out", str(tmp_path / "long")])
    written = json.loads((tmp_path / "long" / "manifest.json").read_text())["excerpts"]
    assert len(written) == 4 and all(w["seconds"] == 1.6 for w in written)
    assert [w["group"] for w in written] == ["de", "fr", "de", "fr"]   # round-robin over speakers
    assert sf.info(tmp_path / "long" / written[0]["path"]).duration == 1.6
    assert '"caption": "speech"' in (tmp_path / "long" / "val" / "captions.jsonl").read_text()


def test_the_grid_table_ranks_by_visqol_and_counts_the_targets():
    rows = []
    for system, visqol, lf in (("unprocessed", 2.0, 0.3), ("m-a", 2.5, 0.3), ("m-b", 1.5, 0.5)):
        for cutoff in (4000, 8000):
            rows.append({"file": "x.wav", "category": "s", "cutoff_hz": cutoff, "system": system, "visqol": visqol,
                         "nuwave2/lsd": 2.0, "nuwave2/lsd_lf": lf})
    text, table = postprocess_grid.grid_table(rows, {"unprocessed": "input", "m-a": "A", "m-b": "B"})
    assert [row["chain"] for row in table] == ["A", "input", "B"]
    b = table[2]
    assert b["groups_below_input"] == ["s 4 kHz", "s 8 kHz"] and b["files_lf_worse"] == 2
    assert "| A | 2.500 |" in text


def test_the_f_h_sweep_reads_the_raw_output_per_band(demo_model_files, tmp_path):
    from saga_sr_plugin.inference.upsampler import Upsampler

    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    clip = 0.2 * np.random.default_rng(0).standard_normal((2, SR // 2)).astype(np.float32)
    import torch

    result = fh_steering.measure(upsampler, [("a.wav", torch.from_numpy(clip))], 4000, (0.1, 0.5, 0.9), steps=2)
    assert set(result) == {0.5, 0.9}, "f_h at or below the input's f_l is not asked for"
    assert result[0.9]["clips"] == 1 and "12-20 kHz" in result[0.9] and "4-8 kHz" in result[0.9]
    assert all(math.isfinite(v) for v in result[0.5].values())
    text = fh_steering.report({"tiny": result}, tmp_path, "test")
    assert "12-20 kHz from f_h 0.9 to 0.5" in text and (tmp_path / "fh_steering.png").stat().st_size > 5000


def test_the_grid_is_data_and_each_chain_is_a_valid_post_processing_variant():
    import dataclasses

    from saga_sr_plugin.inference.settings import UpsampleSettings, check_postprocess_variant

    chains = postprocess_grid.load_grid(postprocess_grid.GRID)
    assert len(chains) == 12 and len({postprocess_grid.chain_name(c) for c in chains}) == 12
    base = UpsampleSettings()
    for chain in chains:   # every chain shares the sampling: only post-processing settings vary
        check_postprocess_variant(base, dataclasses.replace(base, **chain), postprocess_grid.chain_name(chain))
    assert postprocess_grid.parse_chain("content/output_to_input/none") == {
        "envelope_margin_db": None, "lfr_boundary": "content", "lfr_ratio_rule": "output_to_input", "slope_cap_db": None}
    with pytest.raises(argparse.ArgumentTypeError, match="lfr_boundary must be one of"):
        postprocess_grid.parse_chain("contnet/output_to_input/3")
