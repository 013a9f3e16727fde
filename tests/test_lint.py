"""The code is linted, formatted and type-checked as configured in pyproject.toml: zero findings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_changes_nothing():
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_finds_nothing():
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_noqa_says_why():
    """A `# noqa: CODE -- reason` marker that stays carries its reason after the codes, on the same line."""
    bare = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("iwavb", "pages", "benchmarks", "tests")
        for path in ROOT.glob(f"{folder}/**/*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "# noqa" in line and not line.split("# noqa", 1)[1].partition(" -- ")[2].strip()
    ]
    assert not bare, f"noqa without a reason: {bare}"
