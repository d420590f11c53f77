"""Gallery store: a SQLite index plus image files under the data directory.

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
import errno
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from PIL import Image

from . import charges
from .diskspace import DiskReserve, fsync_dir, storage_error
from .journal import PaidJournal
from .procs import process_alive
from ..errors import StorageError
from ..enums import Status

SCHEMA_VERSION = 3  # 2: prices on results, the charges table; 3: usage on charges (see charges.py)
DB_NAME = "gallery.sqlite3"  # the index inside the data directory (the one place that names it)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused after a delete (ids name files)
    batch_id      TEXT NOT NULL,
    idx           INTEGER NOT NULL DEFAULT 0,
    task          TEXT NOT NULL,            -- t2i | edit | fuse
    model         TEXT NOT NULL,
    prompt        TEXT NOT NULL,
    negative      TEXT NOT NULL DEFAULT '',
    params        TEXT NOT NULL DEFAULT '{}',  -- JSON: size, n, prompt_extend, watermark...
    seed          INTEGER,
    inputs        TEXT NOT NULL DEFAULT '[]',  -- JSON: input image references, in order
    request_id    TEXT NOT NULL DEFAULT '',
    usage         TEXT NOT NULL DEFAULT '{}',
    actual_prompt TEXT,                      -- the rewritten prompt, when the API returns one
    url           TEXT NOT NULL DEFAULT '',
    url_expires   REAL,
    status        TEXT NOT NULL,             -- pending | done | failed | expired | missing
    error         TEXT NOT NULL DEFAULT '',
    path          TEXT NOT NULL DEFAULT '',  -- relative to data_dir
    bytes         INTEGER NOT NULL DEFAULT 0,
    width         INTEGER,
    height        INTEGER,
    owner         TEXT,                      -- hosted demo: the visitor session; NULL locally
    region        TEXT,                      -- v2: where it was made, its unit price (decimal text;
    price         TEXT,                      --     NULL: unknown) and currency; NULL on v1 rows
    currency      TEXT,
    paid_by       TEXT,                      -- v2: '' the configured key, 'own' a key given with the call
    created       REAL NOT NULL,
    updated       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_status_created ON results(status, created);
CREATE INDEX IF NOT EXISTS results_owner_created ON results(owner, created);
"""


@dataclass
class Record:
    """One result image as stored."""

    id: int
    batch_id: str
    idx: int
    task: str
    model: str
    prompt: str
    negative: str
    params: dict
    seed: int | None
    inputs: list
    request_id: str
    usage: dict
    actual_prompt: str | None
    url: str
    url_expires: float | None
    status: Status
    error: str
    path: str
    bytes: int
    width: int | None
    height: int | None
    owner: str | None
    created: float
    updated: float
    region: str | None = None  # v2 columns (None on results stored before prices were recorded)
    price: str | None = None
    currency: str | None = None
    paid_by: str | None = None
    file: Path | None = field(default=None, repr=False)  # absolute path when done

    @property
    def size(self) -> str:
        """``"1664*928"`` when known."""
        return f"{self.width}*{self.height}" if self.width and self.height else str(self.params.get("size") or "")


@dataclass
class NewResult:
    """What the service knows about a result before downloading it."""

    batch_id: str
    idx: int
    task: str
    model: str
    prompt: str
    negative: str
    params: dict
    seed: int | None
    inputs: list
    request_id: str
    usage: dict
    actual_prompt: str | None
    url: str
    url_expires: float | None
    owner: str | None = None
    region: str = ""
    price: str | None = None  # unit price as exact decimal text; None: unknown
    currency: str = "CNY"
    paid_by: str = ""
    billed_as: str = ""  # usage.output_image_type ('' when the reply names none), for the ledger
    billed_inputs: int = 0  # input images billed with this image (its price includes their fee)


def _slug(text: str, limit: int = 32) -> str:
    """A file-name-safe slug of a prompt (CJK kept: modern file systems are UTF-8)."""
    s = re.sub(r"[^\w\u4e00-\u9fff]+", "-", text, flags=re.UNICODE).strip("-_")
    return (s[:limit].strip("-_") or "image")


class ResultStore:
    """The SQLite index and the files it points to. Thread-safe; one per data directory."""

    def __init__(self, data_dir: Path | str, *, fsync: bool = True, show_paths: bool = True):
        self.root = Path(data_dir)
        self.fsync = fsync
        # Hosted mode: a visitor's message never names a folder of the server.
        self.show_paths = show_paths
        self._lock = threading.RLock()
        self.reserve = DiskReserve(self.root, self._lock)
        self.journal = PaidJournal(self.root, self._lock, fsync)
        self.db_path = self.root / DB_NAME
        try:
            for sub in ("images", "thumbs", ".partial"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.db_path, check_same_thread=False,
                                       isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: atomic, durable at checkpoint
            self._db.executescript(_SCHEMA)
            with self._tx():  # one process migrates; the others find it done
                charges.migrate(self._db, int(self._db.execute("PRAGMA user_version").fetchone()[0]))
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise storage_error(self.root, exc, self.show_paths) from None
        self._recover()
        self.journal.ensure()  # first: with little room, keeping paid rows matters more than the reserve
        self.ensure_reserve()
        self.index_journal()

    @classmethod
    def open(cls, data_dir: Path | str, **kw: Any) -> ResultStore:
        """Open (creating if needed) the store in ``data_dir`` and recover from any crash."""
        return cls(data_dir, **kw)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # --- crash recovery -------------------------------------------------------------------------
    def _recover(self) -> None:
        """Remove half-written downloads and make rows agree with files."""
        for part in (self.root / ".partial").glob("*"):
            # Another process (the app, a second CLI) may be downloading right now: only remove
            # what a dead process left behind. Names are <id>.<pid>.<random>.part.
            if _writer_alive(part.name):
                continue
            with contextlib.suppress(OSError):
                part.unlink()
        with self._lock:
            rows = self._db.execute("SELECT id, path, status FROM results "
                                    "WHERE status IN ('pending','done')").fetchall()
        now = time.time()
        for row in rows:
            exists = bool(row["path"]) and (self.root / row["path"]).is_file()
            if row["status"] == Status.PENDING and exists:
                # Renamed into place but the crash came before the row update: the file is complete
                # (rename is atomic), so the row can be marked done.
                size = (self.root / row["path"]).stat().st_size
                self._update(row["id"], status=Status.DONE, bytes=size, updated=now)
            elif row["status"] == Status.DONE and not exists:
                self._update(row["id"], status=Status.MISSING, updated=now)

    # --- writing --------------------------------------------------------------------------------
    def add_pending(self, items: list[NewResult]) -> list[int]:
        """Record results (URL and expiry first) before downloading; return their ids.

        On a full disk the reserve file is given up so the rows (paid-for URLs) still fit; when they
        still do not (the freed room is anyone's), they go to the journal: raises ``Journaled``.
        """
        try:
            return self._insert_pending(items)
        except StorageError as exc:
            err = exc
        if err.code == "Storage.DiskFull" and self.reserve.release():
            try:
                return self._insert_pending(items)
            except StorageError as exc:
                err = exc
        raise self.journal.keep([dataclasses.asdict(it) for it in items], err)

    def index_journal(self) -> int:
        """Index the rows the journal kept while the disk was full (at start, on ``resume``); 0 while it still is."""
        def index(entries: list[tuple[float, dict]]) -> None:
            for when, fields in entries:  # one indexed before a crash left the journal uncleared is skipped
                known = [fields["batch_id"], fields["idx"]]
                if not self.rows("SELECT 1 FROM results WHERE batch_id=? AND idx=?", known):
                    self._insert_pending([NewResult(**fields)], now=when, error="Storage.DiskFull")
        with contextlib.suppress(StorageError):
            return self.journal.drain(index)
        return 0

    def _insert_pending(self, items: list[NewResult], now: float | None = None, error: str = "") -> list[int]:
        now = time.time() if now is None else now
        ids = []
        with self._lock, self._tx():
            for it in items:
                cur = self._db.execute(
                    "INSERT INTO results (batch_id, idx, task, model, prompt, negative, params, seed, inputs,"
                    " request_id, usage, actual_prompt, url, url_expires, status, error, owner, created, updated,"
                    " region, price, currency, paid_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'pending',?,?,?,?,?,?,?,?)",
                    (it.batch_id, it.idx, it.task, it.model, it.prompt, it.negative,
                     json.dumps(it.params, ensure_ascii=False), it.seed,
                     json.dumps(it.inputs, ensure_ascii=False), it.request_id,
                     json.dumps(it.usage, ensure_ascii=False), it.actual_prompt, it.url, it.url_expires,
                     error, it.owner, now, now, it.region, it.price, it.currency, it.paid_by))
                rid = cur.lastrowid
                assert rid is not None  # an INSERT always sets it
                if it.url:  # the service made this image: it is billed, in the same transaction
                    charges.bill_result(self._db, rid, now, it.billed_as, it.billed_inputs)
                day = time.strftime("%Y-%m-%d", time.localtime(now))
                path = f"images/{day}/{rid:06d}-{_slug(it.prompt)}.png"
                self._db.execute("UPDATE results SET path=? WHERE id=?", (path, rid))
                ids.append(rid)
        return ids

    # --- disk space -----------------------------------------------------------------------------
    def ensure_reserve(self) -> bool:
        """See :meth:`DiskReserve.ensure <aliyun_image.storage.diskspace.DiskReserve.ensure>`."""
        return self.reserve.ensure()

    def disk_full_error(self) -> StorageError:
        """The error for "no room to write results" (same text as a failed write on a full disk)."""
        return storage_error(self.root, OSError(errno.ENOSPC, "No space left on device"), self.show_paths)

    def bytes_used(self) -> int:
        """Bytes of stored result files (as recorded), the trash's included: it takes disk too."""
        with self._lock:
            return int(self._db.execute("SELECT IFNULL(SUM(bytes), 0) FROM results "
                                        "WHERE status IN ('done', 'trashed')").fetchone()[0])

    def prune(self, max_bytes: int) -> int:
        """Delete the oldest stored results until their files fit in ``max_bytes``; return how
        many were deleted. For ephemeral (hosted) stores only: it deletes anyone's results."""
        excess = self.bytes_used() - max_bytes
        removed = 0
        while excess > 0:
            with self._lock:
                rows = self._db.execute("SELECT id, bytes FROM results WHERE status='done' ORDER BY created, id "
                                        "LIMIT 50").fetchall()
            if not rows:
                break
            for row in rows:
                if excess <= 0:
                    break
                if self.delete(int(row["id"])):
                    removed += 1
                    excess -= int(row["bytes"])
        return removed

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

    def commit_file(self, rid: int, fh: Any, *, width: int | None, height: int | None) -> Record:
        """Make the downloaded temp file ``fh`` the result's file (fsync, rename), mark it done."""
        rec = self.get(rid)
        if rec is None:
            raise KeyError(rid)
        final = self.root / rec.path
        try:
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(fh.name, final)  # atomic: readers see the old state or the whole file
            if self.fsync:
                fsync_dir(final.parent)
            size = final.stat().st_size
        except OSError as exc:
            raise storage_error(self.root, exc, self.show_paths) from None
        self._update(rid, status=Status.DONE, bytes=size, width=width, height=height, error="", updated=time.time())
        out = self.get(rid)
        assert out is not None
        return out

    def set_url(self, rid: int, *, url: str, url_expires: float, request_id: str, usage: dict,
                actual_prompt: str | None, params: dict | None = None, billed: dict | None = None) -> None:
        """Fill in the result URL of a row recorded when its async task was created (and its
        ``params``, when given: the reply may add to them, e.g. ``rewrite_status``; ``billed``:
        ``price``, ``billed_as`` and ``billed_inputs`` as the reply's usage billed it)."""
        more: dict = {"params": json.dumps(params, ensure_ascii=False)} if params is not None else {}
        if billed is not None:
            more["price"] = billed["price"]
        with self._lock, self._tx():
            self._update(rid, url=url, url_expires=url_expires, request_id=request_id,
                         usage=json.dumps(usage, ensure_ascii=False), actual_prompt=actual_prompt, updated=time.time(),
                         **more)
            usage_fields = (billed["billed_as"], billed["billed_inputs"]) if billed else ()
            charges.bill_result(self._db, rid, None, *usage_fields)

    def mark(self, rid: int, status: Status, error: str = "") -> None:
        """Set a row's status (failed, expired, pending) with an error code/text."""
        self._update(rid, status=status, error=error[:500], updated=time.time())

    def _update(self, rid: int, **cols: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in cols)
        with self._lock:
            try:
                self._db.execute(f"UPDATE results SET {sets} WHERE id=?", (*cols.values(), rid))
            except sqlite3.Error as exc:
                raise storage_error(self.root, exc, self.show_paths) from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise storage_error(self.root, exc, self.show_paths) from None

    # --- reading --------------------------------------------------------------------------------
    def _record(self, row: sqlite3.Row) -> Record:
        d = dict(row)
        for key in ("params", "inputs", "usage"):
            d[key] = json.loads(d[key] or ("[]" if key == "inputs" else "{}"))
        d["status"] = Status(d["status"])
        rec = Record(**d)
        if rec.status == Status.DONE and rec.path:
            rec.file = self.root / rec.path
        return rec

    def get(self, rid: int, owner: str | None = None) -> Record | None:
        """One record by id; with ``owner`` set, only if it belongs to that owner."""
        sql, args = "SELECT * FROM results WHERE id=?", [str(rid)]
        if owner is not None:
            sql += " AND owner=?"
            args.append(owner)
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return self._record(row) if row else None

    def _where(self, *, query: str | None, task: str | None, model: str | None, owner: str | None,
               status: str | None) -> tuple[str, list[str]]:
        clauses: list[str] = []
        args: list[str] = []
        for col, value in (("status", status), ("owner", owner), ("task", task), ("model", model)):
            if value or (col == "owner" and value is not None):
                clauses.append(f"{col}=?")
                args.append(str(value))
        if query and query.strip():
            like = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(prompt LIKE ? ESCAPE '\\' OR IFNULL(actual_prompt,'') LIKE ? ESCAPE '\\')")
            args += [like, like]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def page(self, *, offset: int = 0, limit: int = 24, query: str | None = None, task: str | None = None,
             model: str | None = None, owner: str | None = None,
             status: str | None = Status.DONE) -> tuple[list[Record], int]:
        """A page of records, newest first, and the total that match (search + filters)."""
        where, args = self._where(query=query, task=task, model=model, owner=owner, status=status)
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM results{where}", args).fetchone()[0]
            rows = self._db.execute(f"SELECT * FROM results{where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
                                    (*args, max(1, int(limit)), max(0, int(offset)))).fetchall()
        return [self._record(r) for r in rows], int(total)

    def models(self, owner: str | None = None) -> list[str]:
        """Distinct models with stored results (for filters)."""
        sql = "SELECT DISTINCT model FROM results WHERE status='done'" + (" AND owner=?" if owner is not None else "")
        with self._lock:
            return [r[0] for r in self._db.execute(sql, [owner] if owner is not None else [])]

    def pending(self) -> list[Record]:
        """Results recorded but not yet downloaded (oldest first)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM results WHERE status='pending' ORDER BY id").fetchall()
        return [self._record(r) for r in rows]

    def delete(self, rid: int, owner: str | None = None) -> bool:
        """Delete a result: the row first, then its files (a crash in between leaves an orphan
        file, never a row pointing at nothing)."""
        rec = self.get(rid, owner)
        if rec is None:
            return False
        with self._lock, self._tx():
            self._db.execute("DELETE FROM results WHERE id=?", (rid,))
            charges.forget_result(self._db, rid)
        for p in (self.root / rec.path if rec.path else None, self.thumb_path(rid)):
            if p is not None:
                with contextlib.suppress(OSError):
                    p.unlink()
        return True

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

    def charges(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """Call ``fn(db, ...)`` of :mod:`.charges` in one transaction (the ledger's one door: a
        budget check and its hold are atomic across threads and processes)."""
        with self._lock, self._tx():
            return fn(self._db, *args, **kw)

    def rows(self, sql: str, args: list[Any]) -> list[sqlite3.Row]:
        """Rows of a read-only query on the index, on the store's own connection (for queries
        beyond :meth:`page`, see :mod:`.result_sets`)."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def count(self, status: str = Status.DONE) -> int:
        """How many records have ``status``."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results WHERE status=?", (status,)).fetchone()[0])


def _writer_alive(name: str) -> bool:
    """True when the ``.part`` file's writer process (pid in its name) is still running."""
    try:
        return process_alive(int(name.split(".")[1]))
    except (IndexError, ValueError):
        return False
