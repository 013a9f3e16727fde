"""A run's metrics history: one Record every `log_every` steps, stored in checkpoints as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_validation(history: Sequence[Record]) -> float | None:
    """The latest validation bound (or objective) of a run's history; None before the first."""
    return next((r.valid_bound for r in reversed(history) if r.valid_bound is not None), None)
