"""Reading audio: damaged files are named, never silently shortened."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from saga_sr_plugin.data.audio_io import read_audio


def test_a_truncated_wav_is_read_with_a_warning_naming_file_and_durations(tmp_path, caplog):
    sf.write(tmp_path / "full.wav", (0.1 * np.random.default_rng(0).standard_normal((44100, 2))).astype(np.float32),
             44100, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING"):
        audio, _ = read_audio(tmp_path / "cut.wav")
    assert audio.shape[-1] < 44100 // 2 + 10
    assert "cut.wav" in caplog.text and "promises 1.000 s" in caplog.text and "holds 0.500 s" in caplog.text
    caplog.clear()
    read_audio(tmp_path / "full.wav")
    assert "truncated" not in caplog.text
