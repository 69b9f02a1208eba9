"""The auto f_h rule: its measures, its band-limited case, its fit, its config block, and the upsampler using it."""
from __future__ import annotations

import pytest
import torch

from conftest import SR, lowpassed, white_noise
from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.data.spectral import ROLLOFF_BINS
from saga_sr_plugin.evaluation.protocol import simulate_input
from saga_sr_plugin.inference.settings import UpsampleSettings
from saga_sr_plugin.inference.target_rolloff import RolloffFeatures, TargetRolloffRule, fit_rule, input_features
from saga_sr_plugin.data.spectral import spectral_slope_db


def test_slope_of_a_power_law_spectrum_is_recovered():
    bins = torch.arange(1025, dtype=torch.float64).clamp(min=1)
    spectrum = bins ** (-1.0)                      # magnitude falls 6.02 dB per octave
    assert spectrum_slope(spectrum) == pytest.approx(-6.02, abs=0.05)
    assert spectral_slope_db(bins.clone(), 400) == 0.0, "a rising spectrum counts as flat"


def spectrum_slope(spectrum: torch.Tensor) -> float:
    return spectral_slope_db(spectrum, 400)


def falling(seconds: float, db_per_octave: float, seed: int = 0) -> torch.Tensor:
    """Noise whose magnitude spectrum falls ``db_per_octave`` above 500 Hz."""
    x = white_noise(seconds, seed=seed)
    spec = torch.fft.rfft(x)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR).clamp(min=500)
    return torch.fft.irfft(spec * (f / 500) ** (db_per_octave / 6.02), n=x.shape[-1])


def test_a_dull_input_asks_for_less_than_a_bright_one():
    rule = TargetRolloffRule()
    bright = simulate_input(white_noise(1.0), 4000)
    dull = simulate_input(falling(1.0, -12.0), 4000)
    f_bright, f_dull = input_features(bright), input_features(dull)
    assert f_dull.slope_db_per_octave < f_bright.slope_db_per_octave - 5
    assert rule.predict(f_dull) < rule.predict(f_bright)


def test_content_stopping_well_below_the_rate_limit_asks_for_nothing_more():
    rule = TargetRolloffRule()
    features = RolloffFeatures(input_rolloff=0.12, edge=0.15, slope_db_per_octave=-3.0)
    assert rule.predict(features) > 0.3
    assert rule.predict(features, nyquist=8000 / 22050) == pytest.approx(0.12), "content ends at 3.3 kHz of 8"
    assert rule.predict(features, nyquist=3400 / 22050) > 0.3, "content reaches the rate's limit"


def test_the_fit_recovers_known_coefficients():
    g = torch.Generator().manual_seed(0)
    true = TargetRolloffRule(0.3, 0.8, -0.2, 0.5)
    feats = [RolloffFeatures(*torch.rand(2, generator=g).tolist(), -20 * float(torch.rand(1, generator=g)))
             for _ in range(50)]
    targets = [true.intercept + true.input_rolloff * f.input_rolloff + true.edge * f.edge
               + true.slope * f.slope_db_per_octave / 100 for f in feats]
    fitted = fit_rule(feats, targets)
    for name in ("intercept", "input_rolloff", "edge", "slope"):
        assert getattr(fitted, name) == pytest.approx(getattr(true, name), abs=1e-3)
    with pytest.raises(ValueError, match="at least 4"):
        fit_rule(feats[:3], targets[:3])


def test_settings_take_auto_and_a_rule_block_and_name_a_typo():
    settings = UpsampleSettings(target_rolloff="auto", target_rolloff_rule={"intercept": 0.5})
    assert settings.rule.intercept == 0.5
    with pytest.raises(ValueError, match="'auto'"):
        UpsampleSettings(target_rolloff="automatic")
    with pytest.raises(ConfigError, match="did you mean 'slope'"):
        UpsampleSettings(target_rolloff="auto", target_rolloff_rule={"slop": 1.0})
    with pytest.raises(ConfigError, match="finite"):
        UpsampleSettings(target_rolloff_rule={"edge": float("nan")})


@pytest.fixture(scope="module")
def upsampler(demo_model_files):
    from saga_sr_plugin.inference.upsampler import Upsampler

    return Upsampler.load(*demo_model_files, device="cpu")


def given_target_rolloffs(upsampler, monkeypatch) -> list[float]:
    seen: list[float] = []
    original = upsampler.generate_windows

    def spy(*args, **kwargs):
        given = kwargs.get("target_rolloffs", args[6] if len(args) > 6 else None)
        if given is not None:
            seen.extend(given)
        return original(*args, **kwargs)
    monkeypatch.setattr(upsampler, "generate_windows", spy)
    return seen


def test_upsampler_gives_the_model_each_inputs_own_f_h(upsampler, monkeypatch):
    seen = given_target_rolloffs(upsampler, monkeypatch)
    settings = upsampler.settings(steps=2, target_rolloff="auto")
    bright = simulate_input(white_noise(0.3), 4000)
    dull = simulate_input(falling(0.3, -12.0), 4000)
    a = upsampler.upsample(bright, SR, caption="", settings=settings, nyquist_hz=4000)
    b = upsampler.upsample(dull, SR, caption="", settings=settings, nyquist_hz=4000)
    assert b.target_rolloff < a.target_rolloff
    assert set(seen) == {a.target_rolloff, b.target_rolloff}
    told = upsampler.upsample(simulate_input(white_noise(0.3), 2500), SR, caption="", settings=settings,
                              nyquist_hz=11025)
    assert told.target_rolloff == pytest.approx(told.input_rolloff), "content ends far below the rate's limit"
    assert told.target_rolloff < a.target_rolloff
    oracle = upsampler.upsample(bright, SR, caption="", settings=settings, target_rolloff=0.55)
    assert oracle.target_rolloff == 0.55 and seen[-1] == 0.55
    fixed = upsampler.upsample(bright, SR, caption="", settings=upsampler.settings(steps=2, target_rolloff=0.7))
    assert fixed.target_rolloff == 0.7
    with pytest.raises(ValueError, match="chosen per input"):
        upsampler.generate_windows([bright[:, :upsampler.window]], [""], settings, [0])


def test_evaluation_oracle_gives_each_reference_its_own_rolloff(tmp_path):
    from saga_sr_plugin.data.audio_io import write_audio
    from saga_sr_plugin.data.spectral import rolloff_ratio
    from saga_sr_plugin.evaluation.protocol import reference_rolloffs

    write_audio(tmp_path / "music" / "bright.wav", white_noise(0.5), SR)
    write_audio(tmp_path / "music" / "dull.wav", lowpassed(white_noise(0.5, seed=2), 3000), SR)
    (tmp_path / "music" / "broken.wav").write_bytes(b"RIFF nonsense")
    values = reference_rolloffs(tmp_path)
    assert set(values) == {"music/bright.wav", "music/dull.wav"}
    assert values["music/dull.wav"] < 3000 / 22050 < values["music/bright.wav"]
    assert 0 < values["music/dull.wav"] < 1 and values["music/bright.wav"] * ROLLOFF_BINS == pytest.approx(
        rolloff_ratio(white_noise(0.5)) * ROLLOFF_BINS, abs=3)
