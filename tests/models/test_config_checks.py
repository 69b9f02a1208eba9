"""Model-config checks: typos and impossible widths fail when the config is read."""
from __future__ import annotations

import pytest

from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.models.checks import check_model_config


@pytest.mark.parametrize("mutate, message", [
    (lambda dit: dit.update(embed_dimm=128), "no option 'embed_dimm' \\(did you mean 'embed_dim'\\?\\)"),
    (lambda dit: dit.update(num_heads=5), "embed_dim 128 is not divisible by num_heads 5"),
])
def test_dit_typos_and_impossible_widths_fail_when_the_config_is_read(demo_model_config, mutate, message):
    mutate(demo_model_config["model"]["diffusion"]["config"])
    with pytest.raises(ConfigError, match=message):
        check_model_config(demo_model_config, "typo.json")
