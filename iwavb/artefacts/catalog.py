"""The checkpoints the app can show: curated ones in `pretrained/` and the user's own in the runs folder.

Curated files take their title, description and test result from `pretrained/manifest.json`
(`iwavb.artefacts.pretrained`); files not named there are listed all the same. A run's log-likelihood evaluation,
when one has been made, sits beside it as `<stem>.eval.json`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import settings
from ..core.config import METHODS
from ..evaluation.evaluate import EvalError, EvalSettings, eval_path, read_eval_results
from ..schema import SchemaError
from ..training.config import TrainConfig
from ..training.runs import CheckpointEntry, list_checkpoints
from .pretrained import ManifestEntry, load_manifest

Source = Literal["pretrained", "run"]
MOST_EXACT_FIRST = ("grid", "ais", "is")  # of log p(x): exact on a grid (l = 2), then AIS, then importance sampling
DEFAULT_SEED = EvalSettings().seed  # the test images every estimate is on unless it says otherwise


@dataclass(frozen=True)
class Entry:
    path: Path
    source: Source
    meta: dict[str, Any] | None  # None when unreadable
    error: str | None
    title: str
    description: str = ""

    @property
    def config(self) -> TrainConfig | None:
        if self.meta is None:
            return None
        try:
            return TrainConfig.from_dict(self.meta["config"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def deletable(self) -> bool:
        return self.source == "run"


def read_manifest() -> dict[str, ManifestEntry]:
    """File name -> manifest entry; a broken manifest lists nothing (the files are still shown)."""
    try:
        return {f"{e.name}.safetensors": e for e in load_manifest()}
    except SchemaError:
        return {}


def _entries(found: Iterable[CheckpointEntry], source: Source, manifest: dict[str, ManifestEntry]) -> list[Entry]:
    entries = []
    for e in found:
        info = manifest.get(e.path.name)
        entries.append(Entry(e.path, source, e.meta, e.error, e.path.stem, info.description if info else ""))
    return entries


def list_entries() -> list[Entry]:
    """Pretrained checkpoints first (in manifest order where listed), then the user's runs, newest first."""
    manifest = read_manifest()
    order = {name: i for i, name in enumerate(manifest)}
    pretrained = sorted(
        _entries(list_checkpoints(settings.pretrained_dir()), "pretrained", manifest),
        key=lambda e: (order.get(e.path.name, len(order)), e.path.name),
    )
    return pretrained + _entries(list_checkpoints(settings.runs_dir()), "run", {})


def delete_run(path: Path) -> None:
    """Delete one of the user's runs (and its evaluation); anything outside the runs folder is refused."""
    folder = settings.runs_dir().resolve()
    target = path.resolve()
    if target.parent != folder:
        raise PermissionError(f"{path} is not in the runs folder {folder}; only your own runs can be deleted")
    target.unlink()
    eval_path(target).unlink(missing_ok=True)


def find_four(entries: Iterable[Entry], dataset: str, latent_dim: int, k: int) -> dict[str, Entry]:
    """For Compare: one readable checkpoint per method with this data set and latent size (K > 1 methods at
    this K), pretrained preferred; a method with none is absent."""
    found: dict[str, Entry] = {}
    for entry in entries:
        cfg = entry.config
        if cfg is None or cfg.dataset != dataset or cfg.latent_dim != latent_dim or cfg.method in found:
            continue
        if cfg.k in (1, k):
            found[cfg.method] = entry
    return {m: found[m] for m in METHODS if m in found}


@dataclass(frozen=True)
class SavedEstimate:
    """A test log p(x) saved for a checkpoint, and the seeded test images it was measured on."""

    log_px: float  # mean log p(x) over the images: minus the NLL
    estimator: str  # grid | ais | is
    n_images: int  # with `seed`, the images: iwavb.evaluation.evaluate.evaluation_images(data, n_images, seed)
    seed: int
    step: int | None  # the checkpoint's training step when it was measured

    @property
    def how(self) -> str:
        """In words, e.g. "log p(x), ais on 100 test images"; a seed other than the default is said (other images)."""
        return f"log p(x), {self.estimator} on {self.n_images} test images" + (
            "" if self.seed == DEFAULT_SEED else f" (seed {self.seed})"
        )


def _saved_estimates(path: Path) -> list[SavedEstimate]:
    """Every estimate saved for a checkpoint: its evaluation file's, and for a curated checkpoint the manifest's."""
    try:
        found = [
            SavedEstimate(-r.nll, r.estimator, r.n_images, int(r.settings.get("seed", DEFAULT_SEED)), r.checkpoint_step)
            for r in read_eval_results(path)
        ]
    except EvalError:
        found = []  # an unreadable evaluation file is as good as none
    manifest = read_manifest() if path.resolve().parent == settings.pretrained_dir().resolve() else {}
    entry = manifest.get(path.name)
    if entry is not None:
        seeds: dict[str, int] = {e.estimator: e.seed for e in entry.evaluations}
        found += [
            SavedEstimate(-e.nll, e.estimator, e.n_images, seeds.get(e.estimator, DEFAULT_SEED), entry.result.steps)
            for e in entry.result.nll
        ]
    return found


def _exactness(estimate: SavedEstimate) -> int:
    return (
        MOST_EXACT_FIRST.index(estimate.estimator) if estimate.estimator in MOST_EXACT_FIRST else len(MOST_EXACT_FIRST)
    )


def eval_log_px(path: Path, step: int | None = None) -> SavedEstimate | None:
    """The most exact estimate among the results in the checkpoint's evaluation file and, for a curated
    checkpoint, the manifest's; None when there are none. With `step` (the checkpoint's), results measured
    on other weights (an earlier step, before a resumed run went on) are left out."""
    found = [e for e in _saved_estimates(path) if step is None or e.step == step]
    return min(found, key=_exactness) if found else None
