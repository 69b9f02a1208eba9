"""Flags, page values and ``--set NAME=VALUE`` overrides, all built from the settings' declaration.

``inference.settings.UpsampleSettings`` declares each setting once (help, choices, range, off word,
commands); nothing here names a setting. No torch: ``saga-sr --help`` builds its flags from here.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing as tp

from ..configs import suggest
from ..inference.settings import UpsampleSettings, check_value
from .args import finite, integer, rolloff_choice

OFF_WORDS = ("none", "off")   # --set slope_cap_db=none: the setting turned off


def declarations(cls: type = UpsampleSettings) -> dict[str, tuple[dataclasses.Field, tp.Any]]:
    """name -> (field, Setting) of every declared setting of ``cls`` (a subclass adds its own: the tests show it)."""
    return {f.name: (f, f.metadata["setting"]) for f in dataclasses.fields(cls)}


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def kind_of(field: dataclasses.Field) -> str:
    """int, float, bool, str or dict: the field's annotation without its ``| None`` / ``| str`` parts."""
    return str(field.type).split("|")[0].strip()


def _parser_of(field: dataclasses.Field, how: tp.Any, words: tuple[str, ...] = ()) -> tp.Callable[[str], tp.Any]:
    if how.words or words:
        return rolloff_choice(*how.words, *words)
    if kind_of(field) == "int":
        return integer(int(how.minimum)) if how.minimum is not None else int
    return finite(how.minimum, how.maximum)


def add_setting_flags(p: argparse.ArgumentParser, command: str,
                      extra_words: dict[str, tuple[tuple[str, ...], str]] | None = None,
                      cls: type = UpsampleSettings) -> None:
    """A ``--flag`` for every setting this command offers, and every off flag (``--no-slope-cap``).

    Defaults are None, meaning the model config's ``saga_sr`` value, else the declared default; the help
    says both. ``extra_words``: words one command adds to a setting (evaluate's ``oracle`` f_h), with help.
    """
    extra_words = extra_words or {}
    for field, how in declarations(cls).values():
        if command in how.commands:
            words, more = extra_words.get(field.name, ((), ""))
            default = "none" if field.default is None else field.default
            p.add_argument(flag_of(field.name), dest=field.name, default=None, choices=how.choices,
                           type=None if how.choices else _parser_of(field, how, words),
                           help=f"{how.help}{more} (default: the config's saga_sr.{field.name}, else {default})"
                           .replace("%", "%%"))
        if how.off:
            p.add_argument(how.off, dest=f"off_{field.name}", action="store_true", help=how.off_help)


def setting_overrides(args: argparse.Namespace, cls: type = UpsampleSettings) -> dict[str, tp.Any]:
    """The settings the flags of ``args`` give (None: not given), off flags included; both at once is an error."""
    overrides: dict[str, tp.Any] = {}
    for field, how in declarations(cls).values():
        value = getattr(args, field.name, None)
        if getattr(args, f"off_{field.name}", False):
            if value is not None:
                raise ValueError(f"{flag_of(field.name)} and {how.off} contradict each other; give one")
            value = False if kind_of(field) == "bool" else None
            overrides[field.name] = value
            continue
        if value is not None:
            overrides[field.name] = value
    return overrides


def apply_overrides(settings: UpsampleSettings, overrides: dict[str, tp.Any]) -> UpsampleSettings:
    """``settings`` with ``overrides`` (None and False included: an off flag turns the setting off)."""
    return dataclasses.replace(settings, **overrides)


def parse_assignment(text: str, cls: type = UpsampleSettings) -> tuple[str, tp.Any]:
    """``NAME=VALUE`` for one setting, typed by its declaration: ``slope_cap_db=none``, ``lfr_boundary=content``."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    known = declarations(cls)
    if not sep or name not in known:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE with NAME a setting{suggest(name, list(known))}"
                                         f"; known: {', '.join(known)}")
    field, how = known[name]
    kind = kind_of(field)
    if raw.lower() in OFF_WORDS:
        value: tp.Any = False if kind == "bool" else None
    elif kind == "bool":
        if raw.lower() not in ("true", "false", "on", "yes", "no"):
            raise argparse.ArgumentTypeError(f"{name}: true or false, got {raw!r}")
        value = raw.lower() in ("true", "on", "yes")
    elif how.choices:
        value = raw
    elif kind == "dict":
        raise argparse.ArgumentTypeError(f"{name} is a block; set it in the model config's saga_sr block")
    else:
        try:
            value = _parser_of(field, how)(raw)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{name}: {err}") from None
    try:
        check_value(name, value, how)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name, value


def add_set_argument(p: argparse.ArgumentParser) -> None:
    """``--set NAME=VALUE`` (repeatable): the experiments' way to override any setting."""
    p.add_argument("--set", dest="settings", type=parse_assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="override a saga_sr setting (repeatable; 'none' turns one off), e.g. --set slope_cap_db=none")


def page_values(defaults: UpsampleSettings, names: tp.Sequence[str], values: tp.Sequence[tp.Any]) -> UpsampleSettings:
    """The page's control values (numbers as floats, text as typed) as settings; a bad one is a ValueError."""
    known = declarations()
    typed = {}
    for name, value in zip(names, values, strict=True):
        field, how = known[name]
        kind = kind_of(field)
        if kind == "bool":
            typed[name] = bool(value)
        elif how.choices:
            typed[name] = value
        elif how.words:
            text = str(value).strip().lower()
            try:
                typed[name] = text if text in how.words else float(text)
            except ValueError:
                raise ValueError(f"{name} {value!r}: a number in [{how.minimum:g}, {how.maximum:g}] or "
                                 f"{' or '.join(map(repr, how.words))}") from None
        elif kind == "int":
            typed[name] = int(value)
        else:
            typed[name] = float(value)
    return dataclasses.replace(defaults, **typed)
