"""Training in a terminal: a tqdm bar with the bound, periodic checkpoints, Ctrl-C and NaN handled."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm

from ..core.config import objective_label
from .trainer import Trainer, TrainingDiverged

DIVERGED, INTERRUPTED = 3, 130  # exit statuses


def train_with_progress(trainer: Trainer, save: Callable[[], None] | None = None, minutes: float | None = None) -> int:
    """Run the trainer to its step total (or for `minutes`), calling `save` at every validation.

    Returns 0, or DIVERGED after a NaN (the trainer then holds the last good state), or INTERRUPTED.
    """
    label = objective_label(trainer.config.q)
    deadline = time.monotonic() + 60 * minutes if minutes else None
    bar = tqdm(total=trainer.config.steps, initial=trainer.step, unit="step", dynamic_ncols=True)
    try:
        for record in trainer.run():
            bar.update(record.step - bar.n)
            postfix = {label: f"{record.train_bound:.2f}", "it/s": f"{record.steps_per_s:.0f}"}
            if record.disc_accuracy is not None:
                postfix["T acc"] = f"{record.disc_accuracy:.2f}"
            if record.log_px is not None:
                postfix["log p(x)"] = f"{record.log_px:.2f}"
            if record.valid_bound is not None:
                postfix["valid"] = f"{record.valid_bound:.2f}"
                if save is not None:
                    save()
            bar.set_postfix(postfix)
            if deadline is not None and time.monotonic() > deadline:
                trainer.stop()
    except TrainingDiverged as err:
        print(f"\n{err}", file=sys.stderr)
        return DIVERGED
    except KeyboardInterrupt:
        print("\ninterrupted: keeping the state reached so far", file=sys.stderr)
        return INTERRUPTED
    finally:
        bar.close()
    return 0
