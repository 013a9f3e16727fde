"""A trainer that can be driven step by step, from the CLI's loop or the app's background thread.

Each generator step maximises the bound (2.11) / (3.2) over decoder and q with T held fixed; for an
implicit q, each is followed by `disc_steps` updates of T by (2.14). Metrics are accumulated on the
device and read back every `log_every` steps (the only host syncs in the loop), where non-finite values
are caught: the trainer then restores the last good state and raises `TrainingDiverged`.

A `truth` probe (iwavb.evaluation.truth), where given, measures the model's log p(x) at some records: first
after TRUTH_FIRST_S of training, then as often as keeps its cost within TRUTH_SHARE of the training time,
and at the last step.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..core.bounds import discriminator_loss, iw_bound, log_weights, mean_bound
from ..core.model import LatentVariableModel, eval_mode
from ..data.loading import load_dataset
from ..data.splits import FIXED_SEED, BatchSampler, DataSplits, binarize
from ..errors import IWAVBError
from .checkpoint import Checkpoint, save_checkpoint
from .config import TrainConfig
from .device import device_description, resolve_device
from .records import Record, Truth, TruthProbe

VALID_SUBSET = 1_000  # validation images scored at each evaluation (fixed images, fixed binarisation)
EVAL_BATCH = 500
TRUTH_SHARE = 0.1  # the truth probe costs at most this share of the training time (and once more at the end)
TRUTH_FIRST_S = 2.0  # training seconds before its first reading: a new run shows its pictures first


class TrainingDiverged(IWAVBError):
    """The bound or a loss became NaN or infinite; the trainer holds the last good state."""


class Trainer:
    """Holds model, optimisers, data and history of one run. Thread-safe controls: pause/resume/stop."""

    def __init__(
        self,
        config: TrainConfig,
        data: DataSplits | None = None,
        model: LatentVariableModel | None = None,
        truth: TruthProbe | None = None,
    ):
        self.config = config
        self.device = resolve_device(config.device)
        self.data = (data if data is not None else load_dataset(config.dataset)).to(self.device)
        if self.data.data_dim != config.data_dim:
            raise ValueError(f"data of width {self.data.data_dim} do not fit a {config.dataset} model")
        if model is None:
            with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left as it was
                torch.manual_seed(config.seed)
                model = LatentVariableModel(config.model_config())
        self.model = model.to(self.device)
        betas = (config.beta1, 0.999)
        lr, disc_lr = config.learning_rates()
        self.optimizer = torch.optim.Adam(self.model.generative_parameters(), lr=lr, betas=betas, fused=True)
        self.disc_optimizer = (
            torch.optim.Adam(self.model.discriminator.parameters(), lr=disc_lr, betas=betas, fused=True)
            if self.model.discriminator is not None
            else None
        )
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.sampler = BatchSampler(len(self.data.train), config.batch_size, self.generator)
        self.step = 0
        self.elapsed_s = 0.0
        self.history: list[Record] = []
        self.lock = threading.Lock()  # held during each step; take it to read the model from another thread
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._good_state = self._state()
        self._valid_x = self._fixed_validation_batch()
        self.truth = truth
        self.truth_seconds = 0.0  # spent measuring the truth, outside `elapsed_s`
        self._truth_wait_s = TRUTH_FIRST_S  # training seconds to go before the truth is measured (again)

    # -- controls, safe to call from any thread ------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can end

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- training ------------------------------------------------------------------------------------
    def train_step(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """One update of decoder and q by the bound, then of T by (2.14). Device tensors, no sync."""
        cfg = self.config
        images = self.data.train.images.index_select(0, self.sampler.next_indices())  # (B, D); [idx] is ~15x slower
        x = binarize(images, self.generator)  # (B, D)
        discriminator = self.model.discriminator
        # T's x-features, computed once: used fixed (detached) by the bound, trained by (2.14). The bound
        # step updates only decoder and q, so they still hold for T's first update below.
        disc_x = discriminator.x_part(x) if discriminator is not None else None
        weights = log_weights(self.model, x, cfg.k, self.generator, disc_x)
        batch_bound = iw_bound(weights.log_w).mean()  # (2.11) / (3.2), averaged over the batch
        self.optimizer.zero_grad(set_to_none=True)
        (-batch_bound).backward()
        self.optimizer.step()
        if self.disc_optimizer is None:
            return batch_bound.detach(), None, None
        assert discriminator is not None
        z_q = weights.z
        for i in range(cfg.disc_steps):
            if i > 0:
                with torch.no_grad():
                    z_q = self.model.sample_q(x, cfg.k, self.generator)[0]
                disc_x = None  # T has changed since: recompute its x-features
            disc = discriminator_loss(discriminator, x, z_q, self.generator, disc_x)
            self.disc_optimizer.zero_grad(set_to_none=True)
            disc.loss.backward()
            self.disc_optimizer.step()
        return batch_bound.detach(), disc.loss.detach(), disc.accuracy

    @torch.no_grad()
    def validation_bound(self) -> float:
        """Mean bound (K as in training) on a fixed validation subset; uses T for an implicit q."""
        noise = torch.Generator(self.device).manual_seed(FIXED_SEED)  # the same draws at every evaluation
        with eval_mode(self.model):
            return mean_bound(self.model, self._valid_x, self.config.k, noise, EVAL_BATCH)

    def run(self) -> Iterator[Record]:
        """Train until `config.steps`, yielding a Record every `log_every` steps; ends early on stop()."""
        cfg = self.config
        self.model.train()
        sums: list[torch.Tensor] = []
        segment_start, active_s, interval_steps = time.perf_counter(), 0.0, 0
        while self.step < cfg.steps and not self.stopped:
            if self.paused:
                active_s += time.perf_counter() - segment_start
                self._running.wait()
                segment_start = time.perf_counter()
                continue
            with self.lock:
                metrics = self.train_step()
                self.step += 1
            interval_steps += 1
            sums.append(torch.stack([m if m is not None else torch.zeros((), device=self.device) for m in metrics]))
            if self.step % cfg.log_every == 0 or self.step == cfg.steps or self.stopped:
                active_s += time.perf_counter() - segment_start
                self.elapsed_s += active_s
                record = self._record(torch.stack(sums).mean(0), interval_steps, active_s)
                sums, interval_steps, active_s = [], 0, 0.0
                segment_start = time.perf_counter()
                yield record

    def _record(self, means: torch.Tensor, steps: int, seconds: float) -> Record:
        train_bound, disc_loss, disc_acc = means.tolist()  # the interval's one host sync
        if not all(math.isfinite(v) for v in (train_bound, disc_loss, disc_acc)):
            self._restore(self._good_state)
            raise TrainingDiverged(
                f"training diverged before step {self.step}: the bound or the discriminator loss became "
                f"NaN or infinite. The model was rolled back to step {self._good_state['step']}, the last "
                "good state; try smaller learning rates."
            )
        last = self.step == self.config.steps
        with self.lock:
            due = self.step % self.config.eval_every < self.config.log_every or last
            valid = self.validation_bound() if due else None
            truth = self._measure_truth(seconds, last)
            self._good_state = self._state()
        implicit = self.disc_optimizer is not None
        record = Record(
            step=self.step,
            train_bound=train_bound,
            valid_bound=valid,
            disc_loss=disc_loss if implicit else None,
            disc_accuracy=disc_acc if implicit else None,
            steps_per_s=steps / max(seconds, 1e-9),
            elapsed_s=self.elapsed_s,
            log_px=truth.log_px if truth else None,
            log_px_se=truth.stderr if truth else None,
            log_px_bound=truth.bound if truth else None,
        )
        self.history.append(record)
        return record

    def _measure_truth(self, trained_s: float, last: bool) -> Truth | None:
        """The truth probe's reading, when due: after 1 / TRUTH_SHARE times its last cost in training seconds."""
        self._truth_wait_s -= trained_s
        if self.truth is None or (self._truth_wait_s > 0 and not last):
            return None
        start = time.perf_counter()
        with eval_mode(self.model), torch.no_grad():
            truth = self.truth(self.model)
        cost = time.perf_counter() - start
        self.truth_seconds += cost
        self._truth_wait_s = cost / TRUTH_SHARE
        return truth

    # -- state ---------------------------------------------------------------------------------------
    def _fixed_validation_batch(self) -> torch.Tensor:
        images = self.data.valid.images[:VALID_SUBSET]
        return binarize(images, torch.Generator(self.device).manual_seed(FIXED_SEED))

    def _state(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "step": self.step,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "disc_optimizer": self.disc_optimizer.state_dict() if self.disc_optimizer else None,
            }
        )

    def _restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.step = state["step"]
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.disc_optimizer is not None:
                self.disc_optimizer.load_state_dict(state["disc_optimizer"])
            self.history = [r for r in self.history if r.step <= self.step]

    def save(self, path: str | Path, extra: dict[str, Any] | None = None, shipped: bool = False) -> Path:
        """Write a checkpoint of the current (or, after divergence, the last good) state, atomically.

        `shipped` writes float16 weights without optimiser state: a third of the size, for `pretrained/`.
        """
        with self.lock:
            states = {"optimizer": self.optimizer.state_dict()}
            if self.disc_optimizer is not None:
                states["disc_optimizer"] = self.disc_optimizer.state_dict()
            info = {"device": device_description(self.device), "train_seconds": round(self.elapsed_s, 2)}
            return save_checkpoint(
                path,
                self.config,
                self.model,
                self.step,
                [r.to_dict() for r in self.history],
                None if shipped else states,
                {**info, **(extra or {})},
                half=shipped,
            )

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint,
        steps: int | None = None,
        device: str = "auto",
        data: DataSplits | None = None,
        truth: TruthProbe | None = None,
    ) -> Trainer:
        """Resume a run: its weights, optimiser state, step count and history; `steps` sets a new total."""
        config = replace(checkpoint.config, device=device, steps=checkpoint.config.steps if steps is None else steps)
        trainer = cls(config, data=data, model=checkpoint.build_model(), truth=truth)
        with trainer.lock:
            if "optimizer" in checkpoint.optimizer_states:
                trainer.optimizer.load_state_dict(checkpoint.optimizer_states["optimizer"])
            if trainer.disc_optimizer is not None and "disc_optimizer" in checkpoint.optimizer_states:
                trainer.disc_optimizer.load_state_dict(checkpoint.optimizer_states["disc_optimizer"])
            trainer.step = checkpoint.step
            trainer.elapsed_s = float(checkpoint.meta.get("train_seconds", 0.0))
            trainer.history = [Record(**r) for r in checkpoint.history]
        trainer._good_state = trainer._state()
        return trainer
