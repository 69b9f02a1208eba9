"""ViSQOL's sanity figures on a music-like signal, and the Fréchet distance with a tiny local embedder."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, lowpassed

from saga_sr_plugin.evaluation.frechet import MIN_CLIPS, FrechetResult, embed, set_distance
from saga_sr_plugin.evaluation.visqol import visqol


def music(seconds: float = 3.0, seed: int = 0) -> torch.Tensor:
    """Decaying harmonic notes up to 20 kHz and hi-hat bursts: full band, moving in time, like a music clip."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SR)
    t = torch.arange(n, dtype=torch.float64) / SR
    x = torch.zeros(n, dtype=torch.float64)
    notes = (220.0, 277.2, 329.6, 440.0, 392.0, 349.2)
    for i, f0 in enumerate(notes):
        start, stop = int(i * n / len(notes)), min(n, int((i + 1.5) * n / len(notes)))
        envelope = torch.zeros(n, dtype=torch.float64)
        envelope[start:stop] = torch.exp(-2.0 * torch.arange(stop - start, dtype=torch.float64) / SR)
        for h in range(1, int(20000 / f0)):
            x += envelope * torch.sin(2 * math.pi * f0 * h * t + h) / h ** 0.8
    hats = torch.randn(n, generator=g, dtype=torch.float64) * (torch.sin(2 * math.pi * 4 * t) > 0.95)
    return (0.4 * x / x.abs().max() + 0.05 * hats).float().repeat(2, 1)


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return music()


def test_visqol_sanity_figures_order_and_size(clip):
    """The issue's figures on a music clip (4.73 / 4.72 / 2.59 / 2.08): order and rough size, not the values."""
    scores = {cutoff: visqol(lowpassed(clip, cutoff) if cutoff else clip, clip) for cutoff in (None, 16000, 8000, 4000)}
    assert scores[None] > 4.6, scores                       # a signal against itself: near the top of the scale
    assert scores[None] >= scores[16000] > scores[8000] > scores[4000] >= 1.0, scores
    assert scores[16000] > 4.0 and scores[8000] < 3.5, scores  # the 8 kHz band is most of what it hears


def test_visqol_ignores_level_and_refuses_what_it_cannot_read(clip):
    assert visqol(0.5 * clip, clip) == pytest.approx(visqol(clip, clip), abs=1e-3)   # level-normalised
    assert math.isnan(visqol(clip[:, :SR // 2], clip[:, :SR // 2]))                   # 0.5 s: shorter than it reads
    assert math.isnan(visqol(clip, torch.zeros_like(clip)))                           # a silent reference


class BandEnergies:
    """A tiny local embedder: log energy in 8 bands per 50 ms frame (what an OpenL3 stand-in needs to be)."""

    sample_rate = 16000

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        frames = audio.mean(0).unfold(0, 800, 800)
        power = torch.fft.rfft(frames).abs().pow(2)
        return torch.stack([b.sum(-1) for b in power.chunk(8, dim=-1)], -1).clamp(min=1e-10).log10()


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    a = [torch.randn(500, 4, generator=g, dtype=torch.float64)]
    b = [torch.randn(500, 4, generator=g, dtype=torch.float64) + 3.0, a[0][:1]]   # mean moved by 3 in each dimension
    result = set_distance(b, a + a)
    assert result.value == pytest.approx(4 * 9.0, rel=0.1) and result.clips == 2
    assert set_distance(a + a, a + a).value == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=f"at least {MIN_CLIPS} clips"):
        set_distance(a, a)
    assert str(FrechetResult(1.234, 10)) == "1.23*" and str(FrechetResult(1.234, 400)) == "1.23"


def test_fd_ranks_a_low_passed_set_farther_than_a_slightly_quieter_one():
    embedder = BandEnergies()
    clips = [music(1.0, seed) for seed in range(4)]
    refs = [embed(embedder, c, SR) for c in clips]
    near = set_distance([embed(embedder, 0.9 * c, SR) for c in clips], refs).value
    far = set_distance([embed(embedder, lowpassed(c, 2000), SR) for c in clips], refs).value
    assert 0 <= near < far and far > 10 * near


def test_evaluate_reports_fd_per_set_and_marks_small_sets(tmp_path):
    from saga_sr_plugin.evaluation.protocol import evaluate, fd_table, markdown_table

    for category in ("music", "speech"):
        (tmp_path / category).mkdir()
        for i in range(2):
            sf.write(tmp_path / category / f"{i}.wav", music(1.2, i + (category == "speech") * 7).T.numpy(), SR)
    report = evaluate(tmp_path, {}, cutoffs=(4000,), embedder=BandEnergies(), perceptual=False)
    assert set(report.fd) == {(cat, 4000, system) for cat in ("music", "speech", "all")
                              for system in ("unprocessed", "sinc")}
    assert report.fd[("all", 4000, "unprocessed")].clips == 4
    table = fd_table(report.fd)
    assert "| all | unprocessed |" in table and "fewer than the paper's 400" in table and "*" in table
    assert "**FD**" in markdown_table(report.rows, fd=report.fd) and "visqol" not in markdown_table(report.rows)
    assert np.isfinite([r.value for r in report.fd.values()]).all()
