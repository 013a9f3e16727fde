"""The checkpoints the app can show: curated ones in `pretrained/` and the user's own in the runs folder.

Curated files take their title, description and test result from `pretrained/manifest.json`
(`iwavb.pretrained`); files not named there are listed all the same. A run's log-likelihood evaluation,
when one has been made, sits beside it as `<stem>.eval.json`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import METHODS, TrainConfig
from .pretrained import load_manifest, pretrained_dir
from .runs import CheckpointEntry, list_checkpoints, runs_dir

Source = Literal["pretrained", "run"]
MOST_EXACT_FIRST = ("grid", "ais", "is")  # of log p(x), most exact first: exact on a grid (l = 2), AIS, importance sampling


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


def read_manifest() -> dict[str, Any]:
    """File name -> manifest entry; a broken manifest lists nothing (the files are still shown)."""
    try:
        return {f"{e.name}.safetensors": e for e in load_manifest()}
    except ValueError:
        return {}


def _entries(found: Iterable[CheckpointEntry], source: Source, manifest: dict[str, Any]) -> list[Entry]:
    entries = []
    for e in found:
        info = manifest.get(e.path.name)
        entries.append(Entry(e.path, source, e.meta, e.error, e.path.stem, info.description if info else ""))
    return entries


def list_entries() -> list[Entry]:
    """Pretrained checkpoints first (in manifest order where listed), then the user's runs, newest first."""
    manifest = read_manifest()
    order = {name: i for i, name in enumerate(manifest)}
    pretrained = sorted(_entries(list_checkpoints(pretrained_dir()), "pretrained", manifest),
                        key=lambda e: (order.get(e.path.name, len(order)), e.path.name))
    return pretrained + _entries(list_checkpoints(runs_dir()), "run", {})


def delete_run(path: Path) -> None:
    """Delete one of the user's runs (and its evaluation); anything outside the runs folder is refused."""
    folder = runs_dir().resolve()
    target = path.resolve()
    if target.parent != folder:
        raise PermissionError(f"{path} is not in the runs folder {folder}; only your own runs can be deleted")
    from .evaluate import eval_path

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
    how: str  # in words, e.g. "log p(x), ais on 100 test images"
    n_images: int  # with `seed`, the images: iwavb.evaluate.evaluation_images(data, n_images, seed)
    seed: int


def eval_log_px(path: Path, step: int | None = None) -> SavedEstimate | None:
    """The most exact estimate among the results in the checkpoint's evaluation file and, for a curated
    checkpoint, the manifest's; None when there are none. With `step` (the checkpoint's), results measured
    on other weights (an earlier step, before a resumed run went on) are left out."""
    from .evaluate import EvalError, EvalSettings, read_eval_results

    default_seed = EvalSettings().seed
    try:
        records = [{**r.to_dict(), "seed": r.settings.get("seed", default_seed), "step": r.checkpoint_step}
                   for r in read_eval_results(path)]
    except EvalError:
        records = []  # an unreadable evaluation file is as good as none
    manifest = read_manifest() if path.resolve().parent == pretrained_dir().resolve() else {}
    if path.name in manifest:
        entry = manifest[path.name]
        reported = entry.result.get("nll", [])
        seeds = {e.get("estimator"): e.get("seed", default_seed) for e in entry.evaluations}
        if isinstance(reported, list):
            records += [{**r, "seed": seeds.get(r.get("estimator"), default_seed), "step": entry.result.get("steps")}
                        for r in reported if isinstance(r, dict)]
    records = [r for r in records if isinstance(r.get("nll"), (int, float)) and isinstance(r.get("n_images"), int)
               and (step is None or r["step"] == step)]
    if not records:
        return None
    best = min(records, key=lambda r: MOST_EXACT_FIRST.index(r.get("estimator"))
               if r.get("estimator") in MOST_EXACT_FIRST else len(MOST_EXACT_FIRST))
    seed = int(best["seed"])
    how = (f"log p(x), {best.get('estimator', 'estimate')} on {best['n_images']} test images"
           + ("" if seed == default_seed else f" (seed {seed})"))  # other images: not comparable with the default
    return SavedEstimate(-float(best["nll"]), how, best["n_images"], seed)
