"""The GPU check's tiny version, as CI runs it on a CPU: every part, its report, and nothing imported from the app."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from conftest import ROOT, data_root, require_data


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_the_gpu_check_runs_its_tiny_version_on_a_cpu(tmp_path):
    require_data("MNIST")
    run("--write-cache", "--folder", str(tmp_path), "--data-root", str(data_root()))
    (data_file,) = tmp_path.glob("mnist-v*.npz")  # named by the cache's format version
    assert 8 * 2**20 < data_file.stat().st_size < 14 * 2**20  # compact: about 11 MB for MNIST
    run("--data-file", str(data_file), "--out", str(tmp_path), "--device", "cpu")
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    failed = {k: v["error"] for k, v in report.items() if isinstance(v, dict) and "error" in v}
    assert not failed
    assert report["plan"]["name"] == "tiny" and report["forbidden_imports"] == []
    rows = report["steps"]["rows"]
    cases = {(r["method"], r["k"], r["contrast"], r["variant"]) for r in rows}
    assert ("iwavb", 3, "adaptive", "looped") in cases and ("vae", 1, "none", "vectorised") in cases
    assert all(r["steps_per_s"] > 0 and r["note"] == "" for r in rows)
    assert {a["way"] for a in report["agreement"]} == {"none", "amp"}
    assert all(abs(a["minus_plain"]) < 1.0 for a in report["agreement"])  # bfloat16 steps bound as float32 ones
    assert report["training"]["steps"] > 0
    assert report["devices"]["agree"]  # here CPU against CPU: the same model, other draws
    ais = report["ais"]
    assert ais["images_per_s_paper"] > 0 and ais["test_split_seconds_paper"] > 0
    assert math.isfinite(ais["nll"]["ais"]["nll"]) and math.isfinite(ais["nll"]["is"]["nll"])
    text = (tmp_path / "gpu-check.md").read_text()
    for section in (
        "## Environment",
        "## The training step",
        "## Agreement",
        "## A short training",
        "## The same",
        "## AIS",
    ):
        assert section in text
