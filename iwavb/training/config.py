"""A training run's settings: one frozen dataclass, every default written once, here.

Settings left as None take the defaults of `default_widths` and `default_learning_rates` for the data set
and family; the resolved values are what a checkpoint stores. The CLI's `train` options are built from
these fields (their help is each field's metadata).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..core.config import (
    DEFAULT_MULTI_SAMPLE_K,
    MODEL_DEFAULTS,
    Contrast,
    Family,
    MethodName,
    ModelConfig,
    QKind,
    help_text,
    method_grid_point,
    method_name,
    method_title,
    whole_number,
)
from ..data.names import DATASETS, DatasetName, data_dim
from ..errors import SettingError
from ..schema import from_json

# Measured on a 2-core CPU, 2 threads (python -m benchmarks.train_speed --family conv --k 1,10): the
# paper's AVB networks take about 2 GFLOP per image forward, 8.2 s per step at K = 1 and 49-56 s at K = 10.
CONV_ON_CPU = (
    "the conv family (the paper's networks) takes about 8 s per training step at K = 1 and nearly "
    "a minute at K = 10 on a 2-core CPU: it is meant for a GPU"
)

# How a training step runs (iwavb/training/step.py): plain float32, bfloat16 autocast, a CUDA graph, both, or
# torch.compile. `auto` is plain on a CPU (where every other way measured slower: benchmarks/README.md) and,
# on CUDA, the choice of CUDA_AUTO: made by reasoning, NOT yet measured (no GPU has been lent to this
# project); `python -m benchmarks.gpu_check` times every way and says whether this choice is the fastest.
Accelerate = Literal["auto", "none", "amp", "graph", "amp+graph", "compile"]
ACCELERATIONS: tuple[Accelerate, ...] = get_args(Accelerate)
CUDA_AUTO: dict[Family, Accelerate] = {
    "mlp": "graph",  # small layers: launch-bound, a graph replays the whole step in one launch
    "conv": "amp+graph",  # AVB's convolutions: compute-bound, bfloat16 tensor cores, and one launch
}

# Section 5 of the paper: Adam with 5e-5 for the generative model and q, 1e-4 for the discriminator.
PAPER_LR = 5e-5
PAPER_DISC_LR = 1e-4

# The mlp family is for live demos on a CPU, where 150k steps at the paper's rates are out of reach.
# These rates were chosen by measurement (README, "Performance"): they reach the paper's landmarks
# in seconds (toy) or minutes (MNIST) and stayed free of NaNs in every run we made.
FAST_LR = {"toy": (3e-3, 3e-3), "image": (1e-3, 1e-3)}
TOY_WIDTHS = (64, 64)  # AVB's toy notebook: 64 units per layer, 64 noise dims

# Upper limits that no sensible run reaches; within them, whether a run fits the machine is estimated from
# its settings before anything is allocated (iwavb.training.resources).
MAX_K = 1_000_000
MAX_BATCH = 1_000_000
MAX_DISC_STEPS = 100  # T's updates per step: one step may not run for hours out of reach of Stop
MAX_SEED = 2**63 - 1  # what torch.manual_seed takes
DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


def check_device_name(name: str, field_name: str = "device") -> None:
    """A device a run can be asked for: auto, cpu, cuda, cuda:N (and mps); a SettingError otherwise."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        raise SettingError(field_name, f"{field_name} must be {DEVICE_NAMES}, got {name!r}")


def check_seed(seed: int) -> None:
    whole_number("seed", seed, 0, MAX_SEED)


def check_rate(name: str, value: float) -> None:
    """A learning rate: a positive, finite number."""
    if not (math.isfinite(value) and value > 0):
        raise SettingError(name, f"{name} must be a positive finite number, got {value!r}")


def default_widths(dataset: str) -> tuple[int, int]:
    """(mlp width, noise dim of the implicit q): AVB's toy notebook uses 64 and 64, the paper 32 noise dims."""
    return TOY_WIDTHS if dataset == "toy" else (MODEL_DEFAULTS.hidden, MODEL_DEFAULTS.noise_dim)


def default_learning_rates(dataset: str, family: Family) -> tuple[float, float]:
    """(lr of decoder and q, lr of the discriminator) for a data set and network family."""
    if family == "conv":
        return PAPER_LR, PAPER_DISC_LR
    return FAST_LR["toy" if dataset == "toy" else "image"]


_BY_DATA_SET = [f"{image}; toy {toy}" for image, toy in zip(default_widths("mnist"), default_widths("toy"))]
_BY_FAMILY = [
    f"conv {conv:g} (the paper's); mlp {mlp:g}; toy {toy:g}"
    for conv, mlp, toy in zip(default_learning_rates("mnist", "conv"), FAST_LR["image"], FAST_LR["toy"])
]


@dataclass(frozen=True)
class TrainConfig:
    """A training run: the point of the method grid (q, K), the networks, the optimisation, the seed."""

    dataset: DatasetName = field(default="mnist", metadata=help_text("data set (toy needs no files)"))
    q: QKind = MODEL_DEFAULTS.q
    k: int = field(
        default=DEFAULT_MULTI_SAMPLE_K, metadata=help_text("importance samples K (vae/avb: 1; iwae/iwavb: 2 or more)")
    )
    latent_dim: int = field(
        default=MODEL_DEFAULTS.latent_dim,
        metadata=help_text("latent size l; 2 gives exact log p(x) and true posteriors"),
    )
    family: Family = field(
        default=MODEL_DEFAULTS.family,
        metadata=help_text("networks: mlp (fast on a CPU) or conv (the paper's AVB networks; needs a GPU)"),
    )
    contrast: Contrast = field(
        default=MODEL_DEFAULTS.contrast,
        metadata=help_text("adaptive: AVB's adaptive contrast for the implicit q of avb/iwavb (the paper's setting)"),
    )
    hidden: int | None = field(default=None, metadata=help_text("width of the mlp layers", _BY_DATA_SET[0]))
    noise_dim: int | None = field(default=None, metadata=help_text("noise size of the implicit q", _BY_DATA_SET[1]))
    steps: int = field(default=10_000, metadata=help_text("total training steps"))
    batch_size: int = field(default=128, metadata=help_text("minibatch size"))
    lr: float | None = field(default=None, metadata=help_text("Adam rate of decoder and q", _BY_FAMILY[0]))
    disc_lr: float | None = field(default=None, metadata=help_text("Adam rate of the discriminator T", _BY_FAMILY[1]))
    disc_steps: int = field(
        default=1, metadata=help_text("discriminator updates per model update (AVB's toy notebook uses 2)")
    )
    beta1: float = 0.5  # Adam's beta1 in AVB's code
    log_every: int = 50  # steps between metric records (and NaN checks)
    eval_every: int = field(default=500, metadata=help_text("steps between validation bounds"))
    seed: int = field(default=0, metadata=help_text("random seed of the weights, batches and draws"))
    device: str = field(default="auto", metadata=help_text("auto (CUDA when present), cpu or cuda[:N]"))
    accelerate: Accelerate = field(
        default="auto",
        metadata=help_text(
            "how a step runs: none (float32), amp (bfloat16 autocast), graph (one CUDA graph), amp+graph, "
            f"compile (torch.compile); auto: none on a CPU, on CUDA {CUDA_AUTO['mlp']} (mlp) or "
            f"{CUDA_AUTO['conv']} (conv)"
        ),
    )

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise SettingError("dataset", f"unknown data set {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.accelerate not in ACCELERATIONS:
            raise SettingError(
                "accelerate", f"unknown accelerate {self.accelerate!r}; choose one of {', '.join(ACCELERATIONS)}"
            )
        whole_number("k", self.k, 1, MAX_K)
        method_grid_point(method_name(self.q, self.k), self.k)  # K = 1 for VAE and AVB, 2 or more for the others
        for name, high in (("steps", None), ("batch_size", MAX_BATCH), ("disc_steps", MAX_DISC_STEPS)):
            whole_number(name, getattr(self, name), 1, high)
        for name in ("log_every", "eval_every"):
            whole_number(name, getattr(self, name), 1)
        check_seed(self.seed)
        check_device_name(self.device)
        if not 0 <= self.beta1 < 1:
            raise SettingError("beta1", f"beta1 must be at least 0 and below 1, got {self.beta1!r}")
        defaults = zip(
            ("hidden", "noise_dim", "lr", "disc_lr"),
            (*default_widths(self.dataset), *default_learning_rates(self.dataset, self.family)),
        )
        for name, value in defaults:
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: resolved once, here
        for name in ("lr", "disc_lr"):
            check_rate(name, getattr(self, name))
        self.model_config()  # validates the network settings early, with their own messages

    def learning_rates(self) -> tuple[float, float]:
        """(lr, disc_lr) as resolved by __post_init__."""
        assert self.lr is not None and self.disc_lr is not None
        return self.lr, self.disc_lr

    @property
    def method(self) -> MethodName:
        return method_name(self.q, self.k)

    @property
    def title(self) -> str:
        """'IWAVB', 'IWAVB + AC': the method as tables and messages name it."""
        return method_title(self.method, self.contrast)

    @property
    def data_dim(self) -> int:
        return data_dim(self.dataset)

    def model_config(self) -> ModelConfig:
        assert self.hidden is not None and self.noise_dim is not None  # resolved in __post_init__
        return ModelConfig(
            data_dim=self.data_dim,
            latent_dim=self.latent_dim,
            q=self.q,
            family=self.family,
            hidden=self.hidden,
            noise_dim=self.noise_dim,
            contrast=self.contrast,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Any, where: str = "training settings") -> TrainConfig:
        """From JSON, every field checked by type and then by __post_init__; a SchemaError naming `where`.
        A setting this version does not know is refused: it may change what the weights mean."""
        return from_json(cls, values, where)

    @classmethod
    def for_method(cls, method: MethodName, k: int | None = None, **settings: Any) -> TrainConfig:
        """`TrainConfig.for_method("iwavb", k=5, dataset="toy")`: the grid point behind a method name."""
        q, k = method_grid_point(method, k)
        return cls(q=q, k=k, **settings)
