"""A run's metrics history: one Record every `log_every` steps, stored in checkpoints as JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.model import LatentVariableModel


@dataclass(frozen=True)
class Record:
    """One row of the metrics history; `train_bound` is the mean over the last `log_every` steps."""

    step: int
    train_bound: float
    valid_bound: float | None
    disc_loss: float | None
    disc_accuracy: float | None
    steps_per_s: float
    elapsed_s: float
    # What the model really achieves, on a fixed validation subset (iwavb.evaluation.truth), where measured:
    # histories written before these fields existed load with None.
    log_px: float | None = None  # mean log p(x): exact on a grid for l = 2, an importance-sampled estimate above
    log_px_se: float | None = None  # that estimate's Monte Carlo standard error; None where it is exact
    log_px_bound: float | None = None  # the model's own bound (objective, with T) on the same images

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_validation(history: Sequence[Record]) -> float | None:
    """The latest validation bound (or objective) of a run's history; None before the first."""
    return next((r.valid_bound for r in reversed(history) if r.valid_bound is not None), None)


@dataclass(frozen=True)
class Truth:
    """log p(x) of a fixed subset, measured without T, beside the model's own bound on the same images."""

    log_px: float
    stderr: float | None  # None: exact
    bound: float


TruthProbe = Callable[["LatentVariableModel"], Truth]  # measures a model (in eval mode, no gradients)
