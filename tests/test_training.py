"""Short real training runs on the toy data, the trainer's controls, and NaN handling."""

from __future__ import annotations

import math
import threading
import time

import pytest
import torch

from iwavb.evaluation.grid import posterior_grid
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer, TrainingDiverged

TOY_X = torch.eye(4)
COLLAPSE = math.log(1 / 4) + 3 * math.log(3 / 4)  # -2.249: a decoder that ignores z (docs/background.md)


def toy_config(method: str, steps: int, **settings) -> TrainConfig:
    k = 5 if method in ("iwae", "iwavb") else None
    return TrainConfig.for_method(
        method, k=k, dataset="toy", latent_dim=2, steps=steps, log_every=50, eval_every=steps, **settings
    )


def exact_log_px(trainer: Trainer) -> float:
    """Mean exact log p(x) over the four toy points (grid quadrature: uses neither q nor T)."""
    with trainer.lock:
        trainer.model.eval()
        value = posterior_grid(trainer.model, TOY_X, resolution=121).log_px.mean().item()
        trainer.model.train()
    return value


@pytest.mark.parametrize("method", ["vae", "iwae", "avb", "iwavb"])
def test_toy_run_improves_the_model(method):
    trainer = Trainer(toy_config(method, steps=400))
    before = exact_log_px(trainer)
    records = list(trainer.run())
    after = exact_log_px(trainer)
    assert records[-1].step == 400 and trainer.step == 400
    assert records[-1].train_bound > records[0].train_bound + 0.3, [r.train_bound for r in records]
    assert after > before + 0.5 and after > COLLAPSE, (before, after)  # beyond posterior collapse
    assert records[-1].valid_bound is not None
    if method in ("avb", "iwavb"):
        assert 0.5 < records[-1].disc_accuracy <= 1.0 and records[-1].disc_loss > 0
    else:
        assert records[-1].disc_accuracy is None


def test_records_carry_speed_and_time():
    trainer = Trainer(toy_config("vae", steps=100))
    records = list(trainer.run())
    assert [r.step for r in records] == [50, 100]
    assert all(r.steps_per_s > 0 for r in records)
    assert records[1].elapsed_s >= records[0].elapsed_s > 0


def test_nan_stops_training_and_keeps_the_last_good_state():
    trainer = Trainer(toy_config("avb", steps=1000))
    run = trainer.run()
    first = next(run)
    assert first.step == 50
    good = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with torch.no_grad():
        trainer.model.decoder[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="rolled back to step 50"):
        next(run)
    assert trainer.step == 50
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], good[k]) for k in good)
    assert [r.step for r in trainer.history] == [50]


def test_pause_resume_and_stop_from_another_thread():
    trainer = Trainer(toy_config("vae", steps=10**6))
    thread = threading.Thread(target=lambda: list(trainer.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while trainer.step < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    trainer.pause()
    time.sleep(0.1)  # let the step in progress finish
    paused_at = trainer.step
    time.sleep(0.3)
    assert trainer.step == paused_at and trainer.paused
    trainer.resume()
    while trainer.step < paused_at + 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trainer.step >= paused_at + 20
    trainer.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and trainer.stopped
    assert trainer.history[-1].step == trainer.step  # the last partial interval is recorded too


def test_same_seed_same_run():
    a, b = Trainer(toy_config("avb", steps=100)), Trainer(toy_config("avb", steps=100))
    ra, rb = list(a.run()), list(b.run())
    assert [r.train_bound for r in ra] == [r.train_bound for r in rb]


@pytest.mark.slow
def test_conv_family_trains_a_step():
    """The paper's AVB networks: shapes, finite values and updated weights (GPU-sized, so tiny here)."""
    from iwavb.data.splits import DataSplits, Split

    images = Split((torch.rand(8, 784) * 255).to(torch.uint8), torch.zeros(8, dtype=torch.long))
    data = DataSplits("mnist", images, images, images, ("0",))
    config = TrainConfig(
        dataset="mnist",
        q="implicit",
        k=2,
        latent_dim=4,
        family="conv",
        batch_size=4,
        steps=2,
        log_every=1,
        eval_every=2,
    )
    trainer = Trainer(config, data=data)
    before = trainer.model.decoder.out.weight.clone()
    records = list(trainer.run())
    assert [r.step for r in records] == [1, 2]
    assert all(math.isfinite(r.train_bound) for r in records) and records[-1].valid_bound is not None
    assert not torch.equal(before, trainer.model.decoder.out.weight)
    z = trainer.model.sample_q(torch.zeros(3, 784), 5).z
    assert z.shape == (3, 5, 4)
