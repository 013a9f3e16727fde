"""A sweep's results in the shape of the paper's Table 1: test NLL, mean ± standard error over seeds, beside
the paper's value, with the budget each cell had; written as `results.md` and `results.json` in its folder.

Rows are data sets, columns l and K; every other axis of the grid (method, family, contrast, ...) gets a
table of its own. The numbers are read from the trials' own files (checkpoint header and `.eval.json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..artefacts.catalog import Entry
from ..artefacts.results import PAPER_TABLE_1
from ..files import atomic_write_bytes
from ..schema import from_json
from ..training.runs import list_checkpoints
from .spec import SweepError, SweepSpec, Trial
from .trial import read_trial

RESULTS_FORMAT = "iwavb-sweep-results"
TABLE_AXES = ("dataset", "latent_dim", "k")  # rows and columns of Table 1
SEED = "seed"


def sweep_folder(name: str) -> Path:
    """Where a sweep writes unless told otherwise: `sweeps/<spec name>` in the runs folder."""
    return settings.runs_dir() / "sweeps" / name


@dataclass(frozen=True)
class TrialRow:
    name: str
    point: dict[str, Any]  # the trial's values of the grid's axes
    state: str  # done, failed or unfinished
    nll: float | None = None
    nll_se: float | None = None  # over the test images
    step: int | None = None
    train_seconds: float | None = None
    device: str | None = None
    reason: str | None = None  # why it failed


@dataclass(frozen=True)
class Cell:
    """The trials that differ only in their seed, and what they achieved."""

    setting: dict[str, Any]  # the grid point without the seed
    dataset: str
    latent_dim: int
    k: int
    method: str  # the configuration's (iwavb at K = 1 is avb)
    trials: tuple[str, ...]
    seeds: tuple[int, ...]  # of the finished trials
    nll: tuple[float, ...]  # per finished trial
    mean: float | None
    se: float | None  # standard error of the mean over seeds (None for fewer than two)
    paper: float | None  # Table 1's value, for an implicit q on the paper's data and l
    steps: tuple[int, ...]
    train_seconds: tuple[float, ...]
    devices: tuple[str, ...]


@dataclass(frozen=True)
class SweepResults:
    spec: str
    description: str
    budget: str  # in words, per trial
    evaluation: str  # in words
    written: str
    cells: tuple[Cell, ...]
    trials: tuple[TrialRow, ...]

    @property
    def counts(self) -> dict[str, int]:
        return {state: sum(t.state == state for t in self.trials) for state in ("done", "failed", "unfinished")}


def _row(trial: Trial, spec: SweepSpec, out: Path, failures: dict[str, str]) -> TrialRow:
    point = dict(trial.point)
    files = read_trial(out, trial, spec.budget, spec.evaluation)
    if files.state == "done" and files.estimate is not None:
        e = files.estimate
        return TrialRow(trial.name, point, "done", e.nll, e.nll_se, files.step, files.train_seconds, files.device)
    state = "failed" if trial.name in failures else "unfinished"
    return TrialRow(trial.name, point, state, step=files.step or None, reason=failures.get(trial.name))


def _mean_se(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def _cells(spec: SweepSpec, rows: dict[str, TrialRow]) -> tuple[Cell, ...]:
    groups: dict[tuple, list[Trial]] = {}
    for trial in spec.trials:
        key = tuple((a, v) for a, v in trial.point if a != SEED)
        groups.setdefault(key, []).append(trial)
    cells = []
    for key, trials in groups.items():
        config = trials[0].config
        done = [(t, rows[t.name]) for t in trials if rows[t.name].state == "done"]
        nll = [r.nll for _, r in done if r.nll is not None]
        mean, se = _mean_se(nll)
        paper = PAPER_TABLE_1.get((config.dataset, config.latent_dim), {}).get(config.k)
        cells.append(
            Cell(
                setting=dict(key),
                dataset=config.dataset,
                latent_dim=config.latent_dim,
                k=config.k,
                method=config.method,
                trials=tuple(t.name for t in trials),
                seeds=tuple(t.config.seed for t, _ in done),
                nll=tuple(nll),
                mean=mean,
                se=se,
                paper=paper if config.q == "implicit" else None,
                steps=tuple(r.step or 0 for _, r in done),
                train_seconds=tuple(r.train_seconds or 0.0 for _, r in done),
                devices=tuple(sorted({r.device or "?" for _, r in done})),
            )
        )
    return tuple(cells)


def evaluation_words(spec: SweepSpec) -> str:
    e = spec.evaluation
    images = "the whole test split" if e.n_test is None else f"{e.n_test:,} test images"
    how = f"{e.chains} chains x {e.steps:,} distributions" if e.estimator == "ais" else ""
    how = f"k = {e.k:,}" if e.estimator == "is" else how
    return f"{e.estimator}{f' ({how})' if how else ''} on {images} (seed {e.seed})"


def collect_results(spec: SweepSpec, out: Path, failures: dict[str, str] | None = None) -> SweepResults:
    """The sweep's results as its files hold them now; `failures` gives the reasons of trials that failed."""
    rows = {t.name: _row(t, spec, out, failures or {}) for t in spec.trials}
    return SweepResults(
        spec=spec.name,
        description=spec.description,
        budget=spec.budget.describe(),
        evaluation=evaluation_words(spec),
        written=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        cells=_cells(spec, rows),
        trials=tuple(rows.values()),
    )


# -- Markdown --------------------------------------------------------------------------------------------
def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def cell_text(cell: Cell) -> str:
    """'95.31 ± 0.12 (paper 90.23)'; '–' before any seed is done."""
    if cell.mean is None:
        return "–"
    se = f" ± {cell.se:.2f}" if cell.se is not None else ""
    paper = f" (paper {cell.paper:.2f})" if cell.paper is not None else ""
    return f"{cell.mean:.2f}{se}{paper}"


def _title(setting: dict[str, Any]) -> str:
    return ", ".join(f"{a} = {v}" for a, v in setting.items() if a not in TABLE_AXES)


def table1_markdown(cells: tuple[Cell, ...]) -> str:
    """One Table-1-shaped Markdown table (data sets x l and K) per setting of the other axes."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(_title(cell.setting), []).append(cell)
    parts = []
    for title, group in groups.items():
        columns = list(dict.fromkeys((c.latent_dim, c.k) for c in group))
        rows = list(dict.fromkeys(c.dataset for c in group))
        by_place = {(c.dataset, c.latent_dim, c.k): c for c in group}
        lines = [f"**{title}**\n" if title else ""]
        lines.append("| data | " + " | ".join(f"l = {l}, K = {k}" for l, k in columns) + " |")
        lines.append("|---|" + "---|" * len(columns))
        for dataset in rows:
            texts = [cell_text(by_place[(dataset, l, k)]) if (dataset, l, k) in by_place else "" for l, k in columns]
            lines.append(f"| {dataset} | " + " | ".join(texts) + " |")
        parts.append("\n".join(line for line in lines if line))
    return "\n\n".join(parts) + "\n"


def cells_markdown(cells: tuple[Cell, ...]) -> str:
    """Every cell with its seeds and the budget it had: steps reached, training time, device."""
    lines = [
        "| setting | method | seeds done | test NLL, mean ± s.e. | paper | steps | training minutes | device |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        setting = ", ".join(f"{a} = {v}" for a, v in c.setting.items())
        steps = (
            "–" if not c.steps else f"{min(c.steps):,}" + (f"–{max(c.steps):,}" if max(c.steps) > min(c.steps) else "")
        )
        minutes = "–" if not c.train_seconds else f"{sum(c.train_seconds) / len(c.train_seconds) / 60:.1f}"
        mean = "–" if c.mean is None else f"{c.mean:.2f}" + (f" ± {c.se:.2f}" if c.se is not None else "")
        lines.append(
            f"| {setting} | {c.method.upper()} | {len(c.seeds)} of {len(c.trials)} | {mean} | {_number(c.paper)} "
            f"| {steps} | {minutes} | {', '.join(c.devices) or '–'} |"
        )
    return "\n".join(lines) + "\n"


def results_markdown(results: SweepResults) -> str:
    counts = results.counts
    failed = [t for t in results.trials if t.state == "failed"]
    text = (
        f"# Sweep `{results.spec}`: test NLL beside the paper's Table 1\n\n"
        + (f"{results.description}\n\n" if results.description else "")
        + f"Budget per trial: {results.budget}. Test NLL (nats, lower is better): {results.evaluation}; "
        "mean ± standard error over the seeds that finished; the paper's value is IWAVB's with the conv networks, "
        f"adaptive contrast and 150,000 steps (Table 1). Written {results.written} by `python -m iwavb sweep`; "
        f"{counts['done']} of {len(results.trials)} trials done, {counts['failed']} failed, "
        f"{counts['unfinished']} unfinished.\n\n"
        + table1_markdown(results.cells)
        + "\n## Each cell and its budget\n\n"
        + cells_markdown(results.cells)
    )
    if failed:
        text += "\n## Failed trials\n\n" + "".join(f"- `{t.name}`: {t.reason}\n" for t in failed)
    return text


# -- files -------------------------------------------------------------------------------------------------
def write_results(results: SweepResults, out: Path) -> tuple[Path, Path]:
    """`results.md` and `results.json` in the sweep's folder, atomically."""
    markdown, data = out / "results.md", out / "results.json"
    atomic_write_bytes(markdown, results_markdown(results).encode())
    content = {"format": RESULTS_FORMAT, "results": dataclasses.asdict(results)}
    atomic_write_bytes(data, (json.dumps(content, indent=1) + "\n").encode())
    return markdown, data


def load_results(out: Path) -> SweepResults:
    """A sweep's `results.json`; a SweepError that names the file when it cannot be read."""
    path = out / "results.json"
    try:
        content = json.loads(path.read_text())
        if not isinstance(content, dict) or content.get("format") != RESULTS_FORMAT:
            raise ValueError("not the results of a sweep")
        return from_json(SweepResults, content.get("results"), str(path))
    except (OSError, ValueError) as err:  # SchemaError is a ValueError
        raise SweepError(f"{path}: {err}") from None


def list_sweeps(folder: Path | None = None) -> list[Path]:
    """The sweep folders (those with results) under `folder`, default the runs folder's `sweeps/`, newest first."""
    folder = folder if folder is not None else settings.runs_dir() / "sweeps"
    if not folder.is_dir():
        return []
    found = [p.parent for p in folder.glob("*/results.json")]
    return sorted(found, key=lambda p: (p / "results.json").stat().st_mtime, reverse=True)


def trial_entries(out: Path) -> list[Entry]:
    """The sweep's trial checkpoints as the app's catalogue lists runs, so that the app can open any of them."""
    return [Entry(e.path, "run", e.meta, e.error, e.path.stem) for e in list_checkpoints(out / "trials")]
