"""Regenerate a shipped checkpoint from its manifest entry: train, save (float16), evaluate, record.

python -m iwavb reproduce toy-iwavb-k10      # train, save pretrained/toy-iwavb-k10.safetensors, evaluate
python -m iwavb reproduce --all --skip-existing
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import replace

from ..data.loading import load_dataset
from ..data.splits import DataSplits
from ..evaluation.evaluate import EvalResult, eval_path, read_eval_results, same_estimate
from ..evaluation.progress import evaluate_with_progress
from ..evaluation.truth import truth_probe
from ..training.device import device_description
from ..training.progress import train_with_progress
from ..training.trainer import Trainer
from .pretrained import Estimate, ManifestEntry, ManifestResult, load_manifest, save_manifest


def train_entry(entry: ManifestEntry, device: str = "auto") -> ManifestResult:
    """Train an entry's configuration from scratch and write its float16 checkpoint; return the run's facts."""
    config = replace(entry.config, device=device)
    data = load_dataset(config.dataset)
    trainer = Trainer(config, data=data, truth=truth_probe(config, data))
    print(
        f"{entry.name}: {config.title} on {config.dataset}, K={config.k}, l={config.latent_dim}, "
        f"{config.steps} steps on {device_description(trainer.device)}"
    )
    status = train_with_progress(trainer)
    if status != 0:
        raise RuntimeError(f"{entry.name}: training did not finish (status {status}); nothing was written")
    trainer.save(entry.file, extra={"pretrained": entry.name}, shipped=True, replace_other=True)
    eval_path(entry.file).unlink(missing_ok=True)  # its estimates were of the weights just replaced
    return ManifestResult(
        steps=trainer.step,
        train_seconds=round(trainer.elapsed_s, 1),
        hardware=device_description(trainer.device),
        trained_on=time.strftime("%Y-%m-%d"),
    )


def _estimate(result: EvalResult) -> Estimate:
    return Estimate(
        estimator=result.estimator,
        nll=round(result.nll, 3),
        n_images=result.n_images,
        stderr=None if result.nll_se is None else round(result.nll_se, 3),
        seconds_per_1000=round(result.seconds_per_1000, 1),
        device=result.device,
    )


def evaluate_entry(entry: ManifestEntry, device: str = "auto", reuse: bool = False) -> tuple[Estimate, ...]:
    """Run each of the entry's test-NLL estimates on its checkpoint (results also land in its .eval.json).

    With `reuse`, an estimate already saved beside the checkpoint with the same settings is taken as is."""
    saved = read_eval_results(entry.file) if reuse else []
    data: DataSplits | None = None  # loaded once, for the first estimate that has to run
    estimates = []
    for wanted in entry.evaluations:
        settings = replace(wanted, device=device)
        result = next(
            (
                r
                for r in saved
                if same_estimate(r.settings, dataclasses.asdict(settings)) and r.checkpoint_step == entry.config.steps
            ),
            None,
        )
        if result is None:
            if data is None:
                data = load_dataset(entry.config.dataset)
            result = evaluate_with_progress(entry.file, settings, data, desc=f"{entry.name}: {settings.estimator}")
        print(f"  {result.summary()}")
        estimates.append(_estimate(result))
    return tuple(estimates)


def reproduce(names: list[str], device: str = "auto", skip_existing: bool = False, skip_eval: bool = False) -> None:
    """Train (unless the file exists and `skip_existing`) and evaluate entries, updating the manifest."""
    known = {e.name: e for e in load_manifest()}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"not in the manifest: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in names:
        entry = known[name]
        kept = skip_existing and entry.file.exists()
        result = entry.result if kept else train_entry(entry, device)
        if not skip_eval:
            result = replace(result, nll=evaluate_entry(entry, device, reuse=kept))
        # Re-read before writing: another reproduce process may have updated other entries meanwhile.
        save_manifest([replace(e, result=result) if e.name == name else e for e in load_manifest()])
