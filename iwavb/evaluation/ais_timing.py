"""How long AIS takes on many images, extrapolated honestly from a measured part of the same work.

AIS's work is linear in the number of distributions T: every distribution of the tuning and the
estimating run costs the same leapfrog passes on the same batch of chains. So one call on a chunk of
images (the chunk the full run would use: `ais_images_per_call`, so the device is as busy) takes

    seconds(T) = a + b T        a: the start (drawing z_0, fitting q, the first pass);  b: one distribution

Measured at two values of T (after a warm-up call), a and b give the time of the paper's T = 1,000 without
running it, and the full test set takes ceil(images / chunk) such calls: chunks are alike (same shapes,
same work), the last one counted as full. What it leaves out: loading the data and the model, and the host
copying results back (small). The figure is the estimator's time on this device, nothing more.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch

from ..core.model import LatentVariableModel, eval_mode
from .ais import AISConfig, Start, ais_images_per_call, model_ais_log_px


@dataclass(frozen=True)
class AISTiming:
    chunk_images: int  # images per call, as the full run would use
    chains: int
    steps: tuple[int, int]  # the two numbers of distributions measured
    seconds: tuple[float, float]  # their times for one chunk

    @property
    def per_distribution_s(self) -> float:
        """b: seconds of one distribution (both runs) for one chunk."""
        (t1, t2), (s1, s2) = self.steps, self.seconds
        return max(0.0, (s2 - s1) / (t2 - t1))

    @property
    def start_s(self) -> float:
        """a: seconds of a chunk's start, independent of T."""
        return max(0.0, self.seconds[0] - self.per_distribution_s * self.steps[0])

    def chunk_seconds(self, steps: int) -> float:
        return self.start_s + self.per_distribution_s * steps

    def seconds_for(self, images: int, steps: int) -> float:
        """Extrapolated seconds of AIS with `steps` distributions on `images` images."""
        return math.ceil(images / self.chunk_images) * self.chunk_seconds(steps)

    def images_per_s(self, steps: int) -> float:
        return self.chunk_images / self.chunk_seconds(steps)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ais(
    model: LatentVariableModel,
    x: torch.Tensor,
    config: AISConfig,
    steps: tuple[int, int] = (10, 30),
    start: Start = "prior",
) -> AISTiming:
    """Time AIS on one chunk of the binary images x (N, D), on the model's device, at two numbers of
    distributions (after one warm-up call), to extrapolate from (AISTiming). Give at least a chunk's images
    (`ais_images_per_call`): with fewer the device is less busy than in the full run, and the figure errs slow."""
    if not 2 <= steps[0] < steps[1]:
        raise ValueError(f"need two numbers of distributions, 2 <= T1 < T2, got {steps}")
    device = next(model.parameters()).device
    x = x[: ais_images_per_call(model, device, config)].to(device)
    times = []
    with eval_mode(model):
        model_ais_log_px(model, x, replace(config, steps=2), start)  # warm-up: kernels, allocator, autotuning
        for t in steps:
            _synchronize(device)
            began = time.perf_counter()
            model_ais_log_px(model, x, replace(config, steps=t), start)
            _synchronize(device)
            times.append(time.perf_counter() - began)
    return AISTiming(x.shape[0], config.chains, steps, (times[0], times[1]))
