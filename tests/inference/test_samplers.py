"""Sampler and schedule choice: the official loops, the DiT passes each takes, the unguided one-pass path."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from test_inference import KnownDiT

from saga_sr_plugin.inference.sampling import passes_per_step, sample_guided, schedule
from saga_sr_plugin.inference.settings import UpsampleSettings


def conditioning(b: int = 2) -> tuple[dict, torch.Tensor]:
    torch.manual_seed(0)
    inputs = {"input_concat_cond": torch.randn(b, 4, 6), "cross_attn_cond": torch.randn(b, 5, 3),
              "cross_attn_mask": torch.ones(b, 5), "global_cond": torch.randn(b, 8), "prepend_cond": None,
              "prepend_cond_mask": None}
    return inputs, torch.full((b, 4, 6), -5.0)


@pytest.mark.parametrize("sampler", ["euler", "dpmpp", "pingpong"])
@pytest.mark.parametrize("scales, passes", [((1.4, 1.2), 3), ((1.0, 1.0), 1)])
def test_each_sampler_takes_one_forward_per_step_of_3b_or_b_items(sampler, scales, passes):
    inputs, null = conditioning()
    dit = KnownDiT()
    steps = 6
    settings = UpsampleSettings(steps=steps, guidance_acoustic=scales[0], guidance_text=scales[1], sampler=sampler)
    out = sample_guided(lambda *a, **k: dit(*a, **k) * 0.01, torch.randn(2, 4, 6), inputs, null, settings)
    assert out.shape == (2, 4, 6) and torch.isfinite(out).all()
    assert dit.batch_sizes == [passes * 2] * steps, (sampler, dit.batch_sizes)
    assert passes_per_step(*scales) == passes


def test_schedules_run_from_noise_to_data():
    for name in ("linear_quadratic", "linear", "logsnr"):
        t = schedule(name, 8)
        assert len(t) == 9 and float(t[0]) == 1.0 and float(t[-1]) == 0.0 and bool((t[1:] < t[:-1]).all())
    assert torch.allclose(schedule("linear", 4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        schedule("cosine", 8)


def test_the_logsnr_schedule_is_the_official_generations():
    # generate_diffusion_cond: log-SNR linear from -6 to 2, t = sigmoid(-log-SNR), ends pinned to 1 and 0
    t = schedule("logsnr", 4)
    inner = torch.sigmoid(-torch.tensor([-4.0, -2.0, 0.0]))
    assert torch.allclose(t, torch.cat([torch.ones(1), inner, torch.zeros(1)]))
    assert torch.equal(schedule("logsnr", 1), torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("sampler", ["euler", "pingpong"])
def test_one_step_is_one_jump_from_noise_to_data(sampler):
    inputs, null = conditioning()
    dit = KnownDiT()
    noise = torch.randn(2, 4, 6)
    settings = UpsampleSettings(steps=1, guidance_acoustic=1.0, guidance_text=1.0, sampler=sampler, schedule="logsnr")
    out = sample_guided(lambda *a, **k: dit(*a, **k) * 0.01, noise, inputs, null, settings)
    assert dit.batch_sizes == [2]
    velocity = dit.f(noise, torch.ones(2), inputs["input_concat_cond"], inputs["cross_attn_cond"],
                     inputs["global_cond"]) * 0.01
    assert torch.allclose(out, noise - velocity, atol=1e-5)  # x_0 = x_1 - 1 * v(x_1, 1)


def test_sampler_and_schedule_are_settings_checked_when_made():
    assert UpsampleSettings().sampler == "euler" and UpsampleSettings().schedule == "linear_quadratic"
    with pytest.raises(ValueError, match="sampler must be one of"):
        UpsampleSettings(sampler="heun")
    with pytest.raises(ValueError, match="schedule must be one of"):
        dataclasses.replace(UpsampleSettings(), schedule="cos")
    with pytest.raises(ValueError, match="at least 2 with the linear_quadratic schedule.*linear or logsnr"):
        UpsampleSettings(steps=1)
    assert UpsampleSettings(steps=1, schedule="logsnr").steps == 1
    with pytest.raises(ValueError, match="at least 1"):
        UpsampleSettings(steps=0, schedule="linear")
    settings = UpsampleSettings.from_config({"saga_sr": {"sampler": "dpmpp", "schedule": "linear", "steps": 8}})
    assert (settings.sampler, settings.schedule, settings.steps) == ("dpmpp", "linear", 8)


def test_the_upsampler_runs_the_chosen_sampler_in_its_steps(demo_model_files):
    from saga_sr_plugin.inference.upsampler import Upsampler

    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    calls = []
    original = upsampler.model.model.forward
    upsampler.model.model.forward = lambda *a, **k: (calls.append(a[0].shape[0]), original(*a, **k))[1]
    audio = torch.randn(2, 8000) * 0.1
    settings = dataclasses.replace(upsampler.settings(), steps=4, sampler="dpmpp", schedule="linear",
                                   guidance_acoustic=1.0, guidance_text=1.0)
    result = upsampler.upsample(audio, 16000, caption="", settings=settings)
    windows = upsampler.window_count(22050, settings)
    assert result.audio.shape == (2, 22050) and calls == [1] * (4 * windows)


def test_the_declared_sampler_names_are_the_official_samplers():
    from stable_audio_tools.inference.sampling import sample_discrete_euler

    from saga_sr_plugin.inference.sampling import SAMPLERS
    from saga_sr_plugin.inference.settings import SAMPLER_NAMES

    assert tuple(SAMPLERS) == SAMPLER_NAMES and SAMPLERS["euler"] is sample_discrete_euler
