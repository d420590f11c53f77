"""The paid-results journal: where a paid result goes when its index row does not fit on the disk.

Why: a result the service made is paid for, and its URL is the only way to fetch it. The store
records it as a row in SQLite, and on a full disk it frees the disk reserve
(:class:`~aliyun_image.storage.diskspace.DiskReserve`) to make room. But the freed room is anyone's: the
row's own WAL frames, status updates and downloads already streaming take it, and the reserve
is freed only once, so the rows of the next replies of the same run found no room and were kept
in memory only, lost when the process ended (issue 17).

This file (``<root>/.paid-journal``) is written full of zeros when the store opens, while there is
room: its blocks are real, so writing into it later needs no free space at all. A row that does
not fit in the index is written here (a JSON line, fsynced) before anyone is told; the store
moves the lines into the index at its next start, or at the next ``resume_pending`` once there is
room, then zeroes the file in place. Its lines carry no API key (the store is never given one).

Limits: copy-on-write file systems (btrfs, ZFS) need new blocks even to overwrite, so there it
is only a best effort. When the journal is full the service keeps the rows in memory, as before.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .diskspace import fsync_dir, saved_later
from ..errors import AliyunImageError, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per data folder
    fcntl = None  # type: ignore[assignment]

JOURNAL_BYTES = 256 << 10  # a line is about 1-2 KB: a hundred or more results
JOURNAL_MIN = 32 << 10  # on a tiny volume: 1% of it, but at least this


class Journaled(StorageError):
    """The rows did not fit in the index but are in the journal: on disk, indexed and downloaded
    once there is room (the text is :func:`~aliyun_image.storage.diskspace.saved_later`'s)."""


class PaidJournal:
    """The journal file under a data directory; thread-safe (``lock``) and process-safe (flock)."""

    def __init__(self, root: Path, lock: threading.RLock | threading.Lock, fsync: bool = True):
        self.path = root / ".paid-journal"
        self._lock = lock
        self.fsync = fsync

    def size(self) -> int:
        """How big the journal should be on this volume."""
        try:
            st = os.statvfs(self.path.parent)
            volume = st.f_blocks * st.f_frsize
        except (AttributeError, OSError):
            return JOURNAL_BYTES
        return min(JOURNAL_BYTES, max(JOURNAL_MIN, volume // 100))

    def ensure(self) -> bool:
        """Make sure the journal exists (never replacing one: it may hold lines); False when the
        disk has no room for it. Other failures (read-only) surface where they happen."""
        with self._lock:
            if self.path.is_file():
                return True
            tmp = self.path.with_name(self.path.name + ".tmp")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(b"\0" * self.size())  # written zeros, not fallocate: no unwritten extents
                    self._sync(fh)
                os.replace(tmp, self.path)
                if self.fsync:
                    fsync_dir(self.path.parent)
                return True
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                return exc.errno != errno.ENOSPC

    def keep(self, rows: list[dict[str, Any]], err: AliyunImageError) -> AliyunImageError:
        """Write ``rows`` (result fields) into the journal, all or none; return the error to raise:
        :class:`Journaled` when they are on disk, else ``err`` itself."""
        now = time.time()
        data = b"".join(json.dumps({"t": now, "r": r}, ensure_ascii=False).encode() + b"\n" for r in rows)
        try:
            with self._open() as fh:
                buf = fh.read()
                end = _end(buf)
                if end and buf[end - 1:end] != b"\n":
                    data = b"\n" + data  # a line torn by a crash stays apart
                if end + len(data) > len(buf):
                    return err  # full: the caller keeps them in memory
                fh.seek(end)
                fh.write(data)  # into blocks that exist: needs no free space
                self._sync(fh)
        except OSError:
            return err
        later = saved_later(err)
        return Journaled(later.msg, code=later.code, message=later.message)

    def drain(self, index: Callable[[list[tuple[float, dict[str, Any]]]], None]) -> int:
        """Hand every line (time, result fields) to ``index``, then zero the journal in place;
        if ``index`` raises (the disk is still full), the lines stay. Returns how many."""
        if not self.path.is_file():
            return 0
        try:
            with self._open() as fh:
                buf = fh.read()
                end = _end(buf)
                entries = []
                for line in buf[:end].splitlines():
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        entry = json.loads(line)
                        entries.append((float(entry["t"]), dict(entry["r"])))
                if not end:
                    return 0
                index(entries)
                fh.seek(0)
                fh.write(b"\0" * end)
                self._sync(fh)
        except OSError:
            return 0
        return len(entries)

    @contextlib.contextmanager
    def _open(self) -> Iterator[IO[bytes]]:
        """The journal for reading and writing in place, locked against other processes."""
        with self._lock, open(self.path, "r+b") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes
            yield fh

    def _sync(self, fh: IO[bytes]) -> None:
        fh.flush()
        if self.fsync:
            os.fsync(fh.fileno())


def _end(buf: bytes) -> int:
    """Where the written lines end: the first zero byte (lines are JSON, which escapes it)."""
    at = buf.find(b"\0")
    return len(buf) if at < 0 else at
