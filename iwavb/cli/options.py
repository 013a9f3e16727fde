"""Command-line options built from the fields of a frozen config dataclass, so that no default is restated.

A field becomes `--name-with-dashes` (or the name given), typed by its annotation (int, float, str,
Literal choices, X | None), with its help from the field's metadata and its default shown from the field.
Options left out on the command line are absent from the parsed namespace: the dataclass's own default
(and its own validation) then applies, so `--steps 0` is refused by TrainConfig, not replaced.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args, get_origin

from ..evaluation.evaluate import ALL_TEST_IMAGES

# A field whose None is spelled by a word on the command line.
NONE_WORDS = {"n_test": ALL_TEST_IMAGES, "batch_size": "auto"}


def _parser_for(kind: Any, name: str) -> tuple[Callable[[str], Any], tuple[str, ...] | None]:
    """(string -> value, choices) for a field's annotation; argparse names the function in its messages."""
    if get_origin(kind) in (typing.Union, types.UnionType):
        (kind,) = [a for a in get_args(kind) if a is not type(None)]
        word = NONE_WORDS.get(name)
        if word is not None:
            inner, choices = _parser_for(kind, name)

            def value_or_word(text: str) -> Any:
                return None if text == word else inner(text)

            value_or_word.__name__ = f"{getattr(inner, '__name__', 'value')} or '{word}'"
            return value_or_word, choices
    if get_origin(kind) is Literal:
        return str, tuple(str(a) for a in get_args(kind))
    if kind is int:
        return whole_number, None
    if kind is float:
        return finite_number, None
    return str, None


def whole_number(text: str) -> int:
    """An integer (argparse names the option: "argument --steps: not a whole number: '1.5'")."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def finite_number(text: str) -> float:
    """A float that is neither infinite nor NaN."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """A finite number above 0 (--minutes)."""
    value = finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value


def _default_text(field: dataclasses.Field) -> str:
    if "default" in field.metadata:
        return field.metadata["default"]
    if field.default is None:
        return NONE_WORDS.get(field.name, "none")
    return (
        f"{field.default:,}"
        if isinstance(field.default, int) and not isinstance(field.default, bool)
        else str(field.default)
    )


def add_field_options(
    parser: argparse.ArgumentParser, cls: type, names: Iterable[str], flags: dict[str, str] | None = None
) -> None:
    """Add one option per named field of the dataclass `cls`; `flags` renames some ({"dataset": "--data"})."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        field = fields[name]
        convert, choices = _parser_for(hints[name], name)
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        meaning = field.metadata.get("help", "")
        parser.add_argument(
            flag,
            dest=name,
            type=convert,
            choices=choices,
            default=argparse.SUPPRESS,
            metavar=None if choices else name.upper(),
            help=f"{meaning} (default: {_default_text(field)})",
        )


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of `cls`'s fields that were given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
