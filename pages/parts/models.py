"""The models a page can look at: this session's runs (shared with their training threads) and checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from iwavb.artefacts.catalog import Entry, find_four, list_entries
from iwavb.training.config import TrainConfig
from pages.parts.loads import checkpoint_model
from pages.parts.session import SLOTS, job

if TYPE_CHECKING:
    from iwavb.core.model import LatentVariableModel
    from iwavb.training.trainer import Trainer


@dataclass(frozen=True)
class ModelChoice:
    """A model a page can look at: a run of this session (shared with its training thread) or a checkpoint."""

    label: str
    config: TrainConfig
    trainer: Trainer | None = None
    path: Path | None = None

    @contextmanager
    def model(self) -> Iterator[LatentVariableModel]:
        if self.trainer is not None:
            from iwavb.app.views import viewing

            with viewing(self.trainer) as model:
                yield model
        else:
            assert self.path is not None
            yield checkpoint_model(str(self.path), self.path.stat().st_mtime)[1]


def session_models() -> list[ModelChoice]:
    """The runs of this session that have a model: the Train page's and the four of Compare."""
    choices = []
    for slot in SLOTS:
        current = job(slot)
        if current is None:
            continue
        snap = current.snapshot()
        for index, run in enumerate(snap.runs):
            trainer = current.trainer(index)
            if trainer is not None:
                choices.append(
                    ModelChoice(f"{run.name} ({slot.title()} page, step {run.step:,})", trainer.config, trainer=trainer)
                )
    return choices


def checkpoint_models() -> list[ModelChoice]:
    """Usable checkpoints in pretrained/ and the runs folder (a broken file is left out here, and shown on
    the Checkpoints page with what is wrong with it)."""
    return [
        ModelChoice(f"{e.title} ({e.source})", e.config, path=e.path)
        for e in list_entries()
        if e.usable and e.config is not None
    ]


def four_checkpoints(dataset: str, latent: int, k: int) -> dict[str, Entry]:
    """method -> catalog entry of a checkpoint for Compare's "load the four"."""
    return find_four(list_entries(), dataset, latent, k)
