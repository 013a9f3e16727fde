"""The trainer's state: both optimisers through save -> load -> resume and through a NaN rollback, a resumed
run that continues bit for bit, and the configured K reaching the step.

Tiny networks on synthetic toy-shaped data (40 points of width 4, batch 8), so that an epoch spans five
batches and a run can be interrupted mid-epoch; each test takes well under a second of training.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
import torch

from iwavb.core.bounds import iw_bound, log_weights
from iwavb.data.splits import BatchSampler, DataSplits, Split, binarize
from iwavb.errors import SettingError
from iwavb.training import trainer as trainer_module
from iwavb.training.checkpoint import CheckpointError, RunExists, load_checkpoint
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer, TrainingDiverged

K = 4


def synthetic_data(n: int = 40, seed: int = 0) -> DataSplits:
    """Grey levels 0..255 in toy-shaped rows (width 4), more rows than a batch: the sampler shuffles epochs."""
    g = torch.Generator().manual_seed(seed)
    split = Split(torch.randint(0, 256, (n, 4), generator=g, dtype=torch.uint8), torch.zeros(n, dtype=torch.long))
    return DataSplits("toy", split, split, split, ("a",))


def small_config(method: str, steps: int = 20, seed: int = 0) -> TrainConfig:
    return TrainConfig.for_method(
        method,
        k=K if method in ("iwae", "iwavb") else None,
        dataset="toy",
        latent_dim=2,
        hidden=16,
        noise_dim=8,
        steps=steps,
        batch_size=8,
        log_every=4,
        eval_every=8,
        seed=seed,
        device="cpu",
    )


def optimiser_states(trainer: Trainer) -> dict[str, dict[str, Any]]:
    """Both optimisers' state_dicts, copied (the discriminator's is absent for a Gaussian q)."""
    states = {"optimizer": trainer.optimizer.state_dict()}
    if trainer.disc_optimizer is not None:
        states["disc_optimizer"] = trainer.disc_optimizer.state_dict()
    return copy.deepcopy(states)


def assert_same_optimiser_states(actual: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    """Tensor for tensor (exp_avg, exp_avg_sq, step of every parameter), and the same hyperparameters."""
    assert actual.keys() == expected.keys()
    for name in expected:
        got, want = actual[name]["state"], expected[name]["state"]
        assert got.keys() == want.keys(), name
        for index in want:
            assert got[index].keys() == want[index].keys(), (name, index)
            for slot, value in want[index].items():
                assert torch.equal(torch.as_tensor(got[index][slot]), torch.as_tensor(value)), (name, index, slot)
        # JSON's lists stand for tuples (Adam's betas) once a state has been through a checkpoint
        groups = [json.loads(json.dumps(s[name]["param_groups"])) for s in (actual, expected)]
        assert groups[0] == groups[1], name


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), [k for k in sa if not torch.equal(sa[k], sb[k])]


def metric_rows(trainer: Trainer) -> list[tuple]:
    """The history without its timings (steps/s and seconds differ between any two runs)."""
    return [(r.step, r.train_bound, r.valid_bound, r.disc_loss, r.disc_accuracy) for r in trainer.history]


@pytest.mark.parametrize("method", ["iwae", "iwavb"])
def test_save_load_resume_keeps_both_optimiser_states(tmp_path, method):
    data = synthetic_data()
    trainer = Trainer(small_config(method, steps=12), data=data)
    list(trainer.run())
    saved = optimiser_states(trainer)
    assert all(saved[name]["state"] for name in saved)  # Adam has moments to lose
    checkpoint = load_checkpoint(trainer.save(tmp_path / "run.safetensors"))
    assert_same_optimiser_states(checkpoint.optimizer_states, saved)  # both written, neither dropped
    resumed = Trainer.from_checkpoint(checkpoint, steps=20, device="cpu", data=data)
    assert_same_optimiser_states(optimiser_states(resumed), saved)  # and both used on resume
    assert_same_weights(resumed.model, trainer.model)


def test_a_nan_rollback_restores_the_weights_and_both_optimisers():
    trainer = Trainer(small_config("avb", steps=40), data=synthetic_data())
    run = trainer.run()
    assert next(run).step == 4
    good_weights = copy.deepcopy(trainer.model)
    good_states = optimiser_states(trainer)
    with torch.no_grad():
        trainer.model.decoder[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged) as diverged:
        next(run)
    assert str(diverged.value) == (
        "training diverged before step 8: the bound or the discriminator loss became NaN or infinite. The model "
        "was rolled back to step 4, the last good state; try smaller learning rates."
    )
    assert trainer.step == 4 and [r.step for r in trainer.history] == [4]
    assert_same_weights(trainer.model, good_weights)
    assert_same_optimiser_states(optimiser_states(trainer), good_states)  # not the NaN moments of steps 5-8


def test_a_run_that_diverges_before_its_first_record_rolls_back_to_its_initial_state():
    trainer = Trainer(small_config("avb", steps=40), data=synthetic_data())
    initial_weights = copy.deepcopy(trainer.model)
    with torch.no_grad():
        trainer.model.decoder[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"before step 4: .* rolled back to step 0, the last good state"):
        next(trainer.run())
    assert trainer.step == 0 and trainer.history == []
    assert_same_weights(trainer.model, initial_weights)  # as built, not the NaN put in after
    assert all(not state["state"] for state in optimiser_states(trainer).values())  # Adam as new


@pytest.mark.parametrize("method", ["vae", "iwavb"])
def test_a_resumed_run_continues_bit_for_bit_like_an_uninterrupted_one(tmp_path, method):
    """Saved at step 8, mid-epoch (five batches per epoch), as the app's Save button does while a run trains,
    then resumed: the same batches, binarisations and draws follow, so every metric and every weight equals
    the uninterrupted run's."""
    data = synthetic_data()
    whole = Trainer(small_config(method, steps=20), data=data)
    list(whole.run())

    first = Trainer(small_config(method, steps=20), data=data)
    run = first.run()
    next(run), next(run)  # the records of steps 4 and 8; the run waits at step 8
    path = first.save(tmp_path / "half.safetensors")
    run.close()
    resumed = Trainer.from_checkpoint(load_checkpoint(path), device="cpu", data=data)
    list(resumed.run())

    assert resumed.step == whole.step == 20
    assert_same_weights(resumed.model, whole.model)
    assert_same_optimiser_states(optimiser_states(resumed), optimiser_states(whole))
    assert metric_rows(resumed) == metric_rows(whole)  # steps 4 to 20: the same values, bit for bit


@pytest.mark.parametrize("method", ["iwae", "iwavb"])
def test_the_first_step_trains_the_bound_at_the_configured_k(method):
    """The bound the first step returns is `iw_bound(log_weights(model, x, K))` for the configured K, drawn
    with the same random state: the same batch, binarisation and samples of q. K = 1 would give another."""
    data = synthetic_data()
    trainer = Trainer(small_config(method), data=data)
    model = copy.deepcopy(trainer.model)  # the weights before the step

    def bound_at(k: int) -> torch.Tensor:
        generator = torch.Generator().set_state(trainer.generator.get_state())
        sampler = BatchSampler(len(data.train), trainer.config.batch_size, generator)
        x = binarize(data.train.images[sampler.next_indices()], generator)
        with torch.no_grad():
            return iw_bound(log_weights(model, x, k, generator).log_w).mean()

    expected, single = bound_at(K), bound_at(1)
    step_bound, _, _ = trainer.train_step()
    torch.testing.assert_close(step_bound, expected, rtol=0, atol=1e-6)
    assert (step_bound - single).abs() > 1e-3  # the test can tell K from 1


def test_a_save_writes_what_the_run_is_and_a_shipped_one_only_its_weights(tmp_path):
    trainer = Trainer(small_config("avb"), data=synthetic_data())
    trainer.train_step()
    trainer.elapsed_s = 1.23456
    full = load_checkpoint(trainer.save(tmp_path / "full.safetensors", owner="alice"))
    assert (full.meta.weights_dtype, full.meta.owner, full.meta.train_seconds) == ("float32", "alice", 1.23)
    assert full.meta.device.startswith("CPU")  # device_description's words
    assert full.optimizer_states.keys() == {"optimizer", "disc_optimizer"} and full.random_state
    shipped = load_checkpoint(trainer.save(tmp_path / "shipped.safetensors", shipped=True))
    assert shipped.meta.weights_dtype == "float16" and not shipped.optimizer_states and not shipped.random_state


def test_a_name_taken_between_the_check_and_the_write_is_not_replaced(tmp_path, monkeypatch):
    """save checks the path, then writes: a file another process put there in between is kept (RunExists)."""

    trainer = Trainer(small_config("vae"), data=synthetic_data())
    path = tmp_path / "run.safetensors"
    path.write_bytes(b"written in between")
    seen = iter([None])  # the check sees a free name; the write then finds the file
    monkeypatch.setattr(
        trainer_module, "file_signature", lambda p, real=trainer_module.file_signature: next(seen, real(p))
    )
    with pytest.raises(RunExists):
        trainer.save(path)
    assert path.read_bytes() == b"written in between"


def test_a_resumed_run_goes_on_where_and_how_it_is_told_and_saves_over_its_file_only_if_asked(tmp_path):
    trainer = Trainer(dataclasses.replace(small_config("avb"), device="auto"), data=synthetic_data())
    trainer.train_step()
    trainer.step = 1
    checkpoint = load_checkpoint(trainer.save(tmp_path / "run.safetensors"))
    probe = lambda model: None  # noqa: E731 -- a stand-in truth probe, only passed through
    resumed = Trainer.from_checkpoint(checkpoint, device="cpu", accelerate="none", data=synthetic_data(), truth=probe)
    assert (resumed.config.device, resumed.config.accelerate, resumed.truth) == ("cpu", "none", probe)
    assert resumed._good_state["step"] == 1  # a NaN right after resuming rolls back to the checkpoint
    assert not resumed.wrote(checkpoint.path)  # by default a resumed run saves to a file of its own
    continuing = Trainer.from_checkpoint(checkpoint, data=synthetic_data(), continue_file=True)
    assert continuing.wrote(checkpoint.path)
    broken = dataclasses.replace(checkpoint, random_state={**checkpoint.random_state, "sampler.order": torch.arange(3)})
    with pytest.raises(CheckpointError, match=r"run\.safetensors: its random state cannot be this run's: "):
        Trainer.from_checkpoint(broken, data=synthetic_data())


def test_the_records_count_the_steps_and_only_the_seconds_spent_training(monkeypatch):
    """steps/s, the elapsed time and Adam's own count, on a clock that moves one second per reading: two pauses
    in the first interval (one second each) are not training time."""
    clock = iter(range(100, 1_000))
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: float(next(clock)))
    trainer = Trainer(small_config("vae", steps=8), data=synthetic_data())
    step = trainer.train_step

    def pausing_step():
        if trainer.step < 2:  # after steps 1 and 2 a pause, which the wait below ends as Resume would
            trainer.pause()
        return step()

    monkeypatch.setattr(trainer, "train_step", pausing_step)
    monkeypatch.setattr(trainer._running, "wait", lambda timeout=None: trainer.resume())
    records = list(trainer.run())
    # readings: 100 start; 101 paused, 102 resumed; 103 paused, 104 resumed; 105 record; 106 restart; 107 record
    assert [(r.step, r.steps_per_s, r.elapsed_s) for r in records] == [(4, 4 / 3, 3.0), (8, 4.0, 4.0)]
    assert trainer.optimizer.state_dict()["state"][0]["step"].item() == 8  # 8 updates for 8 steps


@pytest.mark.parametrize("method", ["vae", "avb"])
def test_records_validate_every_eval_every_steps_and_at_the_end_and_leave_out_what_the_method_lacks(method):
    """log_every 4, eval_every 8, 20 steps: the validation bound at steps 8 and 16 and at the last, 20; T's loss
    and accuracy only for an implicit q."""
    trainer = Trainer(small_config(method), data=synthetic_data())
    records = list(trainer.run())
    assert [(r.step, r.valid_bound is not None) for r in records] == [
        (4, False),
        (8, True),
        (12, False),
        (16, True),
        (20, True),
    ]
    implicit = method == "avb"
    assert all((r.disc_loss is not None, r.disc_accuracy is not None) == (implicit, implicit) for r in records)


def test_each_update_of_t_after_the_first_takes_fresh_samples_and_t_sees_x_once_per_update(monkeypatch):
    """disc_steps 3: T's first update uses the bound's samples and the x-features already computed for it; the
    second and third draw fresh samples of q (K per x, from the run's generator) and compute T's x-features
    anew (T has changed). T's x-features are computed once per update of T, never twice."""
    config = dataclasses.replace(small_config("iwavb"), disc_steps=3)
    trainer = Trainer(config, data=synthetic_data())
    fresh, losses, x_parts = [], [], []
    samples, loss = trainer_module.discriminator_samples, trainer_module.discriminator_loss
    monkeypatch.setattr(
        trainer_module,
        "discriminator_samples",
        lambda model, x, k, generator: fresh.append((model, x.shape, k, generator)) or samples(model, x, k, generator),
    )

    def recorded_loss(discriminator, x, t_input, generator, disc_x):
        losses.append((x.shape, t_input.shape, disc_x is None))
        return loss(discriminator, x, t_input, generator, disc_x)

    monkeypatch.setattr(trainer_module, "discriminator_loss", recorded_loss)
    x_part = trainer.model.discriminator.x_part
    monkeypatch.setattr(trainer.model.discriminator, "x_part", lambda x: x_parts.append(x.shape) or x_part(x))
    trainer.train_step()
    batch = (8, 4)
    assert fresh == [(trainer.model, batch, K, trainer.generator)] * 2
    assert losses == [(batch, (8, K, 2), False), (batch, (8, K, 2), True), (batch, (8, K, 2), True)]
    assert x_parts == [batch] * 3  # the bound's, shared with T's first update; then one in each later update
    assert trainer.disc_optimizer.state_dict()["state"][0]["step"].item() == 3


def test_data_of_another_width_is_refused_naming_the_data_set():
    mnist_shaped = DataSplits(
        "mnist", *(Split(torch.zeros(4, 784, dtype=torch.uint8), torch.zeros(4)) for _ in "abc"), ("a",)
    )
    with pytest.raises(SettingError, match=r"^data of width 784 do not fit a toy model$") as refused:
        Trainer(small_config("vae"), data=mnist_shaped)
    assert refused.value.name == "dataset"


def test_both_optimisers_use_avbs_adam_and_a_run_has_trained_after_its_first_step():
    trainer = Trainer(dataclasses.replace(small_config("avb"), steps=1, log_every=1), data=synthetic_data())
    for optimizer in (trainer.optimizer, trainer.disc_optimizer):
        assert optimizer.param_groups[0]["betas"] == (0.5, 0.999)  # beta1 = 0.5 for both, as AVB's code
    rates = [optimizer.param_groups[0]["lr"] for optimizer in (trainer.optimizer, trainer.disc_optimizer)]
    assert rates == list(trainer.config.learning_rates()) and rates[0] != 1e-3  # the configured, not Adam's default
    assert not trainer.trained
    list(trainer.run())
    assert trainer.trained and trainer.step == 1
