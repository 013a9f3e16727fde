"""Test log-likelihood of a checkpoint, measured honestly (docs/background.md, "Measuring log-likelihood honestly").

Estimators of log p(x) (2.1), none of which uses the discriminator T:
    is    importance sampling, k samples: q itself for a Gaussian q, a widened Student-t fitted to q's
          samples for an implicit q (`importance`)
    ais   annealed importance sampling with HMC, the paper's estimator (`ais`)
    grid  exact, by quadrature on a grid over z; latent size 2 only (`grid`)
    auto  grid for l = 2, else is for a Gaussian q and ais for an implicit q

The test images are a seeded subset of the test split, binarised with the same seed, so every method and
every estimator sees the same images, and results can be compared image by image. The result is saved next
to the checkpoint as `<stem>.eval.json` (one entry per estimator; a new run replaces its estimator's entry).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from .. import __version__
from ..core.config import ModelConfig, help_text, whole_number
from ..core.model import LatentVariableModel, eval_mode
from ..data.loading import load_dataset
from ..data.splits import DataSplits, binarize
from ..errors import SettingError
from ..files import WriteError, atomic_write_bytes
from ..schema import from_json
from ..training.checkpoint import CheckpointError, load_checkpoint
from ..training.config import check_device_name, check_seed
from ..training.device import device_description, resolve_device
from .ais import STARTS, AISConfig, Progress, Schedule, Start, ais_images_per_call, model_ais_log_px, sub_progress
from .grid import posterior_grid
from .importance import ISConfig, model_importance_log_px

Estimator = Literal["auto", "is", "ais", "grid"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
_IS, _AIS = ISConfig(), AISConfig()  # their defaults are the defaults of the settings below
ALL_TEST_IMAGES = "all"  # how n_test = None (the whole test split) is spelled on the command line and in specs
DEFAULT_BATCH = 100  # images per batch of is and grid when batch_size is auto
EVAL_FORMAT = "iwavb-eval"
EVAL_FORMAT_VERSION = 1


class EvalError(CheckpointError):
    """An evaluation file could not be read or written; the message names the file."""


@dataclass(frozen=True)
class EvalSettings:
    """How a test log-likelihood is estimated, and on which images. The CLI's `eval` options are built from
    these fields; the IS and AIS defaults are those of ISConfig and AISConfig."""

    estimator: Estimator = field(
        default="auto",
        metadata=help_text(
            "is, ais, grid (l = 2) or auto: grid for l = 2, else is for a Gaussian q and ais for an implicit q"
        ),
    )
    n_test: int | None = field(
        default=1_000,
        metadata=help_text(f"test images, a seeded subset, or '{ALL_TEST_IMAGES}' (None) for the whole test split"),
    )
    seed: int = field(default=0, metadata=help_text("seed of the subset, its binarisation and the estimator"))
    k: int = field(default=_IS.k, metadata=help_text("importance samples per image (is)"))
    fit_samples: int = _IS.fit_samples
    widen: float = _IS.widen
    df: float = _IS.df
    chains: int = field(default=_AIS.chains, metadata=help_text("AIS chains per image (the default is the paper's)"))
    steps: int = field(
        default=_AIS.steps, metadata=help_text("AIS intermediate distributions (the default is the paper's)")
    )
    leapfrog: int = field(default=_AIS.leapfrog, metadata=help_text("leapfrog steps per HMC move (ais)"))
    schedule: Schedule = field(default=_AIS.schedule, metadata=help_text("AIS annealing schedule"))
    start: Start = field(
        default="prior",
        metadata=help_text(
            "AIS start: the prior (one yardstick for all four methods) or q (an implicit q's moment-matched Gaussian)"
        ),
    )
    grid_extent: float = 5.0  # grid: z in [-extent, extent]^2
    grid_resolution: int = 301  # grid: points per axis
    batch_size: int | None = field(
        default=None,
        metadata=help_text(
            "images per batch", f"auto: for ais as many as the device's memory holds, else {DEFAULT_BATCH}"
        ),
    )
    device: str = field(default="auto", metadata=help_text("auto (CUDA when present), cpu or cuda[:N]"))

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise SettingError(
                "estimator", f"unknown estimator {self.estimator!r}; choose one of {', '.join(ESTIMATORS)}"
            )
        if self.start not in STARTS:
            raise SettingError("start", f"unknown AIS start {self.start!r}; choose one of {', '.join(STARTS)}")
        self.ais_config()  # AISConfig checks the schedule, chains, steps and leapfrog steps
        optional = [name for name in ("n_test", "batch_size") if getattr(self, name) is not None]
        for name in ["k", "grid_resolution", *optional]:
            whole_number(name, getattr(self, name), 1)
        whole_number("fit_samples", self.fit_samples, 2)  # a covariance is fitted to them
        if not (self.df > 2 and self.widen > 0 and math.isfinite(self.df * self.widen * self.grid_extent)):
            raise SettingError("df", f"need finite df > 2 and widen > 0, got df={self.df}, widen={self.widen}")
        if not self.grid_extent > 0:
            raise SettingError("grid_extent", f"grid_extent must be positive, got {self.grid_extent}")
        check_seed(self.seed)
        check_device_name(self.device)

    def ais_config(self) -> AISConfig:
        return AISConfig(chains=self.chains, steps=self.steps, leapfrog=self.leapfrog, schedule=self.schedule)

    def is_config(self) -> ISConfig:
        return ISConfig(k=self.k, fit_samples=self.fit_samples, widen=self.widen, df=self.df)

    def resolved_estimator(self, model: ModelConfig) -> Literal["is", "ais", "grid"]:
        """What `auto` means for a model; `grid` on a model with l != 2 is an error."""
        if self.estimator == "grid" and model.latent_dim != 2:
            raise ValueError(
                f"the grid estimator needs latent size 2, this model has {model.latent_dim}; use is or ais"
            )
        if self.estimator != "auto":
            return self.estimator
        if model.latent_dim == 2:
            return "grid"
        return "is" if model.q == "gaussian" else "ais"

    def cost(self, estimator: str) -> str:
        """Decoder passes per image, in words: what an estimator's run will cost."""
        if estimator == "is":
            return f"{self.k:,} decoder passes per image (k)"
        if estimator == "ais":
            passes = self.ais_config().passes_per_image
            return (
                f"{passes:,} decoder forward+backward passes per image ({self.chains} chains x {self.steps} "
                f"distributions x {self.leapfrog} leapfrog steps, + a tuning chain)"
            )
        batch = self.batch_size or DEFAULT_BATCH
        return f"{self.grid_resolution**2:,} decoder passes per batch of {batch} images (grid)"


# Settings that change how an estimate is computed but not what it estimates, nor on which images.
RUN_ONLY_SETTINGS = ("device", "batch_size")


def same_estimate(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two estimates' settings (EvalSettings as dicts) measure the same thing on the same images."""
    return {k: v for k, v in a.items() if k not in RUN_ONLY_SETTINGS} == {
        k: v for k, v in b.items() if k not in RUN_ONLY_SETTINGS
    }


@dataclass(frozen=True)
class EvalResult:
    estimator: str  # is | ais | grid (auto resolved)
    nll: float  # -mean_i log p(x_i), nats
    nll_se: float | None  # standard error of that mean over the images (None for one image)
    n_images: int
    seconds: float  # estimator time (the model and data loading not included)
    seconds_per_1000: float  # seconds per 1,000 images
    device: str
    settings: dict[str, Any]  # EvalSettings as a dict
    method: str
    dataset: str
    latent_dim: int
    checkpoint: str  # file name of the checkpoint (the JSON sits beside it)
    checkpoint_step: int  # its training step when evaluated
    created: str
    library_version: str
    diagnostics: dict[str, float]  # e.g. AIS's mean acceptance rate
    log_px: tuple[float, ...]  # per image, in subset order: for paired comparisons between checkpoints

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        se = f" +- {self.nll_se:.2f}" if self.nll_se is not None else ""
        return (
            f"test NLL {self.nll:.2f}{se} nats ({self.estimator}, {self.n_images} images, "
            f"{self.seconds_per_1000:.0f} s per 1,000 images on {self.device})"
        )


def evaluation_count(data: DataSplits, n_test: int | None) -> int:
    """How many test images an evaluation of `n_test` (None: all) uses."""
    return len(data.test) if n_test is None else min(n_test, len(data.test))


def evaluation_images(data: DataSplits, n_test: int | None, seed: int) -> torch.Tensor:
    """A seeded subset of the test split, binarised with the same seed: (N, D) float 0/1, on the CPU."""
    images = data.test.images.cpu()
    generator = torch.Generator().manual_seed(seed)
    n = evaluation_count(data, n_test)
    if n < images.shape[0]:
        images = images[torch.randperm(images.shape[0], generator=generator)[:n].sort().values]
    return binarize(images, generator)


def images_per_batch(model: LatentVariableModel, settings: EvalSettings, device: torch.device) -> int:
    """settings.batch_size, or when auto: for AIS as many images as one call's memory holds (all of a GPU's
    test images of an mlp model at once), else DEFAULT_BATCH."""
    if settings.batch_size is not None:
        return settings.batch_size
    if settings.resolved_estimator(model.config) == "ais":
        return ais_images_per_call(model, device, settings.ais_config())
    return DEFAULT_BATCH


def estimate_log_px(
    model: LatentVariableModel, x: torch.Tensor, settings: EvalSettings, progress: Progress | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """log p(x) (N,) of binary images x (N, D), on the CPU, and the estimator's diagnostics.

    The model is put in eval mode (batch norm) for the run and restored after; the estimator's random
    numbers come from `settings.seed`, so a rerun on the same device reproduces it."""
    estimator = settings.resolved_estimator(model.config)
    device = next(model.parameters()).device
    size = images_per_batch(model, settings, device)
    parts, acceptance = [], []
    devices = [device] if device.type == "cuda" else []
    with eval_mode(model), torch.random.fork_rng(devices=devices):
        torch.manual_seed(settings.seed)
        for first in range(0, x.shape[0], size):
            batch = x[first : first + size].to(device)
            share = batch.shape[0] / x.shape[0]
            if estimator == "ais":
                result = model_ais_log_px(
                    model,
                    batch,
                    settings.ais_config(),
                    settings.start,
                    settings.fit_samples,
                    sub_progress(progress, first / x.shape[0], share),
                )
                parts.append(result.log_px.cpu())
                acceptance.append(result.acceptance.cpu())
            elif estimator == "is":
                parts.append(model_importance_log_px(model, batch, settings.is_config()).cpu())
            else:
                parts.append(posterior_grid(model, batch, settings.grid_extent, settings.grid_resolution).log_px)
            if progress is not None:
                progress((first + batch.shape[0]) / x.shape[0])
    diagnostics = {"ais_acceptance": torch.cat(acceptance).mean().item()} if acceptance else {}
    return torch.cat(parts), diagnostics


def eval_path(checkpoint: str | Path) -> Path:
    """Where a checkpoint's evaluation results live: `<stem>.eval.json` beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.eval.json")


def read_eval_results(checkpoint: str | Path) -> list[EvalResult]:
    """The results saved beside a checkpoint ([] when none); a file that is not exactly what this version
    writes (every field checked by type, numbers finite, the settings valid) is an EvalError naming it."""
    path = eval_path(checkpoint)
    if not path.is_file():
        return []
    try:
        content = json.loads(path.read_text())
        if not isinstance(content, dict) or content.get("format") != EVAL_FORMAT:
            raise ValueError("not an IWAVB Lab evaluation")
        if not isinstance(content.get("results"), list):
            raise ValueError("no list of results")
        results = [from_json(EvalResult, r, f"results[{i}]") for i, r in enumerate(content["results"])]
        for i, r in enumerate(results):
            from_json(EvalSettings, r.settings, f"results[{i}].settings")
    except (OSError, ValueError, RecursionError) as err:  # SchemaError and JSONDecodeError are ValueErrors
        raise EvalError(f"{path}: could not read its evaluation results: {err}") from err
    return results


def write_eval_result(checkpoint: str | Path, result: EvalResult) -> Path:
    """Add `result` to the checkpoint's `<stem>.eval.json`, replacing an earlier one of the same estimator.

    Atomic; an earlier file that cannot be read is replaced (it held nothing recoverable)."""
    try:
        kept = [r for r in read_eval_results(checkpoint) if r.estimator != result.estimator]
    except EvalError:
        kept = []
    content = {
        "format": EVAL_FORMAT,
        "format_version": EVAL_FORMAT_VERSION,
        "results": [r.to_dict() for r in [*kept, result]],
    }
    path = eval_path(checkpoint)
    try:
        atomic_write_bytes(path, (json.dumps(content, indent=1, allow_nan=False) + "\n").encode())
    except WriteError as err:
        raise EvalError(str(err)) from err
    return path


def evaluate_checkpoint(
    checkpoint: str | Path,
    settings: EvalSettings = EvalSettings(),
    data: DataSplits | None = None,
    progress: Progress | None = None,
    write: bool = True,
) -> EvalResult:
    """Test NLL of a checkpoint on a seeded subset of its data set's test split; saved beside it if `write`.

    Raises CheckpointError (a bad checkpoint), DataError (its data set missing) or ValueError (settings)."""
    loaded = load_checkpoint(checkpoint)
    device = resolve_device(settings.device)
    model = loaded.build_model(device)
    estimator = settings.resolved_estimator(model.config)  # a bad choice fails before the data set is loaded
    data = data if data is not None else load_dataset(loaded.config.dataset)
    if data.name != loaded.config.dataset:
        raise ValueError(f"the checkpoint was trained on {loaded.config.dataset}, the data given are {data.name}")
    x = evaluation_images(data, settings.n_test, settings.seed)
    started = time.perf_counter()
    log_px, diagnostics = estimate_log_px(model, x, settings, progress)
    seconds = time.perf_counter() - started
    if not bool(torch.isfinite(log_px).all()):
        raise EvalError(
            f"{checkpoint}: the {estimator} estimate of log p(x) came out NaN or infinite on "
            f"{int((~torch.isfinite(log_px)).sum())} of {log_px.shape[0]} images; nothing was saved"
        )
    n = log_px.shape[0]
    result = EvalResult(
        estimator=estimator,
        nll=-log_px.mean().item(),
        nll_se=log_px.std().item() / math.sqrt(n) if n > 1 else None,
        n_images=n,
        seconds=seconds,
        seconds_per_1000=1000 * seconds / n,
        device=device_description(device),
        settings=dataclasses.asdict(settings),
        method=loaded.config.method,
        dataset=loaded.config.dataset,
        latent_dim=loaded.config.latent_dim,
        checkpoint=Path(checkpoint).name,
        checkpoint_step=loaded.step,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        library_version=__version__,
        diagnostics=diagnostics,
        log_px=tuple(round(v, 4) for v in log_px.tolist()),
    )
    if write:
        write_eval_result(checkpoint, result)
    return result
