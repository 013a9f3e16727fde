"""The trials' progress as the live view shows it: a small torch-free class that a Ray actor holds.

Trials report (phase, fraction) as they go; the driver reads a snapshot a few times a second. On Ray it is
one actor of no CPU, so that trials on any node of a cluster can report to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

EVAL_SHARE = 0.5  # of a trial's progress: its evaluation's (AIS of the paper costs about as much as training)


@dataclass(frozen=True)
class TrialProgress:
    phase: str  # train or eval
    fraction: float  # of that phase
    since: float  # time.time() of its first report

    @property
    def overall(self) -> float:
        """A rough share of the whole trial done: training then evaluation."""
        if self.phase == "eval":
            return 1 - EVAL_SHARE + EVAL_SHARE * self.fraction
        return (1 - EVAL_SHARE) * self.fraction


class Board:
    """Trial name -> its latest progress, while it runs."""

    def __init__(self) -> None:
        self.trials: dict[str, TrialProgress] = {}

    def report(self, name: str, phase: str, fraction: float) -> None:
        since = self.trials[name].since if name in self.trials else time.time()
        self.trials[name] = TrialProgress(phase, fraction, since)

    def forget(self, name: str) -> None:
        self.trials.pop(name, None)

    def snapshot(self) -> dict[str, TrialProgress]:
        return dict(self.trials)
