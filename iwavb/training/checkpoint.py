"""Checkpoints: one safetensors file holding the weights (and optimiser state), with JSON metadata.

Loading never executes code: safetensors holds only tensors, and the metadata is JSON in its header.
Writes are atomic (a temporary file in the same folder, fsync, rename), so a crash or a full disk
leaves the previous checkpoint as it was.

Everything read is checked before it is used, and every problem is a CheckpointError that names the
file: the metadata against one typed schema (`CheckpointMeta`, through iwavb.schema), the tensors by
name, shape and dtype against the networks its configuration describes (built on PyTorch's "meta"
device, so a file that claims huge networks allocates nothing), and every value for NaN and infinity.

Versions. `format_version` changes only when a reader of the old format would misread the new one; a
reader refuses files of a newer format. New metadata fields come with defaults, so older files load. Unknown
top-level metadata keys (another writer's notes, such as `pretrained`) are kept in `CheckpointMeta.extras`
and written back; unknown training settings or history fields are refused, since they may change what the
weights mean.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .. import __version__
from ..core.model import LatentVariableModel
from ..errors import IWAVBError
from ..files import FileExists, FileSignature, WriteError, atomic_write_bytes, file_signature
from ..schema import EXTRAS, SchemaError, from_json
from .config import TrainConfig
from .records import Record

FORMAT: Final = "iwavb-checkpoint"
FORMAT_VERSION = 1
META_KEY = "iwavb"
MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim."
RANDOM_PREFIX = "random."
ADAM_SLOTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # per-parameter tensors of Adam's state, and "step"
REQUIRED_SLOTS = {"step", "exp_avg", "exp_avg_sq"}
WeightsDtype = Literal["float32", "float16"]


class CheckpointError(IWAVBError):
    """A checkpoint could not be written or read; the message says which file and why."""


class RunExists(CheckpointError):
    """Saving would replace a file that this run did not write: nothing was written."""


def optimizer_parameters(model: LatentVariableModel) -> dict[str, list[nn.Parameter]]:
    """The parameters of each optimiser of a run, by the name its state has in checkpoints: decoder and q
    trained by the bound, and T (implicit q only) by (2.14)."""
    groups = {"optimizer": model.generative_parameters()}
    if model.discriminator is not None:
        groups["disc_optimizer"] = list(model.discriminator.parameters())
    return groups


@dataclass(frozen=True)
class CheckpointMeta:
    """A checkpoint's metadata, as JSON in the file's header (the module docstring gives the version policy)."""

    format_version: int
    config: TrainConfig
    step: int  # training steps done
    format: Literal["iwavb-checkpoint"] = FORMAT
    history: tuple[Record, ...] = ()
    # Adam's param_groups as JSON; only their "params" are read back (the rates are the config's)
    optimizer_param_groups: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    library_version: str = "unknown"
    created: str = ""
    weights_dtype: WeightsDtype = "float32"
    device: str = "unknown"  # in words: "CPU (1 thread)", "NVIDIA H100 80GB HBM3"
    train_seconds: float = 0.0
    host: str = ""
    owner: str | None = None  # who may delete it in the app (iwavb.training.runs.owner_tag); None: nobody
    extras: dict[str, Any] = field(default_factory=dict, metadata=EXTRAS)

    def __post_init__(self) -> None:
        if not 1 <= self.format_version <= FORMAT_VERSION:
            raise ValueError(
                f"format_version {self.format_version} is not one this version reads (1 to {FORMAT_VERSION})"
            )
        if self.step < 0 or self.train_seconds < 0:
            raise ValueError(f"step ({self.step}) and train_seconds ({self.train_seconds}) cannot be negative")
        previous = 0
        for i, record in enumerate(self.history):
            if not previous < record.step <= self.step:
                raise ValueError(
                    f"history[{i}].step is {record.step}: the history's steps must rise, from 1 to the "
                    f"checkpoint's step {self.step}"
                )
            previous = record.step
        for name, groups in self.optimizer_param_groups.items():
            if not groups or not all(isinstance(g.get("params"), list) for g in groups):
                raise ValueError(f"optimizer_param_groups.{name}: each group needs a list of 'params'")
            indices = [i for g in groups for i in g["params"]]
            if any(isinstance(i, bool) or not isinstance(i, int) for i in indices) or sorted(indices) != list(
                range(len(indices))
            ):
                raise ValueError(f"optimizer_param_groups.{name}: 'params' must number the parameters 0, 1, 2, ...")

    def to_json(self) -> dict[str, Any]:
        """As written in the header: the fields (but those that are None), with the extras at the top level."""
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extras" and getattr(self, f.name) is not None  # absent, as in files written before them
        }
        values["config"] = self.config.to_dict()
        values["history"] = [r.to_dict() for r in self.history]
        values["optimizer_param_groups"] = {k: list(v) for k, v in self.optimizer_param_groups.items()}
        return {**self.extras, **values}


@dataclass(frozen=True)
class Checkpoint:
    meta: CheckpointMeta
    model_state: dict[str, torch.Tensor]
    optimizer_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    random_state: dict[str, torch.Tensor] = field(default_factory=dict)  # where the run's random stream stood
    path: Path | None = None
    signature: FileSignature | None = None  # of the file when it was read

    @property
    def config(self) -> TrainConfig:
        return self.meta.config

    @property
    def step(self) -> int:
        return self.meta.step

    @property
    def history(self) -> tuple[Record, ...]:
        return self.meta.history

    def build_model(self, device: torch.device | str = "cpu") -> LatentVariableModel:
        """The model with these weights, in eval mode, in float32 on `device`."""
        model = LatentVariableModel(self.config.model_config())  # its shapes are those checked at load
        model.load_state_dict(self.model_state)  # copied into the float32 tensors: float16 weights are cast
        return model.to(device).eval()


def _meta_model(config: TrainConfig) -> LatentVariableModel:
    """The networks of a configuration on the "meta" device: their shapes and dtypes, and no memory."""
    with torch.device("meta"):
        return LatentVariableModel(config.model_config())


# -- writing -----------------------------------------------------------------------------------------
def _flatten_optimizers(states: dict[str, dict[str, Any]]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam's state_dict as flat tensors for safetensors, and its param_groups and step counts as JSON."""
    tensors, groups = {}, {}
    for name, state in states.items():
        groups[name] = tuple(state["param_groups"])
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"{OPTIM_PREFIX}{name}.{index}.{slot}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, groups


def save_checkpoint(
    path: str | Path,
    config: TrainConfig,
    model: LatentVariableModel,
    step: int,
    history: Sequence[Record],
    optimizer_states: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    half: bool = False,
    random_state: dict[str, torch.Tensor] | None = None,
    owner: str | None = None,
    replace: bool = True,
) -> Path:
    """Write the checkpoint atomically; `half` stores weights as float16 (for shipped checkpoints);
    `random_state`: tensors that let a resumed run draw what the uninterrupted one would (Trainer). With
    `replace=False` an existing file is never replaced (RunExists).

    Non-finite weights are refused: a file that no one could evaluate or resume is never written."""
    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    tensors = {
        MODEL_PREFIX + k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    optim_tensors, optim_groups = _flatten_optimizers(optimizer_states or {})
    tensors.update(optim_tensors)
    tensors.update({RANDOM_PREFIX + k: v.detach().cpu().contiguous() for k, v in (random_state or {}).items()})
    bad = _non_finite(tensors)
    if bad:
        raise CheckpointError(f"{path}: not written: NaN or infinite values in {', '.join(bad[:3])}")
    extras = dict(extra or {})
    meta = CheckpointMeta(
        format_version=FORMAT_VERSION,
        config=config,
        step=step,
        history=tuple(history),
        optimizer_param_groups=optim_groups,
        library_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        weights_dtype="float16" if half else "float32",
        device=str(extras.pop("device", "unknown")),
        train_seconds=float(extras.pop("train_seconds", 0.0)),
        host=platform.node(),
        owner=owner,
        extras=extras,
    )
    try:  # strict JSON: a NaN in the header would make the file unreadable to other safetensors readers
        header = json.dumps(meta.to_json(), allow_nan=False)
    except ValueError as err:
        raise CheckpointError(f"{path}: not written: NaN or infinite numbers in its metadata ({err})") from err
    blob = save(tensors, metadata={META_KEY: header})
    try:
        atomic_write_bytes(path, blob, replace=replace)
    except FileExists as err:
        raise RunExists(f"{path} already holds another run: not replaced") from err
    except WriteError as err:
        raise CheckpointError(str(err)) from err
    return path


def _non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


# -- reading -----------------------------------------------------------------------------------------
def _regular_file(path: Path) -> None:
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file: name a .safetensors file in it")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint")


def read_metadata(path: str | Path) -> CheckpointMeta:
    """The metadata of a checkpoint, read from the file's header without loading the weights, and checked."""
    path = Path(path)
    _regular_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or corrupt?): {err}") from err
    if raw is None:
        raise CheckpointError(f"{path}: a safetensors file, but not an IWAVB Lab checkpoint (no '{META_KEY}' metadata)")
    try:
        values = json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError; so are 5,000-digit numbers
        raise CheckpointError(f"{path}: its metadata is not valid JSON: {err}") from err
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: its metadata is not a JSON object but a {type(values).__name__}")
    if values.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an IWAVB Lab checkpoint (format {values.get('format')!r})")
    version = values.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer IWAVB Lab (format {version}); upgrade to read it")
    try:
        return from_json(CheckpointMeta, values, f"{path}: metadata")
    except SchemaError as err:
        raise CheckpointError(str(err)) from err


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and validate a checkpoint; every problem becomes a CheckpointError that names the file."""
    path = Path(path)
    meta = read_metadata(path)
    signature = file_signature(path.resolve())
    model = _meta_model(meta.config)
    expected = model.state_dict()
    optimizers = {name: [p.shape for p in params] for name, params in optimizer_parameters(model).items()}
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            names = list(f.keys())
            _check_names_and_shapes(
                path, names, lambda k: tuple(f.get_slice(k).get_shape()), expected, meta, optimizers
            )
            tensors = {k: f.get_tensor(k) for k in names}
    except CheckpointError:
        raise
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: its weights could not be read (truncated or corrupt?): {err}") from err
    bad = _non_finite(tensors)
    if bad:
        raise CheckpointError(
            f"{path}: NaN or infinite values in {', '.join(bad[:3])}{' and more' if len(bad) > 3 else ''}: "
            "these weights cannot be evaluated or trained further"
        )
    wrong_kind = [
        k for k, v in tensors.items() if k.startswith(MODEL_PREFIX) and v.is_floating_point() != _floating(expected, k)
    ]
    if wrong_kind:
        raise CheckpointError(
            f"{path}: tensors of the wrong kind (whole numbers for real ones?): {', '.join(wrong_kind[:3])}"
        )
    odd = [k for k, v in tensors.items() if k.startswith(RANDOM_PREFIX) and not _random_kind(k, v)]
    if odd:
        raise CheckpointError(f"{path}: its random state is not one a run saves: {', '.join(odd[:3])}")
    return Checkpoint(
        meta=meta,
        model_state={k: tensors[MODEL_PREFIX + k] for k in expected},
        optimizer_states=_unflatten_optimizers(tensors, meta.optimizer_param_groups),
        random_state={k.removeprefix(RANDOM_PREFIX): v for k, v in tensors.items() if k.startswith(RANDOM_PREFIX)},
        path=path,
        signature=signature,
    )


# What Trainer saves as its random state: generator states (bytes) and the sampler's order and place in it.
_RANDOM_KINDS = {"generator": (torch.uint8, 1), "sampler.order": (torch.int64, 1), "sampler.position": (torch.int64, 0)}


def _random_kind(key: str, tensor: torch.Tensor) -> bool:
    name = key.removeprefix(RANDOM_PREFIX)
    kind = _RANDOM_KINDS.get(name.split(".")[0] if name.startswith("generator.") else name)
    return kind is not None and (tensor.dtype, tensor.dim()) == kind


def _floating(expected: dict[str, torch.Tensor], key: str) -> bool:
    return expected[key.removeprefix(MODEL_PREFIX)].is_floating_point()


def _check_names_and_shapes(
    path: Path,
    names: list[str],
    shape_of: Callable[[str], tuple[int, ...]],
    expected: dict[str, torch.Tensor],
    meta: CheckpointMeta,
    optimizers: dict[str, list[torch.Size]],
) -> None:
    """Every tensor the networks need, of its shape; optimiser state only for their parameters. Reads no data."""
    model_names = {k.removeprefix(MODEL_PREFIX) for k in names if k.startswith(MODEL_PREFIX)}
    missing = sorted(set(expected) - model_names)
    unexpected = sorted(model_names - set(expected)) + sorted(
        k for k in names if not k.startswith((MODEL_PREFIX, OPTIM_PREFIX, RANDOM_PREFIX))
    )
    wrong = sorted(k for k in model_names & set(expected) if shape_of(MODEL_PREFIX + k) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        parts = [
            f"{len(missing)} missing ({', '.join(missing[:3])})" if missing else "",
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])})" if unexpected else "",
            f"{len(wrong)} of the wrong shape ({', '.join(wrong[:3])})" if wrong else "",
        ]
        raise CheckpointError(
            f"{path}: its weights do not fit its own configuration: " + "; ".join(p for p in parts if p)
        )
    unknown = sorted(set(meta.optimizer_param_groups) - set(optimizers))
    if unknown:
        raise CheckpointError(
            f"{path}: optimiser state for {', '.join(unknown)}, which this kind of model does not have"
        )
    for name, groups in meta.optimizer_param_groups.items():
        count = sum(len(g["params"]) for g in groups)
        if count != len(optimizers[name]):
            raise CheckpointError(
                f"{path}: optimizer_param_groups.{name} lists {count} parameters; the model has {len(optimizers[name])}"
            )
    slots: dict[tuple[str, int], set[str]] = {}
    for key in (k for k in names if k.startswith(OPTIM_PREFIX)):
        parts = key.removeprefix(OPTIM_PREFIX).rsplit(".", 2)
        if len(parts) != 3 or parts[0] not in meta.optimizer_param_groups or not parts[1].isdigit():
            raise CheckpointError(f"{path}: optimiser tensor {key} belongs to no optimiser in the metadata")
        name, index, slot = parts[0], int(parts[1]), parts[2]
        if index >= len(optimizers[name]):
            raise CheckpointError(f"{path}: optimiser tensor {key}: there is no parameter {index}")
        want = () if slot == "step" else tuple(optimizers[name][index]) if slot in ADAM_SLOTS else None
        if want is None:
            raise CheckpointError(f"{path}: optimiser tensor {key}: Adam has no state '{slot}'")
        if shape_of(key) != want:
            raise CheckpointError(f"{path}: optimiser tensor {key} has shape {shape_of(key)}, not {want}")
        slots.setdefault((name, index), set()).add(slot)
    incomplete = sorted(f"{name}.{index}" for (name, index), found in slots.items() if not found >= REQUIRED_SLOTS)
    if incomplete:
        raise CheckpointError(
            f"{path}: Adam's state of {', '.join(incomplete[:3])} lacks one of {', '.join(sorted(REQUIRED_SLOTS))}"
        )


def _unflatten_optimizers(
    tensors: dict[str, torch.Tensor], groups: dict[str, tuple[dict[str, Any], ...]]
) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {name: {"state": {}, "param_groups": list(g)} for name, g in groups.items()}
    for key, value in tensors.items():
        if key.startswith(OPTIM_PREFIX):
            name, index, slot = key.removeprefix(OPTIM_PREFIX).rsplit(".", 2)
            states[name]["state"].setdefault(int(index), {})[slot] = value
    return states
