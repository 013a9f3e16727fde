"""CI's flags turn a missing browser driver or data folder into a failure; without them the tests skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REQUIRE_BROWSER, REQUIRE_DATA, require_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("flag", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_data_folder_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path, flag, outcome):
    monkeypatch.setenv("IWAVB_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv(REQUIRE_DATA, flag)
    with pytest.raises(outcome, match="MNIST not found under IWAVB_DATA_ROOT"):
        require_data("MNIST")


def collect_browser_tests_without_playwright(flag: str) -> subprocess.CompletedProcess[str]:
    """Collect tests/test_browser.py in a fresh pytest where Playwright cannot be imported."""
    code = (
        "import sys, pytest; sys.modules['playwright'] = None; "  # `import playwright` now raises ImportError
        "sys.exit(pytest.main(['-p', 'no:playwright', '-p', 'no:cacheprovider', '--collect-only', '-q', "
        "'tests/test_browser.py']))"
    )
    env = {**os.environ, REQUIRE_BROWSER: flag}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_browser_driver_fails_under_ci_and_skips_elsewhere():
    required = collect_browser_tests_without_playwright("1")
    assert required.returncode == pytest.ExitCode.INTERRUPTED, required.stdout  # a collection error, not a skip
    assert "playwright" in required.stdout
    optional = collect_browser_tests_without_playwright("")
    assert optional.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, optional.stdout
    assert "SKIPPED" in optional.stdout
