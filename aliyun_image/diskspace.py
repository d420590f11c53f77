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

from .errors import AliyunImageError, StorageError

RESERVE_BYTES = 4 << 20  # kept free on disk so paid-for result URLs can always be recorded
RESERVE_MIN = 64 << 10  # on a tiny volume: 2% of it, but at least this (a few hundred rows)


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
        code = "Storage.DiskFull"
        if show_path:
            zh = (f"磁盘空间不足，无法保存到 {root}。请清理磁盘或用 ALIYUN_IMAGE_DATA_DIR 换一个目录；"
                  "已保存的结果不受影响。")
            en = (f"The disk is full; cannot save to {root}. Free some space or choose another folder with "
                  "ALIYUN_IMAGE_DATA_DIR; results already saved are safe.")
        else:
            zh = "服务器磁盘已满，暂时无法保存图片。"
            en = "The server's disk is full, so images cannot be saved right now."
    elif no in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in str(exc) or "read-only" in str(exc):
        code = "Storage.ReadOnly"
        if show_path:
            zh = f"没有写入权限：{root}。请修改目录权限，或用 ALIYUN_IMAGE_DATA_DIR 指定可写目录。"
            en = (f"No permission to write to {root}. Fix the folder's permissions or point ALIYUN_IMAGE_DATA_DIR "
                  "at a writable folder.")
        else:
            zh = "服务器暂时无法保存图片（存储只读）。请稍后再试。"
            en = "The server cannot save images right now (read-only storage). Try again later."
    else:
        code = "Storage.Error"
        if show_path:
            zh = f"无法写入结果目录 {root}：{type(exc).__name__}。请检查该目录。"
            en = f"Cannot write to the results folder {root}: {type(exc).__name__}. Check that folder."
        else:
            zh, en = "服务器暂时无法保存图片。请稍后再试。", "The server cannot save images right now. Try again later."
    return StorageError(zh, en, code=code, message=str(exc) if show_path else "")


def saved_later(err: AliyunImageError) -> StorageError:
    """A full disk while saving a paid result: the URL is recorded, so say it will still be saved."""
    return StorageError(
        err.zh + "图片已生成并已记录，磁盘有空间后会自动保存（结果链接 24 小时内有效）。",
        err.en + " The image was generated and recorded; it will be saved automatically once there is room "
                 "(its link stays valid for 24 h).", code=err.code)
