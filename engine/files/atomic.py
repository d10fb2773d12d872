"""Atomic file writes: readers (and a restart after a crash) see the old file or the new
one, never half of one.

The bytes go to a hidden temp file in the target's folder (same filesystem, so the
rename is atomic), are fsynced, then os.replace'd over the target; the folder is
fsynced too so the rename itself survives a power cut. A SIGKILL mid-write can leave
a hidden ``.NAME.*.tmp`` file next to the target; it is harmless and never read.

Used for model and state files, training samples and the MIDI learn file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PathLike = str | os.PathLike[str]


def atomic_write_bytes(path: PathLike, payload: bytes) -> None:
    """Write `payload` to `path` (creating its folder) atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open with 0o666 (not mkstemp's 0o600) so the file gets the usual umask permissions.
    fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        # BaseException: also clean up on KeyboardInterrupt, then re-raise.
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically (UnicodeEncodeError, a ValueError,
    before anything is written if it cannot be encoded)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); not possible on every platform."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the data is already synced
    finally:
        os.close(dir_fd)
