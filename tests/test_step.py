"""How the training step runs (iwavb/training/step.py): the ways it can run here, no reads from the device
inside it, a run leaving the GPU; the CUDA-only checks skip on a CPU and run on a GPU."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.overrides import TorchFunctionMode

from iwavb.training.checkpoint import load_checkpoint
from iwavb.training.config import CUDA_AUTO, TrainConfig
from iwavb.training.step import resolve_accelerate
from iwavb.training.trainer import Trainer

NEEDS_CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU (none here); python -m benchmarks.gpu_check runs the same checks on one",
)
# Tensor methods that copy a value to the host: on a GPU each one waits for every queued kernel.
HOST_READS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.numpy,
    torch.Tensor.cpu,
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
}
GRID = [
    ("vae", None, "none"),
    ("iwae", 3, "none"),
    ("avb", None, "none"),
    ("iwavb", 3, "none"),
    ("iwavb", 3, "adaptive"),
]


def toy(method: str, k: int | None, contrast: str = "none", **settings) -> TrainConfig:
    return TrainConfig.for_method(
        method, k=k, dataset="toy", latent_dim=2, contrast=contrast, device=settings.pop("device", "cpu"), **settings
    )


class HostReads(TorchFunctionMode):
    """Records every call inside it that reads a tensor's value back to the host."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_auto_runs_plainly_on_a_cpu_and_graphs_need_a_gpu():
    cpu = torch.device("cpu")
    assert resolve_accelerate("auto", cpu, "conv") == "none"
    assert resolve_accelerate("auto", torch.device("cuda"), "conv") == CUDA_AUTO["conv"]
    assert resolve_accelerate("amp", cpu, "mlp") == "amp"
    for way in ("graph", "amp+graph"):
        with pytest.raises(ValueError, match="needs a GPU"):
            Trainer(toy("avb", None, accelerate=way))
    with pytest.raises(ValueError, match="accelerate"):
        TrainConfig(accelerate="warp")  # type: ignore[arg-type]


@pytest.mark.parametrize("method, k, contrast", GRID)
def test_a_training_step_reads_nothing_back_from_the_device(method, k, contrast):
    """The step only queues work: no .item(), no bool(tensor), no copy to the host (on a GPU each would
    stall the queue). Checked here on the CPU by the calls themselves; on CUDA by its sync debug mode below."""
    trainer = Trainer(toy(method, k, contrast))
    trainer.train_step()  # the first step allocates Adam's state
    with HostReads() as reads:
        for _ in range(3):
            trainer.train_step()
    assert reads.calls == []


def test_bfloat16_autocast_computes_the_same_bound():
    """The same seed, weights, batch and draws: the amp step's bound is the float32 one to bfloat16 precision,
    and its moments and losses stay float32."""
    plain, amp = (Trainer(toy("iwavb", 3, "adaptive", accelerate=way)) for way in ("none", "amp"))
    amp.model.load_state_dict(plain.model.state_dict())
    bounds = [trainer.train_step() for trainer in (plain, amp)]
    for a, b in zip(*bounds):
        assert a is not None and b is not None and b.dtype == torch.float32
        assert torch.isclose(a, b, atol=0.02 * a.abs().item() + 1e-3), (a, b)


def test_the_compile_way_steps_through_torch_compiled_objectives(monkeypatch):
    """accelerate="compile" hands the bound's log-weights and T's loss to torch.compile, once each, and every step
    calls what it returned. torch.compile is replaced by a recorder here: compiling itself (a C++ toolchain,
    a minute on a CPU) is PyTorch's to test, and gives the same numbers."""
    compiled, calls = [], []

    def recording_compile(function):
        compiled.append(function)

        def compiled_function(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)

        return compiled_function

    monkeypatch.setattr(torch, "compile", recording_compile)
    plain, fast = (Trainer(toy("avb", None, accelerate=way)) for way in ("none", "compile"))
    assert [f.__name__ for f in compiled] == ["log_weights", "discriminator_loss"]
    for trainer in (plain, fast):
        trainer.train_step()
    assert calls == ["log_weights", "discriminator_loss"]  # the compile way's step, not the plain one's
    for a, b in zip(fast.model.state_dict().values(), plain.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the same step


def test_a_finished_run_leaves_the_gpu_and_can_still_be_saved(tmp_path):
    """release_device (called when a GPU run ends: iwavb.app.jobs.free_gpu) leaves everything on the CPU."""
    trainer = Trainer(toy("iwavb", 3, "adaptive", steps=2, log_every=1))
    list(trainer.run())
    trainer.release_device()
    tensors = [*trainer.model.parameters(), trainer.data.train.images]
    tensors += [v for s in trainer.optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    assert all(t.device.type == "cpu" for t in tensors)
    assert trainer.accelerate == "none"
    checkpoint = load_checkpoint(trainer.save(tmp_path / "run.safetensors"))
    assert checkpoint.step == 2 and len(checkpoint.optimizer_states["optimizer"]["state"]) > 0
    # and it can still be scored and trained on the CPU, a NaN rolling back to the state it was released in
    assert math.isfinite(trainer.validation_bound())
    assert trainer._good_state["step"] == 2
    assert all(m is None or torch.isfinite(m) for m in trainer.train_step())


def test_a_checkpoint_of_a_graph_run_resumes_on_a_cpu(tmp_path):
    """A run saved from a CUDA graph has Adam groups with capturable=True; on a CPU they are set back."""
    trainer = Trainer(toy("avb", None))
    trainer.train_step()
    for group in trainer.optimizer.param_groups:
        group["capturable"] = True  # as a graph run saves them
    path = trainer.save(tmp_path / "graph.safetensors")
    resumed = Trainer.from_checkpoint(load_checkpoint(path), steps=5, device="cpu")
    assert all(not g["capturable"] for g in resumed.optimizer.param_groups)
    assert torch.isfinite(resumed.train_step()[0])


@NEEDS_CUDA
@pytest.mark.parametrize("way", ["none", "amp", "graph", "amp+graph"])
def test_cuda_step_has_no_host_sync(way):
    trainer = Trainer(toy("iwavb", 3, "adaptive", device="cuda", accelerate=way))
    for _ in range(5):  # past the graph's warm-up and capture
        trainer.train_step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            trainer.train_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@NEEDS_CUDA
@pytest.mark.parametrize("way", ["graph", "amp+graph"])
def test_graphed_steps_train_as_the_plain_step_does(way):
    """From the same seed, 50 graphed steps and 50 plain ones reach the same bound (to float noise)."""
    runs = []
    for accelerate in ("none", way):
        config = dataclasses.replace(toy("iwavb", 3, "adaptive", device="cuda"), accelerate=accelerate, steps=50)
        trainer = Trainer(config)
        for _ in range(50):
            trainer.train_step()
        runs.append(trainer.validation_bound())
    assert abs(runs[0] - runs[1]) < 0.1, runs
