"""The checkpoints the app can show: curated ones in `pretrained/` and the user's own in the runs folder.

Curated files take their title, description and test result from `pretrained/manifest.json`
(`iwavb.artefacts.pretrained`); files not named there are listed all the same. A run's log-likelihood evaluation,
when one has been made, sits beside it as `<stem>.eval.json`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import settings
from ..core.config import METHODS
from ..errors import IWAVBError
from ..evaluation.evaluate import EvalError, EvalSettings, eval_path, read_eval_results
from ..files import FileSignature, file_signature
from ..schema import SchemaError
from ..training.checkpoint import CheckpointError, CheckpointMeta, read_metadata
from ..training.config import TrainConfig
from ..training.runs import CheckpointEntry, list_checkpoints
from .pretrained import ManifestEntry, load_manifest

Source = Literal["pretrained", "run"]
MOST_EXACT_FIRST = ("grid", "ais", "is")  # of log p(x): exact on a grid (l = 2), then AIS, then importance sampling
DEFAULT_SEED = EvalSettings().seed  # the test images every estimate is on unless it says otherwise


class DeleteRefused(IWAVBError):
    """A run was not deleted; the message says why (gone, changed, someone else's, a link, not a run)."""


@dataclass(frozen=True)
class Entry:
    path: Path
    source: Source
    meta: CheckpointMeta | None  # None when its header cannot be read
    error: str | None  # why it cannot be used (its header or its weights); None when it can
    title: str
    description: str = ""
    signature: FileSignature | None = None  # of the file as listed: a deletion must find the same file
    link: bool = False

    @property
    def config(self) -> TrainConfig | None:
        """Its training settings, when its header can be read (even if its weights cannot be used)."""
        return self.meta.config if self.meta is not None else None

    @property
    def usable(self) -> bool:
        """Whether it can be loaded, evaluated and trained further: header, shapes and finite weights all fine."""
        return self.meta is not None and self.error is None

    def deletable_by(self, owner: str | None) -> bool:
        """Only a run of the runs folder, not a link, and only by its owner (iwavb.training.runs.owner_tag)."""
        return (
            self.source == "run"
            and not self.link
            and owner is not None
            and self.meta is not None
            and self.meta.owner == owner
        )


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
        description = info.description if info else ""
        entries.append(Entry(e.path, source, e.meta, e.error, e.path.stem, description, e.signature, e.link))
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


def delete_run(path: Path, owner: str, expected: FileSignature | None) -> None:
    """Delete exactly the run that was chosen, and its evaluation, or nothing (DeleteRefused says why).

    It must still be the file that was listed (`expected`: its signature then), directly in the runs folder,
    not a link (links are never followed to delete), and its owner must be `owner`."""
    folder = settings.runs_dir()
    if path.parent.resolve() != folder.resolve() or path.name.startswith("."):
        raise DeleteRefused(f"{path} is not in the runs folder {folder}: only your own runs can be deleted")
    current = file_signature(path)
    if current is None:
        raise DeleteRefused(f"{path.name} is no longer there (deleted in another tab or session?): nothing was deleted")
    if path.is_symlink():
        raise DeleteRefused(f"{path.name} is a link: the app deletes neither links nor what they point to")
    if expected is not None and current != expected:
        raise DeleteRefused(f"{path.name} has changed since it was listed (saved again?): look at it again first")
    try:
        meta = read_metadata(path)
    except CheckpointError as err:
        raise DeleteRefused(f"{path.name}: its owner cannot be read, so the app does not delete it ({err})") from err
    if meta.owner is None or meta.owner != owner:
        raise DeleteRefused(
            f"{path.name} belongs to another session or name (or was made outside the app): you can load it, "
            "not delete it"
        )
    try:
        path.unlink()
        evaluation = eval_path(path)
        if evaluation.is_symlink() or evaluation.is_file():
            evaluation.unlink(missing_ok=True)  # a link is removed, never what it points to
    except OSError as err:  # a read-only folder, or one that vanished
        raise DeleteRefused(f"{path.name} could not be deleted: {err.strerror}") from err


def find_four(entries: Iterable[Entry], dataset: str, latent_dim: int, k: int) -> dict[str, Entry]:
    """For Compare: one readable checkpoint per method with this data set and latent size (K > 1 methods at
    this K), pretrained preferred; a method with none is absent."""
    found: dict[str, Entry] = {}
    for entry in entries:
        cfg = entry.config
        if (
            cfg is None
            or not entry.usable
            or cfg.dataset != dataset
            or cfg.latent_dim != latent_dim
            or cfg.method in found
        ):
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
            SavedEstimate(-r.nll, r.estimator, r.n_images, r.settings.get("seed", DEFAULT_SEED), r.checkpoint_step)
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
