"""Checkpoints: one safetensors file holding the weights (and optimiser state), with JSON metadata.

Loading never executes code: safetensors holds only tensors, and the metadata is JSON in its header.
Writes are atomic (a temporary file in the same folder, fsync, rename), so a crash or a full disk
leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .. import __version__
from ..core.model import LatentVariableModel
from ..errors import IWAVBError
from ..files import WriteError, atomic_write_bytes
from .config import TrainConfig

FORMAT = "iwavb-checkpoint"
FORMAT_VERSION = 1
META_KEY = "iwavb"
MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim."
RANDOM_PREFIX = "random."


class CheckpointError(IWAVBError):
    """A checkpoint could not be written or read; the message says which file and why."""


@dataclass(frozen=True)
class Checkpoint:
    config: TrainConfig
    model_state: dict[str, torch.Tensor]
    step: int
    history: list[dict[str, Any]]
    meta: dict[str, Any]  # library version, created, device, training seconds, dtype, extras
    optimizer_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    random_state: dict[str, torch.Tensor] = field(default_factory=dict)  # where the run's random stream stood
    path: Path | None = None

    def build_model(self, device: torch.device | str = "cpu") -> LatentVariableModel:
        """The model with these weights, in eval mode, in float32 on `device`."""
        model = LatentVariableModel(self.config.model_config())
        _load_model_state(model, self.model_state, self.path)
        return model.to(device).eval()


def _load_model_state(model: LatentVariableModel, state: dict[str, torch.Tensor], path: Path | None) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [
            f"{len(missing)} missing ({', '.join(missing[:3])})" if missing else "",
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])})" if unexpected else "",
            f"{len(wrong)} of the wrong shape ({', '.join(wrong[:3])})" if wrong else "",
        ]
        raise CheckpointError(
            f"{path or 'checkpoint'}: its weights do not fit its own configuration: " + "; ".join(p for p in parts if p)
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


# -- writing -----------------------------------------------------------------------------------------
def _flatten_optimizers(states: dict[str, dict[str, Any]]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam's state_dict as flat tensors for safetensors, and its param_groups and step counts as JSON."""
    tensors, groups = {}, {}
    for name, state in states.items():
        groups[name] = state["param_groups"]
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"{OPTIM_PREFIX}{name}.{index}.{slot}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, groups


def save_checkpoint(
    path: str | Path,
    config: TrainConfig,
    model: LatentVariableModel,
    step: int,
    history: list[dict[str, Any]],
    optimizer_states: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    half: bool = False,
    random_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the checkpoint atomically; `half` stores weights as float16 (for shipped checkpoints);
    `random_state`: tensors that let a resumed run draw what the uninterrupted one would (Trainer)."""
    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    tensors = {
        MODEL_PREFIX + k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    optim_tensors, optim_groups = _flatten_optimizers(optimizer_states or {})
    tensors.update(optim_tensors)
    tensors.update({RANDOM_PREFIX + k: v.detach().cpu().contiguous() for k, v in (random_state or {}).items()})
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config.to_dict(),
        "step": step,
        "history": history,
        "weights_dtype": str(dtype).removeprefix("torch."),
        "optimizer_param_groups": optim_groups,
        "host": platform.node(),
        **(extra or {}),
    }
    blob = save(tensors, metadata={META_KEY: json.dumps(meta)})
    try:
        atomic_write_bytes(path, blob)
    except WriteError as err:
        raise CheckpointError(str(err)) from err
    return path


# -- reading -----------------------------------------------------------------------------------------
def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, read from the file's header without loading the weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or corrupt?): {err}") from err
    if raw is None:
        raise CheckpointError(f"{path}: a safetensors file, but not an IWAVB Lab checkpoint (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: its metadata is not valid JSON: {err}") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an IWAVB Lab checkpoint (format {meta.get('format')!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer IWAVB Lab (format {meta['format_version']}); upgrade to read it"
        )
    return meta


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and validate a checkpoint; every problem becomes a CheckpointError that names the file."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        config = TrainConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its configuration is missing or invalid: {err}") from err
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- safe_open is not iterable
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"{path}: its weights could not be read (truncated or corrupt?): {err}") from err
    model_state = {k.removeprefix(MODEL_PREFIX): v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    checkpoint = Checkpoint(
        config=config,
        model_state=model_state,
        step=int(meta.get("step", 0)),
        history=list(meta.get("history", [])),
        meta=meta,
        optimizer_states=_unflatten_optimizers(tensors, meta.get("optimizer_param_groups", {})),
        random_state={k.removeprefix(RANDOM_PREFIX): v for k, v in tensors.items() if k.startswith(RANDOM_PREFIX)},
        path=path,
    )
    _load_model_state(LatentVariableModel(config.model_config()), model_state, path)  # validates shapes
    return checkpoint


def _unflatten_optimizers(tensors: dict[str, torch.Tensor], groups: dict[str, Any]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {name: {"state": {}, "param_groups": g} for name, g in groups.items()}
    for key, value in tensors.items():
        if not key.startswith(OPTIM_PREFIX):
            continue
        name, index, slot = key.removeprefix(OPTIM_PREFIX).rsplit(".", 2)
        if name not in states:
            raise CheckpointError(f"optimiser tensor {key} has no parameter groups in the metadata")
        states[name]["state"].setdefault(int(index), {})[slot] = value
    return states
