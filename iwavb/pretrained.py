"""The curated checkpoints in `pretrained/`: their manifest, and the few test images they need offline.

`pretrained/manifest.json` lists every shipped checkpoint with the configuration that regenerates it
(`python -m iwavb reproduce NAME`) and what it achieved (steps, time, hardware, test NLL and the
estimator used). `pretrained/previews.npz` holds the first test images of each data set, so that the
app shows reconstructions and posteriors on a machine that has no data sets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import atomic_write_bytes
from .config import TrainConfig
from .data import Split, load_dataset

PREVIEW_COUNT = 256  # test images per data set in previews.npz, evenly spaced through the test split
IMAGE_DATASETS = ("mnist", "fashion", "omniglot")


def pretrained_dir() -> Path:
    """IWAVB_PRETRAINED_DIR, default the `pretrained/` folder beside the `iwavb/` package."""
    default = Path(__file__).resolve().parent.parent / "pretrained"
    return Path(os.environ.get("IWAVB_PRETRAINED_DIR", default)).expanduser()


@dataclass(frozen=True)
class ManifestEntry:
    name: str  # also the file stem: pretrained/<name>.safetensors
    description: str
    config: TrainConfig
    evaluations: list[dict[str, Any]]  # EvalSettings of each test-NLL estimate; the first is the headline
    result: dict[str, Any] = field(default_factory=dict)  # filled in by `reproduce`

    @property
    def file(self) -> Path:
        return pretrained_dir() / f"{self.name}.safetensors"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "config": self.config.to_dict(),
                "evaluations": self.evaluations, "result": self.result}


def manifest_path() -> Path:
    return pretrained_dir() / "manifest.json"


def load_manifest(path: Path | None = None) -> list[ManifestEntry]:
    path = path or manifest_path()
    try:
        raw = json.loads(path.read_text())
        return [ManifestEntry(e["name"], e.get("description", ""), TrainConfig.from_dict(e["config"]),
                              e.get("evaluations", []), e.get("result", {})) for e in raw["checkpoints"]]
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a valid manifest: {err}") from err


def save_manifest(entries: list[ManifestEntry], path: Path | None = None) -> None:
    text = json.dumps({"checkpoints": [e.to_dict() for e in entries]}, indent=2) + "\n"
    atomic_write_bytes(path or manifest_path(), text.encode())


# -- test images that travel with the checkpoints ------------------------------------------------------
def previews_path() -> Path:
    return pretrained_dir() / "previews.npz"


def write_previews(path: Path | None = None, count: int = PREVIEW_COUNT) -> Path:
    """Store `count` test images (and labels) of each image data set, compressed."""
    arrays: dict[str, np.ndarray] = {}
    for name in IMAGE_DATASETS:
        data = load_dataset(name)
        idx = torch.linspace(0, len(data.test) - 1, count).long()  # Omniglot's test split is sorted by alphabet
        arrays[f"{name}_images"] = data.test.images[idx].numpy()
        arrays[f"{name}_labels"] = data.test.labels[idx].numpy().astype(np.int16)
        arrays[f"{name}_label_names"] = np.asarray(data.label_names)
    path = path or previews_path()
    from io import BytesIO

    buffer = BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def preview_images(name: str) -> tuple[Split, tuple[str, ...]] | None:
    """The shipped preview test images of an image data set and its label names; None where there are none."""
    path = previews_path()
    if name not in IMAGE_DATASETS or not path.exists():
        return None
    with np.load(path) as f:
        images = torch.from_numpy(f[f"{name}_images"].reshape(-1, 784))
        labels = torch.from_numpy(f[f"{name}_labels"].astype(np.int64))
        names = tuple(str(n) for n in f[f"{name}_label_names"])
    return Split(images, labels), names
