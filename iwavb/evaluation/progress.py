"""Evaluation in a terminal: `evaluate_checkpoint` with a tqdm bar counted in test images."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ..data.splits import DataSplits
from .evaluate import EvalResult, EvalSettings, evaluate_checkpoint, evaluation_count


def evaluate_with_progress(
    checkpoint: Path, settings: EvalSettings, data: DataSplits, desc: str | None = None, write: bool = True
) -> EvalResult:
    """iwavb.evaluation.evaluate.evaluate_checkpoint with a tqdm bar counted in test images."""
    n = evaluation_count(data, settings.n_test)
    with tqdm(total=n, desc=desc, unit="img", dynamic_ncols=True) as bar:

        def progress(fraction: float) -> None:
            bar.update(fraction * n - bar.n)

        return evaluate_checkpoint(checkpoint, settings, data=data, write=write, progress=progress)
