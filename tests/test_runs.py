"""No run is lost: unique names, nothing replaced that a run did not write, deletion of exactly the confirmed file
by its owner only, links never followed, temporary files cleaned, and saves that survive SIGKILL, a full and a
read-only file system."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from app_folders import empty_folders
from faults import fill, read_only, tmpfs

from iwavb.artefacts.catalog import DeleteRefused, delete_run, list_entries
from iwavb.files import file_signature, remove_stale_temporaries
from iwavb.training.checkpoint import CheckpointError, RunExists, load_checkpoint
from iwavb.training.config import TrainConfig
from iwavb.training.runs import default_run_path, list_checkpoints, owner_tag, save_run
from iwavb.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
ALICE, BOB = owner_tag("name", "Alice"), owner_tag("name", "bob")


@pytest.fixture
def folders(tmp_path, monkeypatch):
    for name, value in empty_folders(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path / "pretrained", tmp_path / "runs"


def toy_run(steps: int = 10, seed: int = 0) -> Trainer:
    config = TrainConfig.for_method("vae", dataset="toy", latent_dim=2, hidden=8, steps=steps, seed=seed, log_every=5)
    trainer = Trainer(config)
    list(trainer.run())
    return trainer


def test_two_runs_with_the_same_settings_get_a_file_each(folders):
    first, second = toy_run(seed=0), toy_run(seed=0)
    with torch.no_grad():
        second.model.decoder[0].bias.add_(1.0)  # same settings, other weights
    path = default_run_path(first.config)
    a, b = save_run(first, path, ALICE), save_run(second, path, BOB)
    assert (a, b) == (path, path.with_name(path.stem + "-2.safetensors"))
    assert torch.equal(load_checkpoint(b).model_state["decoder.0.bias"], second.model.decoder[0].bias)
    list(first.run())  # nothing more to train; saved again, it goes to its own file
    assert save_run(first, path, ALICE) == a and load_checkpoint(a).meta.owner == ALICE


def test_a_run_replaces_only_what_it_wrote_and_nobody_changed_since(tmp_path):
    trainer = toy_run()
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(b"someone else's")
    with pytest.raises(RunExists, match="holds another run"):
        trainer.save(foreign)
    assert foreign.read_bytes() == b"someone else's"
    mine = trainer.save(tmp_path / "mine.safetensors")
    assert trainer.wrote(mine)
    trainer.save(mine)  # its own file: replaced
    other = toy_run(seed=1).save(tmp_path / "other.safetensors")
    os.replace(other, mine)  # another process writes a run under this name
    with pytest.raises(RunExists):
        trainer.save(mine)
    assert save_run(trainer, mine) == tmp_path / "mine-2.safetensors"


def test_delete_acts_on_exactly_the_confirmed_run_of_its_owner(folders):
    pretrained, runs = folders
    shipped = toy_run().save(pretrained / "shipped.safetensors")
    run = save_run(toy_run(), runs / "run.safetensors", ALICE)
    run.with_suffix(".eval.json").write_text("{}")
    listed = {e.path.name: e for e in list_entries()}
    assert listed["run.safetensors"].deletable_by(ALICE) and not listed["run.safetensors"].deletable_by(BOB)
    assert not listed["shipped.safetensors"].deletable_by(ALICE)
    with pytest.raises(DeleteRefused, match="only your own runs"):
        delete_run(shipped, ALICE, listed["shipped.safetensors"].signature)
    with pytest.raises(DeleteRefused, match="belongs to another session"):
        delete_run(run, BOB, listed["run.safetensors"].signature)
    cli_run = toy_run().save(runs / "cli.safetensors")  # made outside the app: no owner
    with pytest.raises(DeleteRefused, match="outside the app"):
        delete_run(cli_run, ALICE, file_signature(cli_run))
    delete_run(run, owner_tag("name", " ALICE "), listed["run.safetensors"].signature)  # names in any case
    assert not run.exists() and not run.with_suffix(".eval.json").exists() and shipped.exists()


def test_delete_refuses_a_run_that_is_gone_or_was_replaced_since_it_was_listed(folders):
    _, runs = folders
    run = save_run(toy_run(), runs / "run.safetensors", ALICE)
    (entry,) = [e for e in list_entries() if e.source == "run"]
    replacement = toy_run(seed=3)
    replacement.save(runs / "new.safetensors", owner=ALICE)
    os.replace(runs / "new.safetensors", run)  # saved again under the same name since the listing
    with pytest.raises(DeleteRefused, match="has changed since it was listed"):
        delete_run(run, ALICE, entry.signature)
    assert run.exists()
    run.unlink()
    with pytest.raises(DeleteRefused, match="no longer there"):
        delete_run(run, ALICE, entry.signature)


def test_links_in_the_runs_folder_are_never_followed_to_delete(folders, tmp_path):
    _, runs = folders
    elsewhere = save_run(toy_run(), tmp_path / "elsewhere.safetensors", ALICE)
    (runs / "link.safetensors").symlink_to(elsewhere)
    (entry,) = [e for e in list_entries() if e.source == "run"]
    assert entry.link and entry.usable and not entry.deletable_by(ALICE)
    with pytest.raises(DeleteRefused, match="is a link"):
        delete_run(entry.path, ALICE, entry.signature)
    assert elsewhere.exists() and (runs / "link.safetensors").is_symlink()


def test_stale_temporary_files_are_cleaned_and_fresh_ones_kept(tmp_path):
    stale = tmp_path / f".run.safetensors.{'a' * 32}.tmp"
    fresh = tmp_path / f".run.safetensors.{'b' * 32}.tmp"
    other = tmp_path / ".notes.tmp"
    for path in (stale, fresh, other):
        path.write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    list_checkpoints(tmp_path)
    assert not stale.exists() and fresh.exists() and other.exists()  # only what atomic writes leave, when stale


KILLER = """
import sys, time
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer
config = TrainConfig.for_method("vae", dataset="toy", latent_dim=2, hidden=1_000, steps=1)
trainer = Trainer(config)
trainer.save(sys.argv[1])
print("saved", flush=True)
while True:
    trainer.save(sys.argv[1])
"""


def test_sigkill_during_a_save_leaves_the_last_complete_checkpoint(tmp_path):
    path = tmp_path / "run.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], stdout=subprocess.PIPE, env=env, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "saved"
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.001)  # until a save (of ~50 MB: weights and Adam's state) is under way
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_checkpoint(path).step == 0  # whole: the last save that finished
    leftovers = list(tmp_path.glob(".*.tmp"))
    assert leftovers, "the kill was meant to land inside a save"
    for leftover in leftovers:
        os.utime(leftover, (0, 0))
    assert remove_stale_temporaries(tmp_path) == leftovers
    assert [p.name for p in tmp_path.iterdir()] == ["run.safetensors"]


def test_a_full_runs_folder_keeps_the_previous_checkpoint(tmp_path):
    with tmpfs(tmp_path / "small", "512k") as folder:
        trainer = toy_run()
        path = trainer.save(folder / "run.safetensors")
        before = path.read_bytes()
        fill(folder)
        list(trainer.run())
        with pytest.raises(CheckpointError, match=r"disk is full\. Any earlier file there is unchanged"):
            trainer.save(path)
        assert path.read_bytes() == before and not list(folder.glob(".*.tmp"))
        assert [e.path.name for e in list_checkpoints(folder)] == ["run.safetensors"]


def test_a_read_only_runs_folder_is_listed_and_refuses_saves_and_deletes_with_a_message(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "runs", "2m") as folder:
        monkeypatch.setenv("IWAVB_RUNS_DIR", str(folder))
        monkeypatch.setenv("IWAVB_PRETRAINED_DIR", str(tmp_path / "none"))
        run = save_run(toy_run(), folder / "run.safetensors", ALICE)
        stale = folder / f".x.safetensors.{'c' * 32}.tmp"
        stale.write_bytes(b"")
        os.utime(stale, (0, 0))
        read_only(folder)
        (entry,) = list_entries()  # the stale file cannot be removed: no matter
        assert entry.usable
        with pytest.raises(CheckpointError, match=r"could not write .*Read-only file system"):
            save_run(toy_run(seed=1), folder / "run.safetensors", ALICE)
        with pytest.raises(DeleteRefused, match="could not be deleted: Read-only file system"):
            delete_run(run, ALICE, entry.signature)
        assert run.exists()
