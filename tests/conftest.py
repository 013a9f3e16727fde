"""Test settings: real data from ../shared/datasets (through IWAVB_DATA_ROOT), never a download."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "datasets"

os.environ.setdefault("IWAVB_DATA_ROOT", str(SHARED_DATA))
os.environ.setdefault("IWAVB_CACHE_DIR", str(ROOT / ".cache" / "arrays"))
os.environ["IWAVB_OFFLINE"] = "1"


def data_root() -> Path:
    return Path(os.environ["IWAVB_DATA_ROOT"])


def require_data(folder: str) -> None:
    """Skip, saying why, when a real data set is not where IWAVB_DATA_ROOT points."""
    if not (data_root() / folder).is_dir():
        pytest.skip(f"{folder} not found under IWAVB_DATA_ROOT={data_root()} (CI has it in ../shared/datasets)")


@pytest.fixture(autouse=True)
def _seeded():
    import torch

    torch.manual_seed(0)
