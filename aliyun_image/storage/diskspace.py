"""Disk space for results: a reserve that keeps room to record paid results, and the user's
message for a write that failed (full disk, read-only, permissions).

Why a reserve: when the disk fills up mid-run, the rows that record a paid result's URL must
still fit, or the result is lost for good once its URL expires. A file of real disk blocks is
kept aside; giving it up frees exactly the room those rows need.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import AliyunImageError, StorageError
from ..i18n import msg

RESERVE_BYTES = 4 << 20  # kept free on disk so paid-for result URLs can always be recorded
# On a tiny volume: 2% of it, but at least this. A transaction recording rows writes ~40 kB of pages
# to the WAL (the row, its charge, their indexes and the search index), so this holds a few of them.
RESERVE_MIN = 128 << 10


class DiskReserve:
    """The reserve file under a data directory (``<root>/.reserve``)."""

    def __init__(self, root: Path, lock: threading.RLock | threading.Lock):
        self.root = root
        self.path = root / ".reserve"
        self._lock = lock

    def ensure(self) -> bool:
        """Make sure the reserve file exists; False when the disk has no room for it.

        Downloads call this first: while the reserve cannot be made, nothing else is written,
        so the rows of results that are paid for can always be recorded.
        """
        with self._lock:
            try:
                size = self.size()
                if self.path.is_file() and self.path.stat().st_size >= size:
                    return True
                tmp = self.path.with_suffix(".tmp")
                with open(tmp, "wb") as fh:
                    allocate(fh, size)
                os.replace(tmp, self.path)
                return True
            except OSError as exc:
                with contextlib.suppress(OSError):
                    self.path.with_suffix(".tmp").unlink()
                # Only a full disk says "no room"; other failures surface where they happen.
                return exc.errno != errno.ENOSPC

    def size(self) -> int:
        """How big the reserve should be on this volume."""
        try:
            st = os.statvfs(self.root)
            volume = st.f_blocks * st.f_frsize
        except (AttributeError, OSError):
            return RESERVE_BYTES
        return min(RESERVE_BYTES, max(RESERVE_MIN, volume // 50))

    def release(self) -> bool:
        """Free the reserve (to record rows on a full disk); False if there was none."""
        with self._lock:
            try:
                self.path.unlink()
                return True
            except OSError:
                return False


def allocate(fh: Any, size: int) -> None:
    """Give ``fh`` ``size`` bytes of real disk blocks (not a sparse file, which reserves nothing)."""
    try:
        os.posix_fallocate(fh.fileno(), 0, size)
        return
    except (AttributeError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise
    chunk = b"\0" * (1 << 20)  # file systems without fallocate: write zeros
    for _ in range(-(-size // len(chunk))):
        fh.write(chunk)
    fh.flush()


def fsync_dir(path: Path) -> None:
    """Persist a rename (the directory entry) on POSIX; a no-op where not supported."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def storage_error(root: Path, exc: BaseException, show_path: bool = True) -> StorageError:
    """The user's message for a failed write under ``root`` (full disk, read-only, permissions).

    With ``show_path=False`` (hosted mode) the message names no folder and no setting of the
    server: the visitor can do nothing about either.
    """
    no = getattr(exc, "errno", None)
    if no == errno.ENOSPC or "disk is full" in str(exc) or "database or disk is full" in str(exc):
        code, key = "Storage.DiskFull", "storage.disk_full"
    elif no in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in str(exc) or "read-only" in str(exc):
        code, key = "Storage.ReadOnly", "storage.read_only"
    else:
        code, key = "Storage.Error", "storage.write_failed"
    text = msg(key, root=str(root), error=type(exc).__name__) if show_path else msg(key + "_hosted")
    return StorageError(text, code=code, message=str(exc) if show_path else "")


def saved_later(err: AliyunImageError) -> StorageError:
    """A full disk while saving a paid result: the URL is recorded, so say it will still be saved."""
    return StorageError(msg("storage.saved_later", error=err.msg), code=err.code)
