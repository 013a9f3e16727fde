"""Background training jobs: controls, owners kept apart, the heartbeat reaper, the device queue."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
import torch

from iwavb.app import jobs
from iwavb.app.device_queue import DeviceQueue
from iwavb.app.jobs import JobRegistry, RunSpec, free_gpu
from iwavb.training.config import TrainConfig


def toy(method: str = "avb", steps: int = 40, **settings) -> RunSpec:
    config = TrainConfig.for_method(
        method, dataset="toy", latent_dim=2, steps=steps, log_every=10, eval_every=steps, device="cpu", **settings
    )
    return RunSpec(config)


def wait_for(predicate, timeout: float = 60.0) -> None:
    """Poll until predicate() holds; fail (not hang) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry():
    reg = JobRegistry(timeout_s=60, limits={"cpu": 2, "cuda": 1})
    yield reg
    reg.close_all()


def test_a_job_trains_and_publishes_its_records(registry):
    job = registry.submit("tab-a", "train", [toy(steps=40)])
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == "finished" and not snap.active
    assert [r.step for r in snap.runs[0].history] == [10, 20, 30, 40]
    assert snap.runs[0].history[-1].disc_loss is not None  # AVB: the discriminator trained
    assert job.trainer(0).step == 40


def test_runs_of_a_job_train_one_after_another(registry):
    job = registry.submit("tab-a", "compare", [toy("vae", 20), toy("iwae", 20, k=3)])
    assert job.join(60)
    snap = job.snapshot()
    assert [r.name for r in snap.runs] == ["VAE", "IWAE"]
    assert [r.step for r in snap.runs] == [20, 20]
    assert snap.runs[1].history[-1].disc_loss is None  # a Gaussian q has no discriminator


def test_pause_holds_the_step_and_resume_goes_on(registry):
    job = registry.submit("tab-a", "train", [toy(steps=100_000)])
    wait_for(lambda: job.snapshot().runs[0].step >= 10)
    job.pause()
    assert job.snapshot().status == "paused"
    time.sleep(0.5)  # the step in flight when pause() came finishes; then no more
    held = job.trainer(0).step
    time.sleep(0.5)
    assert job.trainer(0).step == held
    job.resume()
    wait_for(lambda: job.trainer(0).step > held)
    job.stop()
    assert job.join(10)
    assert job.snapshot().status == "stopped"


def test_two_owners_never_share_or_replace_each_others_runs(registry):
    a = registry.submit("tab-a", "train", [toy(steps=100_000)])
    b = registry.submit("tab-b", "train", [toy(steps=100_000)])
    assert a is not b and registry.get("tab-a", "train") is a and registry.get("tab-b", "train") is b
    a2 = registry.submit("tab-a", "train", [toy(steps=20)])  # a new run in tab A replaces A's only
    assert a.join(10) and a.snapshot().status == "stopped"
    assert b.snapshot().active and registry.get("tab-b", "train") is b
    assert a2.join(60) and a2.snapshot().status == "finished"


def test_a_silent_owner_is_reaped_and_its_model_freed():
    clock = FakeClock()
    reg = JobRegistry(timeout_s=30, clock=clock, limits={"cpu": 2})
    try:
        job = reg.submit("gone", "train", [toy(steps=100_000)])
        kept = reg.submit("alive", "train", [toy(steps=20)])
        wait_for(lambda: job.trainer(0) is not None)
        model = weakref.ref(job.trainer(0).model)
        clock.now = 20.0
        reg.heartbeat("alive")
        assert reg.reap() == []  # nobody silent for 30 s yet
        clock.now = 40.0  # "gone" last seen at 0, "alive" at 20
        assert reg.reap() == [job]
        snap = job.snapshot()
        assert snap.status == "expired" and "heartbeat" in snap.message
        assert job.trainer(0) is None and reg.get("gone", "train") is None
        assert reg.owners() == ["alive"] and kept.join(60)
        gc.collect()
        assert model() is None  # nothing holds the network any more
    finally:
        reg.close_all()


def test_the_device_queue_admits_one_gpu_job_at_a_time():
    queue = DeviceQueue({"cuda": 1})
    first_in, release = threading.Event(), threading.Event()
    waits: list[int] = []

    def first():
        with queue.slot("cuda", "first", threading.Event()):
            first_in.set()
            release.wait(10)

    holder = threading.Thread(target=first)
    holder.start()
    assert first_in.wait(10)
    admitted = []

    def second():
        with queue.slot("cuda", "second", threading.Event(), waits.append) as ok:
            admitted.append(ok)

    waiter = threading.Thread(target=second)
    waiter.start()
    wait_for(lambda: waits)
    assert waits[0] == 1 and not admitted  # told that one job is ahead, and kept waiting
    release.set()
    holder.join(10)
    waiter.join(10)
    assert admitted == [True]


def test_a_queued_job_shows_its_place_and_can_be_stopped_while_waiting():
    reg = JobRegistry(timeout_s=60, limits={"cpu": 1})
    try:
        running = reg.submit("tab-a", "train", [toy(steps=100_000)])
        waiting = reg.submit("tab-b", "train", [toy(steps=20)])
        wait_for(lambda: "1 job ahead" in waiting.snapshot().message)
        assert waiting.snapshot().status == "queued" and running.snapshot().active
        waiting.stop()
        assert waiting.join(10) and waiting.snapshot().status == "stopped"
        assert waiting.trainer(0) is None  # never built
    finally:
        reg.close_all()


def test_a_bad_checkpoint_fails_the_job_with_a_message(registry, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    job = registry.submit("tab-a", "train", [RunSpec(toy().config, checkpoint=bad)])
    assert job.join(30)
    snap = job.snapshot()
    assert snap.status == "failed" and "bad.safetensors" in snap.error


def test_a_loaded_checkpoint_keeps_its_history_and_does_not_train(registry, tmp_path):
    first = registry.submit("tab-a", "train", [toy(steps=30)])
    assert first.join(60)
    path = first.trainer(0).save(tmp_path / "run.safetensors")
    loaded = registry.submit("tab-a", "train", [RunSpec(toy().config, checkpoint=path)])
    assert loaded.join(30)
    snap = loaded.snapshot()
    assert snap.status == "finished" and snap.runs[0].step == 30
    assert [r.step for r in snap.runs[0].history] == [10, 20, 30]


def test_the_device_queue_admits_gpu_jobs_by_memory():
    """Capacity 100: a job needing 60 runs; the next 60 waits for it; a job of 10 behind that one waits too
    (first come, first served); both go in together once the first leaves room."""
    queue = DeviceQueue({"cuda": 4}, capacity=lambda kind: 100 if kind == "cuda" else None)
    release = threading.Event()
    inside: list[str] = []
    waiting: dict[str, threading.Event] = {}

    def job(name: str, need: int, hold: threading.Event | None = None) -> threading.Thread:
        waiting[name] = threading.Event()

        def run():
            with queue.slot("cuda", name, threading.Event(), lambda ahead: waiting[name].set(), need) as ok:
                assert ok
                inside.append(name)
                if hold is not None:
                    hold.wait(10)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    first = job("first", 60, release)
    wait_for(lambda: inside == ["first"])
    second = job("second", 60)
    assert waiting["second"].wait(10)
    third = job("third", 10)
    assert waiting["third"].wait(10)
    assert inside == ["first"]  # 60 + 60 > 100, and the small one does not jump the line
    release.set()
    for thread in (first, second, third):
        thread.join(10)
    assert inside == ["first", "second", "third"]


def test_a_job_too_large_for_the_gpu_runs_alone():
    queue = DeviceQueue({"cuda": 4}, capacity=lambda kind: 100)
    with queue.slot("cuda", "big", threading.Event(), need=500) as ok:
        assert ok  # admitted when nothing else runs: it fails with PyTorch's own message if it must


class FakeGpuTrainer:
    device = torch.device("cuda")

    def __init__(self):
        self.released = 0

    def release_device(self):
        self.released += 1


def test_a_run_that_ends_on_a_gpu_frees_its_memory(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    trainer = FakeGpuTrainer()
    free_gpu(trainer)
    assert trainer.released == 1 and emptied == [True]
    cpu_trainer = FakeGpuTrainer()
    cpu_trainer.device = torch.device("cpu")
    free_gpu(cpu_trainer)
    assert cpu_trainer.released == 0 and emptied == [True]  # nothing to free on a CPU


@pytest.mark.parametrize("stop", [False, True])
def test_every_run_of_a_job_is_freed_when_it_ends(registry, monkeypatch, stop):
    """Finished or stopped, each run passes through free_gpu (which acts on GPU runs: the test above)."""
    freed = []
    monkeypatch.setattr(jobs, "free_gpu", freed.append)
    job = registry.submit("tab-a", "compare", [toy("vae", 20), toy("avb", 100_000 if stop else 20)])
    if stop:
        wait_for(lambda: job.snapshot().current == 1 and job.snapshot().runs[1].step > 0)
        job.stop()
    assert job.join(60)
    assert freed == [job.trainer(0), job.trainer(1)]
