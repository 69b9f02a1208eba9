"""LSD in both conventions, and the evaluate command on a tiny folder."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file
from stable_audio_tools.models.factory import create_model_from_config

from saga_sr_plugin.interface import cli
from saga_sr_plugin.evaluation.protocol import simulate_input, sinc_baseline
from saga_sr_plugin.evaluation.metrics import CONVENTIONS, all_lsd, lsd, lsd_by_band
from conftest import SR, demo_config, lowpassed, white_noise


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_identical_signals_have_zero_lsd(convention):
    x = white_noise(0.5)
    values = lsd(x, x, convention=convention, cutoff_hz=4000)
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in values.values())


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("gain", [0.5, 2.0, 10.0])
def test_a_gain_gives_the_hand_computed_lsd(convention, gain):
    """Every bin's power ratio is gain^2, so each frame's LSD is |log10(gain^2)|."""
    x = white_noise(0.5)
    assert lsd(gain * x, x, convention=convention)["lsd"] == pytest.approx(abs(2 * math.log10(gain)), rel=1e-6)
    assert lsd(gain * x, x, convention=convention, energy_unify=True)["lsd"] == pytest.approx(0.0, abs=1e-6)


def test_nuwave2_lsd_is_symmetric():
    a, b = white_noise(0.5, seed=1), white_noise(0.5, seed=2)
    assert lsd(a, b)["lsd"] == pytest.approx(lsd(b, a)["lsd"], rel=1e-12)


def test_silence_is_finite_in_both_conventions():
    zero, x = torch.zeros(2, 22050), white_noise(0.5)
    for convention in CONVENTIONS:
        for est, ref in ((zero, zero), (zero, x), (x, zero)):
            assert all(math.isfinite(v) for v in lsd(est, ref, convention=convention, cutoff_hz=4000).values())
    assert lsd(zero, zero, convention="nuwave2")["lsd"] == 0.0
    assert lsd(zero, zero, convention="ssr")["lsd"] == pytest.approx(12.0)  # ssr_eval's floors, documented


def test_band_split_puts_the_missing_band_in_hf():
    x = white_noise(1.0)
    low = simulate_input(x, 4000, seed=0)
    values = lsd(low, x, cutoff_hz=4000)
    assert values["lsd_lf"] < 0.5 < 3.0 < values["lsd_hf"]
    assert values["lsd_lf"] < values["lsd"] < values["lsd_hf"]


def test_known_band_limited_spectrum():
    """Reference: flat noise; estimate: same noise with the top half at -20 dB -> HF LSD = 2, LF LSD = 0."""
    x = white_noise(1.0, channels=1)
    spec = torch.fft.rfft(x)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    spec[..., freqs > 11025] *= 0.1
    est = torch.fft.irfft(spec, n=x.shape[-1])
    values = lsd(est, x, cutoff_hz=11025)
    assert values["lsd_hf"] == pytest.approx(2.0, abs=0.05)
    assert values["lsd_lf"] == pytest.approx(0.0, abs=0.1)


def test_lsd_by_band_finds_the_band_that_is_wrong():
    """Noise 10 dB too loud above 11 kHz only: that band's level_db is +10 and its LSD is the
    gain's (1.0 in log10 power), the other band is exact; the whole-band LSD lies between."""
    ref = white_noise(1.0)
    spec = torch.fft.rfft(torch.as_tensor(ref, dtype=torch.float64), dim=-1)
    freqs = torch.fft.rfftfreq(ref.shape[-1], 1 / SR)
    est = torch.fft.irfft(spec * torch.where(freqs >= 11025, 10 ** 0.5, 1.0), n=ref.shape[-1], dim=-1)
    low, high = lsd_by_band(est, ref, [0, 10000, 12000, SR / 2])[::2]
    assert abs(low["level_db"]) < 0.05 and low["lsd"] < 0.05
    assert high["level_db"] == pytest.approx(10.0, abs=0.1) and high["lsd"] == pytest.approx(1.0, abs=0.05)
    assert low["lsd"] < lsd(est, ref)["lsd"] < high["lsd"]


def test_sinc_baseline_is_band_limited_and_aligned():
    x = white_noise(0.5)
    low = simulate_input(x, 8000)
    sinc = sinc_baseline(low, 8000)
    assert sinc.shape == low.shape
    assert all_lsd(sinc, low, cutoff_hz=7000)["nuwave2/lsd_lf"] < 0.3


def test_evaluate_command_on_a_tiny_folder(tmp_path, tiny_t5):
    refs = tmp_path / "refs"
    rng = np.random.default_rng(0)
    for category in ("music", "speech"):
        (refs / category).mkdir(parents=True)
        sf.write(refs / category / "a.wav", (0.3 * rng.standard_normal((11025, 2))).astype(np.float32), SR)
    (refs / "speech" / "broken.wav").write_bytes(b"nope")
    narrow = lowpassed(torch.from_numpy((0.3 * rng.standard_normal((2, 11025))).astype(np.float32)), 6000)
    sf.write(refs / "music" / "narrow.wav", narrow.T.numpy(), SR)  # a reference that carries nothing above 6 kHz
    config = demo_config(tiny_t5, sample_size=8192)
    torch.manual_seed(0)
    save_file(create_model_from_config(config).state_dict(), str(tmp_path / "m.safetensors"))
    (tmp_path / "m.json").write_text(json.dumps(config))
    out = tmp_path / "eval"
    code = cli.main(["evaluate", str(refs), "--model-config", str(tmp_path / "m.json"), "--weights",
                     str(tmp_path / "m.safetensors"), "--steps", "2", "--cutoffs", "4000", "8000", "-o", str(out),
                     "--device", "cpu"])
    assert code == 1, "broken.wav could not be scored: the exit code says so"
    assert "broken.wav" in (out / "lsd.md").read_text()
    rows = list(csv.DictReader(open(out / "lsd_per_file.csv")))
    assert len(rows) == 3 * 2 * 4  # files x cutoffs x (unprocessed, sinc, saga-sr, its raw decode)
    assert {r["system"] for r in rows} == {"unprocessed", "sinc", "saga-sr", "saga-sr-raw"}
    assert {r["category"] for r in rows} == {"music", "speech"}
    # each reference's own bandwidth, so results can be read against what it carried above the cutoff
    width = {r["file"]: float(r["reference_bandwidth_hz"]) for r in rows}
    assert width["music/a.wav"] > 20000 and width["speech/a.wav"] > 20000 and 5000 < width["music/narrow.wav"] < 7000
    own = {r["file"]: float(r["reference_rolloff"]) for r in rows}   # its f_h, as training measures it
    assert own["music/narrow.wav"] < 6000 / 22050 < own["music/a.wav"]
    unprocessed = [float(r["nuwave2/lsd_hf"]) for r in rows if r["system"] == "unprocessed" and "narrow" not in r["file"]]
    assert min(unprocessed) > 2.0
    table = (out / "lsd.md").read_text()
    assert "convention: nuwave2" in table and "convention: ssr" in table
    # 0.25 s clips are shorter than ViSQOL reads: left out, and said so
    assert all(r["visqol"] == "nan" for r in rows) and "ViSQOL left out 3 file(s) shorter than it reads" in table
    assert (out / "lsd.png").stat().st_size > 5000


def test_evaluate_under_torchrun_gathers_every_rank_into_one_csv_and_table(tmp_path, tiny_t5):
    """Two CPU ranks score disjoint shares of the files; rank 0 writes one CSV (in file order, each
    rank's failures included) equal to a one-process run's, and one table."""
    refs = tmp_path / "refs"
    rng = np.random.default_rng(3)
    for name in ("music/a.wav", "music/b.wav", "speech/c.wav", "speech/d.wav", "speech/e.wav"):
        (refs / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(refs / name, (0.3 * rng.standard_normal((11025, 2))).astype(np.float32), SR)
    (refs / "speech" / "broken.wav").write_bytes(b"nope")
    config = demo_config(tiny_t5, sample_size=8192)
    torch.manual_seed(0)
    save_file(create_model_from_config(config).state_dict(), str(tmp_path / "m.safetensors"))
    (tmp_path / "m.json").write_text(json.dumps(config))

    def command(out):
        return ["evaluate", str(refs), "--model-config", str(tmp_path / "m.json"), "--weights",
                str(tmp_path / "m.safetensors"), "--steps", "2", "--cutoffs", "4000", "-o", str(out), "--device", "cpu"]

    assert cli.main(command(tmp_path / "one")) == 1
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "saga_sr_plugin.interface.cli", *command(tmp_path / "two")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0, "broken.wav (one rank's file) could not be scored: the job says so"
    assert "scored 5 of 6" in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr[-3000:]
    one, two = (list(csv.DictReader(open(tmp_path / d / "lsd_per_file.csv"))) for d in ("one", "two"))
    assert [(r["file"], r["system"]) for r in two] == [(r["file"], r["system"]) for r in one]
    assert len({r["file"] for r in two}) == 5
    for a, b in zip(one, two):
        for key, value in a.items():
            if key not in ("file", "category", "system"):
                assert float(b[key]) == pytest.approx(float(value), rel=1e-4, abs=1e-5, nan_ok=True), (a["file"], key)
    assert "broken.wav" in (tmp_path / "two" / "lsd.md").read_text()
