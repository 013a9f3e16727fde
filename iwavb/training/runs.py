"""Where checkpoints live: the user's runs folder and the curated `pretrained/` folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from .checkpoint import CheckpointError, read_metadata
from .config import TrainConfig

SUFFIX = ".safetensors"


def run_name(config: TrainConfig) -> str:
    """A readable file stem: mnist-iwavb-k10-l8-mlp-s0, mnist-iwavb-ac-k10-l8-conv-s0 with adaptive contrast."""
    method = config.method + ("-ac" if config.contrast == "adaptive" else "")
    return f"{config.dataset}-{method}-k{config.k}-l{config.latent_dim}-{config.family}-s{config.seed}"


def default_run_path(config: TrainConfig) -> Path:
    return settings.runs_dir() / f"{run_name(config)}{SUFFIX}"


@dataclass(frozen=True)
class CheckpointEntry:
    path: Path
    meta: dict[str, Any] | None  # None when the file could not be read
    error: str | None = None


def list_checkpoints(folder: str | Path) -> list[CheckpointEntry]:
    """Every checkpoint in a folder (not recursive), newest first; unreadable files carry their error."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            entries.append(CheckpointEntry(path, read_metadata(path)))
        except CheckpointError as err:
            entries.append(CheckpointEntry(path, None, str(err)))
    return entries
