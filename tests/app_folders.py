"""Empty pretrained/ and runs folders for the app's tests, so that each test sees only what it puts there."""

from __future__ import annotations

from pathlib import Path


def empty_folders(root: Path) -> dict[str, str]:
    """Create root/pretrained and root/runs; return the environment variables that point the app at them."""
    (root / "pretrained").mkdir()
    (root / "runs").mkdir()
    return {"IWAVB_PRETRAINED_DIR": str(root / "pretrained"), "IWAVB_RUNS_DIR": str(root / "runs")}
