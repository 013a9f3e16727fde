"""Where checkpoints live: the user's runs folder and the curated `pretrained/` folder.

Listing a folder never fails because of what is in it: a file that cannot be used is listed with its
error, a file that vanishes while the folder is read is left out, a link is listed as a link (and never
deleted through), and temporary files that killed writes left behind are cleaned up on the way.
Saving never replaces another run's file: a taken name gets a suffix (`-2`, `-3`, ...).
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import settings
from ..files import FileSignature, remove_stale_temporaries
from .checkpoint import CheckpointError, CheckpointMeta, RunExists, load_checkpoint, read_metadata
from .config import TrainConfig
from .trainer import Trainer

SUFFIX = ".safetensors"
MAX_NAME_TRIES = 1_000


def run_name(config: TrainConfig) -> str:
    """A readable file stem: mnist-iwavb-k10-l8-mlp-s0, mnist-iwavb-ac-k10-l8-conv-s0 with adaptive contrast."""
    method = config.method + ("-ac" if config.contrast == "adaptive" else "")
    return f"{config.dataset}-{method}-k{config.k}-l{config.latent_dim}-{config.family}-s{config.seed}"


def default_run_path(config: TrainConfig) -> Path:
    return settings.runs_dir() / f"{run_name(config)}{SUFFIX}"


def owner_tag(kind: Literal["name", "session"], identity: str) -> str:
    """What a checkpoint stores as its owner: a digest of who made it, a browser session (by its secret token)
    or a name (chosen in the app or with `train --owner`; any case), so the file never reveals a token."""
    identity = identity.strip().casefold() if kind == "name" else identity
    return hashlib.sha256(f"{kind}:{identity}".encode()).hexdigest()[:24]


def _candidates(path: Path) -> list[Path]:
    stem = path.name.removesuffix(SUFFIX)
    return [path] + [path.with_name(f"{stem}-{n}{SUFFIX}") for n in range(2, MAX_NAME_TRIES + 1)]


def save_run(trainer: Trainer, path: Path, owner: str | None = None) -> Path:
    """Save a run at `path`, or, where that holds another run, at the first of `<stem>-2`, `<stem>-3`, ...
    that is free or that this run wrote itself; returns the path written."""
    for candidate in _candidates(path):
        try:
            return trainer.save(candidate, owner=owner)
        except RunExists:
            continue
    raise RunExists(f"{path} and {MAX_NAME_TRIES - 1} names after it hold other runs: choose another name")


@dataclass(frozen=True)
class CheckpointEntry:
    """A checkpoint file as a listing sees it."""

    path: Path
    meta: CheckpointMeta | None  # None when its header cannot be read
    error: str | None = None  # why it cannot be used (its header, its weights); None when it can
    signature: FileSignature | None = None  # of the name itself: a deletion must still find this file there
    link: bool = False  # a symbolic link (read through, never deleted through)

    @property
    def usable(self) -> bool:
        return self.meta is not None and self.error is None


@functools.lru_cache(maxsize=512)
def _inspect(path: str, signature: FileSignature) -> tuple[CheckpointMeta | None, str | None]:
    """Read and check a checkpoint completely (header, shapes, finite weights), once per version of the file."""
    try:
        meta = read_metadata(path)
    except CheckpointError as err:
        return None, str(err)
    try:
        load_checkpoint(path)
    except CheckpointError as err:
        return meta, str(err)
    return meta, None


def inspect_checkpoint(path: Path) -> CheckpointEntry | None:
    """One file as a listing sees it; None when nothing is there (any more)."""
    try:
        own = os.lstat(path)
    except OSError:
        return None
    link = stat.S_ISLNK(own.st_mode)
    try:
        target = os.stat(path)
    except OSError as err:
        if not link:
            return None  # vanished between the two looks
        return CheckpointEntry(
            path, None, f"{path} is a link to a missing file ({err.strerror})", FileSignature.of(own), link
        )
    if not stat.S_ISREG(target.st_mode):
        problem = f"{path} is not a regular file, so not a checkpoint"
        return CheckpointEntry(path, None, problem, FileSignature.of(own), link)
    meta, error = _inspect(str(path), FileSignature.of(target))
    return CheckpointEntry(path, meta, error, FileSignature.of(own), link)


def list_checkpoints(folder: str | Path) -> list[CheckpointEntry]:
    """Every checkpoint in a folder (not recursive), newest first; unusable files carry their error."""
    folder = Path(folder)
    try:
        names = [n for n in os.listdir(folder) if n.endswith(SUFFIX) and not n.startswith(".")]
    except OSError:
        return []  # no folder (yet), or one we may not read
    remove_stale_temporaries(folder)
    found = [(entry, _mtime(entry.path)) for name in names if (entry := inspect_checkpoint(folder / name)) is not None]
    return [entry for entry, _ in sorted(found, key=lambda pair: pair[1], reverse=True)]


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0
