"""Ways of running the trainer's own step, `Trainer.train_step`, for comparison.

- `vectorised`: the step as the project runs it (K samples in one decoder and one T call).
- `looped`: the naive baseline: the same step with the K samples taken one at a time in Python, each
  with its own encoder, decoder and T call (the one formula, `log_weights`, called K times with K = 1);
  only T's x-features, which the trainer computes once per step, are shared.
- `amp`, `compile`, `cuda-graph`: options meant for CUDA, measured rather than assumed.

Each builder gets a fresh trainer and an ExitStack (for the patches it makes while the case runs) and
returns the step to time. The maths is never changed: the looped loss has the same value and gradient
in expectation, and the others run the identical step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import ExitStack
from unittest import mock

import torch

import iwavb.training.trainer
from iwavb.core.bounds import DiscriminatorLoss, LogWeights, discriminator_loss, log_weights
from iwavb.core.model import LatentVariableModel
from iwavb.core.nets import Discriminator, XPart
from iwavb.training.trainer import Trainer

from .measure import Step


def looped_log_weights(
    model: LatentVariableModel,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    disc_x_part: XPart | None = None,
) -> LogWeights:
    """K separate one-sample passes, stacked: the same log-weights (B, K) in distribution."""
    parts = [log_weights(model, x, 1, generator, disc_x_part) for _ in range(k)]
    return LogWeights(*(torch.cat([getattr(p, f.name) for p in parts], dim=1) for f in dataclasses.fields(LogWeights)))


def looped_discriminator_loss(
    discriminator: Discriminator,
    x: torch.Tensor,
    z_q: torch.Tensor,
    generator: torch.Generator | None = None,
    x_part: XPart | None = None,
) -> DiscriminatorLoss:
    """(2.14) one sample at a time: the mean over k of the per-k losses equals the mean over (B, K)."""
    parts = [discriminator_loss(discriminator, x, z_q[:, i : i + 1], generator, x_part) for i in range(z_q.shape[1])]
    return DiscriminatorLoss(
        torch.stack([p.loss for p in parts]).mean(), torch.stack([p.accuracy for p in parts]).mean()
    )


def _swap_objectives(stack: ExitStack, weights_fn: Callable, disc_fn: Callable) -> None:
    """Make the trainer's step call these in place of `log_weights` and `discriminator_loss`."""
    stack.enter_context(mock.patch.object(iwavb.training.trainer, "log_weights", weights_fn))
    stack.enter_context(mock.patch.object(iwavb.training.trainer, "discriminator_loss", disc_fn))


def vectorised(trainer: Trainer, stack: ExitStack) -> Step:
    return trainer.train_step


def looped(trainer: Trainer, stack: ExitStack) -> Step:
    _swap_objectives(stack, looped_log_weights, looped_discriminator_loss)
    return trainer.train_step


def amp(trainer: Trainer, stack: ExitStack) -> Step:
    """bfloat16 autocast around the whole step (no loss scaling needed, unlike float16)."""

    def step() -> object:
        with torch.autocast(trainer.device.type, dtype=torch.bfloat16):
            return trainer.train_step()

    return step


def compiled(trainer: Trainer, stack: ExitStack) -> Step:
    """torch.compile of the two objectives (the bound's log-weights and (2.14)) inside the real step."""
    _swap_objectives(stack, torch.compile(log_weights), torch.compile(discriminator_loss))
    return trainer.train_step


def cuda_graph(trainer: Trainer, stack: ExitStack) -> Step:
    """The whole step (batch draw, bound update, T update) captured once in a CUDA graph and replayed.

    Adam runs with capturable=True (its step counts on the GPU). The replay redraws the binarisation
    and all noise, but reads the batch indices of the captured step: the same work, for timing only.
    """
    if trainer.device.type != "cuda":
        raise RuntimeError("CUDA graphs need a CUDA device")
    for optimizer in filter(None, (trainer.optimizer, trainer.disc_optimizer)):
        for group in optimizer.param_groups:
            group["capturable"] = True
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as CUDA graph capture requires
        for _ in range(3):
            trainer.train_step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(trainer.generator)  # the run's own generator, besides the default one
    with torch.cuda.graph(graph):
        trainer.train_step()
    return graph.replay


Builder = Callable[[Trainer, ExitStack], Step]
VARIANTS: dict[str, Builder] = {
    "vectorised": vectorised,
    "looped": looped,
    "amp": amp,
    "compile": compiled,
    "cuda-graph": cuda_graph,
}
CUDA_VARIANTS = ("amp", "compile", "cuda-graph")  # added by default on a GPU
