"""Typed JSON: read a JSON value into a frozen dataclass, checking every field against its type hint.

The project's files (checkpoint metadata, evaluation results, the pretrained manifest) are JSON written
from dataclasses; `from_json` reads them back and refuses, with one message that names the place, the
field and the problem, anything that is not what the dataclass declares: a list for an object, a string
for a number, a missing or unknown field. The dataclass's own `__post_init__` then checks ranges.

Written here rather than taken from a validation library because the library must also run where only
torch, numpy, safetensors and tqdm are installed (a bare GPU machine). It covers the types our files use:
None, bool, int, float, str, Literal, X | None, tuple[X, ...], list[X], dict[str, X], Any, dataclasses.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from .errors import IWAVBError

T = TypeVar("T")
_MISSING = dataclasses.MISSING
_EXTRAS = "schema_extras"
EXTRAS = {_EXTRAS: True}  # field(default_factory=dict, metadata=EXTRAS): the dict that gets the unknown keys


class SchemaError(IWAVBError, ValueError):
    """A JSON value does not have the declared shape; the message names where and what."""


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}… ({type(value).__name__})" if len(text) > 60 else f"{text} ({type(value).__name__})"


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(cls: type[T], value: Any, where: str) -> T:
    """`value` (parsed JSON) as an instance of the dataclass `cls`; a SchemaError naming `where` otherwise.

    Errors raised by the dataclass's own checks (ValueError) are re-raised as SchemaErrors with the place."""
    result = _convert(cls, value, where)
    return typing.cast(T, result)


def _convert(kind: Any, value: Any, where: str) -> Any:
    origin, args = get_origin(kind), get_args(kind)
    if kind is Any:
        return value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _dataclass(kind, value, where)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, where)
        raise SchemaError(f"{where}: unions other than X | None are not supported")  # a bug, not bad input
    if origin is Literal:
        if value not in args or isinstance(value, bool) != isinstance(args[0], bool):
            raise SchemaError(f"{where}: expected one of {', '.join(map(repr, args))}, got {_describe(value)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise SchemaError(f"{where}: expected a list, got {_describe(value)}")
        items = [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: expected an object, got {_describe(value)}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return _scalar(kind, value, where)


def _scalar(kind: Any, value: Any, where: str) -> Any:
    if kind is type(None):
        if value is not None:
            raise SchemaError(f"{where}: expected null, got {_describe(value)}")
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise SchemaError(f"{where}: expected true or false, got {_describe(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{where}: expected a whole number, got {_describe(value)}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{where}: expected a number, got {_describe(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            number = math.inf
        if not math.isfinite(number):
            raise SchemaError(f"{where}: expected a finite number, got {_describe(value)}")
        return number
    if kind is str:
        if not isinstance(value, str):
            raise SchemaError(f"{where}: expected a string, got {_describe(value)}")
        return value
    raise SchemaError(f"{where}: the type {kind!r} is not supported")  # a bug, not bad input


def _dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: expected an object, got {_describe(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    extras = next((name for name, f in fields.items() if f.metadata.get(_EXTRAS)), None)
    unknown = sorted(set(value) - set(fields))
    if extras is not None:
        value = {k: v for k, v in value.items() if k != extras and k not in unknown} | {
            extras: {k: value[k] for k in unknown}
        }
    elif unknown:
        raise SchemaError(f"{where}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    missing = [
        n for n, f in fields.items() if n not in value and f.default is _MISSING and f.default_factory is _MISSING
    ]
    if missing:
        raise SchemaError(f"{where}: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    hints = _hints(cls)
    values = {name: _convert(hints[name], v, f"{where}.{name}") for name, v in value.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:  # the dataclass's own checks (ranges, choices)
        raise SchemaError(f"{where}: {err}") from err
