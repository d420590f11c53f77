"""The charge table: one row per image that was, or may have been, billed.

It lives in the store's SQLite file next to ``results`` and outlives them: deleting a result
from the gallery (or a hosted store's pruning) does not make its money unspent. States:

- ``billed``: the service made the image (its result URL was recorded), whatever became of the
  download;
- ``maybe``: a request was sent and no usable answer came back (timeout, unreadable 200, an async
  task left running by Stop or a lost connection): it may have been billed.

- ``hold``: a run in flight holds what its unsettled images may still cost (``price``: its
  estimate, less one unit price per image settled), so runs in other threads and processes see it
  before their own budget check (``code`` names the holding process:
  a crashed one's holds are ignored and removed).

A row records what the reply's ``usage`` says was billed: ``billed_as`` its
``output_image_type`` (``qima_output_2k``: the 2K price; '' when the reply names none) and
``inputs`` the input images billed with it (the 3.0 line: the first image of a request carries
them, its ``price`` includes their fee).

A failed or refused request gets no row (content moderation included): Bailian does not bill
it. Prices are decimal text (None: unknown, never guessed). This module only reads and writes the table
(:class:`ChargeBook`, inside a transaction of the records; the sums are in :mod:`aliyun_image.money.ledger`);
it knows nothing of API keys.
"""

from __future__ import annotations

import os
import sqlite3
import time
from decimal import Decimal

from .procs import process_alive
from ..enums import Payer

SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    result_id  INTEGER UNIQUE,           -- the result row it paid for (NULL: no row, no reply came)
    owner      TEXT,                     -- hosted: the visitor; NULL locally
    model      TEXT NOT NULL,            -- as sent (a dated snapshot when one was asked for)
    region     TEXT NOT NULL DEFAULT '', -- '' for results made before prices were recorded
    price      TEXT,                     -- unit price, exact decimal text (NULL: unknown)
    currency   TEXT NOT NULL DEFAULT 'CNY',
    state      TEXT NOT NULL,            -- billed | maybe | hold
    paid_by    TEXT NOT NULL DEFAULT '', -- enums.Payer: '' the configured key, 'own' a key given with the call
    code       TEXT NOT NULL DEFAULT '', -- maybe: the error code that left the outcome unknown
    created    REAL NOT NULL,
    billed_as  TEXT NOT NULL DEFAULT '', -- v3: usage.output_image_type ('' not given)
    inputs     INTEGER NOT NULL DEFAULT 0 -- v3: input images billed with this row
);
CREATE INDEX IF NOT EXISTS charges_created ON charges(created);
"""
# Version 3: what the reply's usage said was billed (see the module docstring).
USAGE_COLUMNS = (("billed_as", "TEXT NOT NULL DEFAULT ''"), ("inputs", "INTEGER NOT NULL DEFAULT 0"))
BILLED, MAYBE, HOLD = "billed", "maybe", "hold"


def bill_result(db: sqlite3.Connection, rid: int, created: float | None = None, billed_as: str = "",
                inputs: int = 0) -> None:
    """The result ``rid`` got its image: it is billed, at its recorded price (the offline demo's
    stand-ins are free and get no row: a hosted demo's disk is not filled with zero charges).
    ``created``: when it was made, if not now (a row the journal kept while the disk was full);
    ``billed_as`` and ``inputs``: what the reply's usage said (see the module docstring)."""
    when = time.time() if created is None else created
    db.execute("INSERT INTO charges (result_id, owner, model, region, price, currency, state, paid_by, created,"
               " billed_as, inputs)"
               " SELECT id, owner, model, IFNULL(region,''), price, IFNULL(currency,'CNY'), 'billed',"
               " IFNULL(paid_by,''), ?, ?, ? FROM results WHERE id=? AND IFNULL(paid_by,'') != ?"
               # a task's maybe charge becomes the bill: at the price its finished poll's usage says
               " ON CONFLICT(result_id) DO UPDATE SET state='billed', price=excluded.price,"
               " billed_as=excluded.billed_as, inputs=excluded.inputs", (when, billed_as, inputs, rid, Payer.OFFLINE))


def forget_result(db: sqlite3.Connection, rid: int) -> None:
    """Result ``rid`` is deleted: its charges stay (the money is spent) but no longer name it, so
    a store made before ids were AUTOINCREMENT, which hands ``rid`` out again, cannot merge the
    next image's charge into this one."""
    db.execute("UPDATE charges SET result_id=NULL WHERE result_id=?", (rid,))


def hold_code() -> str:
    """What a hold records of its process (to tell a crashed holder's leftovers)."""
    return f"pid:{os.getpid()}"


class ChargeBook:
    """The charge table on one connection, inside a transaction the caller holds (get one from
    :meth:`ResultRecords.charges <aliyun_image.storage.records.ResultRecords.charges>`)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def add(self, *, model: str, region: str, price: str | None, currency: str, state: str,
            owner: str | None = None, result_id: int | None = None, paid_by: str = Payer.CONFIGURED,
            code: str = "", created: float | None = None) -> int:
        """Record one charge (returns its id); for a result that already has one, the new state wins
        (maybe -> billed)."""
        cur = self._db.execute(
            "INSERT INTO charges (result_id, owner, model, region, price, currency, state, paid_by, code, created)"
            " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(result_id) DO UPDATE SET state=excluded.state",
            (result_id, owner, model, region, price, currency, state, paid_by, code,
             time.time() if created is None else created))
        return int(cur.lastrowid or 0)

    def drop_maybe(self, rid: int) -> None:
        """The async task behind result ``rid`` failed after all: not billed, forget its ``maybe``."""
        self._db.execute("DELETE FROM charges WHERE result_id=? AND state='maybe'", (rid,))

    def rows(self, since: float = 0.0, owner: str | None = None, paid_by: str | None = None) -> list[sqlite3.Row]:
        """Charges since ``since`` (epoch seconds), oldest first; ``owner``/``paid_by`` filter when given."""
        sql = "SELECT * FROM charges WHERE created >= ?"
        args: list[float | str] = [since]
        if owner is not None:
            sql += " AND owner=?"
            args.append(owner)
        if paid_by is not None:
            sql += " AND paid_by=?"
            args.append(paid_by)
        return self._db.execute(sql + " ORDER BY created, id", args).fetchall()

    def holds(self) -> list[sqlite3.Row]:
        """The holds of runs in flight, after removing those of processes that no longer run."""
        live = []
        for row in self._db.execute("SELECT * FROM charges WHERE state='hold'").fetchall():
            if _alive(row["code"]):
                live.append(row)
            else:
                self._db.execute("DELETE FROM charges WHERE id=?", (row["id"],))
        return live

    def shrink_hold(self, hold_id: int, amount: str) -> None:
        """One image of the run holding ``hold_id`` is settled (its charge, if any, is recorded): the
        hold keeps only what the rest of the run may still cost, so nothing is counted twice."""
        row = self._db.execute("SELECT price FROM charges WHERE id=? AND state='hold'", (hold_id,)).fetchone()
        if row is not None and row["price"] is not None:
            left = max(Decimal(row["price"]) - Decimal(amount), Decimal(0))
            self._db.execute("UPDATE charges SET price=? WHERE id=?", (str(left), hold_id))

    def release(self, hold_id: int) -> None:
        """The run ended (its charges are recorded): its hold goes."""
        self._db.execute("DELETE FROM charges WHERE id=? AND state='hold'", (hold_id,))


def _alive(code: str) -> bool:
    """True when the process named by a hold's ``pid:N`` code still runs."""
    try:
        return process_alive(int(code.removeprefix("pid:")))
    except ValueError:
        return False
