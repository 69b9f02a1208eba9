"""The official factory builds SAGA-SR conditioners from JSON; their shapes and dropout."""
from __future__ import annotations

import pytest
import torch
from stable_audio_tools.models import conditioners as sat_conditioners
from stable_audio_tools.models import diffusion as sat_diffusion
from stable_audio_tools.models.conditioners import NumberConditioner
from stable_audio_tools.models.factory import (
    create_model_from_config,
    create_pretransform_from_config,
)

from saga_sr_plugin.models import registry
from saga_sr_plugin.models.conditioners import (
    LocalT5Conditioner,
    LowResLatentConditioner,
)

WAVELET = {"type": "wavelet", "config": {"channels": 2, "levels": 5, "wavelet": "bior4.4"}}


def test_register_is_idempotent_and_patches_every_importer():
    registry.register()
    registry.register()
    assert registry.is_registered()
    assert sat_conditioners.create_multi_conditioner_from_conditioning_config is registry.create_multi_conditioner
    assert sat_diffusion.create_multi_conditioner_from_conditioning_config is registry.create_multi_conditioner


def test_unknown_type_lists_the_known_types():
    with pytest.raises(ValueError, match="known types: .*saga_lowres_latent.*saga_t5"):
        registry.create_multi_conditioner({"cond_dim": 8, "configs": [{"id": "x", "type": "saga_rollof", "config": {}}]})


def test_bad_plugin_option_names_the_conditioner():
    pre = create_pretransform_from_config(WAVELET, 44100)
    config = {"cond_dim": 8, "configs": [{"id": "lr_audio", "type": "saga_lowres_latent", "config": {"dropout": 0.1}}]}
    with pytest.raises(TypeError, match="lr_audio"):
        registry.create_multi_conditioner(config, pretransform=pre)


def test_factory_builds_plugin_and_official_types_in_config_order(demo_model_config):
    model = create_model_from_config(demo_model_config)
    conds = model.conditioner.conditioners
    assert list(conds.keys()) == ["prompt", "rolloff_lr", "rolloff_hr", "lr_audio"]
    assert isinstance(conds["prompt"], LocalT5Conditioner)
    assert isinstance(conds["rolloff_lr"], NumberConditioner)  # the official one, reused
    assert isinstance(conds["lr_audio"], LowResLatentConditioner)
    assert conds["lr_audio"].pretransform is model.pretransform  # no second VAE
    assert not any(k.startswith("conditioner.conditioners.lr_audio.pretransform") for k in model.state_dict())


def metadata(batch: int, length: int = 8192, captions=None) -> list[dict]:
    captions = captions or ["a bright sawtooth synth note"] * batch
    return [{"prompt": captions[i], "rolloff_lr": 0.1 + 0.1 * i, "rolloff_hr": 0.9,
             "lr_audio": 0.1 * torch.randn(2, length)} for i in range(batch)]


def test_conditioner_shapes_match_what_the_dit_expects(demo_model_config):
    model = create_model_from_config(demo_model_config).eval()
    cond = model.conditioner(metadata(3), "cpu")
    assert cond["prompt"][0].shape == (3, 16, 64)
    assert cond["rolloff_lr"][0].shape == (3, 1, 64)
    assert cond["lr_audio"][0].shape == (3, 64, 8192 // 32)
    inputs = model.get_conditioning_inputs(cond)
    assert inputs["cross_attn_cond"].shape == (3, 18, 64)  # 16 text tokens + 2 roll-off tokens
    assert inputs["global_cond"].shape == (3, 128)  # both roll-offs, concatenated on channels
    assert inputs["input_concat_cond"].shape == (3, 64, 256)
    x = torch.randn(3, 64, 256)
    assert model(x, torch.rand(3), cond=cond).shape == x.shape
    assert not torch.equal(cond["rolloff_lr"][0][0], cond["rolloff_lr"][0][1])


def test_lowres_latent_is_the_pretransform_encoding():
    pre = create_pretransform_from_config(WAVELET, 44100)
    cond = LowResLatentConditioner(pre, output_dim=64).eval()
    audio = [0.1 * torch.randn(2, 4096) for _ in range(2)]
    latents, mask = cond(audio, "cpu")
    assert torch.allclose(latents, pre.encode(torch.stack(audio)))
    assert mask.shape == (2, 4096 // 32)


def test_lowres_dropout_in_training_only_with_the_configured_null():
    pre = create_pretransform_from_config(WAVELET, 44100)
    cond = LowResLatentConditioner(pre, output_dim=64, dropout_prob=0.1, null_value=-5.0)
    audio = [0.1 * torch.randn(2, 1024) for _ in range(2000)]
    torch.manual_seed(0)
    latents, _ = cond.train()(audio, "cpu")
    dropped = (latents == -5.0).flatten(1).all(dim=1)
    kept = (latents != -5.0).flatten(1).all(dim=1)
    assert torch.all(dropped | kept)  # whole items, never parts
    assert 0.08 < dropped.float().mean().item() < 0.12
    latents, _ = cond.eval()(audio, "cpu")
    assert not (latents == -5.0).flatten(1).all(dim=1).any()
    assert torch.equal(cond.null_like(latents), torch.full_like(latents, -5.0))


def test_lowres_dropout_rate_is_validated():
    pre = create_pretransform_from_config(WAVELET, 44100)
    with pytest.raises(ValueError, match="dropout_prob"):
        LowResLatentConditioner(pre, output_dim=64, dropout_prob=1.5)


def test_t5_loads_from_a_local_directory_and_nulls_missing_captions(tiny_t5):
    cond = LocalT5Conditioner(output_dim=64, t5_model_name=tiny_t5, max_length=8, dtype="float32")
    emb, mask = cond(["a bright sawtooth synth note", "", "short bursts of white noise"], "cpu")
    assert emb.shape == (3, 8, 64) and mask.shape == (3, 8)
    assert torch.all(emb[1] == 0) and not mask[1].any()
    assert emb[0].abs().sum() > 0 and mask[0, :6].all() and not mask[0, 6:].any()
    assert not torch.allclose(emb[0], emb[2])
    assert "model" not in dict(cond.named_children())  # frozen T5 stays out of the state dict
    assert len(cond.state_dict()) == 0


def test_t5_projects_when_dims_differ(tiny_t5):
    cond = LocalT5Conditioner(output_dim=32, t5_model_name=tiny_t5, max_length=8, dtype="float32")
    assert cond(["a tone"], "cpu")[0].shape == (1, 8, 32)


def test_t5_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="T5 text encoder directory not found"):
        LocalT5Conditioner(output_dim=64, t5_model_name=str(tmp_path / "nope"))


def test_scaled_pretransform_normalises_and_inverts_exactly():
    from stable_audio_tools.models import factory as sat_factory

    assert sat_factory.create_pretransform_from_config is registry.create_pretransform
    scale = [0.5] * 32 + [0.05] * 32
    pre = sat_factory.create_pretransform_from_config(
        {"type": "saga_scaled", "config": {"scale": scale, "pretransform": WAVELET}}, 44100)
    plain = create_pretransform_from_config(WAVELET, 44100)
    x = torch.randn(1, 2, 4096) * 0.1
    z = pre.encode(x)
    assert torch.allclose(z * torch.tensor(scale)[None, :, None], plain.encode(x), atol=1e-6)
    assert torch.allclose(pre.decode(z), x, atol=1e-5)
    assert pre.encoded_channels == 64 and pre.downsampling_ratio == 32


PACKET = {"type": "saga_wavelet_packet", "config": {"channels": 2, "levels": 5, "wavelet": "bior6.8"}}


def test_wavelet_packet_inverts_and_puts_each_band_in_its_channel():
    """Built by the official factory (scaled, as the real-audio config does); a tone at a band's
    centre lands in that band's channels (or its neighbour's: the filters are short), and audio
    band-limited at 7 kHz leaves the channels above 8 kHz empty, and 14 kHz is told from 19 kHz,
    which the pyramid's shared top-octave channels cannot do."""
    import math

    pre = create_pretransform_from_config({"type": "saga_scaled", "config": {"scale": 0.1, "pretransform": PACKET}},
                                          44100)
    assert pre.encoded_channels == 64 and pre.downsampling_ratio == 32
    x = torch.randn(1, 2, 8192) * 0.1
    assert torch.allclose(pre.decode(pre.encode(x)), x, atol=1e-5)
    t = torch.arange(8192) / 44100
    width = 22050 / 32
    for band in (0, 3, 12, 20, 27, 31):
        tone = torch.sin(2 * math.pi * (band + 0.5) * width * t)[None, None].repeat(1, 2, 1)
        energy = pre.encode(tone).pow(2).mean(-1)[0].reshape(32, 2).sum(-1)
        assert int(energy.argmax()) == band
        assert energy[max(band - 1, 0):band + 2].sum() > 0.9 * energy.sum()
    low = sum(torch.sin(2 * math.pi * f * t + f) for f in (220.0, 1500.0, 4100.0, 6800.0))[None, None].repeat(1, 2, 1)
    energy = pre.encode(low).pow(2).mean(-1)[0].reshape(32, 2).sum(-1)
    assert energy[12:].sum() < 0.01 * energy.sum()
    pyramid = create_pretransform_from_config(WAVELET, 44100)
    for f, above_16k in ((14000.0, (0.0, 0.01)), (19000.0, (0.9, 1.0))):
        tone = torch.sin(2 * math.pi * f * t)[None, None].repeat(1, 2, 1)
        energy = pre.encode(tone).pow(2).mean(-1)[0].reshape(32, 2).sum(-1)
        assert above_16k[0] <= energy[23:].sum() / energy.sum() <= above_16k[1]  # bands from 15.8 kHz up
        in_pyramid = pyramid.encode(tone).pow(2).mean(-1)[0]
        assert in_pyramid[32:].sum() > 0.75 * in_pyramid.sum()  # 14 and 19 kHz share the pyramid's top-octave channels


@pytest.mark.parametrize("config", [{"channels": 2}, {"channels": 2, "levels": 5, "wavlet": "bior4.4"},
                                    {"channels": 2, "levels": 0}])
def test_wavelet_packet_config_errors(config):
    with pytest.raises(ValueError, match="saga_wavelet_packet"):
        registry.create_pretransform({"type": "saga_wavelet_packet", "config": config}, 44100)


@pytest.mark.parametrize("config, message", [
    ({"scale": [1.0, 2.0], "pretransform": WAVELET}, "give 1 or one per latent channel"),
    ({"scale": -1.0, "pretransform": WAVELET}, "positive"),
    ({"scale": 1.0}, "needs config.pretransform"),
    ({"scale": 1.0, "pretransform": WAVELET, "scael": 2}, "no option"),
])
def test_scaled_pretransform_config_errors(config, message):
    with pytest.raises(ValueError, match=message):
        registry.create_pretransform({"type": "saga_scaled", "config": config}, 44100)
