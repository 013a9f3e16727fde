"""`reproduce` regenerates a manifest entry (train, float16 file, evaluation, manifest result) and, with
skip_existing, keeps the file and the estimates already saved with the same settings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from iwavb.artefacts import reproduce as reproduce_module
from iwavb.artefacts.pretrained import ManifestEntry, load_manifest, save_manifest
from iwavb.artefacts.reproduce import reproduce
from iwavb.artefacts.results import paired_differences, results_table
from iwavb.evaluation.evaluate import EvalSettings, eval_path, read_eval_results, same_estimate
from iwavb.training.checkpoint import load_checkpoint
from iwavb.training.config import TrainConfig


@pytest.fixture
def tiny_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("IWAVB_PRETRAINED_DIR", str(tmp_path))
    config = TrainConfig(dataset="toy", q="implicit", k=3, latent_dim=2, steps=20, log_every=10, eval_every=10)
    save_manifest(
        [
            ManifestEntry(
                "tiny", "a test entry", config, (EvalSettings(estimator="grid", n_test=16, grid_resolution=41),)
            )
        ]
    )
    return tmp_path


def test_reproduce_trains_saves_evaluates_and_records(tiny_manifest):
    reproduce(["tiny"], device="cpu")
    (entry,) = load_manifest()
    checkpoint = load_checkpoint(entry.file)
    assert checkpoint.step == 20 and checkpoint.meta.weights_dtype == "float16"
    assert entry.result.steps == 20 and entry.result.hardware.startswith("CPU")
    (estimate,) = entry.result.nll
    assert estimate.estimator == "grid" and estimate.n_images == 16
    assert estimate.nll == pytest.approx(read_eval_results(entry.file)[0].nll, abs=1e-3)
    assert "| tiny | toy | IWAVB |" in results_table([entry])


def test_skip_existing_reuses_the_file_and_matching_estimates(tiny_manifest, monkeypatch):
    reproduce(["tiny"], device="cpu")
    file_bytes = load_manifest()[0].file.read_bytes()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a saved estimate with the same settings should have been reused")

    monkeypatch.setattr(reproduce_module, "evaluate_with_progress", must_not_run)
    reproduce(["tiny"], device="cpu", skip_existing=True)
    assert load_manifest()[0].file.read_bytes() == file_bytes
    # Different settings are not the same estimate: this one must run.
    (entry,) = load_manifest()
    save_manifest(
        [
            ManifestEntry(
                entry.name,
                entry.description,
                entry.config,
                (EvalSettings(estimator="grid", n_test=8, grid_resolution=41),),
                entry.result,
            )
        ]
    )
    with pytest.raises(AssertionError, match="reused"):
        reproduce(["tiny"], device="cpu", skip_existing=True)
    # Retraining replaces the weights, so their saved estimates go with them.
    reproduce(["tiny"], device="cpu", skip_eval=True)
    assert not eval_path(load_manifest()[0].file).exists()


def test_estimates_differing_only_in_how_they_ran_are_the_same_estimate():
    assert same_estimate(
        {"estimator": "ais", "n_test": 100, "device": "cpu", "batch_size": 10},
        {"estimator": "ais", "n_test": 100, "device": "auto", "batch_size": 100},
    )
    assert not same_estimate(
        {"estimator": "ais", "n_test": 100, "seed": 0}, {"estimator": "ais", "n_test": 100, "seed": 1}
    )


def test_unknown_entries_are_named():
    with pytest.raises(ValueError, match="not in the manifest: nope"):
        reproduce(["nope"])


def test_paired_differences_compare_each_method_with_the_vae_on_the_same_images(tiny_manifest):
    (iwavb,) = load_manifest()
    vae = ManifestEntry("tiny-vae", "the reference", replace(iwavb.config, q="gaussian", k=1), iwavb.evaluations)
    save_manifest([vae, iwavb])
    reproduce(["tiny-vae", "tiny"], device="cpu")
    entries = load_manifest()
    nll = {e.name: e.result.nll[0].nll for e in entries}
    (row,) = [line for line in paired_differences(entries).splitlines() if "IWAVB" in line]
    difference, exact = row.split("|")[6].split()
    assert float(difference) == pytest.approx(nll["tiny"] - nll["tiny-vae"], abs=2e-3)
    assert exact == "(exact)" and row.split("|")[7].strip().endswith("of 4 points")  # the toy's 4 points
    assert "VAE (K" not in paired_differences(entries)  # the reference is not compared with itself
