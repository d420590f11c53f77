"""Gallery store: the SQLite index (:mod:`.records`) and the image files (:mod:`.files`) of one data
directory, composed here, with the operations that need both.

Layout of ``data_dir``::

    gallery.sqlite3            the index (WAL mode)
    images/YYYY-MM-DD/<id>-<slug>.png
    thumbs/<id>.jpg            small previews, made on first request
    .partial/<id>.part         downloads in flight (removed at start-up: never shown)

Nothing the user paid for is lost: a result row is written with its URL and expiry
(status ``pending``) *before* the download starts (on a disk too full for the row: into the
preallocated journal, :mod:`.journal`, indexed at the next start). A download goes to ``.partial/``
and is renamed into ``images/`` only when complete and verified, then the row becomes ``done``.
After a crash, :meth:`ResultStore.open` removes partial files and reconciles rows with files;
:meth:`~aliyun_image.generation.service.ImageService.resume_pending` re-downloads what is still valid.

The store never sees an API key: nothing it is given contains one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from pathlib import Path
from typing import Any

from .files import ResultFiles
from .records import DB_NAME, SCHEMA_VERSION, NewResult, Page, Record, ResultRecords
from ..errors import StorageError
from ..enums import Status

__all__ = ["DB_NAME", "SCHEMA_VERSION", "NewResult", "Page", "Record", "ResultStore"]


class ResultStore:
    """One data directory: ``records`` (the SQLite index: rows, queries, charges) and ``files`` (images,
    downloads in flight, previews, the reserve, the journal). Thread-safe; one per data directory.

    Reads go to ``records`` (``get``, ``page`` and ``pending`` are here too, for the callers that only read);
    writing a result, committing its file and deleting it keep row and file in step, so they are here.
    """

    def __init__(self, data_dir: Path | str, *, fsync: bool = True, show_paths: bool = True):
        self.root = Path(data_dir)
        self.fsync = fsync
        self.show_paths = show_paths  # hosted mode: a visitor's message never names a folder of the server
        lock = threading.RLock()  # one for both: a row and its file change together
        self.files = ResultFiles(self.root, lock, fsync=fsync, show_paths=show_paths)
        self.records = ResultRecords(self.root, lock, show_paths=show_paths)
        self._recover()
        self.files.journal.ensure()  # first: with little room, keeping paid rows matters more than the reserve
        self.files.ensure_reserve()
        self.index_journal()

    @classmethod
    def open(cls, data_dir: Path | str, **kw: Any) -> ResultStore:
        """Open (creating if needed) the store in ``data_dir`` and recover from any crash."""
        return cls(data_dir, **kw)

    def close(self) -> None:
        """Close the database."""
        self.records.close()

    def _recover(self) -> None:
        """Remove half-written downloads and make rows agree with files."""
        self.files.clear_partials()
        for row in self.records.unsettled():
            size = self.files.size(row["path"])
            if row["status"] == Status.PENDING and size is not None:
                # Renamed into place but the crash came before the row update: the file is complete
                # (rename is atomic), so the row can be marked done.
                self.records.mark_done(row["id"], size, recovered=True)
            elif row["status"] == Status.DONE and size is None:
                self.records.mark(row["id"], Status.MISSING)

    # --- a row and its file together --------------------------------------------------------------
    def add_pending(self, items: list[NewResult]) -> list[int]:
        """Record results (URL and expiry first) before downloading; return their ids.

        On a full disk the reserve file is given up so the rows (paid-for URLs) still fit; when they
        still do not (the freed room is anyone's), they go to the journal: raises ``Journaled``.
        """
        try:
            return self.records.insert_pending(items, self.files.image_path)
        except StorageError as exc:
            err = exc
        if err.code == "Storage.DiskFull" and self.files.reserve.release():
            try:
                return self.records.insert_pending(items, self.files.image_path)
            except StorageError as exc:
                err = exc
        raise self.files.journal.keep([dataclasses.asdict(it) for it in items], err)

    def index_journal(self) -> int:
        """Index the rows the journal kept while the disk was full (at start, on ``resume``); 0 while it still is."""
        def index(entries: list[tuple[float, dict]]) -> None:
            for when, fields in entries:  # one indexed before a crash left the journal uncleared is skipped
                if not self.records.has(fields["batch_id"], fields["idx"]):
                    self.records.insert_pending([NewResult(**fields)], self.files.image_path, now=when,
                                                error="Storage.DiskFull")
        with contextlib.suppress(StorageError):
            return self.files.journal.drain(index)
        return 0

    def commit_file(self, rid: int, fh: Any, *, width: int | None, height: int | None) -> Record:
        """Make the downloaded temp file ``fh`` (from ``files.partial``) the result's file, mark it done."""
        rec = self.records.get(rid)
        if rec is None:
            raise KeyError(rid)
        self.records.mark_done(rid, self.files.commit(fh, rec.path), width=width, height=height)
        out = self.records.get(rid)
        assert out is not None
        return out

    def delete(self, rid: int, owner: str | None = None) -> bool:
        """Delete a result: the row first, then its files (a crash in between leaves an orphan
        file, never a row pointing at nothing)."""
        rec = self.records.get(rid, owner)
        if rec is None:
            return False
        self.records.delete(rid)
        self.files.remove(rid, rec.path)
        return True

    def prune(self, max_bytes: int) -> int:
        """Delete the oldest stored results until their files fit in ``max_bytes``; return how
        many were deleted. For ephemeral (hosted) stores only: it deletes anyone's results."""
        excess = self.records.bytes_used() - max_bytes
        removed = 0
        while excess > 0:
            rows = self.records.oldest_done(50)
            if not rows:
                break
            for rid, size in rows:
                if excess <= 0:
                    break
                if self.delete(rid):
                    removed += 1
                    excess -= size
        return removed

    # --- the reads most callers need (the rest: ``records``) ---------------------------------------
    def get(self, rid: int, owner: str | None = None) -> Record | None:
        """One record by id; with ``owner`` set, only if it belongs to that owner."""
        return self.records.get(rid, owner)

    def page(self, *, offset: int = 0, limit: int = 24, query: str | None = None, task: str | None = None,
             model: str | None = None, owner: str | None = None,
             status: str | None = Status.DONE) -> tuple[list[Record], int]:
        """A page of records, newest first, and the total that match (search + filters)."""
        return self.records.page(offset=offset, limit=limit, query=query, task=task, model=model, owner=owner,
                                 status=status)

    def browse(self, *, offset: int = 0, limit: int = 24, query: str | None = None, task: str | None = None,
               model: str | None = None, owner: str | None = None, status: str | None = Status.DONE,
               count_cap: int | None = None) -> Page:
        """:meth:`page` with a search's count capped at ``count_cap`` (see :meth:`ResultRecords.browse`)."""
        return self.records.browse(offset=offset, limit=limit, query=query, task=task, model=model, owner=owner,
                                   status=status, count_cap=count_cap)

    def pending(self) -> list[Record]:
        """Results recorded but not yet downloaded (oldest first)."""
        return self.records.pending()

    def mark(self, rid: int, status: Status, error: str = "") -> None:
        """Set a row's status (failed, expired, pending) with an error code/text."""
        self.records.mark(rid, status, error)
