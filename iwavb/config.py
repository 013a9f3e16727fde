"""Typed, frozen configuration of a training run.

The four methods are one grid (REFERENCE.md): the kind of q (Gaussian (2.6) or implicit (2.12))
times the number of importance samples K. `method_name` turns a point of that grid into its name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

DatasetName = Literal["toy", "mnist", "fashion", "omniglot"]
QKind = Literal["gaussian", "implicit"]
Family = Literal["mlp", "conv"]
MethodName = Literal["vae", "iwae", "avb", "iwavb"]
Estimator = Literal["auto", "is", "ais", "grid"]  # of log p(x): iwavb.evaluate
Schedule = Literal["sigmoid", "linear"]  # of AIS: iwavb.ais
Start = Literal["prior", "q"]  # of AIS

DATASETS: tuple[str, ...] = get_args(DatasetName)
Q_KINDS: tuple[str, ...] = get_args(QKind)
FAMILIES: tuple[str, ...] = get_args(Family)
METHODS: tuple[str, ...] = get_args(MethodName)
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
STARTS: tuple[str, ...] = get_args(Start)

def objective_label(q: QKind) -> str:
    """What the training value of a q is called: an implicit q's uses T, and is a bound only while T is
    optimal, so it can read better than any real model (REFERENCE.md)."""
    return "objective (uses T)" if q == "implicit" else "bound"


# Measured on a 2-core CPU, 2 threads (python -m benchmarks.train_speed --family conv --k 1,10): the
# paper's AVB networks take about 2 GFLOP per image forward, 8.2 s per step at K = 1 and 49-56 s at K = 10.
CONV_ON_CPU = ("the conv family (the paper's networks) takes about 8 s per training step at K = 1 and nearly "
               "a minute at K = 10 on a 2-core CPU: it is meant for a GPU")

# Section 5 of the paper: Adam with 5e-5 for the generative model and q, 1e-4 for the discriminator.
PAPER_LR = 5e-5
PAPER_DISC_LR = 1e-4

# The mlp family is for live demos on a CPU, where 150k steps at the paper's rates are out of reach.
# These rates were chosen by measurement (README, "Performance"): they reach the paper's landmarks
# in seconds (toy) or minutes (MNIST) and stayed free of NaNs in every run we made.
FAST_LR = {"toy": (3e-3, 3e-3), "image": (1e-3, 1e-3)}


def method_name(q: QKind, k: int) -> MethodName:
    """The name of a point of the 2x2 grid: VAE (2.4), IWAE (2.9), AVB (2.15), IWAVB (3.2)."""
    if q == "gaussian":
        return "vae" if k == 1 else "iwae"
    return "avb" if k == 1 else "iwavb"


def method_grid_point(method: MethodName, k: int | None = None) -> tuple[QKind, int]:
    """Inverse of `method_name`: VAE and AVB use K = 1; IWAE and IWAVB default to K = 10."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    q: QKind = "gaussian" if method in ("vae", "iwae") else "implicit"
    single = method in ("vae", "avb")
    if k is None:
        k = 1 if single else 10
    if single and k != 1:
        raise ValueError(f"{method.upper()} uses K = 1; for K = {k} choose {'iwae' if q == 'gaussian' else 'iwavb'}")
    if not single and k < 2:
        raise ValueError(f"{method.upper()} needs K >= 2; for K = 1 choose {'vae' if q == 'gaussian' else 'avb'}")
    return q, k


def default_widths(dataset: str) -> tuple[int, int]:
    """(mlp width, noise dim of the implicit q): AVB's toy notebook uses 64 and 64, the paper 32 noise dims."""
    return (64, 64) if dataset == "toy" else (300, 32)


def default_learning_rates(dataset: str, family: Family) -> tuple[float, float]:
    """(lr of decoder and q, lr of the discriminator) for a data set and network family."""
    if family == "conv":
        return PAPER_LR, PAPER_DISC_LR
    return FAST_LR["toy" if dataset == "toy" else "image"]


@dataclass(frozen=True)
class ModelConfig:
    """What is needed to build the networks, and nothing about how they are trained."""

    data_dim: int = 784
    latent_dim: int = 8
    q: QKind = "implicit"
    family: Family = "mlp"
    hidden: int = 300  # width of every mlp layer (784-300-300 as measured in the issues)
    noise_dim: int = 32  # dimension of e in (2.12); 32 in the paper

    def __post_init__(self) -> None:
        if self.q not in Q_KINDS:
            raise ValueError(f"unknown q kind {self.q!r}; choose gaussian or implicit")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown network family {self.family!r}; choose one of {', '.join(FAMILIES)}")
        if self.family == "conv" and self.data_dim != 784:
            raise ValueError("the conv family needs 28x28 images; use the mlp family for the toy data")
        for name in ("data_dim", "latent_dim", "hidden", "noise_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Settings left as None take the defaults of `default_widths` and
    `default_learning_rates` for the data set and family; the resolved values are what is stored."""

    dataset: DatasetName = "mnist"
    q: QKind = "implicit"
    k: int = 10
    latent_dim: int = 8
    family: Family = "mlp"
    hidden: int | None = None
    noise_dim: int | None = None
    steps: int = 10_000
    batch_size: int = 128
    lr: float | None = None
    disc_lr: float | None = None
    disc_steps: int = 1  # discriminator updates per generator update (AVB's toy notebook uses 2)
    beta1: float = 0.5  # Adam's beta1 in AVB's code
    log_every: int = 50  # steps between metric records (and NaN checks)
    eval_every: int = 500  # steps between validation bounds
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when present

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        method_grid_point(method_name(self.q, self.k), self.k)  # validates K
        for name in ("steps", "batch_size", "disc_steps", "log_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        defaults = zip(("hidden", "noise_dim", "lr", "disc_lr"),
                       (*default_widths(self.dataset), *default_learning_rates(self.dataset, self.family)))
        for name, value in defaults:
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: resolved once, here
        self.model_config()  # validates the network settings early, with their own messages

    @property
    def method(self) -> MethodName:
        return method_name(self.q, self.k)

    @property
    def data_dim(self) -> int:
        return 4 if self.dataset == "toy" else 784

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            data_dim=self.data_dim,
            latent_dim=self.latent_dim,
            q=self.q,
            family=self.family,
            hidden=self.hidden,
            noise_dim=self.noise_dim,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def for_method(cls, method: MethodName, k: int | None = None, **settings: Any) -> "TrainConfig":
        """`TrainConfig.for_method("iwavb", k=5, dataset="toy")`: the grid point behind a method name."""
        q, k = method_grid_point(method, k)
        return cls(q=q, k=k, **settings)
