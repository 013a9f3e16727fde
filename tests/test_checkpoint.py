"""Checkpoints: bit-exact round trips, resuming, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from iwavb.core.model import LatentVariableModel
from iwavb.training.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An IWAVB toy run of 200 steps, saved."""
    config = TrainConfig.for_method("iwavb", k=3, dataset="toy", latent_dim=2, steps=200, log_every=50, eval_every=100)
    trainer = Trainer(config)
    list(trainer.run())
    path = trainer.save(tmp_path_factory.mktemp("ckpt") / "toy.safetensors")
    return trainer, path


def test_save_and_load_are_bit_exact(trained):
    trainer, path = trained
    checkpoint = load_checkpoint(path)
    assert checkpoint.config == trainer.config
    assert checkpoint.step == 200
    saved, loaded = trainer.model.state_dict(), checkpoint.build_model().state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert [r.step for r in checkpoint.history] == [50, 100, 150, 200]
    assert checkpoint.meta.train_seconds > 0 and "CPU" in checkpoint.meta.device
    opt = checkpoint.optimizer_states["optimizer"]
    reference = trainer.optimizer.state_dict()
    assert all(torch.equal(opt["state"][i]["exp_avg"], reference["state"][i]["exp_avg"]) for i in reference["state"])


def test_resume_continues_the_run(trained):
    _trainer, path = trained
    resumed = Trainer.from_checkpoint(load_checkpoint(path), steps=250)
    records = list(resumed.run())
    assert [r.step for r in records] == [250]
    assert [r.step for r in resumed.history] == [50, 100, 150, 200, 250]


def test_half_precision_checkpoint_loads_as_float32(tmp_path, trained):
    trainer, _ = trained
    path = save_checkpoint(tmp_path / "half.safetensors", trainer.config, trainer.model, 200, [], half=True)
    model = load_checkpoint(path).build_model()
    weight = model.decoder[0].weight
    assert weight.dtype == torch.float32
    assert torch.allclose(weight, trainer.model.decoder[0].weight.half().float())
    assert os.path.getsize(path) < 0.6 * os.path.getsize(trainer.save(tmp_path / "full.safetensors"))


def test_truncated_file_fails_clearly(tmp_path, trained):
    _, path = trained
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(bad)


def test_random_bytes_fail_clearly(tmp_path):
    bad = tmp_path / "noise.safetensors"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(bad)


def test_foreign_safetensors_file_fails_clearly(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not an IWAVB Lab checkpoint"):
        load_checkpoint(foreign)


def test_weights_that_do_not_fit_the_config_fail_clearly(tmp_path, trained):
    trainer, _ = trained
    other = LatentVariableModel(TrainConfig.for_method("iwavb", k=3, dataset="toy", latent_dim=3).model_config())
    path = save_checkpoint(tmp_path / "mismatch.safetensors", trainer.config, other, 0, [])
    with pytest.raises(CheckpointError, match="do not fit its own configuration"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, trained, monkeypatch):
    trainer, _ = trained
    path = trainer.save(tmp_path / "run.safetensors")  # its own file: saving again replaces it
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(CheckpointError, match=r"disk is full.*unchanged"):
        trainer.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.safetensors"]  # no temporary file left behind


def test_metadata_is_json_readable_without_weights(trained):
    _, path = trained
    meta = read_metadata(path)
    assert meta.config.q == "implicit" and meta.config.k == 3
    json.dumps(meta.to_json(), allow_nan=False)  # plain JSON all the way down
