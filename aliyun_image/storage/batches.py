"""Batches on disk: a batch's spec and every unit's state, stored *before* anything is sent.

A batch (:mod:`aliyun_image.generation.batch`) is a list of units, one API request each. Its rows live
in the store's SQLite file next to ``results`` (tables of their own, created here with ``CREATE TABLE IF
NOT EXISTS``: older stores gain them on first use, no migration). A unit's ``state`` is what makes a
batch resumable without ever paying twice:

- ``queued``: never sent (or withdrawn from the scheduler's queue by Stop): safe to send;
- ``sent``: its request went out (written just before the HTTP call, inside the scheduler's slot);
  after a crash it is *never* sent again: its result rows (an async task id, a URL) are collected,
  else it may have been billed and is reported so;
- ``done`` (its results are stored), ``failed`` (refused or failed: not billed), ``maybe`` (sent,
  no usable answer: may have been billed, not resent).

Owner rules are the store's: ``owner=None`` (local) sees every batch, any other owner only their own.
A batch names the process running it (``runner``), so a second process does not run it at the same
time; a dead runner's claim is ignored.

A hosted store forgets batches nobody touched for as long as a visitor is kept (:func:`expire_batches`,
from the app's housekeeping): a caller without a cookie or session gets an owner nobody can name again,
so without it their batch rows would stay for ever. The results keep their ``batch_id``; batches without
an owner (the local user's: the host's CLI on the same data dir) are not a visitor's and stay.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diskspace import storage_error
from .procs import process_alive
from .records import DB_NAME, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id          TEXT PRIMARY KEY,          -- also every result's batch_id
    owner       TEXT,                      -- hosted: the visitor; NULL locally
    fingerprint TEXT NOT NULL,             -- same input + options + owner: the same batch
    kind        TEXT NOT NULL DEFAULT 'batch',  -- batch | grid
    spec        TEXT NOT NULL,             -- JSON: what was asked (text, variables, options, axes)
    runner      TEXT NOT NULL DEFAULT '',  -- the pid running it now ('' none)
    created     REAL NOT NULL,
    updated     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_fingerprint ON batches(fingerprint, created);
-- an owner's newest batches (the strip, the Batch tab's list): found, not searched for among everyone's
CREATE INDEX IF NOT EXISTS batches_owner ON batches(owner, created);
CREATE TABLE IF NOT EXISTS batch_units (
    batch_id TEXT NOT NULL,
    pos      INTEGER NOT NULL,             -- the unit's place in the batch (request order)
    item     INTEGER NOT NULL,             -- the combination it belongs to (one prompt, one option set)
    prompt   TEXT NOT NULL,
    options  TEXT NOT NULL,                -- JSON: the job options of this one request (seed drawn and fixed)
    labels   TEXT NOT NULL DEFAULT '{}',   -- JSON: variable / axis values of its item
    idx      INTEGER NOT NULL,             -- idx of its first image among the batch's results
    images   INTEGER NOT NULL,             -- images this request asks for
    state    TEXT NOT NULL,                -- queued | sent | done | failed | maybe
    error    TEXT NOT NULL DEFAULT '',     -- the error code of a failed or maybe-billed unit
    results  TEXT NOT NULL DEFAULT '[]',   -- JSON: ids of its stored results
    updated  REAL NOT NULL,
    PRIMARY KEY (batch_id, pos)
);
"""

QUEUED, SENT, DONE, FAILED, MAYBE = "queued", "sent", "done", "failed", "maybe"
# Batches a thread of this process runs now, by (data directory, id): the pid in ``runner`` cannot tell
# two threads apart (two page calls with the same input find the same batch), and both would send.
_RUNNING: set[tuple[str, str]] = set()
_RUNNING_LOCK = threading.Lock()
STATES = (QUEUED, SENT, DONE, FAILED, MAYBE)


@dataclass
class UnitRow:
    """One request of a batch as stored."""

    batch_id: str
    pos: int
    item: int
    prompt: str
    options: dict
    labels: dict
    idx: int
    images: int
    state: str = QUEUED
    error: str = ""
    results: list[int] = field(default_factory=list)


@dataclass
class BatchRow:
    """A batch as stored (its units apart: :meth:`BatchBook.units`)."""

    id: str
    owner: str | None
    fingerprint: str
    kind: str
    spec: dict
    runner: str
    created: float
    updated: float


class BatchBook:
    """The batch tables of one data directory. Thread-safe; its own connection to the store's file
    (SQLite's transactions keep it in step with the results and with other processes)."""

    def __init__(self, root: Path | str, *, show_paths: bool = True):
        self.root = Path(root)
        self.show_paths = show_paths
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.root / DB_NAME, check_same_thread=False, isolation_level=None,
                                       timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise storage_error(self.root, exc, show_paths) from None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._db, self.root, self.show_paths):
            yield self._db

    # --- writing --------------------------------------------------------------------------------
    def create(self, batch_id: str, owner: str | None, fingerprint: str, kind: str, spec: dict,
               units: Sequence[UnitRow], *, reuse: bool = False) -> str:
        """Store a new batch and all its units (``queued``) in one transaction, before any request; the id
        stored. With ``reuse``, a batch of the same ``fingerprint`` and ``owner`` stored in the meantime (the
        same input sent twice at once: a double click, a client's retry) is found in that transaction and its
        id returned instead, so two calls never make (and pay for) the same images twice."""
        now = time.time()
        with self._tx() as db:
            if reuse:
                same = "owner IS NULL" if owner is None else "owner=?"
                row = db.execute(f"SELECT id FROM batches WHERE fingerprint=? AND {same} ORDER BY created DESC LIMIT 1",
                                 [fingerprint] + ([] if owner is None else [owner])).fetchone()
                if row is not None:
                    return str(row["id"])
            db.execute("INSERT INTO batches (id, owner, fingerprint, kind, spec, created, updated)"
                       " VALUES (?,?,?,?,?,?,?)",
                       (batch_id, owner, fingerprint, kind, json.dumps(spec, ensure_ascii=False), now, now))
            db.executemany(
                "INSERT INTO batch_units (batch_id, pos, item, prompt, options, labels, idx, images, state, updated)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(batch_id, u.pos, u.item, u.prompt, json.dumps(u.options, ensure_ascii=False),
                  json.dumps(u.labels, ensure_ascii=False), u.idx, u.images, QUEUED, now) for u in units])
        return batch_id

    def set_state(self, batch_id: str, pos: int, state: str, error: str = "",
                  results: Sequence[int] | None = None) -> None:
        """Set one unit's state (committed before returning: ``sent`` must be on disk before the request)."""
        assert state in STATES
        cols = "state=?, error=?, updated=?" + (", results=?" if results is not None else "")
        args: list[Any] = [state, error[:200], time.time()]
        if results is not None:
            args.append(json.dumps(list(results)))
        with self._tx() as db:
            db.execute(f"UPDATE batch_units SET {cols} WHERE batch_id=? AND pos=?", (*args, batch_id, pos))

    def claim(self, batch_id: str) -> bool:
        """Mark this thread's process as the batch's runner; False when another live process, or another
        thread of this one, runs it (:meth:`release` when done)."""
        me, mine = str(os.getpid()), (str(self.root.resolve()), batch_id)
        with _RUNNING_LOCK:
            if mine in _RUNNING:
                return False
            _RUNNING.add(mine)
        try:
            with self._tx() as db:
                row = db.execute("SELECT runner FROM batches WHERE id=?", (batch_id,)).fetchone()
                runner = str(row["runner"] or "") if row is not None else ""
                if row is None or (runner and runner != me and runner.isdigit() and process_alive(int(runner))):
                    with _RUNNING_LOCK:
                        _RUNNING.discard(mine)
                    return False
                db.execute("UPDATE batches SET runner=?, updated=? WHERE id=?", (me, time.time(), batch_id))
        except BaseException:
            with _RUNNING_LOCK:
                _RUNNING.discard(mine)
            raise
        return True

    def release(self, batch_id: str) -> None:
        """This thread no longer runs the batch."""
        try:
            with self._tx() as db:
                db.execute("UPDATE batches SET runner='', updated=? WHERE id=? AND runner=?",
                           (time.time(), batch_id, str(os.getpid())))
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard((str(self.root.resolve()), batch_id))

    # --- reading --------------------------------------------------------------------------------
    def get(self, batch_id: str, owner: str | None = None) -> BatchRow | None:
        """One batch by id; with ``owner`` set, only if it is that owner's."""
        sql, args = "SELECT * FROM batches WHERE id=?", [batch_id]
        if owner is not None:
            sql += " AND owner=?"
            args.append(owner)
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return _batch(row) if row else None

    def find(self, fingerprint: str, owner: str | None) -> BatchRow | None:
        """The newest batch with ``fingerprint`` of exactly ``owner`` (the same input run again)."""
        sql = "SELECT * FROM batches WHERE fingerprint=? AND " + ("owner IS NULL" if owner is None else "owner=?")
        args = [fingerprint] + ([] if owner is None else [owner])
        with self._lock:
            row = self._db.execute(sql + " ORDER BY created DESC LIMIT 1", args).fetchone()
        return _batch(row) if row else None

    def recent(self, owner: str | None, limit: int = 20) -> list[BatchRow]:
        """The owner's newest batches (every batch locally)."""
        sql, args = "SELECT * FROM batches", []
        if owner is not None:
            sql += " WHERE owner=?"
            args.append(owner)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created DESC LIMIT ?", [*args, max(1, int(limit))]).fetchall()
        return [_batch(r) for r in rows]

    def units(self, batch_id: str) -> list[UnitRow]:
        """The batch's units in order."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM batch_units WHERE batch_id=? ORDER BY pos", (batch_id,)).fetchall()
        return [UnitRow(batch_id=r["batch_id"], pos=r["pos"], item=r["item"], prompt=r["prompt"],
                        options=json.loads(r["options"]), labels=json.loads(r["labels"]), idx=r["idx"],
                        images=r["images"], state=r["state"], error=r["error"], results=json.loads(r["results"]))
                for r in rows]

    def result_rows(self, batch_id: str, first: int, count: int) -> list[tuple[int, str]]:
        """``(id, status)`` of the result rows of images ``first`` .. ``first + count - 1`` of a batch
        (a unit's images), whatever their status."""
        with self._lock:
            rows = self._db.execute("SELECT id, status FROM results WHERE batch_id=? AND idx>=? AND idx<?"
                                    " ORDER BY idx, id", (batch_id, first, first + count)).fetchall()
        return [(int(r["id"]), str(r["status"])) for r in rows]


def expire_batches(root: Path | str, older_than: float, *, show_paths: bool = True, now: float | None = None) -> int:
    """Delete the visitors' batches (and their units) of the store in ``root`` that nothing changed for
    ``older_than`` seconds and no live process runs; how many went. The local user's (no owner) stay.
    A store without batch tables is left as it is (they are made with the first batch)."""
    root = Path(root)
    if not (root / DB_NAME).is_file():
        return 0
    cutoff = (time.time() if now is None else now) - older_than
    try:
        db = sqlite3.connect(root / DB_NAME, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise storage_error(root, exc, show_paths) from None
    try:
        with transaction(db, root, show_paths):
            if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='batches'").fetchone():
                return 0
            # the batch's own time (claimed, released) and its units' (each request's state) both count;
            # a batch without an owner is the local user's (the host's CLI on the same data dir), not a
            # visitor's: no retention of visitors applies to it
            rows = db.execute("SELECT id, runner FROM batches b WHERE owner IS NOT NULL AND updated < ?"
                              " AND NOT EXISTS"
                              " (SELECT 1 FROM batch_units u WHERE u.batch_id = b.id AND u.updated >= ?)",
                              (cutoff, cutoff)).fetchall()
            gone = [(bid,) for bid, runner in rows if not (str(runner).isdigit() and process_alive(int(runner)))]
            db.executemany("DELETE FROM batch_units WHERE batch_id=?", gone)
            db.executemany("DELETE FROM batches WHERE id=?", gone)
        return len(gone)
    finally:
        db.close()


def _batch(row: sqlite3.Row) -> BatchRow:
    return BatchRow(id=row["id"], owner=row["owner"], fingerprint=row["fingerprint"], kind=row["kind"],
                    spec=json.loads(row["spec"]), runner=row["runner"], created=row["created"],
                    updated=row["updated"])
