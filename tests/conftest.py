"""Test settings: real data from ../shared/datasets (through IWAVB_DATA_ROOT), never a download; CI's flags;
and each test left with the process as it found it.

CI's flags (set by .ci/run) are the tests' own, not the library's settings: IWAVB_REQUIRE_BROWSER=1 and
IWAVB_REQUIRE_DATA=1 turn a missing browser driver or data folder into a failure instead of a skip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
APP_TIMEOUT = 120  # s for one script run of AppTest: the first imports torch, plotly and scikit-learn
SHARED_DATA = ROOT.parent / "shared" / "datasets"
REQUIRE_BROWSER = "IWAVB_REQUIRE_BROWSER"
REQUIRE_DATA = "IWAVB_REQUIRE_DATA"

os.environ.setdefault("IWAVB_DATA_ROOT", str(SHARED_DATA))
os.environ.setdefault("IWAVB_CACHE_DIR", str(ROOT / ".cache" / "arrays"))
os.environ["IWAVB_OFFLINE"] = "1"


def required(flag: str) -> bool:
    """Whether CI's flag (REQUIRE_BROWSER, REQUIRE_DATA) is set: then what it names must be there."""
    return os.environ.get(flag, "").strip() == "1"


def skip_unless_required(reason: str, flag: str) -> NoReturn:
    """Skip saying why, or fail where `flag` requires the missing thing (CI)."""
    if required(flag):
        pytest.fail(f"{reason}; {flag}=1 requires it")
    pytest.skip(reason)


def data_root() -> Path:
    return Path(os.environ["IWAVB_DATA_ROOT"])


def require_data(folder: str) -> None:
    """Skip (fail under IWAVB_REQUIRE_DATA=1), saying why, when a real data set is not where IWAVB_DATA_ROOT points."""
    if not (data_root() / folder).is_dir():
        skip_unless_required(
            f"{folder} not found under IWAVB_DATA_ROOT={data_root()} (CI has it in ../shared/datasets)", REQUIRE_DATA
        )


@pytest.fixture(autouse=True)
def _seeded_and_restored():
    """Each test starts from torch's seed 0 and leaves torch's thread count as it found it: the CLI sets the
    count for the whole process (`--threads`), and a test after it would otherwise run with that count."""
    import torch

    threads = torch.get_num_threads()
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """Empty pretrained/ and runs/ folders for the app: (pretrained, runs)."""
    from app_folders import empty_folders

    for name, value in empty_folders(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path / "pretrained", tmp_path / "runs"


@pytest.fixture
def app(folders):
    """The app under streamlit.testing's AppTest; its training jobs are closed afterwards."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT)
    yield at
    for key in ("job:train", "job:compare"):
        if key in at.session_state:
            at.session_state[key].close()
