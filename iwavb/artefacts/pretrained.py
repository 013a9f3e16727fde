"""The curated checkpoints in `pretrained/`: their manifest, and the few test images they need offline.

`pretrained/manifest.json` lists every shipped checkpoint with the configuration that regenerates it
(`python -m iwavb reproduce NAME`) and what it achieved (steps, time, hardware, test NLL and the
estimator used). `pretrained/previews.npz` holds the first test images of each data set, so that the
app shows reconstructions and posteriors on a machine that has no data sets (`python -m iwavb previews`
writes it from the data root).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import settings
from ..core.config import IMAGE_DIM
from ..data.loading import load_dataset
from ..data.names import IMAGE_DATASETS
from ..data.splits import Split
from ..evaluation.evaluate import EvalSettings
from ..files import atomic_write_bytes, atomic_write_npz
from ..schema import SchemaError, from_json
from ..training.config import TrainConfig

PREVIEW_COUNT = 256  # test images per data set in previews.npz, evenly spaced through the test split
_EVAL_DEFAULTS = EvalSettings()


@dataclass(frozen=True)
class Estimate:
    """One test-NLL estimate of a shipped checkpoint, as the manifest records it."""

    estimator: str  # is | ais | grid
    nll: float  # nats, lower is better
    n_images: int
    stderr: float | None = None  # over the images
    seconds_per_1000: float | None = None
    device: str | None = None


@dataclass(frozen=True)
class ManifestResult:
    """What `reproduce` measured for an entry: its training and its estimates (headline first)."""

    steps: int | None = None
    train_seconds: float | None = None
    hardware: str | None = None
    trained_on: str | None = None  # YYYY-MM-DD
    nll: tuple[Estimate, ...] = ()


@dataclass(frozen=True)
class ManifestEntry:
    name: str  # also the file stem: pretrained/<name>.safetensors
    description: str
    config: TrainConfig
    evaluations: tuple[EvalSettings, ...] = ()  # each test-NLL estimate to run; the first is the headline
    result: ManifestResult = field(default_factory=ManifestResult)  # filled in by `reproduce`

    @property
    def file(self) -> Path:
        return settings.pretrained_dir() / f"{self.name}.safetensors"

    def to_dict(self) -> dict[str, Any]:
        """As JSON: the evaluations by the settings that differ from the defaults (what the manifest says)."""
        defaults = dataclasses.asdict(_EVAL_DEFAULTS)
        evaluations = [{k: v for k, v in dataclasses.asdict(e).items() if v != defaults[k]} for e in self.evaluations]
        return {
            "name": self.name,
            "description": self.description,
            "config": self.config.to_dict(),
            "evaluations": evaluations,
            "result": dataclasses.asdict(self.result),
        }


def manifest_path() -> Path:
    return settings.pretrained_dir() / "manifest.json"


def load_manifest(path: Path | None = None) -> list[ManifestEntry]:
    """The manifest's entries ([] when there is no manifest); a broken one is a SchemaError naming the file."""
    path = path or manifest_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise SchemaError(f"{path}: not a readable manifest: {err}") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("checkpoints"), list):
        raise SchemaError(f"{path}: not a manifest (no list of 'checkpoints')")
    return [from_json(ManifestEntry, entry, f"{path}: checkpoints[{i}]") for i, entry in enumerate(raw["checkpoints"])]


def save_manifest(entries: list[ManifestEntry], path: Path | None = None) -> None:
    text = json.dumps({"checkpoints": [e.to_dict() for e in entries]}, indent=2) + "\n"
    atomic_write_bytes(path or manifest_path(), text.encode())


# -- test images that travel with the checkpoints ------------------------------------------------------
def previews_path() -> Path:
    return settings.pretrained_dir() / "previews.npz"


def write_previews(path: Path | None = None, count: int = PREVIEW_COUNT, data_root: Path | None = None) -> Path:
    """Store `count` test images (and labels) of each image data set, compressed."""
    arrays: dict[str, np.ndarray] = {}
    for name in IMAGE_DATASETS:
        data = load_dataset(name, data_root=data_root)
        idx = torch.linspace(0, len(data.test) - 1, count).long()  # Omniglot's test split is sorted by alphabet
        arrays[f"{name}_images"] = data.test.images[idx].numpy()
        arrays[f"{name}_labels"] = data.test.labels[idx].numpy().astype(np.int16)
        arrays[f"{name}_label_names"] = np.asarray(data.label_names)
    path = path or previews_path()
    atomic_write_npz(path, arrays)
    return path


def preview_images(name: str) -> tuple[Split, tuple[str, ...]] | None:
    """The shipped preview test images of an image data set and its label names; None where there are none."""
    path = previews_path()
    if name not in IMAGE_DATASETS or not path.exists():
        return None
    with np.load(path) as f:
        images = torch.from_numpy(f[f"{name}_images"].reshape(-1, IMAGE_DIM))
        labels = torch.from_numpy(f[f"{name}_labels"].astype(np.int64))
        names = tuple(str(n) for n in f[f"{name}_label_names"])
    return Split(images, labels), names
