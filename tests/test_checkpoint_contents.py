"""What a checkpoint file holds (its metadata, its defaults when fields are absent) and what each error says.

Files are written here with safetensors directly, so that each test can leave out or break one thing.
"""

from __future__ import annotations

import json
import os
import platform
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from iwavb import __version__
from iwavb.core.model import LatentVariableModel
from iwavb.files import file_signature
from iwavb.training import checkpoint as checkpoint_module
from iwavb.training.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from iwavb.training.config import TrainConfig
from iwavb.training.records import Record
from iwavb.training.trainer import Trainer

CONFIG = TrainConfig.for_method("avb", dataset="toy", latent_dim=2, hidden=8, noise_dim=4, steps=5)


def model() -> LatentVariableModel:
    torch.manual_seed(0)
    return LatentVariableModel(CONFIG.model_config())


def rewrite(path, tensors=None, meta=None):
    """Rewrite a checkpoint file with other tensors and/or metadata (a dict, or raw text for the header)."""
    with safe_open(str(path), framework="pt") as f:
        old_meta = f.metadata()["iwavb"]
    tensors = load_file(str(path)) if tensors is None else tensors
    raw = old_meta if meta is None else meta if isinstance(meta, str) else json.dumps(meta)
    save_file(tensors, str(path), metadata={"iwavb": raw})
    return path


def test_the_metadata_records_format_library_time_dtype_and_host(tmp_path):
    record = Record(3, -1.5, None, None, None, 10.0, 0.3)
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [record])  # float32 by default
    meta = read_metadata(path)
    assert (meta.format, meta.format_version, meta.library_version) == ("iwavb-checkpoint", 1, __version__)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", meta.created), meta.created
    assert (meta.weights_dtype, meta.host, meta.step) == ("float32", platform.node(), 3)
    half = save_checkpoint(tmp_path / "h.safetensors", CONFIG, model(), 3, [], half=True)
    assert read_metadata(half).weights_dtype == "float16"
    loaded = load_checkpoint(path)
    assert loaded.path == path and loaded.history == (record,)


def test_a_checkpoint_without_history_or_optimiser_groups_loads_with_their_defaults(tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [])
    meta = read_metadata(path).to_json()
    for field in ("history", "optimizer_param_groups", "library_version", "created", "host"):
        del meta[field]  # as an older or hand-made file may lack them
    loaded = load_checkpoint(rewrite(path, meta=meta))
    assert (loaded.step, loaded.history, loaded.optimizer_states) == (3, (), {})
    assert (loaded.meta.library_version, loaded.meta.created, loaded.meta.host) == ("unknown", "", "")
    for field in ("step", "format_version"):  # what a checkpoint cannot be read without
        with pytest.raises(CheckpointError, match=rf"a\.safetensors: metadata: missing field {field}$"):
            read_metadata(rewrite(path, meta={k: v for k, v in meta.items() if k != field}))


def test_weights_that_do_not_fit_are_named_missing_unexpected_and_of_the_wrong_shape(tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [])
    tensors = load_file(str(path))
    names = sorted(k for k in tensors if k.startswith("model."))
    for name in names[:4]:
        del tensors[name]
    for extra in "abcd":
        tensors[f"model.extra.{extra}"] = torch.zeros(2)
    for name in names[4:8]:
        tensors[name] = torch.zeros(1, 1)
    missing, wrong = (", ".join(n.removeprefix("model.") for n in chosen[:3]) for chosen in (names, names[4:]))
    expected = (
        f"{path}: its weights do not fit its own configuration: 4 missing ({missing}); "
        f"4 unexpected (extra.a, extra.b, extra.c); 4 of the wrong shape ({wrong})"
    )
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(rewrite(path, tensors))
    assert str(caught.value) == expected  # each list named, its first three, with ", " between them

    for name, alone in (("b", "model.extra.weight"), ("c", names[4])):  # one kind of misfit alone
        tensors = load_file(str(save_checkpoint(tmp_path / f"{name}.safetensors", CONFIG, model(), 3, [])))
        tensors[alone] = torch.zeros(2) if alone not in tensors else torch.zeros(1, 1)
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(rewrite(tmp_path / f"{name}.safetensors", tensors))
        kind = "1 unexpected (extra.weight)" if name == "b" else f"1 of the wrong shape ({names[4][6:]})"
        assert str(caught.value).endswith(f"configuration: {kind}")


def trained_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """A checkpoint with both optimisers' Adam state (one step of AVB on the toy): its tensors and its header."""
    trainer = Trainer(CONFIG)
    trainer.train_step()
    trainer.save(path)
    return load_file(str(path)), read_metadata(path).to_json()


def without(tensors: dict[str, torch.Tensor], slot: str, count: int) -> dict[str, torch.Tensor]:
    """The tensors less `slot` of the optimiser's first `count` parameters."""
    return {k: v for k, v in tensors.items() if not any(k == f"optim.optimizer.{i}.{slot}" for i in range(count))}


def test_each_flaw_in_the_optimisers_state_is_named(tmp_path):
    path = tmp_path / "a.safetensors"
    tensors, meta = trained_checkpoint(path)
    params = len(meta["optimizer_param_groups"]["optimizer"][0]["params"])
    assert load_checkpoint(path).optimizer_states.keys() == {"optimizer", "disc_optimizer"}
    ghosts = {
        **meta,
        "optimizer_param_groups": {
            **meta["optimizer_param_groups"],
            "ghost": [{"params": [0]}],
            "phantom": [{"params": [0]}],
        },
    }
    one_less = {**meta, "optimizer_param_groups": {**meta["optimizer_param_groups"]}}
    one_less["optimizer_param_groups"]["optimizer"] = [{**one_less["optimizer_param_groups"]["optimizer"][0]}]
    one_less["optimizer_param_groups"]["optimizer"][0]["params"] = list(range(params - 1))
    exp_avg = tensors["optim.optimizer.0.exp_avg"].clone()  # safetensors writes no tensor twice
    broken = {
        "optimiser state for ghost, phantom, which this kind of model does not have$": (tensors, ghosts),
        f"optimizer_param_groups.optimizer lists {params - 1} parameters; the model has {params}$": (tensors, one_less),
        f"optimiser tensor optim.optimizer.{params}.step: there is no parameter {params}$": (
            {**tensors, f"optim.optimizer.{params}.step": torch.zeros(())},
            meta,
        ),
        "optimiser tensor optim.optimizer.0.momentum: Adam has no state 'momentum'$": (
            {**tensors, "optim.optimizer.0.momentum": exp_avg},
            meta,
        ),
        "optimiser tensor optim.optimizer.0.exp_avg.x belongs to no optimiser in the metadata$": (
            {**tensors, "optim.optimizer.0.exp_avg.x": exp_avg},
            meta,
        ),
        rf"optimiser tensor optim.optimizer.0.exp_avg has shape \(3,\), not \({exp_avg.shape[0]}, ": (
            {**tensors, "optim.optimizer.0.exp_avg": torch.zeros(3)},
            meta,
        ),
        r"Adam's state of optimizer.0, optimizer.1, optimizer.2 lacks one of exp_avg, exp_avg_sq, step$": (
            without(tensors, "exp_avg_sq", 4),
            meta,
        ),
    }
    for message, (flawed, header) in broken.items():
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(rewrite(path, flawed, header))


@pytest.mark.parametrize("count, more", [(3, ""), (4, " and more")])
def test_non_finite_weights_are_named_three_and_more(tmp_path, count, more):
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [])
    tensors = load_file(str(path))
    names = sorted(k for k in tensors if k.startswith("model."))[:count]
    for name in names:
        tensors[name] = torch.full_like(tensors[name], float("nan"))
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(rewrite(path, tensors))
    assert str(caught.value) == (
        f"{path}: NaN or infinite values in {', '.join(names[:3])}{more}: "
        "these weights cannot be evaluated or trained further"
    )


def test_whole_numbers_where_weights_are_real_are_named_three_at_most(tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [])
    tensors = load_file(str(path))
    names = sorted(k for k in tensors if k.startswith("model."))[:4]
    for name in names:
        tensors[name] = tensors[name].to(torch.int64)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(rewrite(path, tensors))
    assert str(caught.value).endswith(
        f"tensors of the wrong kind (whole numbers for real ones?): {', '.join(names[:3])}"
    )


def test_a_loaded_checkpoint_knows_its_files_signature(tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [])
    assert load_checkpoint(path).signature == file_signature(path.resolve()) is not None


@pytest.mark.parametrize(
    "name, tensor",
    [
        ("generator.cpu", torch.zeros(8, dtype=torch.int64)),  # generator states are bytes
        ("sampler.order", torch.zeros(4)),  # an order is of whole numbers
        ("sampler.position", torch.zeros(1, dtype=torch.int64)),  # a position is one number
        ("sampler.seed", torch.zeros((), dtype=torch.int64)),  # nothing a run saves
    ],
)
def test_a_random_state_of_another_kind_is_refused_by_name(tmp_path, name, tensor):
    good = {
        "generator.cpu": torch.zeros(8, dtype=torch.uint8),
        "sampler.order": torch.arange(4),
        "sampler.position": torch.tensor(2),
    }
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [], random_state=good)
    assert load_checkpoint(path).random_state.keys() == good.keys()
    path = save_checkpoint(path, CONFIG, model(), 3, [], random_state={**good, name: tensor})
    with pytest.raises(CheckpointError, match=rf"its random state is not one a run saves: random\.{name}$"):
        load_checkpoint(path)


def test_random_state_of_other_kinds_is_named_three_at_most(tmp_path):
    odd = {f"sampler.seed{i}": torch.zeros(()) for i in range(4)}
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [], random_state=odd)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value).endswith(
        "not one a run saves: random.sampler.seed0, random.sampler.seed1, random.sampler.seed2"
    )


def test_each_broken_header_is_named(tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [])
    with pytest.raises(CheckpointError, match=r"a\.safetensors: its metadata is not valid JSON: Expecting"):
        read_metadata(rewrite(path, meta="{not json"))
    with pytest.raises(CheckpointError, match=r"a\.safetensors: not an IWAVB Lab checkpoint \(format 'other'\)"):
        read_metadata(rewrite(path, meta={"format": "other"}))
    with pytest.raises(
        CheckpointError, match=r"a\.safetensors: metadata: missing fields format_version, config, step$"
    ):
        load_checkpoint(rewrite(path, meta={"format": "iwavb-checkpoint"}))
    meta = read_metadata(save_checkpoint(path, CONFIG, model(), 3, [])).to_json()
    for field, value, message in [
        ("format_version", 0, "format_version 0 is not one this version reads (1 to 1)"),
        ("step", -1, "step (-1) and train_seconds (0.0) cannot be negative"),
        ("train_seconds", -1.0, "step (3) and train_seconds (-1.0) cannot be negative"),
    ]:
        with pytest.raises(CheckpointError, match=re.escape(message)):
            read_metadata(rewrite(path, meta={**meta, field: value, "history": []}))
    record = Record(2, -1.5, None, None, None, 10.0, 0.3).to_dict()
    for history, message in [
        ([record, record], "history[1].step is 2: the history's steps must rise, from 1 to the checkpoint's step 3"),
        ([{**record, "step": 0}], "history[0].step is 0: the history's steps must rise"),
    ]:
        with pytest.raises(CheckpointError, match=re.escape(message)):
            read_metadata(rewrite(path, meta={**meta, "history": history}))
    for groups, message in [
        ([{}], "optimizer_param_groups.optimizer: each group needs a list of 'params'"),
        ([{"params": [0, 2]}], "optimizer_param_groups.optimizer: 'params' must number the parameters 0, 1, 2, ..."),
        ([{"params": [False]}], "optimizer_param_groups.optimizer: 'params' must number the parameters 0, 1, 2, ..."),
    ]:
        with pytest.raises(CheckpointError, match=re.escape(message)):
            read_metadata(rewrite(path, meta={**meta, "optimizer_param_groups": {"optimizer": groups}}))
    with pytest.raises(CheckpointError, match=r"a\.safetensors: its metadata is not a JSON object but a list$"):
        read_metadata(rewrite(path, meta="[1, 2]"))
    os.mkfifo(tmp_path / "pipe.safetensors")  # exists, is no folder, and holds no file
    with pytest.raises(CheckpointError, match=r"pipe\.safetensors is not a regular file, so not a checkpoint$"):
        read_metadata(tmp_path / "pipe.safetensors")


def test_unreadable_weights_and_stray_optimiser_tensors_are_named(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "a.safetensors", CONFIG, model(), 3, [])
    tensors = {**load_file(str(path)), "optim.ghost.0.step": torch.zeros(())}
    with pytest.raises(
        CheckpointError, match=r"optimiser tensor optim\.ghost\.0\.step belongs to no optimiser in the metadata"
    ):
        load_checkpoint(rewrite(path, tensors))

    opened = []

    def failing_second_open(*args, **kwargs):  # the header reads fine; the weights do not
        opened.append(args)
        if len(opened) == 2:
            raise OSError("input/output error")
        return safe_open(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "safe_open", failing_second_open)
    path = save_checkpoint(tmp_path / "b.safetensors", CONFIG, model(), 3, [])
    with pytest.raises(CheckpointError, match=r"b\.safetensors: its weights could not be read .*input/output error"):
        load_checkpoint(path)


def test_the_header_keeps_the_device_owner_and_extras_and_a_save_replaces_by_default(tmp_path):
    path = tmp_path / "run.safetensors"
    save_checkpoint(path, CONFIG, model(), 0, [], extra={"device": "CPU (1 thread)", "note": "kept"}, owner="me")
    meta = read_metadata(path)
    assert (meta.device, meta.owner, meta.extras) == ("CPU (1 thread)", "me", {"note": "kept"})
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["iwavb"])
    assert header["note"] == "kept" and "extras" not in header and header["owner"] == "me"
    save_checkpoint(path, CONFIG, model(), 3, [])  # the default replaces; owner None is left out of the header
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["iwavb"])
    assert header["step"] == 3 and "owner" not in header and read_metadata(path).owner is None
    assert (header["device"], header["train_seconds"]) == ("unknown", 0.0)  # not given: the defaults


def test_a_refused_save_names_the_first_three_bad_tensors(tmp_path):
    broken = model()
    with torch.no_grad():
        for p in broken.parameters():
            p.fill_(float("nan"))
    names = ", ".join(checkpoint_module.MODEL_PREFIX + k for k in list(broken.state_dict())[:3])
    with pytest.raises(CheckpointError, match=re.escape(f"not written: NaN or infinite values in {names}") + "$"):
        save_checkpoint(tmp_path / "bad.safetensors", CONFIG, broken, 0, [])
    assert len(broken.state_dict()) > 3 and not (tmp_path / "bad.safetensors").exists()


def test_a_conv_models_integer_buffers_round_trip_as_integers(tmp_path):
    """Batch norm's step counters are int64: a save that cast them to float would write a file that loading
    refuses (tensors of the wrong kind)."""
    config = TrainConfig.for_method("vae", dataset="mnist", family="conv", latent_dim=2)
    net = LatentVariableModel(config.model_config())
    counters = {k for k, v in net.state_dict().items() if not v.is_floating_point()}
    assert counters  # the conv networks have some
    loaded = load_checkpoint(save_checkpoint(tmp_path / "conv.safetensors", config, net, 0, []))
    assert all(loaded.model_state[k].dtype == torch.int64 for k in counters)


def test_a_nan_in_the_metadata_is_refused_by_name_and_nothing_is_written(tmp_path):
    """Strict JSON: Python would read a NaN back, other safetensors readers would not read the header at all."""
    path = tmp_path / "run.safetensors"
    record = Record(3, -1.5, float("nan"), None, None, 10.0, 0.3)  # a validation bound that came out NaN
    with pytest.raises(CheckpointError, match=r"run.safetensors: not written: NaN or infinite numbers in its metadata"):
        save_checkpoint(path, CONFIG, model(), 3, [record])
    assert not path.exists()


def test_a_save_that_may_not_replace_leaves_an_existing_file_as_it_was(tmp_path):
    path = tmp_path / "run.safetensors"
    path.write_bytes(b"another run")
    with pytest.raises(checkpoint_module.RunExists, match=f"{re.escape(str(path))} already holds another run"):
        save_checkpoint(path, CONFIG, model(), 3, [], replace=False)
    assert path.read_bytes() == b"another run"
    fresh = tmp_path / "fresh.safetensors"
    assert load_checkpoint(save_checkpoint(fresh, CONFIG, model(), 3, [], replace=False)).step == 3
