"""Ways of running the trainer's own step, `Trainer.train_step`, for comparison.

- `vectorised`: the step as the project runs it (K samples in one decoder and one T call).
- `looped`: the naive baseline: the same step with the K samples taken one at a time in Python, each
  with its own encoder, decoder and T call (the one formula, `log_weights`, called K times with K = 1);
  only T's x-features, which the trainer computes once per step, are shared.
- `amp`, `graph`, `amp+graph`, `compile`: the trainer's own ways of running its step on CUDA
  (`TrainConfig.accelerate`, iwavb/training/step.py), measured rather than assumed.

Each builder gets a fresh trainer (configured with the variant's `accelerate`) and an ExitStack (for the
patches it makes while the case runs) and returns the step to time. The maths is never changed: the
looped loss has the same value and gradient in expectation, and the others run the identical step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from unittest import mock

import torch

import iwavb.training.trainer
from iwavb.core.bounds import DiscriminatorLoss, LogWeights, discriminator_loss, log_weights
from iwavb.core.model import LatentVariableModel
from iwavb.core.nets import Discriminator, XPart
from iwavb.training.config import Accelerate
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


def as_configured(trainer: Trainer, stack: ExitStack) -> Step:
    """The trainer's own step, run the way its config's `accelerate` says (iwavb/training/step.py)."""
    return trainer.train_step


def looped(trainer: Trainer, stack: ExitStack) -> Step:
    _swap_objectives(stack, looped_log_weights, looped_discriminator_loss)
    return trainer.train_step


def compiled_networks(trainer: Trainer, stack: ExitStack) -> Step:
    """torch.compile of each network (q's x-features, the decoder, T's x- and z-networks) instead of the
    objectives: no random draws inside what is compiled, so no graph breaks there (CPU trial, README)."""
    model = trainer.model
    networks = [model.decoder, model.encoder.features]
    if model.discriminator is not None:
        networks += [model.discriminator.x_net, model.discriminator.z_net]
    for network in networks:
        network.compile()  # in place: the module's forward goes through torch.compile
    return trainer.train_step


Builder = Callable[[Trainer, ExitStack], Step]


@dataclass(frozen=True)
class Variant:
    accelerate: Accelerate  # the trainer's config.accelerate for this variant
    build: Builder = as_configured
    eager: bool = True  # its FLOPs and memory can be counted as it runs (not compiled, not replayed)


VARIANTS: dict[str, Variant] = {
    "vectorised": Variant("none"),
    "looped": Variant("none", looped),
    "amp": Variant("amp"),
    "graph": Variant("graph", eager=False),
    "amp+graph": Variant("amp+graph", eager=False),
    "compile": Variant("compile", eager=False),
    "compile-nets": Variant("none", compiled_networks, eager=False),
}
CUDA_VARIANTS = ("amp", "graph", "amp+graph", "compile")  # added by default on a GPU
