"""A trainer that can be driven step by step, from the CLI's loop or the app's background thread.

Each generator step maximises the bound (2.11) / (3.2) over decoder and q with T held fixed; for an
implicit q, each is followed by `disc_steps` updates of T by (2.14). Metrics are accumulated on the
device and read back every `log_every` steps (the only host syncs in the loop), where non-finite values
are caught: the trainer then restores the last good state and raises `TrainingDiverged`. How the device
runs the step (float32, bfloat16 autocast, a CUDA graph, torch.compile) is `config.accelerate` (step.py).

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

from ..core.bounds import discriminator_loss, discriminator_samples, iw_bound, log_weights, mean_bound
from ..core.model import LatentVariableModel, eval_mode
from ..data.loading import load_dataset
from ..data.splits import FIXED_SEED, BatchSampler, DataSplits, binarize
from ..errors import IWAVBError, SettingError
from ..files import FileSignature, file_signature
from .checkpoint import Checkpoint, CheckpointError, RunExists, optimizer_parameters, save_checkpoint
from .config import Accelerate, TrainConfig
from .device import device_description, resolve_device
from .memory import VALIDATION_BATCH
from .records import Record, Truth, TruthProbe
from .resources import check_training_fits
from .step import GraphedStep, Metrics, autocast, resolve_accelerate, uses_graph

VALID_SUBSET = 1_000  # validation images scored at each evaluation (fixed images, fixed binarisation)
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
        # Before anything of the run's size is allocated: refuse what will not fit, with the estimate.
        self.memory = check_training_fits(config, self.device)
        data = data if data is not None else load_dataset(config.dataset)
        if data.data_dim != config.data_dim:
            raise SettingError("dataset", f"data of width {data.data_dim} do not fit a {config.dataset} model")
        self.data = data.to(self.device)
        if model is None:
            with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left as it was
                torch.manual_seed(config.seed)
                model = LatentVariableModel(config.model_config())
        self.model = model.to(self.device)
        self.accelerate = resolve_accelerate(config.accelerate, self.device, config.family)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # a run's shapes never change: let cuDNN pick its fastest kernels
        betas = (config.beta1, 0.999)
        lr, disc_lr = config.learning_rates()
        parameters = optimizer_parameters(self.model)
        self.optimizer = torch.optim.Adam(parameters["optimizer"], lr=lr, betas=betas, fused=True)
        self.disc_optimizer = (
            torch.optim.Adam(parameters["disc_optimizer"], lr=disc_lr, betas=betas, fused=True)
            if "disc_optimizer" in parameters
            else None
        )
        self._configure_optimizers()
        self.start_step = 0  # where this run began: 0, or the step of the checkpoint it continues
        self._files: dict[Path, FileSignature | None] = {}  # files this run wrote (or continues), as it left them
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.sampler = BatchSampler(len(self.data.train), config.batch_size, self.generator)
        self._graph: GraphedStep | None = None  # built at the first step of a graph way (step.py)
        self._compiled = (
            (torch.compile(log_weights), torch.compile(discriminator_loss)) if self.accelerate == "compile" else None
        )
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
    def train_step(self) -> Metrics:
        """One update of decoder and q by the bound, then of T by (2.14), run the way `accelerate` says.
        Device tensors, no host sync."""
        indices = self.sampler.next_indices()  # (B,) on the device
        if uses_graph(self.accelerate):
            if self._graph is None:
                self._graph = GraphedStep(self.update, self.generator)
            return self._graph(indices)
        return self.update(indices)

    def update(self, indices: torch.Tensor) -> Metrics:
        """The step's maths on the batch of training images `indices` (B,)."""
        cfg = self.config
        images = self.data.train.images.index_select(0, indices)  # (B, D); [idx] is ~15x slower
        x = binarize(images, self.generator)  # (B, D)
        weights_of, disc_loss_of = self._compiled or (log_weights, discriminator_loss)
        discriminator = self.model.discriminator
        with autocast(self.accelerate, self.device):
            # T's x-features, computed once: used fixed (detached) by the bound, trained by (2.14). The bound
            # step updates only decoder and q, so they still hold for T's first update below.
            disc_x = discriminator.x_part(x) if discriminator is not None else None
            weights = weights_of(self.model, x, cfg.k, self.generator, disc_x)
            batch_bound = iw_bound(weights.log_w).mean()  # (2.11) / (3.2), averaged over the batch
        self.optimizer.zero_grad(set_to_none=True)
        (-batch_bound).backward()
        self.optimizer.step()
        if self.disc_optimizer is None:
            return batch_bound.detach(), None, None
        assert discriminator is not None
        t_input = weights.t_input  # q's samples as T sees them: z, or u under adaptive contrast (AC.1)
        for i in range(cfg.disc_steps):
            if i > 0:
                t_input = discriminator_samples(self.model, x, cfg.k, self.generator)
                disc_x = None  # T has changed since: recompute its x-features
            with autocast(self.accelerate, self.device):
                disc = disc_loss_of(discriminator, x, t_input, self.generator, disc_x)
            self.disc_optimizer.zero_grad(set_to_none=True)
            disc.loss.backward()
            self.disc_optimizer.step()
        return batch_bound.detach(), disc.loss.detach(), disc.accuracy

    @torch.no_grad()
    def validation_bound(self) -> float:
        """Mean bound (K as in training) on a fixed validation subset; uses T for an implicit q."""
        noise = torch.Generator(self.device).manual_seed(FIXED_SEED)  # the same draws at every evaluation
        with eval_mode(self.model):
            return mean_bound(self.model, self._valid_x, self.config.k, noise, VALIDATION_BATCH)

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
            diverged_at = self.step
            self._restore(self._good_state)
            raise TrainingDiverged(
                f"training diverged before step {diverged_at}: the bound or the discriminator loss became "
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
    def _configure_optimizers(self) -> None:
        """Adam keeps its step count on the device when a CUDA graph replays it (capturable), and not
        otherwise: set after every load of optimiser state, whose groups carry the flag of the run that saved it."""
        for optimizer in filter(None, (self.optimizer, self.disc_optimizer)):
            for group in optimizer.param_groups:
                group["capturable"] = uses_graph(self.accelerate)

    def release_device(self) -> None:
        """Move a finished run (model, optimiser state, data) to the CPU, so that its GPU memory can be freed
        (torch.cuda.empty_cache, by the caller) while the run can still be shown and saved. It trains no more
        on the GPU: a CUDA graph, if any, is dropped."""
        cpu = torch.device("cpu")
        with self.lock:
            self._graph = None
            self.model.to(cpu)
            for optimizer in filter(None, (self.optimizer, self.disc_optimizer)):
                for state in optimizer.state.values():
                    for name, value in state.items():
                        if isinstance(value, torch.Tensor):
                            state[name] = value.to(cpu)
            self.data = self.data.to(cpu)
            self._valid_x = self._valid_x.to(cpu)
            self.device, self.accelerate = cpu, "none"
            self._configure_optimizers()
            self.generator = torch.Generator(cpu).manual_seed(self.config.seed + self.step)
            self.sampler = BatchSampler(len(self.data.train), self.config.batch_size, self.generator)
            self._good_state = self._state()

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
            self._configure_optimizers()
            self._graph = None  # the optimiser's state tensors were replaced: capture again
            self.history = [r for r in self.history if r.step <= self.step]

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        found: dict[str, torch.optim.Optimizer] = {"optimizer": self.optimizer}
        if self.disc_optimizer is not None:
            found["disc_optimizer"] = self.disc_optimizer
        return found

    def save(
        self,
        path: str | Path,
        extra: dict[str, Any] | None = None,
        shipped: bool = False,
        owner: str | None = None,
        replace_other: bool = False,
    ) -> Path:
        """Write a checkpoint of the current (or, after divergence, the last good) state, atomically.

        A file at `path` is replaced only if this run wrote it (or continues it) and nobody changed it since;
        any other file there is kept and RunExists raised, unless `replace_other` (regenerating a shipped
        checkpoint). `shipped` writes float16 weights without optimiser state: a third of the size, for
        `pretrained/`. `owner`: who may delete the file in the app (iwavb.training.runs.owner_tag).
        """
        given = Path(path)
        path = given.absolute()
        current = file_signature(path)
        if current is not None and not replace_other and current != self._files.get(path):
            raise RunExists(f"{path} holds another run (this one did not write it): not replaced")
        with self.lock:
            states = None if shipped else {name: o.state_dict() for name, o in self._optimizers().items()}
            info = {"device": device_description(self.device), "train_seconds": round(self.elapsed_s, 2)}
            save_checkpoint(
                path,
                self.config,
                self.model,
                self.step,
                self.history,
                states,
                {**info, **(extra or {})},
                half=shipped,
                random_state=None if shipped else self._random_state(),
                owner=owner,
                replace=current is not None,  # a free name is taken only if it is still free
            )
            # Only the owner of a file replaces it, so nobody else can have written here since the line above.
            self._files[path] = file_signature(path)
        return given

    def wrote(self, path: str | Path) -> bool:
        """Whether `path` holds what this run last wrote there (or the checkpoint it continues, unchanged)."""
        path = Path(path).absolute()
        return path in self._files and file_signature(path) == self._files[path]

    @property
    def trained(self) -> bool:
        """Whether this run has trained any step (since it began, or since the checkpoint it continues)."""
        return self.step > self.start_step

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint,
        steps: int | None = None,
        device: str = "auto",
        data: DataSplits | None = None,
        accelerate: Accelerate = "auto",
        continue_file: bool = False,
        truth: TruthProbe | None = None,
    ) -> Trainer:
        """Resume a run: its weights, optimiser state, random stream, step count and history; `steps` sets a new
        total, and `device` and `accelerate` say where and how it goes on (neither changes the maths).

        `continue_file`: this run may save over the checkpoint's file (as long as nobody changes it); `truth`:
        the probe of its log p(x) (iwavb.evaluation.truth)."""
        total = checkpoint.config.steps if steps is None else steps
        config = replace(checkpoint.config, device=device, steps=total, accelerate=accelerate)
        trainer = cls(config, data=data, model=checkpoint.build_model(), truth=truth)
        with trainer.lock:
            for name, optimizer in trainer._optimizers().items():
                saved = checkpoint.optimizer_states.get(name)
                if saved is not None:  # the rates and flags are this run's; the state is per parameter, checked at load
                    state = {
                        i: {**slots, "step": slots["step"].float().reshape(())} for i, slots in saved["state"].items()
                    }
                    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
            trainer.step = trainer.start_step = checkpoint.step
            trainer.elapsed_s = checkpoint.meta.train_seconds
            trainer.history = list(checkpoint.history)
            trainer._load_random_state(checkpoint)
        if continue_file and checkpoint.path is not None and checkpoint.signature is not None:
            trainer._files[checkpoint.path.absolute()] = checkpoint.signature
        trainer._good_state = trainer._state()
        return trainer

    def _random_state(self) -> dict[str, torch.Tensor]:
        """Where the run's random stream stands: the generator's state (named by device type: a CPU and a CUDA
        generator's differ) and the sampler's epoch. Restored on resume, so that the run continues bit for bit."""
        sampler = {f"sampler.{k}": v for k, v in self.sampler.state_dict().items()}
        return {f"generator.{self.device.type}": self.generator.get_state(), **sampler}

    def _load_random_state(self, checkpoint: Checkpoint) -> None:
        """The saved stream where it was saved on this kind of device; else (another device, or a checkpoint
        without it) the run goes on with the stream of its seed. A state that cannot be the run's is refused."""
        state = checkpoint.random_state
        generator = state.get(f"generator.{self.device.type}")
        if generator is None:
            return
        sampler = {k.removeprefix("sampler."): v for k, v in state.items() if k.startswith("sampler.")}
        try:
            self.generator.set_state(generator.cpu())
            self.sampler.load_state_dict(sampler)
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise CheckpointError(f"{checkpoint.path}: its random state cannot be this run's: {err}") from err
