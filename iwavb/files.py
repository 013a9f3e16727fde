"""Writing files so that a crash, a full disk or a second writer never leaves half a file behind.

Every write goes to a hidden temporary file beside its target (`.NAME.<32 hex>.tmp`), is synced, and is then
renamed over the target (or, with `replace=False`, linked to it only if the name is still free). A process
killed in between leaves the temporary file and nothing else: `remove_stale_temporaries` cleans those up.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IWAVBError

STALE_AFTER_S = 3_600.0  # a temporary file this old belongs to no write in progress (a checkpoint takes seconds)
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}


class WriteError(IWAVBError):
    """A file could not be written; the message names it and says that any earlier file is unchanged."""


class FileExists(WriteError):
    """A write that may not replace a file found one there (`replace=False`)."""


@dataclass(frozen=True)
class FileSignature:
    """Which file a name held, and in what state: a file replaced or rewritten has another signature."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileSignature:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def file_signature(path: Path) -> FileSignature | None:
    """The signature of the file at `path` itself (a link is not followed); None when there is none."""
    try:
        return FileSignature.of(os.lstat(path))
    except OSError:
        return None


def atomic_write_bytes(path: Path, blob: bytes, replace: bool = True) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it; a failure leaves `path` as it was.

    With `replace=False` an existing file at `path` is never replaced: FileExists instead."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Mode 0666 less the umask, as for any new file (mkstemp's 0600 would hide it from other users).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _link_if_free(tmp, path)
    except FileExistsError as err:
        _discard(tmp)
        raise FileExists(f"{path} already exists: not replaced") from err
    except OSError as err:
        _discard(tmp)
        reason = "the disk is full" if err.errno == errno.ENOSPC else str(err)
        raise WriteError(f"could not write {path}: {reason}. Any earlier file there is unchanged.") from err
    _discard(tmp)  # after a link, the temporary name of the new file


def _link_if_free(tmp: Path, path: Path) -> None:
    """Give the finished temporary file the name `path` only if it is free (FileExistsError otherwise)."""
    try:
        os.link(tmp, path)  # atomic: fails if the name exists, even when another process just took it
    except OSError as err:
        if err.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then rename (a narrow race)
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from err
        os.replace(tmp, path)


def _discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; failing to (a read-only or vanished folder) is no error."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def atomic_write_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """Named numpy arrays as one compressed .npz file, written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temporary files that interrupted writes left in `folder` (regular files named as
    `atomic_write_bytes` names them, untouched for `older_than_s`); returns them. Never raises."""
    removed: list[Path] = []
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not _TEMPORARY.match(name):
            continue
        path = folder / name
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime >= older_than_s:
                path.unlink()
                removed.append(path)
        except OSError:
            continue  # gone already, or a folder we may not change: someone else's to clean
    return removed
