"""The result index: the SQLite file ``gallery.sqlite3`` in the data directory, its schema and migrations, the
rows of results and charges, and every query on them (named here: no SQL leaves :mod:`aliyun_image.storage`).

The files those rows point to are :mod:`.files`; :class:`~aliyun_image.storage.store.ResultStore` composes
the two. Owner rules: ``owner=None`` is the local single-user view, which sees every result; any other owner
sees only their own.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import charges, lineage, search
from .charges import ChargeBook
from .lineage import Link
from .diskspace import storage_error
from ..enums import Payer, Status

SCHEMA_VERSION = 4  # 2: prices on results, the charges table; 3: usage on charges (see charges.py);
#                     4: the search index (search.py)
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
    status        TEXT NOT NULL,             -- pending | done | failed | expired | missing | trashed
    error         TEXT NOT NULL DEFAULT '',
    path          TEXT NOT NULL DEFAULT '',  -- relative to data_dir
    bytes         INTEGER NOT NULL DEFAULT 0,
    width         INTEGER,
    height        INTEGER,
    owner         TEXT,                      -- hosted demo: the visitor session; NULL locally
    region        TEXT,                      -- v2: where it was made, its unit price (decimal text;
    price         TEXT,                      --     NULL: unknown) and currency; NULL on v1 rows
    currency      TEXT,
    paid_by       TEXT,                      -- v2: enums.Payer ('' the configured key, 'own', 'offline')
    created       REAL NOT NULL,
    updated       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_status_created ON results(status, created);
CREATE INDEX IF NOT EXISTS results_owner_created ON results(owner, created);
"""
_PRICE_COLUMNS = (("region", "TEXT"), ("price", "TEXT"), ("currency", "TEXT"), ("paid_by", "TEXT"))  # v2


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
    paid_by: str = Payer.CONFIGURED
    billed_as: str = ""  # usage.output_image_type ('' when the reply names none), for the ledger
    billed_inputs: int = 0  # input images billed with this image (its price includes their fee)
    # Where it came from: jobs.Parent.as_dict() each (plain data: the journal keeps it as JSON), see lineage.py
    parents: list[dict] = field(default_factory=list)


@dataclass
class Page:
    """One page of the gallery: its records, newest first, and how many match: exactly, or (``exact``
    False: the count stopped at its cap) more than ``total``. ``more``: a next page exists."""

    records: list[Record]
    total: int
    exact: bool = True
    more: bool = False


# Where a new result's image will live, relative to the data directory: (id, prompt, when) -> path.
PathFor = Callable[[int, str, float], str]


class ResultRecords:
    """The SQLite index of one data directory: results and charges. Thread-safe (``lock``, shared with the
    files); concurrent processes meet in SQLite's transactions."""

    def __init__(self, root: Path, lock: threading.RLock, *, show_paths: bool = True):
        self.root = root
        self.show_paths = show_paths  # hosted: a visitor's message never names a folder of the server
        self._lock = lock
        try:
            self._db = sqlite3.connect(root / DB_NAME, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: atomic, durable at checkpoint
            self._db.executescript(_SCHEMA + lineage.SCHEMA)  # lineage: a new table, no migration
            with self._tx():  # one process migrates; the others find it done
                _migrate(self._db, self.schema_version())
                # True: searches use the trigram index (False: this SQLite has no FTS5; they scan)
                self.text_index = search.install(self._db)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise storage_error(root, exc, show_paths) from None

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def schema_version(self) -> int:
        """The schema version the file says it has (:data:`SCHEMA_VERSION` once open)."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _tx(self) -> contextlib.AbstractContextManager[None]:
        return transaction(self._db, self.root, self.show_paths)

    # --- writing --------------------------------------------------------------------------------
    def insert_pending(self, items: list[NewResult], path_for: PathFor, now: float | None = None,
                       error: str = "") -> list[int]:
        """Rows for results not yet downloaded (status ``pending``), each with its file's path from
        ``path_for``; one that has a URL is billed in the same transaction. Returns their ids."""
        ids = []
        with self._lock, self._tx():
            # taken once the write lock is held: rows then get their ids in the order of their times (a gallery
            # page walks the ids, and a row out of that order costs a look of its own: search.LATE)
            now = time.time() if now is None else now
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
                lineage.record(self._db, rid, it.owner, it.parents)  # with its row: never one without the other
                if it.url:  # the service made this image: it is billed, in the same transaction
                    charges.bill_result(self._db, rid, now, it.billed_as, it.billed_inputs)
                self._db.execute("UPDATE results SET path=? WHERE id=?", (path_for(rid, it.prompt, now), rid))
                ids.append(rid)
        return ids

    def set_url(self, rid: int, *, url: str, url_expires: float, request_id: str, usage: dict,
                actual_prompt: str | None, params: dict | None = None, billed: dict | None = None) -> None:
        """Fill in the result URL of a row recorded when its async task was created (it is billed now), and
        its ``params``, when given: the reply may add to them, e.g. ``rewrite_status``; ``billed``:
        ``price``, ``billed_as`` and ``billed_inputs`` as the reply's usage billed it."""
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
        """Set a row's status (failed, expired, pending...) with an error code/text."""
        self._update(rid, status=status, error=error[:500], updated=time.time())

    def mark_done(self, rid: int, size: int, *, width: int | None = None, height: int | None = None,
                  recovered: bool = False) -> None:
        """The row's file is in place (``size`` bytes): ``done``. ``recovered``: found in place after a crash
        (its dimensions were never recorded and are left as they are)."""
        dims = {} if recovered else {"width": width, "height": height, "error": ""}
        self._update(rid, status=Status.DONE, bytes=size, updated=time.time(), **dims)

    def _update(self, rid: int, **cols: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in cols)
        with self._lock:
            try:
                self._db.execute(f"UPDATE results SET {sets} WHERE id=?", (*cols.values(), rid))
            except sqlite3.Error as exc:
                raise storage_error(self.root, exc, self.show_paths) from None

    def delete(self, rid: int) -> None:
        """Remove result ``rid``'s row; its charges stay (the money is spent) but no longer name it."""
        with self._lock, self._tx():
            self._db.execute("DELETE FROM results WHERE id=?", (rid,))
            self._db.execute("DELETE FROM lineage WHERE child=?", (rid,))  # its children keep theirs (unseen)
            charges.forget_result(self._db, rid)

    @contextlib.contextmanager
    def charges(self) -> Iterator[ChargeBook]:
        """The charge table in one transaction (a budget check and its hold are atomic across threads
        and processes): ``with records.charges() as book: book.add(...)``."""
        with self._lock, self._tx():
            yield ChargeBook(self._db)

    # --- reading --------------------------------------------------------------------------------
    def _record(self, row: sqlite3.Row) -> Record:
        return record_from_row(row, self.root)

    def get(self, rid: int, owner: str | None = None) -> Record | None:
        """One record by id; with ``owner`` set, only if it belongs to that owner."""
        sql, args = "SELECT * FROM results WHERE id=?", [str(rid)]
        if owner is not None:
            sql += " AND owner=?"
            args.append(owner)
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return self._record(row) if row else None

    def has(self, batch_id: str, idx: int) -> bool:
        """True when image ``idx`` of run ``batch_id`` has a row."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM results WHERE batch_id=? AND idx=?",
                                    (batch_id, idx)).fetchone() is not None

    def unsettled(self) -> list[sqlite3.Row]:
        """``id, path, status`` of the rows whose file matters (pending or done), for crash recovery."""
        with self._lock:
            return self._db.execute("SELECT id, path, status FROM results "
                                    "WHERE status IN ('pending','done')").fetchall()

    def _filters(self, *, task: str | None, model: str | None, owner: str | None,
                 status: str | None) -> tuple[list[str], list[str]]:
        """The clauses (on ``results``' own columns) and args of a gallery query's filters."""
        clauses: list[str] = []
        args: list[str] = []
        for col, value in (("status", status), ("owner", owner), ("task", task), ("model", model)):
            if value or (col == "owner" and value is not None):
                clauses.append(f"{col}=?")
                args.append(str(value))
        return clauses, args

    def page(self, *, offset: int = 0, limit: int = 24, query: str | None = None, task: str | None = None,
             model: str | None = None, owner: str | None = None,
             status: str | None = Status.DONE) -> tuple[list[Record], int]:
        """A page of records, newest first, and the total that match (search + filters)."""
        found = self.browse(offset=offset, limit=limit, query=query, task=task, model=model, owner=owner,
                            status=status)
        return found.records, found.total

    def browse(self, *, offset: int = 0, limit: int = 24, query: str | None = None, task: str | None = None,
               model: str | None = None, owner: str | None = None, status: str | None = Status.DONE,
               count_cap: int | None = None) -> Page:
        """A page of records, newest first, and how many match (search + filters). ``count_cap``: a search
        counts at most ``max(count_cap, offset + limit) + 1`` matches (the gallery: "more than 1000"; counting
        tens of thousands is what makes a broad search slow); :attr:`Page.more` still says whether a next
        page exists. None: every match is counted. A page without a search always counts exactly."""
        limit, offset = max(1, int(limit)), max(0, int(offset))
        with self._lock:
            where, args = self._filters(task=task, model=model, owner=owner, status=status)
            text = query.strip() if query else ""
            if text:
                found = search.find(self._db, text, self.text_index, where, args, offset=offset, limit=limit,
                                    cap=count_cap, owner=owner)
                rows = self._rows(found.ids)
                total, exact = found.total, found.exact
            else:
                sql = (" WHERE " + " AND ".join(where)) if where else ""
                total, exact = int(self._db.execute(f"SELECT COUNT(*) FROM results{sql}", args).fetchone()[0]), True
                # the page's ids first: a deep offset is skipped on the (status|owner, created) index alone
                ids = [] if offset >= total else [int(r[0]) for r in self._db.execute(
                    f"SELECT id FROM results{sql} {search.NEWEST} LIMIT ? OFFSET ?", (*args, limit, offset))]
                rows = self._rows(ids)
        return Page([self._record(r) for r in rows], total, exact, more=not exact or offset + limit < total)

    def _rows(self, ids: list[int]) -> list[sqlite3.Row]:
        """The rows of ``ids``, in that order (call holding the lock)."""
        by_id: dict[int, sqlite3.Row] = {}
        for start in range(0, len(ids), 500):  # below SQLite's limit of bound parameters
            chunk = ids[start:start + 500]
            sql = f"SELECT * FROM results WHERE id IN ({','.join('?' * len(chunk))})"
            by_id.update((int(r["id"]), r) for r in self._db.execute(sql, chunk))
        return [by_id[i] for i in ids if i in by_id]

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

    def count(self, status: str = Status.DONE) -> int:
        """How many records have ``status``."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results WHERE status=?", (status,)).fetchone()[0])

    def bytes_used(self) -> int:
        """Bytes of stored result files (as recorded), the trash's included: it takes disk too."""
        with self._lock:
            return int(self._db.execute("SELECT IFNULL(SUM(bytes), 0) FROM results "
                                        "WHERE status IN ('done', 'trashed')").fetchone()[0])

    def oldest_done(self, limit: int = 50) -> list[tuple[int, int]]:
        """``(id, bytes)`` of the oldest stored results, oldest first (for pruning)."""
        with self._lock:
            rows = self._db.execute("SELECT id, bytes FROM results WHERE status='done' ORDER BY created, id "
                                    "LIMIT ?", (max(1, int(limit)),)).fetchall()
        return [(int(r["id"]), int(r["bytes"])) for r in rows]

    def batch_ids(self, batch_id: str, owner: str | None) -> list[int]:
        """Ids of run ``batch_id``'s stored results (the owner's), in request order."""
        extra, args = _owner_clause(owner)
        with self._lock:
            rows = self._db.execute(f"SELECT id FROM results WHERE batch_id=? AND status=?{extra} ORDER BY idx, id",
                                    [batch_id, Status.DONE, *args]).fetchall()
        return [int(r[0]) for r in rows]

    def recent_prompts(self, owner: str | None, task: str, limit: int) -> list[str]:
        """The owner's distinct prompts (instructions) for ``task``, most recently used first."""
        extra, args = _owner_clause(owner)
        with self._lock:
            rows = self._db.execute(f"SELECT prompt FROM results WHERE task=? AND status=?{extra} AND prompt<>'' "
                                    "GROUP BY prompt ORDER BY MAX(created) DESC, MAX(id) DESC LIMIT ?",
                                    [task, Status.DONE, *args, max(1, int(limit))]).fetchall()
        return [r[0] for r in rows]


    # --- lineage (lineage.py) -------------------------------------------------------------------
    def parents_of(self, ids: list[int], owner: str | None = None) -> dict[int, list[Link]]:
        """The direct parents of each of ``ids`` that ``owner`` may see (see :func:`.lineage.parents_of`)."""
        with self._lock:
            return lineage.parents_of(self._db, ids, owner)

    def ancestors(self, rid: int, owner: str | None = None, depth: int = lineage.MAX_DEPTH) -> list[Link]:
        """What ``rid`` came from, generation by generation, as ``owner`` may see it (none for a result that
        is not theirs)."""
        with self._lock:
            return lineage.ancestors(self._db, rid, owner, depth) if self._visible(rid, owner) else []

    def descendants(self, rid: int, owner: str | None = None, depth: int = lineage.MAX_DEPTH) -> list[Link]:
        """What was made from ``rid``, generation by generation, as ``owner`` may see it."""
        with self._lock:
            return lineage.descendants(self._db, rid, owner, depth) if self._visible(rid, owner) else []

    def by_request(self, request_id: str, owner: str | None = None, limit: int = 16) -> list[Record]:
        """The stored results ``owner`` may see that a request with this id made (a recipe's origin, for files
        written before recipes named their result id; a scan, done only for such a file)."""
        if not request_id:
            return []
        extra, args = _owner_clause(owner)
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM results WHERE request_id=?{extra} ORDER BY id LIMIT ?",
                                    [request_id, *args, limit]).fetchall()
        return [self._record(r) for r in rows]

    def _visible(self, rid: int, owner: str | None) -> bool:
        extra, args = _owner_clause(owner)
        return self._db.execute(f"SELECT 1 FROM results WHERE id=?{extra}", [rid, *args]).fetchone() is not None


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, root: Path, show_paths: bool = True) -> Iterator[None]:
    """One write transaction on ``db`` (``BEGIN IMMEDIATE``: the write lock first, so a check and its
    write are atomic across threads and processes); a SQLite error becomes a storage error."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise storage_error(root, exc, show_paths) from None


def _migrate(db: sqlite3.Connection, version: int) -> None:
    """Bring a store of schema ``version`` to the current one (call inside a transaction).

    Version 1 had no prices: its results get empty price columns, and every result the service
    made (it has a URL) becomes a ``billed`` charge of unknown price and region, so "spent" stays
    honest about old images instead of inventing what they cost.
    """
    have = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    for name, kind in _PRICE_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
    for statement in charges.SCHEMA.split(";\n"):  # not executescript: it would end the caller's transaction
        if statement.strip():
            db.execute(statement)
    # Version 2 stores: the table exists without the usage columns (its rows keep '' and 0: the
    # replies' usage was not recorded on them).
    have = {row[1] for row in db.execute("PRAGMA table_info(charges)")}
    for name, kind in charges.USAGE_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE charges ADD COLUMN {name} {kind}")
    if version == 1:
        # The offline demo shares the data folder: its stand-ins (emulator URLs on this machine)
        # were never billed, so they are marked as its own and get no charge.
        db.execute("UPDATE results SET paid_by=? WHERE url LIKE 'http://127.%' OR url LIKE 'http://localhost%'"
                   " OR url LIKE 'http://[::1]%'", (Payer.OFFLINE,))
        db.execute("INSERT OR IGNORE INTO charges (result_id, owner, model, region, price, currency, state, created)"
                   " SELECT id, owner, model, '', NULL, 'CNY', 'billed', created FROM results WHERE url != ''"
                   " AND IFNULL(paid_by,'') != ?", (Payer.OFFLINE,))


def _owner_clause(owner: str | None) -> tuple[str, list[str]]:
    return ("", []) if owner is None else (" AND owner=?", [owner])


def record_from_row(row: sqlite3.Row, root: Path) -> Record:
    """A ``results`` row as a :class:`Record` (JSON columns decoded; ``file`` under ``root`` when done)."""
    d = dict(row)
    for key in ("params", "inputs", "usage"):
        d[key] = json.loads(d[key] or ("[]" if key == "inputs" else "{}"))
    d["status"] = Status(d["status"])
    rec = Record(**d)
    if rec.status == Status.DONE and rec.path:
        rec.file = root / rec.path
    return rec
