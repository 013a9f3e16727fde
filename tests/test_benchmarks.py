"""The speed benchmark's own measurements: FLOP counts, memory tracking, and a tiny end-to-end run."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.measure import MatmulFlops, PeakTensorMemory
from benchmarks.train_speed import main
from benchmarks.variants import VARIANTS
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer


@pytest.mark.parametrize(
    "method, contrast",
    [("vae", "none"), ("iwae", "none"), ("avb", "none"), ("iwavb", "none"), ("avb", "adaptive"), ("iwavb", "adaptive")],
)
@pytest.mark.parametrize("variant", ["vectorised", "looped"])
def test_flop_count_matches_the_matmuls_torch_runs(method, contrast, variant):
    """The count from shapes and the 3x / 2x / 1x rule equals the FLOPs of the products autograd executes."""
    k = 3 if method in ("iwae", "iwavb") else None
    trainer = Trainer(TrainConfig.for_method(method, k=k, dataset="toy", latent_dim=2, contrast=contrast))
    with ExitStack() as stack:
        step = VARIANTS[variant].build(trainer, stack)
        with MatmulFlops() as counted, FlopCounterMode(display=False) as executed:
            step()
    assert counted.flops == executed.get_total_flops()


def test_peak_tensor_memory_counts_live_storages_once():
    with PeakTensorMemory() as tracker:
        a = torch.zeros(1000)  # 4000 bytes
        view = a[:10]  # shares a's storage: not counted again
        del a, view
        b = torch.zeros(500)  # 2000 bytes, after a was freed
    assert tracker.peak == 4000 and tracker.live == 2000
    del b


def test_benchmark_reports_every_method_with_its_looped_baseline(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        code = main(
            [
                "--data",
                "toy",
                "--latent",
                "2",
                "--k",
                "1,3",
                "--seconds",
                "0.02",
                "--threads",
                "1",
                "--no-pythae",
                "--json",
                str(tmp_path / "speed.json"),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    rows = json.loads((tmp_path / "speed.json").read_text())["rows"]
    by_case = {(r["method"], r["variant"]): r for r in rows}
    assert set(by_case) == {
        ("vae", "vectorised"),
        ("avb", "vectorised"),
        ("iwae", "vectorised"),
        ("iwavb", "vectorised"),
        ("iwae", "looped"),
        ("iwavb", "looped"),
    }
    assert all(r["steps_per_s"] > 0 and r["flops_per_step"] > 0 and r["peak_bytes"] > 0 for r in rows)
    assert all(r["mean_steps_per_s"] <= r["steps_per_s"] for r in rows)  # the best chunk bounds the mean
    for method in ("iwae", "iwavb"):  # the naive loop recomputes the x-features for every sample
        assert by_case[(method, "looped")]["flops_per_step"] > by_case[(method, "vectorised")]["flops_per_step"]
    out = capsys.readouterr().out
    assert "| mlp | iwavb | 3 | looped |" in out and "load average" in out


def test_the_recognisability_benchmark_reads_lists_of_whole_numbers_and_names_a_bad_one():
    from benchmarks.recognisable import numbers

    assert numbers("2,8") == [2, 8]
    with pytest.raises(argparse.ArgumentTypeError, match="'2,x'"):
        numbers("2,x")


def test_a_mutant_is_known_by_its_change_whatever_its_number():
    """benchmarks.mutation --recheck finds last survivors among renumbered mutants by the lines they change."""
    from benchmarks.mutation import changed_lines

    shown = "--- a.py\n+++ a.py\n@@ -1 +1 @@\n-    return a + b\n+    return a - b\n context"
    assert changed_lines(shown) == ("-    return a + b".strip(), "+    return a - b".strip())
    assert changed_lines(shown) != changed_lines(shown.replace("a - b", "a * b"))
