"""Writing files so that a crash, a full disk or a second writer never leaves half a file behind."""

from __future__ import annotations

import errno
import io
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IWAVBError


class WriteError(IWAVBError):
    """A file could not be written; the message names it and says that any earlier file is unchanged."""


def atomic_write_bytes(path: Path, blob: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it; a failure leaves `path` as it was."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Mode 0666 less the umask, as for any new file (mkstemp's 0600 would hide it from other users).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        reason = "the disk is full" if err.errno == errno.ENOSPC else str(err)
        raise WriteError(f"could not write {path}: {reason}. Any earlier file there is unchanged.") from err


def atomic_write_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """Named numpy arrays as one compressed .npz file, written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
