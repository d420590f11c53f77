"""Undoable delete: a deleted result goes to the trash, from where it can come back intact.

Deleting marks the row ``trashed`` (its ``updated`` time is when) and moves its file from
``images/…`` to ``trash/<same name>``, so it shows in no gallery, history or zip, and a look into
the results folder does not find it either. Restoring moves the file back and makes the row
``done`` again, with everything it had (recipe, seed, kept input images). The trash empties by
itself after :data:`KEEP_DAYS` days (the app checks at start-up and then periodically), or on
request (the CLI's ``trash --empty``); only then are rows, files and unused inputs removed.

Every operation takes an ``owner``: ``None`` is the local single-user view (everything), a
hosted visitor reaches only their own results.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from .inputs import InputStore
from ..enums import Status
from .store import Record, ResultStore

DIR = "trash"
KEEP_DAYS = 30  # locally; hosted results are ephemeral anyway (see HOSTED_KEEP_S)
HOSTED_KEEP_S = 24 * 3600.0  # the shared demo keeps a visitor's trash one day


class Trash:
    """The trash of one result store (its files under ``<data dir>/trash``)."""

    def __init__(self, store: ResultStore, inputs: InputStore | None = None):
        self.store = store
        self.inputs = inputs or InputStore(store.root, fsync=store.fsync)
        self.root = store.root / DIR

    def trashed_file(self, rec: Record) -> Path:
        """Where a trashed result's file lives."""
        return self.root / Path(rec.path).name

    def put(self, rid: int, owner: str | None = None) -> bool:
        """Move one stored result to the trash; False when it is not the owner's or not stored."""
        rec = self.store.get(rid, owner)
        if rec is None or rec.status != Status.DONE or not rec.path:
            return False
        # The row first: a crash before the move leaves a trashed row whose file is still in
        # images/, which restore() and empty() both handle; never a visible row without a file.
        self.store.mark(rid, Status.TRASHED)
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.store.root / rec.path, self.trashed_file(rec))
        with contextlib.suppress(OSError):
            self.store.files.thumb_path(rid).unlink()
        return True

    def restore(self, rid: int, owner: str | None = None) -> Record | None:
        """Bring a trashed result back (file and row); None when there is no such trashed result."""
        rec = self.store.get(rid, owner)
        if rec is None or rec.status != Status.TRASHED:
            return None
        final, held = self.store.root / rec.path, self.trashed_file(rec)
        if held.is_file():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(held, final)
        self.store.mark(rid, Status.DONE if final.is_file() else Status.MISSING)
        return self.store.get(rid)

    def items(self, owner: str | None = None) -> list[Record]:
        """The owner's trashed results, most recently deleted first."""
        out: list[Record] = []
        while True:
            recs, total = self.store.page(offset=len(out), limit=500, owner=owner, status=Status.TRASHED)
            out += recs
            if not recs or len(out) >= total:
                break
        return sorted(out, key=lambda r: (r.updated, r.id), reverse=True)

    def empty(self, owner: str | None = None, older_than: float | None = None) -> int:
        """Delete trashed results for good (all, or those trashed more than ``older_than`` seconds
        ago); then kept inputs no row needs any more. Returns how many results went."""
        cutoff = None if older_than is None else time.time() - older_than
        removed = 0
        for rec in self.items(owner):
            if cutoff is not None and rec.updated > cutoff:
                continue
            if self.store.delete(rec.id, owner):
                removed += 1
            with contextlib.suppress(OSError):
                self.trashed_file(rec).unlink()
        if removed:
            self.inputs.collect(self.store)
        return removed

    def make_room(self, max_bytes: int) -> int:
        """Hosted disk budget: delete trashed results for good, the longest trashed first, until the
        stored and trashed files fit in ``max_bytes`` (the trash goes before anyone's results)."""
        removed = 0
        for rec in reversed(self.items()):  # items(): most recently deleted first
            if self.store.records.bytes_used() <= max_bytes:
                break
            if self.store.delete(rec.id):
                removed += 1
            with contextlib.suppress(OSError):
                self.trashed_file(rec).unlink()
        return removed

    def expire(self, hosted: bool = False) -> int:
        """Empty what has been in the trash longer than it is kept (30 days; a day when hosted)."""
        return self.empty(older_than=HOSTED_KEEP_S if hosted else KEEP_DAYS * 86400.0)
