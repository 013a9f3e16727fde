"""One bad file breaks nothing but itself: generated broken checkpoints either load or fail with the project's
own error naming the file, everywhere a checkpoint is read.

Hypothesis mutates a valid checkpoint: any field of its metadata (removed, of another JSON type, out of
range, huge, NaN) and its tensors (truncated file, NaN or infinity at any place, another shape or dtype, one
missing or one too many). The shipped checkpoints must still load, unchanged.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save

from iwavb import settings as iwavb_settings
from iwavb.data.loading import load_dataset
from iwavb.errors import IWAVBError, ResourceError
from iwavb.training.checkpoint import META_KEY, CheckpointError, load_checkpoint, read_metadata
from iwavb.training.config import TrainConfig
from iwavb.training.runs import inspect_checkpoint, list_checkpoints
from iwavb.training.trainer import Trainer

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
EXTREMES = st.sampled_from([0, -1, 1, 2**31, 10**9, 10**18, -(10**18), 1e300, -1e-300, "", "1", [], {}])


def tiny_run() -> Trainer:
    """An IWAVB toy run with every part a checkpoint can have: weights, T, both optimisers' state, history."""
    config = TrainConfig.for_method(
        "iwavb", k=3, dataset="toy", latent_dim=2, hidden=8, noise_dim=4, steps=20, log_every=10, eval_every=10
    )
    trainer = Trainer(config)
    list(trainer.run())
    return trainer


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> tuple[dict, dict[str, torch.Tensor]]:
    """(the metadata as JSON, the tensors) of a valid checkpoint."""
    path = tiny_run().save(tmp_path_factory.mktemp("valid") / "valid.safetensors")
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()[META_KEY]), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- not iterable


def write(path: Path, meta: object, tensors: dict[str, torch.Tensor]) -> Path:
    path.write_bytes(save(tensors, metadata={META_KEY: json.dumps(meta)}))
    return path


def places(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: the paths to each key of each object and each item of each list."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += places(item, (*prefix, index))
    return found


def mutated(meta: dict, place: tuple, action: str, replacement: object) -> object:
    """A deep copy of `meta` with the value at `place` removed or replaced."""
    copy = json.loads(json.dumps(meta))
    parent = copy
    for step in place[:-1]:
        parent = parent[step]
    if action == "remove":
        del parent[place[-1]]
    else:
        parent[place[-1]] = replacement
    return copy


def must_load_or_name_the_file(path: Path) -> None:
    """The contract: a checkpoint loads (and then resumes, or is refused for its size), or the project's own
    error names the file; every reader of checkpoints agrees, and the listing never raises."""
    entry = inspect_checkpoint(path)
    assert entry is not None
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as err:
        assert path.name in str(err), str(err)
        assert not entry.usable
        return
    assert entry.usable, entry.error
    read_metadata(path)
    try:
        trainer = Trainer.from_checkpoint(checkpoint, data=load_dataset("toy"), device="cpu")
    except ResourceError:
        return  # a claimed size that would not fit: refused before anything of that size was allocated
    except CheckpointError as err:  # a random state that fits no run of this data set: refused, the file named
        assert path.name in str(err) and "random state" in str(err), str(err)
        return
    assert all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters())


@EXAMPLES
@given(data=st.data(), action=st.sampled_from(["remove", "json", "extreme"]))
def test_any_metadata_field_broken_in_any_way(valid, tmp_path_factory, data, action):
    meta, tensors = valid
    place = data.draw(st.sampled_from(places(meta)), label="place")
    replacement = data.draw(JSON_VALUES if action == "json" else EXTREMES, label="replacement")
    path = write(
        tmp_path_factory.mktemp("meta") / "mutated.safetensors", mutated(meta, place, action, replacement), tensors
    )
    must_load_or_name_the_file(path)


@settings(max_examples=20, deadline=None)
@given(whole=JSON_VALUES)
def test_metadata_that_is_not_an_object(tmp_path_factory, valid, whole):
    _, tensors = valid
    path = write(tmp_path_factory.mktemp("whole") / "whole.safetensors", whole, tensors)
    with pytest.raises(CheckpointError, match=r"whole\.safetensors"):
        read_metadata(path)


@EXAMPLES
@given(data=st.data(), action=st.sampled_from(["truncate", "nan", "inf", "shape", "dtype", "drop", "extra"]))
def test_any_tensor_broken_in_any_way(valid, tmp_path_factory, data, action):
    meta, tensors = valid
    tensors = dict(tensors)
    name = data.draw(st.sampled_from(sorted(tensors)), label="tensor")
    folder = tmp_path_factory.mktemp("tensors")
    if action == "truncate":
        blob = save(tensors, metadata={META_KEY: json.dumps(meta)})
        cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
        path = folder / "truncated.safetensors"
        path.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError, match=r"truncated\.safetensors"):
            load_checkpoint(path)
        must_load_or_name_the_file(path)
        return
    tensor = tensors[name].clone()
    if action in ("nan", "inf") and tensor.is_floating_point() and tensor.numel():
        index = data.draw(st.integers(0, tensor.numel() - 1), label="index")
        tensor.view(-1)[index] = math.nan if action == "nan" else -math.inf
    elif action == "shape":
        tensor = torch.zeros(tuple(data.draw(st.lists(st.integers(0, 5), max_size=3), label="shape")))
    elif action == "dtype":
        tensor = tensor.to(data.draw(st.sampled_from([torch.int32, torch.float64, torch.bool, torch.int64])))
    elif action == "drop":
        tensors.pop(name)
    elif action == "extra":
        tensors[data.draw(st.sampled_from(["model.extra", "optim.optimizer.99.exp_avg", "stray", name + ".x"]))] = (
            torch.zeros(2)
        )
    if action not in ("drop", "extra"):
        tensors[name] = tensor
    must_load_or_name_the_file(write(folder / "tensors.safetensors", meta, tensors))


def test_non_finite_weights_are_refused_at_load_and_marked_in_listings(valid, tmp_path):
    meta, tensors = valid
    tensors = {**tensors, "model.decoder.0.weight": tensors["model.decoder.0.weight"] * math.nan}
    path = write(tmp_path / "nan.safetensors", meta, tensors)
    with pytest.raises(CheckpointError, match=r"nan.safetensors: NaN or infinite values in model.decoder.0.weight"):
        load_checkpoint(path)
    (entry,) = list_checkpoints(tmp_path)
    assert entry.meta is not None and not entry.usable and "NaN" in entry.error  # listed, marked, its settings shown


def test_nan_weights_are_never_written(tmp_path):
    trainer = tiny_run()
    with torch.no_grad():
        trainer.model.decoder[0].weight[0, 0] = math.inf
    with pytest.raises(CheckpointError, match="not written"):
        trainer.save(tmp_path / "inf.safetensors")
    assert not list(tmp_path.iterdir())


def test_a_checkpoint_that_claims_k_of_a_billion_never_reaches_the_allocator(valid, tmp_path):
    meta, tensors = valid
    billion = mutated(meta, ("config", "k"), "replace", 10**9)
    with pytest.raises(CheckpointError, match=r"huge-k.safetensors: metadata.config: k must be a whole number"):
        load_checkpoint(write(tmp_path / "huge-k.safetensors", billion, tensors))
    claim = mutated(mutated(meta, ("config", "k"), "replace", 10**6), ("config", "batch_size"), "replace", 10**6)
    checkpoint = load_checkpoint(write(tmp_path / "big.safetensors", claim, tensors))  # a small file, and fine
    with pytest.raises(ResourceError, match=r"would need about [\d,.]+ GB .*lower K \(1000000\)"):
        Trainer.from_checkpoint(checkpoint, data=load_dataset("toy"), device="cpu")  # training it is not
    wide = mutated(meta, ("config", "hidden"), "replace", 65_536)
    with pytest.raises(CheckpointError, match="do not fit its own configuration"):  # shapes checked on "meta"
        load_checkpoint(write(tmp_path / "wide.safetensors", wide, tensors))


def test_every_shipped_checkpoint_loads_and_its_metadata_reads_back_unchanged():
    folder = iwavb_settings.pretrained_dir()
    files = sorted(folder.glob("*.safetensors"))
    if len(files) < 14:
        pytest.skip(f"the 14 shipped checkpoints are not in {folder}")
    for path in files:
        checkpoint = load_checkpoint(path)
        assert checkpoint.meta.extras == {"pretrained": path.stem}  # an extra key, kept as it was
        with safe_open(str(path), framework="pt") as f:
            stored = json.loads(f.metadata()[META_KEY])
        read_back = checkpoint.meta.to_json()
        newer = set(read_back["config"]) - set(stored["config"])  # settings added since they were written
        assert newer <= {"contrast", "accelerate"}, newer
        assert {name: read_back["config"][name] for name in newer} == {
            name: getattr(TrainConfig, name) for name in newer
        }  # their defaults, which give the run the files were written by
        truth = {"log_px": None, "log_px_se": None, "log_px_bound": None}  # record fields added since: absent is None
        history = [truth | record for record in stored["history"]]
        config = {**stored["config"], **{n: read_back["config"][n] for n in newer}}
        assert read_back == {**stored, "config": config, "history": history}
        assert inspect_checkpoint(path).usable


def test_old_files_without_new_optional_fields_still_load(valid, tmp_path):
    meta, tensors = valid
    old = {k: v for k, v in meta.items() if k in ("format", "format_version", "config", "step", "history")}
    weights = {k: v for k, v in tensors.items() if k.startswith("model.")}  # no optimiser state, as shipped ones
    checkpoint = load_checkpoint(write(tmp_path / "old.safetensors", old, weights))
    assert checkpoint.meta.owner is None and checkpoint.meta.device == "unknown" and not checkpoint.optimizer_states
    assert Trainer.from_checkpoint(checkpoint, data=load_dataset("toy"), device="cpu").step == checkpoint.step


def test_newer_format_and_foreign_keys(valid, tmp_path):
    meta, tensors = valid
    with pytest.raises(CheckpointError, match="newer IWAVB Lab"):
        read_metadata(write(tmp_path / "future.safetensors", {**meta, "format_version": 99}, tensors))
    noted = read_metadata(write(tmp_path / "noted.safetensors", {**meta, "note": [1, 2]}, tensors))
    assert noted.extras == {"note": [1, 2]} and noted.to_json()["note"] == [1, 2]
    unknown = {**meta, "config": {**meta["config"], "colour": "red"}}
    with pytest.raises(CheckpointError, match=r"unknown.safetensors: metadata.config: unknown field colour"):
        read_metadata(write(tmp_path / "unknown.safetensors", unknown, tensors))


def test_a_folder_and_a_missing_file_say_what_they_are(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        read_metadata(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_listing_survives_dangling_links_folders_and_files_that_vanish(valid, tmp_path, monkeypatch):
    meta, tensors = valid
    for name in ("a", "b", "c"):
        write(tmp_path / f"{name}.safetensors", meta, tensors)
    (tmp_path / "dangling.safetensors").symlink_to(tmp_path / "nowhere.safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    from iwavb.training import runs

    real = runs.inspect_checkpoint
    gone = tmp_path / "c.safetensors"

    def vanishing(path):  # another session deletes c while this listing is under way
        gone.unlink(missing_ok=True)
        return real(path)

    monkeypatch.setattr(runs, "inspect_checkpoint", vanishing)
    entries = {e.path.name: e for e in list_checkpoints(tmp_path)}
    assert "c.safetensors" not in entries
    assert entries["a.safetensors"].usable and entries["b.safetensors"].usable
    assert entries["dangling.safetensors"].link and "missing" in entries["dangling.safetensors"].error
    assert "not a regular file" in entries["folder.safetensors"].error


def test_a_listing_of_an_unreadable_folder_is_empty(tmp_path):
    assert list_checkpoints(tmp_path / "absent") == []
    (tmp_path / "file").write_text("x")
    assert list_checkpoints(tmp_path / "file") == []


def test_every_reader_raises_only_the_projects_error(valid, tmp_path):
    """The readers outside load_checkpoint: eval and info refuse a file with NaN weights with a message."""
    from iwavb.cli import main
    from iwavb.evaluation.evaluate import EvalSettings, evaluate_checkpoint

    meta, tensors = valid
    bad = write(
        tmp_path / "nan.safetensors",
        meta,
        {k: v * math.nan if k.startswith("model.") else v for k, v in tensors.items()},
    )
    with pytest.raises(IWAVBError, match=r"nan\.safetensors"):
        evaluate_checkpoint(bad, EvalSettings(n_test=4, device="cpu"))
    assert not list(tmp_path.glob("*.eval.json"))
    assert main(["eval", str(bad), "--n-test", "4", "--device", "cpu", "--threads", "1"]) == 2
    assert main(["train", "--resume", str(bad), "--threads", "1"]) == 2
    assert main(["info", str(bad)]) == 0  # its header is fine: info says what is wrong with the weights
    assert os.path.getsize(bad) > 0
