"""What the networks are: the kind of q, the family, the sizes; and the 2x2 grid of methods.

The four methods are one grid (docs/background.md): the kind of q (Gaussian (2.6) or implicit (2.12))
times the number of importance samples K. `method_name` turns a point of that grid into its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import SettingError

QKind = Literal["gaussian", "implicit"]
Family = Literal["mlp", "conv"]
MethodName = Literal["vae", "iwae", "avb", "iwavb"]
Contrast = Literal["none", "adaptive"]  # adaptive contrast (AC) of an implicit q: AVB's, the paper's (section 5)

Q_KINDS: tuple[QKind, ...] = get_args(QKind)
FAMILIES: tuple[Family, ...] = get_args(Family)
METHODS: tuple[MethodName, ...] = get_args(MethodName)
CONTRASTS: tuple[Contrast, ...] = get_args(Contrast)
IMAGE_DIM = 784  # 28 x 28 binarised pixels
DEFAULT_MULTI_SAMPLE_K = 10  # IWAE and IWAVB when no K is given (the paper's largest)
MAX_SIZE = 65_536  # of a latent size, a layer width or a noise size: far beyond any use, within every count


def help_text(text: str, default: str | None = None) -> dict[str, str]:
    """A dataclass field's one-line meaning (and, for a default resolved later, its values in words), kept in
    its metadata: the CLI's --help reads them from there."""
    return {"help": text} | ({"default": default} if default is not None else {})


def objective_label(q: QKind) -> str:
    """What the training value of a q is called: an implicit q's uses T, and is a bound only while T is
    optimal, so it can read better than any real model (docs/background.md)."""
    return "objective (uses T)" if q == "implicit" else "bound"


def method_name(q: QKind, k: int) -> MethodName:
    """The name of a point of the 2x2 grid: VAE (2.4), IWAE (2.9), AVB (2.15), IWAVB (3.2)."""
    if q == "gaussian":
        return "vae" if k == 1 else "iwae"
    return "avb" if k == 1 else "iwavb"


def method_title(method: MethodName, contrast: Contrast = "none") -> str:
    """How a method is named in tables and messages: 'IWAVB', or 'IWAVB + AC' with adaptive contrast."""
    return method.upper() + (" + AC" if contrast == "adaptive" else "")


def method_grid_point(method: MethodName, k: int | None = None) -> tuple[QKind, int]:
    """Inverse of `method_name`: VAE and AVB use K = 1; IWAE and IWAVB default to K = 10."""
    if method not in METHODS:
        raise SettingError("method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    q: QKind = "gaussian" if method in ("vae", "iwae") else "implicit"
    single = method in ("vae", "avb")
    if k is None:
        k = 1 if single else DEFAULT_MULTI_SAMPLE_K
    if single and k != 1:
        raise SettingError(
            "k", f"{method.upper()} uses K = 1; for K = {k} choose {'iwae' if q == 'gaussian' else 'iwavb'}"
        )
    if not single and k < 2:
        raise SettingError(
            "k", f"{method.upper()} needs K >= 2; for K = 1 choose {'vae' if q == 'gaussian' else 'avb'}"
        )
    return q, k


@dataclass(frozen=True)
class ModelConfig:
    """What is needed to build the networks, and nothing about how they are trained."""

    data_dim: int = IMAGE_DIM
    latent_dim: int = 8  # l: 8 and 32 in the paper; 2 gives exact log p(x) and true posteriors on a grid
    q: QKind = "implicit"
    family: Family = "mlp"  # mlp: small, fast on a CPU; conv: AVB's networks, the paper's
    hidden: int = 300  # width of every mlp layer (784-300-300)
    noise_dim: int = 32  # dimension of e in (2.12); 32 in the paper (with AC: of each basis vector's noise)
    contrast: Contrast = "none"  # adaptive: q = z0 + sum_i a_i(x) v_i(e_i), T sees the normalised sample

    def __post_init__(self) -> None:
        if self.q not in Q_KINDS:
            raise SettingError("q", f"unknown q kind {self.q!r}; choose gaussian or implicit")
        if self.contrast not in CONTRASTS:
            raise SettingError("contrast", f"unknown contrast {self.contrast!r}; choose one of {', '.join(CONTRASTS)}")
        if self.contrast == "adaptive" and self.q != "implicit":
            raise SettingError(
                "contrast",
                "adaptive contrast is for an implicit q (AVB, IWAVB); a Gaussian q (VAE, IWAE) has its density",
            )
        if self.family not in FAMILIES:
            raise SettingError("family", f"unknown network family {self.family!r}; choose one of {', '.join(FAMILIES)}")
        if self.family == "conv" and self.data_dim != IMAGE_DIM:
            raise SettingError("family", "the conv family needs 28x28 images; use the mlp family for the toy data")
        for name in ("data_dim", "latent_dim", "hidden", "noise_dim"):
            whole_number(name, getattr(self, name), 1, MAX_SIZE)


def whole_number(name: str, value: int, low: int, high: int | None = None) -> None:
    """Check a whole-number setting: a SettingError that names it unless low <= value (<= high)."""
    if not low <= value or (high is not None and value > high):
        limits = f"from {low:,} to {high:,}" if high is not None else f"at least {low:,}"
        raise SettingError(name, f"{name} must be a whole number {limits}, got {value:,}")


MODEL_DEFAULTS = ModelConfig()  # the defaults above, for configs that build a ModelConfig (TrainConfig)
