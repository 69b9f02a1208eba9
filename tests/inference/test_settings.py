"""Inference settings: the saga_sr block and option ranges."""
from __future__ import annotations

import pytest

from saga_sr_plugin.configs import ConfigError
from saga_sr_plugin.inference.settings import UpsampleSettings, check_saga_sr_block
from saga_sr_plugin.training import assembly


def test_unknown_saga_sr_keys_are_errors_with_a_suggestion(demo_model_config):
    demo_model_config["saga_sr"]["step"] = 30
    with pytest.raises(ConfigError, match="typo.json: saga_sr has no option 'step' \\(did you mean 'steps'\\?\\)"):
        check_saga_sr_block(demo_model_config["saga_sr"], "typo.json")
    with pytest.raises(ConfigError, match="'step'"):
        UpsampleSettings.from_config(demo_model_config)
    # training reads the block too, so a typo fails before any step, not at the first demo
    with pytest.raises(ConfigError, match="typo.json: saga_sr has no option 'step'"):
        assembly.build_model(demo_model_config, "typo.json")


def test_target_rolloff_one_is_accepted_and_above_one_refused():
    assert UpsampleSettings(target_rolloff=1.0).target_rolloff == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        UpsampleSettings(target_rolloff=1.01)
