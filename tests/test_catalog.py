"""The app's checkpoint catalogue: pretrained and own runs, manifest, evaluations, deletion, offline data."""

from __future__ import annotations

import json

import pytest
from app_folders import empty_folders

from iwavb.artefacts.catalog import DeleteRefused, SavedEstimate, delete_run, eval_log_px, find_four, list_entries
from iwavb.evaluation.evaluate import EvalResult, write_eval_result
from iwavb.files import file_signature
from iwavb.training.config import TrainConfig
from iwavb.training.runs import owner_tag
from iwavb.training.trainer import Trainer


def save_toy(folder, method: str, name: str | None = None):
    config = TrainConfig.for_method(method, dataset="toy", latent_dim=2, steps=1, device="cpu")
    trainer = Trainer(config)
    return trainer.save(folder / f"{name or method}.safetensors")


@pytest.fixture
def folders(tmp_path, monkeypatch):
    for name, value in empty_folders(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path / "pretrained", tmp_path / "runs"


def test_pretrained_come_first_with_their_manifest_description_and_bad_files_carry_their_error(folders):
    pretrained, runs = folders
    save_toy(pretrained, "avb", "toy-avb")
    config = TrainConfig.for_method("avb", dataset="toy", latent_dim=2)
    (pretrained / "manifest.json").write_text(
        json.dumps(
            {
                "checkpoints": [
                    {
                        "name": "toy-avb",
                        "description": "AVB on the toy data",
                        "config": config.to_dict(),
                        "result": {"nll": [{"estimator": "grid", "nll": 1.40, "n_images": 1000}]},
                    }
                ]
            }
        )
    )
    save_toy(runs, "vae")
    (runs / "broken.safetensors").write_bytes(b"\x00" * 20)
    entries = list_entries()
    assert next((e.source, e.path.name) for e in entries) == ("pretrained", "toy-avb.safetensors")
    assert entries[0].description == "AVB on the toy data" and not entries[0].deletable_by(owner_tag("name", "x"))
    broken = next(e for e in entries if e.path.name == "broken.safetensors")
    assert broken.config is None and not broken.usable and "broken.safetensors" in broken.error
    # from the manifest's result, with the images it was measured on (the default seed, 0)
    saved = eval_log_px(entries[0].path)
    assert saved == SavedEstimate(-1.40, "grid", 1000, 0, None) and saved.how == "log p(x), grid on 1000 test images"


def test_an_evaluation_file_beside_a_run_gives_its_most_exact_nll(folders):
    _, runs = folders
    path = save_toy(runs, "iwae")
    assert eval_log_px(path) is None
    for estimator, nll, n in (("is", 85.2, 1000), ("ais", 84.9, 500)):
        write_eval_result(path, evaluation(path, estimator, nll, n))
    saved = eval_log_px(path)  # AIS before IS; a seed other than the default is said (other images)
    assert saved == SavedEstimate(-84.9, "ais", 500, 7, 1) and saved.how == "log p(x), ais on 500 test images (seed 7)"
    assert eval_log_px(path, step=1) == saved
    assert eval_log_px(path, step=2) is None  # measured at step 1: not of the weights at step 2
    path.with_suffix(".eval.json").write_text("{broken")
    assert eval_log_px(path) is None  # an unreadable evaluation is none, not an error


def evaluation(path, estimator: str, nll: float, n_images: int) -> EvalResult:
    return EvalResult(
        estimator=estimator,
        nll=nll,
        nll_se=0.1,
        n_images=n_images,
        seconds=1.0,
        seconds_per_1000=2.0,
        device="CPU",
        settings={"seed": 7},
        method="iwae",
        dataset="toy",
        latent_dim=2,
        checkpoint=path.name,
        checkpoint_step=1,
        created="",
        library_version="",
        diagnostics={},
        log_px=(-nll,) * n_images,
    )


def test_only_own_runs_can_be_deleted_and_their_evaluation_goes_too(folders):
    pretrained, runs = folders
    owner = owner_tag("session", "a-token")
    curated = save_toy(pretrained, "vae")
    with pytest.raises(DeleteRefused, match="only your own runs"):
        delete_run(curated, owner, file_signature(curated))
    assert curated.exists()
    run = Trainer(TrainConfig.for_method("avb", dataset="toy", latent_dim=2, device="cpu")).save(
        runs / "avb.safetensors", owner=owner
    )
    run.with_suffix(".eval.json").write_text("{}")
    delete_run(run, owner, file_signature(run))
    assert not run.exists() and not run.with_suffix(".eval.json").exists()


def test_find_four_matches_data_latent_size_and_k(folders):
    _, runs = folders
    for method in ("vae", "iwae", "avb", "iwavb"):
        save_toy(runs, method)
    found = find_four(list_entries(), "toy", 2, 10)
    assert list(found) == ["vae", "iwae", "avb", "iwavb"]
    assert find_four(list_entries(), "toy", 2, 5).keys() == {"vae", "avb"}  # the K = 10 runs do not fit K = 5
    assert find_four(list_entries(), "mnist", 2, 10) == {}


def test_display_data_fall_back_to_the_shipped_previews(tmp_path, monkeypatch):
    from iwavb.app.shared_data import cached_dataset, display_dataset
    from iwavb.artefacts.pretrained import previews_path

    if not previews_path().exists():
        pytest.skip(f"no shipped previews at {previews_path()}")
    monkeypatch.setenv("IWAVB_DATA_ROOT", str(tmp_path / "nothing"))
    monkeypatch.setenv("IWAVB_CACHE_DIR", str(tmp_path / "no-cache"))
    cached_dataset.cache_clear(), display_dataset.cache_clear()
    try:
        data = display_dataset("mnist")
    finally:
        cached_dataset.cache_clear(), display_dataset.cache_clear()
    assert data.test.images.shape[1] == 784 and len(data.test) == 256 and data.label_names[0] == "0"
