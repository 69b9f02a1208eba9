"""experiments/band_levels.py: per-band LSD, level and envelope of written examples."""
from __future__ import annotations


import pytest
import soundfile as sf
import torch

from conftest import SR, lowpassed, white_noise

import band_levels


def _bursts(seconds: float = 1.0) -> torch.Tensor:
    """Noise switched on and off every 0.1 s: an envelope to follow."""
    x = white_noise(seconds, seed=5)
    gate = ((torch.arange(x.shape[-1]) // int(0.1 * SR)) % 2).float()
    return x * (0.05 + gate)


def test_band_rows_find_a_loud_generated_band_and_a_steady_one(tmp_path):
    reference = _bursts()
    lowres = lowpassed(reference, 4000)
    high = reference - lowres
    outputs = {"music_a": lowres + 10 ** (6 / 20) * high,  # the right envelope, 6 dB too loud above 4 kHz
               "speech_b": lowres + lowpassed(white_noise(1.0, seed=9), 16000) - lowpassed(white_noise(1.0, seed=9), 4100)}  # steady noise: no envelope
    for name, output in outputs.items():
        for signal, audio in (("reference", reference), ("input", lowres), ("output", output)):
            sf.write(tmp_path / f"{name}_4k_{signal}.wav", audio.T.numpy(), SR, subtype="FLOAT")
    rows = {(r["category"], r["signal"]): r for r in band_levels.band_rows(tmp_path, (0, 4000, 8000, 22050))}
    assert len(rows) == 4 and rows["music", "output"]["clips"] == 1
    music = rows["music", "output"]
    assert abs(music["0-4 kHz"][1]) < 0.1 and music["8-22.05 kHz"][1] == pytest.approx(6.0, abs=0.2)
    assert music["envelope_r"] > 0.95
    assert abs(rows["speech", "output"]["envelope_r"]) < 0.3
    assert rows["speech", "input"]["envelope_r"] > 0.9  # the input's own low band holds the timing
    assert rows["music", "input"]["8-22.05 kHz"][1] < -60  # the input has nothing there
    assert "| envelope r |" in band_levels.markdown(list(rows.values()))
    pooled = {(r["category"], r["signal"]): r for r in band_levels.band_rows([tmp_path, tmp_path])}
    assert pooled["music", "output"]["clips"] == 2 and pooled["music", "output"]["folder"] == "2 folders"
    assert pooled["music", "output"]["envelope_r"] == pytest.approx(music["envelope_r"])


def test_band_rows_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no \\*_reference.wav"):
        band_levels.band_rows(tmp_path)
    sf.write(tmp_path / "music_a_8k_reference.wav", white_noise(0.2).T.numpy(), SR)
    with pytest.raises(FileNotFoundError, match="music_a_8k_input.wav is missing"):
        band_levels.band_rows(tmp_path)
