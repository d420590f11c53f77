"""The result files of one data directory: the images, the downloads in flight (``.part``), the thumbnails, the
disk reserve and the journal of paid rows. No SQL here: the rows are :mod:`.records`.

Layout of ``data_dir``::

    images/YYYY-MM-DD/<id>-<slug>.png
    thumbs/<id>.jpg            small previews, made on first request
    .partial/<id>.<pid>.<random>.part   downloads in flight (a dead writer's are removed at start-up)
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from .diskspace import DiskReserve, fsync_dir, storage_error
from .journal import PaidJournal
from .procs import process_alive
from .records import Record
from ..errors import StorageError


def _slug(text: str, limit: int = 32) -> str:
    """A file-name-safe slug of a prompt (CJK kept: modern file systems are UTF-8)."""
    s = re.sub(r"[^\w\u4e00-\u9fff]+", "-", text, flags=re.UNICODE).strip("-_")
    return (s[:limit].strip("-_") or "image")


class ResultFiles:
    """The files the index points to, under ``root``. Thread-safe with the ``lock`` the records share."""

    def __init__(self, root: Path, lock: threading.RLock, *, fsync: bool = True, show_paths: bool = True):
        self.root = root
        self.fsync = fsync
        self.show_paths = show_paths  # hosted: a visitor's message never names a folder of the server
        self.reserve = DiskReserve(root, lock)
        self.journal = PaidJournal(root, lock, fsync)
        try:
            for sub in ("images", "thumbs", ".partial"):
                (root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(root, exc, show_paths) from None

    @staticmethod
    def image_path(rid: int, prompt: str, when: float) -> str:
        """Where result ``rid``'s image goes, relative to the data directory (its day's folder)."""
        day = time.strftime("%Y-%m-%d", time.localtime(when))
        return f"images/{day}/{rid:06d}-{_slug(prompt)}.png"

    def size(self, path: str) -> int | None:
        """Bytes of the file at ``path`` (relative), None when there is none."""
        try:
            return (self.root / path).stat().st_size if path and (self.root / path).is_file() else None
        except OSError:
            return None

    def clear_partials(self) -> None:
        """Remove half-written downloads that a dead process left behind (another process, the app or a
        second CLI, may be downloading right now: names are ``<id>.<pid>.<random>.part``)."""
        for part in (self.root / ".partial").glob("*"):
            if _writer_alive(part.name):
                continue
            with contextlib.suppress(OSError):
                part.unlink()

    @contextlib.contextmanager
    def partial(self, rid: int) -> Iterator[Any]:
        """A temporary file (``wb+``) for downloading result ``rid``; removed if not committed."""
        tmp = self.root / ".partial" / f"{rid}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
        try:
            fh = open(tmp, "wb+")  # noqa: SIM115 - closed by `with fh` below; only opening is a storage error
        except OSError as exc:
            raise storage_error(self.root, exc, self.show_paths) from None
        try:
            with fh:
                yield fh
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def commit(self, fh: Any, path: str) -> int:
        """Make the downloaded temp file ``fh`` the file at ``path`` (fsync, atomic rename); its size."""
        final = self.root / path
        try:
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(fh.name, final)  # atomic: readers see the old state or the whole file
            if self.fsync:
                fsync_dir(final.parent)
            return final.stat().st_size
        except OSError as exc:
            raise storage_error(self.root, exc, self.show_paths) from None

    def remove(self, rid: int, path: str) -> None:
        """Remove result ``rid``'s image (at ``path``) and its preview; what is not there is fine."""
        for p in (self.root / path if path else None, self.thumb_path(rid)):
            if p is not None:
                with contextlib.suppress(OSError):
                    p.unlink()

    def thumb_path(self, rid: int) -> Path:
        """Where the preview of result ``rid`` lives (it may not exist yet)."""
        return self.root / "thumbs" / f"{rid}.jpg"

    def thumbnail(self, rec: Record, size: int = 384) -> Path | None:
        """A small JPEG preview of a done result, made on first request and kept (the gallery shows these,
        not the multi-megabyte originals). None when the original is missing or unreadable."""
        if rec.file is None:
            return None
        thumb = self.thumb_path(rec.id)
        if thumb.is_file():
            return thumb
        try:
            with Image.open(rec.file) as im:
                im.draft("RGB", (size, size))  # JPEG originals decode at reduced scale
                im.thumbnail((size, size))
                tmp = thumb.with_suffix(".tmp")
                im.convert("RGB").save(tmp, "JPEG", quality=82)
            os.replace(tmp, thumb)
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        return thumb

    def ensure_reserve(self) -> bool:
        """See :meth:`DiskReserve.ensure <aliyun_image.storage.diskspace.DiskReserve.ensure>`."""
        return self.reserve.ensure()

    def disk_full_error(self) -> StorageError:
        """The error for "no room to write results" (same text as a failed write on a full disk)."""
        return storage_error(self.root, OSError(errno.ENOSPC, "No space left on device"), self.show_paths)


def _writer_alive(name: str) -> bool:
    """True when the ``.part`` file's writer process (pid in its name) is still running."""
    try:
        return process_alive(int(name.split(".")[1]))
    except (IndexError, ValueError):
        return False
