"""A sweep's spec: a TOML file naming a grid of training runs, each run's budget, its evaluation and resources.

    description = "what the sweep is for"
    retries = 2                  # a failed trial is tried again this many times (default 2)

    [grid]                       # lists: every combination is one trial
    dataset = ["mnist", "fashion", "omniglot"]
    method = ["iwavb"]           # iwae/iwavb with k = 1 are the VAE/AVB: Table 1's K = 1 column
    latent_dim = [8, 32]
    k = [1, 5, 10]
    seed = [0, 1, 2]

    [train]                      # settings shared by every trial; the rest are TrainConfig's defaults
    family = "conv"

    [budget]                     # per trial: steps, minutes of training, or both (whichever comes first)
    steps = 150000

    [eval]                       # EvalSettings fields (the test images: n_test, a number or "all", and seed)
    estimator = "ais"

    [resources]                  # per trial: CPU threads and GPUs (a fraction shares one)
    threads = 1
    gpu = 1

The keys of [grid] and [train] are TrainConfig's fields (and `method`); those of [eval] EvalSettings';
so the defaults are the configs' own and every value is checked by them. The whole spec is checked, every
trial built, before anything starts; a problem is a SweepError that names the file and the line.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from .. import settings
from ..core.config import MethodName, method_grid_point, method_name
from ..errors import IWAVBError
from ..evaluation.evaluate import ALL_TEST_IMAGES, EvalSettings
from ..schema import from_json
from ..training.config import TrainConfig
from ..training.runs import run_name

SHIPPED = Path(__file__).resolve().parent / "specs"  # table1, table1-short, tiny
SUFFIX = ".toml"
UNCAPPED_STEPS = 2**31 - 1  # the step total of a run whose budget is minutes alone
DEFAULT_RETRIES = 2
DEFAULT_METHOD = method_name(TrainConfig.q, TrainConfig.k)

_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
_SET_ELSEWHERE = {"q": "method", "steps": "[budget] steps", "device": "[resources] gpu"}
TRAIN_KEYS = ("method", *(n for n in _TRAIN_FIELDS if n not in _SET_ELSEWHERE))
EVAL_KEYS = tuple(f.name for f in dataclasses.fields(EvalSettings) if f.name != "device")
BUDGET_KEYS = ("steps", "minutes")
RESOURCE_KEYS = ("threads", "gpu")
TOP_KEYS = ("description", "retries")
TABLES = {"grid": TRAIN_KEYS, "train": TRAIN_KEYS, "budget": BUDGET_KEYS, "eval": EVAL_KEYS, "resources": RESOURCE_KEYS}
_EVAL = "EvalSettings"  # how messages name the evaluation settings
T = TypeVar("T")
# What a trial's file name always says (run_name); any other axis is added to it.
NAMED_AXES = ("dataset", "method", "k", "latent_dim", "family", "contrast", "seed")


class SweepError(IWAVBError, ValueError):
    """A spec that cannot run, or a sweep folder that holds other runs; the message says where and why."""


@dataclass(frozen=True)
class Budget:
    """What one trial may spend: steps, minutes of training, or both (whichever comes first)."""

    steps: int | None = None
    minutes: float | None = None

    @property
    def step_total(self) -> int:
        return self.steps if self.steps is not None else UNCAPPED_STEPS

    def spent(self, step: int, train_seconds: float) -> bool:
        """Whether a run at `step` after `train_seconds` of training has used this budget up."""
        return step >= self.step_total or (self.minutes is not None and train_seconds >= 60 * self.minutes)

    def describe(self) -> str:
        parts = ([f"{self.steps:,} steps"] if self.steps is not None else []) + (
            [f"{self.minutes:g} minutes of training"] if self.minutes is not None else []
        )
        return " or ".join(parts) + (", whichever comes first" if len(parts) > 1 else "")


@dataclass(frozen=True)
class Resources:
    """What one trial holds while it runs: CPU threads and GPUs (a fraction of one lets trials share it)."""

    threads: int = settings.DEFAULT_THREADS
    gpu: float = 0.0

    @property
    def device(self) -> str:
        return "cuda" if self.gpu > 0 else "cpu"


@dataclass(frozen=True)
class Trial:
    """One training run of the grid: its file name, its configuration and its point of the grid."""

    name: str
    config: TrainConfig
    point: tuple[tuple[str, Any], ...]  # (axis, value) in the grid's order

    def value(self, axis: str) -> Any:
        return dict(self.point)[axis]


@dataclass(frozen=True)
class SweepSpec:
    name: str
    path: Path
    description: str
    axes: tuple[str, ...]  # the grid's keys, in the spec's order
    trials: tuple[Trial, ...]
    budget: Budget
    evaluation: EvalSettings  # device: that of the resources
    resources: Resources
    retries: int


# -- where a key is written ---------------------------------------------------------------------------
class _Source:
    """The spec's text, to name the line of a key in a message."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line(self, table: str | None, key: str | None = None) -> int | None:
        """The line of `key` in `[table]` (table None: before any table), or of the table's header."""
        current: str | None = None
        for number, text in enumerate(self.lines, 1):
            header = re.match(r"\s*\[\s*([^\]\s]+)\s*\]", text)
            if header:
                current = header.group(1)
                if key is None and current == table:
                    return number
            elif key is not None and current == table and re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", text):
                return number
        return None

    def error(self, where: list[tuple[str | None, str | None]], problem: str) -> SweepError:
        numbers = sorted({n for table, key in where if (n := self.line(table, key)) is not None})
        place = f", line{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}" if numbers else ""
        return SweepError(f"{self.path}{place}: {problem}")


def _key(table: str | None, key: str) -> str:
    return f"[{table}] {key}" if table else key


# -- building and checking the configs -----------------------------------------------------------------
def train_config(values: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of a trial's settings: TrainConfig's fields and `method`, whose q it takes (a ValueError
    says what is wrong). K = 1 with iwae or iwavb is the VAE or AVB: the bound (3.1) at K = 1 is the ELBO."""
    values = dict(values)
    given = values.pop("method", DEFAULT_METHOD)
    if not isinstance(given, str):
        raise ValueError(f"method: expected a string, got {given!r}")
    method = cast(MethodName, given)  # method_grid_point refuses any other name
    q, default_k = method_grid_point(method)  # refuses an unknown method
    k = values.pop("k", default_k)
    if isinstance(k, int) and not isinstance(k, bool):
        if k < 1:
            raise ValueError(f"K must be at least 1, got {k}")
        if k > 1:
            method_grid_point(method, k)  # the VAE and AVB use K = 1
    return from_json(TrainConfig, {"q": q, "k": k, **values}, "TrainConfig")


def _check(
    source: _Source, where: list[tuple[str | None, str | None]], what: str, build: Callable[..., T], *args: Any
) -> T:
    """build(*args), its ValueError (a SchemaError too) or TypeError as a SweepError naming the lines `where`."""
    try:
        return build(*args)
    except (ValueError, TypeError) as err:  # SchemaError is a ValueError
        raise source.error(where, f"{what}: {err}") from None


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _table(source: _Source, raw: dict[str, Any], table: str) -> dict[str, Any]:
    values = raw.get(table, {})
    known = TABLES[table]
    for key, value in values.items():
        if key not in known:
            raise source.error([(table, key)], f"unknown key {_key(table, key)}; [{table}] takes {', '.join(known)}")
        if table == "grid":
            if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
                raise source.error([(table, key)], f"{_key(table, key)} must be a non-empty list of values")
            if len(set(map(repr, value))) < len(value):
                raise source.error([(table, key)], f"{_key(table, key)} names a value twice")
        elif not _scalar(value):
            raise source.error([(table, key)], f"{_key(table, key)} must be a single value")
    return values


def _budget(source: _Source, values: dict[str, Any]) -> Budget:
    if not values:
        raise source.error([("budget", None)], "the spec needs a [budget] with steps, minutes or both")
    steps, minutes = values.get("steps"), values.get("minutes")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise source.error([("budget", "steps")], f"[budget] steps must be a whole number of at least 1, got {steps!r}")
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes < math.inf
    ):
        raise source.error([("budget", "minutes")], f"[budget] minutes must be a number above 0, got {minutes!r}")
    return Budget(steps, None if minutes is None else float(minutes))


def _resources(source: _Source, values: dict[str, Any]) -> Resources:
    threads, gpu = values.get("threads", Resources.threads), values.get("gpu", Resources.gpu)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise source.error([("resources", "threads")], f"[resources] threads must be at least 1, got {threads!r}")
    whole_or_share = isinstance(gpu, (int, float)) and (0 <= gpu <= 1 or (gpu > 1 and float(gpu).is_integer()))
    if isinstance(gpu, bool) or not whole_or_share:
        raise source.error(
            [("resources", "gpu")], f"[resources] gpu must be 0, a share of one GPU (0.5) or whole GPUs, got {gpu!r}"
        )
    return Resources(threads, float(gpu))


def _evaluation(source: _Source, values: dict[str, Any], device: str) -> EvalSettings:
    values = {k: None if k == "n_test" and v == ALL_TEST_IMAGES else v for k, v in values.items()}
    for key, value in values.items():
        _check(source, [("eval", key)], f"[eval] {key} = {value!r}", from_json, EvalSettings, {key: value}, _EVAL)
    return _check(
        source, [("eval", k) for k in values], "[eval]", from_json, EvalSettings, values | {"device": device}, _EVAL
    )


def _trial_name(config: TrainConfig, point: dict[str, Any]) -> str:
    extras = "".join(f"-{axis}-{value}" for axis, value in point.items() if axis not in NAMED_AXES)
    return run_name(config) + extras


def _trials(source: _Source, grid: dict[str, Any], fixed: dict[str, Any], steps: int, device: str) -> tuple[Trial, ...]:
    for key, value in fixed.items():  # each shared setting alone, then together: the message names its line
        _check(source, [("train", key)], f"[train] {key} = {value!r}", train_config, {key: value, "steps": steps})
    for axis, values in grid.items():
        if axis in fixed:
            raise source.error([("train", axis)], f"[train] {axis} is also an axis of [grid]: give it in one place")
        for value in values:
            _check(source, [("grid", axis)], f"[grid] {axis} = {value!r}", train_config, {axis: value, "steps": steps})
    _check(source, [("train", k) for k in fixed], "[train]", train_config, {**fixed, "steps": steps})
    trials: list[Trial] = []
    names: dict[str, str] = {}
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        shown = ", ".join(f"{a} = {v!r}" for a, v in point.items())
        config = _check(
            source,
            [("grid", a) for a in grid],
            f"the grid point {shown}",
            train_config,
            {**fixed, **point, "steps": steps, "device": device},
        )
        name = _trial_name(config, point)
        if name in names:
            raise source.error(
                [("grid", a) for a in grid], f"the grid points {names[name]} and {shown} are the same run ({name})"
            )
        names[name] = shown
        trials.append(Trial(name, config, tuple(point.items())))
    return tuple(trials)


def parse_spec(text: str, path: Path) -> SweepSpec:
    """A spec from its TOML text; `path` names it in messages and gives its name (the file stem)."""
    source = _Source(path, text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SweepError(f"{path}: not a valid TOML file: {err}") from None
    for key, value in raw.items():
        if key in TABLES:
            if not isinstance(value, dict):
                raise source.error([(None, key)], f"{key} must be a table, written [{key}]")
        elif key not in TOP_KEYS:
            known = ", ".join([*TOP_KEYS, *(f"[{t}]" for t in TABLES)])
            raise source.error([(None, key)], f"unknown key {key}; a spec has {known}")
    description, retries = raw.get("description", ""), raw.get("retries", DEFAULT_RETRIES)
    if not isinstance(description, str):
        raise source.error([(None, "description")], "description must be a string")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise source.error([(None, "retries")], f"retries must be a whole number of at least 0, got {retries!r}")
    tables = {table: _table(source, raw, table) for table in TABLES}
    budget = _budget(source, tables["budget"])
    resources = _resources(source, tables["resources"])
    evaluation = _evaluation(source, tables["eval"], resources.device)
    trials = _trials(source, tables["grid"], tables["train"], budget.step_total, resources.device)
    return SweepSpec(
        name=path.stem,
        path=path,
        description=description,
        axes=tuple(tables["grid"]),
        trials=trials,
        budget=budget,
        evaluation=evaluation,
        resources=resources,
        retries=retries,
    )


def shipped_specs() -> dict[str, Path]:
    """The specs that come with the library, by name."""
    return {p.stem: p for p in sorted(SHIPPED.glob(f"*{SUFFIX}"))}


def shipped_summary() -> list[tuple[str, str, str | None]]:
    """(name, description, why it cannot run here or None) of each shipped spec."""
    summary: list[tuple[str, str, str | None]] = []
    for name, path in shipped_specs().items():
        description = str(tomllib.loads(path.read_text()).get("description", ""))
        try:
            load_spec(path)
        except SweepError as err:
            summary.append((name, description, str(err).removeprefix(f"{path}")))
        else:
            summary.append((name, description, None))
    return summary


def spec_path(spec: str | Path) -> Path:
    """A spec file by path, or a shipped spec by name (`table1`, `table1-short`, `tiny`)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = shipped_specs()
    if str(spec) in shipped:
        return shipped[str(spec)]
    raise SweepError(f"{spec}: no such spec file, nor a shipped spec of that name (shipped: {', '.join(shipped)})")


def load_spec(spec: str | Path) -> SweepSpec:
    """Read and check a spec, a file or a shipped name; every trial is built, so a bad one fails here."""
    path = spec_path(spec)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SweepError(f"{path}: could not read it: {err}") from None
    return parse_spec(text, path)
