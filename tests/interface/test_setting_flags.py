"""Flags, overrides and page values come from the one declaration of each setting (issue 28, item 1)."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from saga_sr_plugin.inference.settings import BOTH, UpsampleSettings, setting
from saga_sr_plugin.interface.cli import build_parser
from saga_sr_plugin.interface.setting_flags import (
    add_setting_flags,
    page_values,
    parse_assignment,
    setting_overrides,
)

# every flag the commands had before the declaration; each must keep working
UPSAMPLE_FLAGS = ["--steps", "--sampler", "--schedule", "--guidance-acoustic", "--guidance-text", "--target-rolloff",
                  "--no-lfr", "--envelope-margin-db", "--no-envelope", "--slope-cap-db", "--no-slope-cap",
                  "--no-peak-limit", "--lfr-boundary", "--seed", "--batch-size"]
EVALUATE_FLAGS = ["--steps", "--target-rolloff", "--sampler", "--schedule", "--seed", "--lfr-boundary", "--batch-size"]


def _flags(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {flag for action in sub._actions for flag in action.option_strings}


@pytest.mark.parametrize("command,flags", [("upsample", UPSAMPLE_FLAGS), ("evaluate", EVALUATE_FLAGS),
                                           ("table1", EVALUATE_FLAGS)])
def test_every_earlier_flag_is_still_offered(command, flags):
    assert set(flags) <= _flags(command), sorted(set(flags) - _flags(command))


def test_upsample_flags_give_the_settings_and_off_words_turn_them_off():
    args = build_parser().parse_args(["upsample", "x.wav", "--model-config", "c", "--weights", "w", "--steps", "8",
                                      "--lfr-boundary", "band_limit", "--target-rolloff", "auto", "--no-slope-cap",
                                      "--no-lfr"])
    overrides = setting_overrides(args)
    assert overrides == {"steps": 8, "lfr_boundary": "band_limit", "target_rolloff": "auto", "slope_cap_db": None,
                         "low_frequency_replacement": False}
    settings = dataclasses.replace(UpsampleSettings(slope_cap_db=3.0), **overrides)
    assert settings.slope_cap_db is None and not settings.low_frequency_replacement


def test_a_value_and_its_off_word_together_are_an_error_and_bad_values_fail_at_parse_time(capsys):
    args = build_parser().parse_args(["upsample", "x.wav", "--model-config", "c", "--weights", "w",
                                      "--slope-cap-db", "3", "--no-slope-cap"])
    with pytest.raises(ValueError, match="--slope-cap-db and --no-slope-cap contradict"):
        setting_overrides(args)
    for bad in (["--sampler", "eulr"], ["--steps", "0"], ["--target-rolloff", "oracle"], ["--guidance-text", "nan"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["upsample", "x.wav", "--model-config", "c", "--weights", "w", *bad])
    assert "belongs to saga-sr evaluate only" in capsys.readouterr().err
    args = build_parser().parse_args(["evaluate", "refs", "--target-rolloff", "oracle"])
    assert setting_overrides(args)["target_rolloff"] == "oracle"


def test_set_assignments_are_typed_by_the_declaration():
    assert parse_assignment("slope_cap_db=none") == ("slope_cap_db", None)
    assert parse_assignment("slope-cap-db=3") == ("slope_cap_db", 3.0)
    assert parse_assignment("low_frequency_replacement=off") == ("low_frequency_replacement", False)
    assert parse_assignment("target_rolloff=auto") == ("target_rolloff", "auto")
    assert parse_assignment("steps=8") == ("steps", 8)
    with pytest.raises(argparse.ArgumentTypeError, match="did you mean 'slope_cap_db'"):
        parse_assignment("slope_cap=3")
    with pytest.raises(argparse.ArgumentTypeError, match="lfr_boundary must be one of"):
        parse_assignment("lfr_boundary=contnet")
    with pytest.raises(argparse.ArgumentTypeError, match="steps"):
        parse_assignment("steps=0")


def test_the_page_values_are_typed_by_the_declaration():
    settings = page_values(UpsampleSettings(), ("steps", "target_rolloff", "low_frequency_replacement"),
                           (12.0, "auto", 0))
    assert settings.steps == 12 and settings.target_rolloff == "auto" and settings.low_frequency_replacement is False


def test_a_new_setting_is_one_declaration_and_gets_its_flag_off_word_and_override():
    @dataclasses.dataclass
    class WithKnob(UpsampleSettings):
        knob_db: float | None = setting(None, "a new knob", off="--no-knob", commands=BOTH, minimum=0.0)

    p = argparse.ArgumentParser()
    add_setting_flags(p, "upsample", cls=WithKnob)
    assert setting_overrides(p.parse_args(["--knob-db", "2"]), cls=WithKnob) == {"knob_db": 2.0}
    assert setting_overrides(p.parse_args(["--no-knob"]), cls=WithKnob) == {"knob_db": None}
    assert parse_assignment("knob_db=1.5", cls=WithKnob) == ("knob_db", 1.5)
    with pytest.raises(ValueError, match="knob_db must be at least 0"):
        WithKnob(knob_db=-1.0)
