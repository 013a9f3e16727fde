"""Every IWAVB_* setting is read in one place, has one rule, and is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iwavb import settings
from iwavb.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_no_module_but_settings_reads_the_environment():
    readers = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "iwavb").rglob("*.py")
        if re.search(r"os\.environ|os\.getenv", p.read_text()) and p.name != "settings.py"
    ]
    assert not readers, f"read IWAVB_* settings through iwavb.settings, not directly: {readers}"


def test_the_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    used = set(re.findall(r"IWAVB_[A-Z_]+", (ROOT / "iwavb" / "settings.py").read_text()))
    assert used == {s.name for s in settings.SETTINGS}  # every variable read has its entry
    missing = [s.name for s in settings.SETTINGS if f"`{s.name}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("IWAVB_THREADS", "abc", settings.threads),
        ("IWAVB_THREADS", "0", settings.threads),
        ("IWAVB_JOB_TIMEOUT_S", "nan", settings.job_timeout_s),
        ("IWAVB_GPU_JOBS", "-1", settings.gpu_jobs),
        ("IWAVB_OFFLINE", "maybe", settings.offline),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, name, value, read):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingsError, match=name):
        read()


def test_one_thread_by_default_and_the_variable_overrides(monkeypatch):
    monkeypatch.delenv("IWAVB_THREADS", raising=False)
    assert settings.threads() == settings.DEFAULT_THREADS == 1
    monkeypatch.setenv("IWAVB_THREADS", "2")
    assert settings.threads() == 2


def test_a_bad_setting_is_a_cli_message(monkeypatch, capsys):
    monkeypatch.setenv("IWAVB_OFFLINE", "maybe")
    assert main(["train", "--data", "mnist", "--steps", "1"]) == 2
    assert "IWAVB_OFFLINE" in capsys.readouterr().err


def test_pretrained_dir_is_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("IWAVB_PRETRAINED_DIR", str(tmp_path))
    assert settings.pretrained_dir() == tmp_path
    monkeypatch.delenv("IWAVB_PRETRAINED_DIR")
    assert settings.pretrained_dir() == ROOT / "pretrained"  # run from the source tree
