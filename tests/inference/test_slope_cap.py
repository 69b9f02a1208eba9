"""The slope cap of the added band: a dull input's continuation bounds the hiss, a bright input keeps its band."""
from __future__ import annotations

import pytest
import torch

from conftest import SR, lowpassed, white_noise
from saga_sr_plugin.evaluation.levels import band_power
from saga_sr_plugin.inference.postprocess import replace_low_frequencies
from saga_sr_plugin.inference.settings import UpsampleSettings


def shaped(x: torch.Tensor, db_per_octave: float) -> torch.Tensor:
    spec = torch.fft.rfft(x)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR).clamp(min=500)
    return torch.fft.irfft(spec * (f / 500) ** (db_per_octave / 6.02), n=x.shape[-1])


def db(x: torch.Tensor, lo: float, hi: float) -> float:
    return 10 * torch.log10(torch.tensor(band_power(x, lo, hi))).item()


CUTOFF_BIN = int(4000 / SR * 2048)


def test_hiss_over_a_dull_input_is_brought_down_to_its_continued_slope():
    dull = lowpassed(shaped(white_noise(1.0), -12.0), 4000)
    hiss = dull + lowpassed(white_noise(1.0, seed=3), 22050) - lowpassed(white_noise(1.0, seed=3), 4000)
    free = replace_low_frequencies(hiss, dull, CUTOFF_BIN,
                                   UpsampleSettings(lfr_ratio_rule="none", max_added_band_db=None))
    capped = replace_low_frequencies(hiss, dull, CUTOFF_BIN,
                                     UpsampleSettings(lfr_ratio_rule="none", max_added_band_db=None, slope_cap_db=0.0))
    # the input falls 12 dB per octave: one octave up (8-16 kHz) it may be about 12 dB under 4-8 kHz's continuation
    assert db(free.audio, 12000, 16000) - db(capped.audio, 12000, 16000) > 15
    expected = db(shaped(white_noise(1.0), -12.0), 12000, 16000)
    assert db(capped.audio, 12000, 16000) == pytest.approx(expected, abs=4.0)
    assert db(capped.audio, 0, 3500) == pytest.approx(db(dull, 0, 3500), abs=0.1), "the kept band is untouched"


def test_a_bright_input_keeps_its_added_band_and_nothing_is_raised():
    bright = lowpassed(white_noise(1.0), 4000)
    generated = white_noise(1.0, seed=4)
    free = replace_low_frequencies(generated, bright, CUTOFF_BIN,
                                   UpsampleSettings(lfr_ratio_rule="none", max_added_band_db=None))
    capped = replace_low_frequencies(generated, bright, CUTOFF_BIN,
                                     UpsampleSettings(lfr_ratio_rule="none", max_added_band_db=None, slope_cap_db=3.0))
    assert db(capped.audio, 8000, 20000) == pytest.approx(db(free.audio, 8000, 20000), abs=0.5)
    quiet = 0.001 * generated
    raised = replace_low_frequencies(quiet, bright, CUTOFF_BIN,
                                     UpsampleSettings(lfr_ratio_rule="none", max_added_band_db=None, slope_cap_db=0.0))
    assert db(raised.audio, 8000, 20000) == pytest.approx(db(quiet, 8000, 20000), abs=0.5)


def test_the_setting_is_checked():
    assert UpsampleSettings(slope_cap_db=0.0).slope_cap_db == 0.0
    with pytest.raises(ValueError, match="slope_cap_db"):
        UpsampleSettings(slope_cap_db=float("nan"))


def test_per_frame_the_bound_follows_the_input_over_time():
    from saga_sr_plugin.inference.postprocess import _stft, cap_added_band_to_slope

    word = lowpassed(white_noise(1.0), 4000)
    word[:, SR // 2:] *= 1e-4                                # the second half is (almost) silence
    hiss = white_noise(1.0, seed=5)                          # the model's hiss stays on
    spec_out, spec_in = _stft(hiss.double(), 2048, 512), _stft(word.double(), 2048, 512)
    whole = spec_out.clone()
    cap_added_band_to_slope(whole, spec_in, CUTOFF_BIN, 3.0)
    cap_added_band_to_slope(spec_out, spec_in, CUTOFF_BIN, 3.0, per_frame=True)

    def band_db(spec, frames):
        return 10 * torch.log10(spec[:, 2 * CUTOFF_BIN:, frames].abs().pow(2).mean()).item()
    speaking, silent = slice(5, 35), slice(55, 80)
    assert band_db(whole, silent) > band_db(whole, speaking) - 1, "one gain for every frame: the hiss stays on"
    assert band_db(spec_out, silent) < band_db(spec_out, speaking) - 60, "per frame it goes with the word"
