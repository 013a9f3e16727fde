"""How much memory a model takes, read from its networks on PyTorch's meta device: shapes only, no arithmetic.

A function run on meta tensors goes through the same operators as on a GPU, so the peak of the bytes its
live tensors hold (`PeakTensorMemory`) is known in an instant, for any family, contrast, batch and K. It is
the tensors' own bytes: an allocator's rounding and caching, and cuDNN's workspaces, come on top
(iwavb/training/memory.py adds a margin). A test compares it with the live tensors of real steps.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from .bounds import discriminator_loss, iw_bound, log_weights
from .config import ModelConfig
from .model import LatentVariableModel, log_prior

META = torch.device("meta")


class PeakTensorMemory(TorchDispatchMode):
    """Bytes of the tensors created inside it and still alive, at their peak (also where no allocator keeps
    statistics: a CPU, the meta device)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._seen = WeakIdKeyDictionary()  # storages already counted (views share them)

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage() not in self._seen:
                storage = t.untyped_storage()
                self._seen[storage] = nbytes = storage.nbytes()
                weakref.finalize(storage, self._free, nbytes)
                self.live += nbytes
                self.peak = max(self.peak, self.live)
        return out


def meta_model(config: ModelConfig) -> LatentVariableModel:
    """The model's networks with meta parameters: their shapes, no memory."""
    with META:
        return LatentVariableModel(config)


def parameter_count(config: ModelConfig) -> int:
    return sum(p.numel() for p in meta_model(config).parameters())


def step_peak_bytes(config: ModelConfig, batch: int, k: int) -> int:
    """Peak bytes of one training step's two objectives on `batch` images with K samples each, forward and
    backward, the parameters' gradients included: the bound (2.9)/(3.1) and, for an implicit q, (2.14)."""
    model = meta_model(config)
    x = torch.zeros(batch, config.data_dim, device=META)
    with torch.enable_grad(), PeakTensorMemory() as tracker:  # also when called under no_grad
        weights = log_weights(model, x, k)
        iw_bound(weights.log_w).mean().backward()
        if model.discriminator is not None:
            discriminator_loss(model.discriminator, x, weights.t_input.detach()).loss.backward()
    return tracker.peak


def bound_peak_bytes(config: ModelConfig, batch: int, k: int) -> int:
    """Peak bytes of the bound's log-weights (2.9)/(3.1) on `batch` images with K samples each, without
    gradients: a validation pass."""
    model = meta_model(config).eval()
    x = torch.zeros(batch, config.data_dim, device=META)
    with torch.no_grad(), PeakTensorMemory() as tracker:
        log_weights(model, x, k)
    return tracker.peak


def log_joint_bytes_per_latent(config: ModelConfig, latents: int = 64) -> int:
    """Peak bytes per latent z of log p(x, z) and its gradient in z (what AIS computes at every leapfrog step)."""
    model = meta_model(config).eval()
    x = torch.zeros(1, config.data_dim, device=META)
    z = torch.zeros(1, latents, config.latent_dim, device=META, requires_grad=True)
    with torch.enable_grad(), PeakTensorMemory() as tracker:  # also when called under no_grad (evaluation)
        log_p = model.log_px_given_z(x, z) + log_prior(z)
        torch.autograd.grad(log_p.sum(), z)
    return -(-tracker.peak // latents)  # rounded up
