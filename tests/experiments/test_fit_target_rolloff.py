"""The auto f_h rule's fitting command, on generated clips: it writes a usable rule block and scores it."""
from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from conftest import SR

import fit_target_rolloff


def clip(path, seed: int, lowpass_hz: float | None) -> None:
    x = 0.2 * np.random.default_rng(seed).standard_normal((SR // 2, 2))
    if lowpass_hz:
        spec = np.fft.rfft(x, axis=0)
        spec[np.fft.rfftfreq(len(x), 1 / SR) > lowpass_hz] = 0
        x = np.fft.irfft(spec, n=len(x), axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), SR)


def test_fit_writes_a_rule_block_the_settings_accept(tmp_path):
    from saga_sr_plugin.inference.settings import UpsampleSettings

    data = tmp_path / "real"
    for i, width in enumerate([None, 6000, 9000, 12000, None, 15000, 7000, None]):
        clip(data / "train" / "music" / f"t{i}.wav", i, width)
    clip(data / "val" / "music" / "v0.wav", 50, None)
    clip(data / "val_band_limited" / "music" / "b0.wav", 51, 6000)
    out = tmp_path / "fit"
    fit_target_rolloff.main(["--data", str(data), "--clips", "8", "--held-out", "1", "--out", str(out)])
    block = json.loads((out / "rule.json").read_text())["target_rolloff_rule"]
    settings = UpsampleSettings(target_rolloff="auto", target_rolloff_rule=block)
    assert settings.rule.intercept == block["intercept"]
    table = (out / "fit.md").read_text()
    assert "| val | 2 |" in table and "| val_band_limited | 2 |" in table
    assert (out / "fit.png").stat().st_size > 5000
