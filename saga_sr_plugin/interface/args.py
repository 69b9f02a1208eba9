"""Command-line value types that check a flag when it is read, so a bad value is one usage line naming it.

Used by ``saga-sr`` and ``train_entry.py``: ``--batch-size 0`` or ``--guidance-text nan``
fail at parse time, before a model loads or a trainer starts.
"""
from __future__ import annotations

import argparse
import math
import typing as tp

MAX_SECONDS = 600.0  # the longest file saga-sr gui accepts by default


def integer(minimum: int) -> tp.Callable[[str], int]:
    """An int of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite(minimum: float | None = None, maximum: float | None = None) -> tp.Callable[[str], float]:
    """A finite float (no nan, no inf), optionally within [minimum, maximum]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "-inf" if minimum is None else f"{minimum:g}"
            high = "inf" if maximum is None else f"{maximum:g}"
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value:g}")
        return value
    parse.__name__ = "number"
    return parse


# Roll-off words and the command each belongs to, for a word given to the wrong one.
ROLLOFF_WORDS = {"auto": "upsample and evaluate (f_h from each input)",
                 "oracle": "saga-sr evaluate only (each reference's own roll-off; an input to upsample has no reference)"}


def rolloff_choice(*words: str) -> tp.Callable[[str], float | str]:
    """A normalised roll-off in [0, 1], or one of ``words`` (``auto``: from each input; ``oracle``: the reference's)."""
    number = finite(0.0, 1.0)

    def parse(text: str) -> float | str:
        if text in words:
            return text
        if text in ROLLOFF_WORDS:
            raise argparse.ArgumentTypeError(f"{text!r} belongs to {ROLLOFF_WORDS[text]}; here: a number in [0, 1] "
                                             f"or {', '.join(words)}")
        try:
            return number(text)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{err} (or one of: {', '.join(words)})") from None
    parse.__name__ = "roll-off"
    return parse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except ``None`` ones: those mean "the config's value", which their help says."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default is None else super()._get_help_string(action)


def add_mismatch_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-config-mismatch", action="store_true",
                   help="load weights exported with another model config than the one given (refused otherwise)")


def add_gui_arguments(p: argparse.ArgumentParser) -> None:
    """``saga-sr gui``'s flags (here, so ``--help`` needs no model code)."""
    p.add_argument("--model-config", default=None)
    p.add_argument("--weights", default=None, help="exported weights (.safetensors or .ckpt)")
    p.add_argument("--pretrained-name", default=None,
                   help="instead of the two above: a folder an export wrote, or a hub repository with the same files")
    add_mismatch_argument(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--caption-model", default=None, help="Qwen2-Audio for the 'captioner' caption mode "
                                                          "(default: the config's saga_sr.caption_model)")
    p.add_argument("--listen", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    p.add_argument("--port", type=integer(1), default=7860)
    p.add_argument("--username", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off unless asked)")
    p.add_argument("--max-seconds", type=finite(1.0), default=MAX_SECONDS, help="longest file the page accepts")
