"""Gallery search that stays fast at 100,000 results: an FTS5 trigram index over the prompts.

A search finds the results whose prompt or rewritten prompt contains the typed text, ASCII letters
in any case: exactly what ``prompt LIKE '%text%' OR actual_prompt LIKE '%text%'`` finds (SQLite's
``LIKE`` folds ASCII only). The index gives the same answer without reading every row:

- it indexes ``lower(text)`` (SQLite's ``lower()`` folds ASCII only, as ``LIKE`` does) with the
  trigram tokenizer set to case-sensitive, so a folded query matches exactly what ``LIKE`` matches,
  no more (the tokenizer's own folding would also fold ``É``/``é``, which ``LIKE`` does not);
- a query of 3 characters or more is one phrase of consecutive trigrams (``detail=full``): a substring;
- a query of 1 or 2 characters (Chinese words are often 2) cannot be a trigram. Each text is indexed
  with :data:`PAD` (two U+0001) appended, so every occurrence of a 1-2 character string starts some
  trigram; the trigrams that start with it are read from the index's vocabulary (a range of terms)
  and OR-ed. Too many of them (a single Latin letter) falls back to the scan: :data:`MAX_TERMS`.

The index is an external-content table reading the view ``results_search_text`` (it stores no
copy of the prompts), kept in step with ``results`` by triggers on insert, delete and a change of
either prompt; trash and restore change only ``status``, which the index does not hold (the gallery
filters status, owner, task and model on ``results``, through the covering index
``results_search_keys``). :func:`install` creates and fills it once (the migration to schema
:data:`SINCE`); opening a store after that only checks that its objects are there.

A search page walks the index's hits newest id first (FTS5 gives ``ORDER BY rowid DESC`` without a
sort) and stops at the page's end, instead of sorting every match by ``created``. That is exact
because ids follow ``created`` for every row but a few: a row inserted with an older ``created`` than
one before it (a row the paid-result journal kept while the disk was full, a clock set back) is
listed in :data:`LATE` by a trigger (:data:`ORDER_OBJECTS`), and those few are matched with ``LIKE``
and merged in (:func:`find`). A gallery count may stop at a cap ("more than 1000"): counting each of
tens of thousands of matches is what made a broad search slow. An owner with few results (hosted:
one visitor's among everyone's) has their rows read and matched with ``LIKE`` directly (:data:`SMALL`).

A SQLite without FTS5 (or older than 3.34, no trigram tokenizer) keeps the ``LIKE`` scan.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SINCE = 4  # the schema version that added the index (a store below it is migrated by install())
TABLE = "results_search"
VIEW = "results_search_text"
TERMS = "results_search_terms"  # fts5vocab 'row' table: one row per distinct trigram
KEYS = "results_search_keys"  # covering index: filter the index's hits without reading the rows
PAD = "\x01\x01"  # appended to indexed text: a 1-2 character match at the end still starts a trigram
MAX_TERMS = 2000  # more trigrams than this start with a 1-2 character query: scan (it matches most rows)
LATE = "results_search_late"  # ids of rows out of id order: an older ``created`` than a row with a smaller id
CLOCK = "results_search_clock"  # one row: the newest ``created`` inserted so far (a later insert older: late)
OWNER_INDEX = "results_owner_created"  # records.py's index on (owner, created)
SMALL = 2000  # an owner with at most this many rows: read them all and match with LIKE (no index walk)
LATE_MAX = 2000  # more late rows than this: sort every match instead of walking (see find())


def _text(row: str) -> str:
    """The indexed value of both prompts of ``row`` (``new``/``old`` in a trigger)."""
    return (f"lower({row}.prompt) || char(1,1), lower(IFNULL({row}.actual_prompt,'')) || char(1,1)")


_INSERT = f"INSERT INTO {TABLE}(rowid, prompt, actual_prompt) VALUES (new.id, {_text('new')});"
_DELETE = f"INSERT INTO {TABLE}({TABLE}, rowid, prompt, actual_prompt) VALUES ('delete', old.id, {_text('old')});"
# name -> statement; each object's name is in sqlite_master once it exists
OBJECTS = {
    VIEW: f"CREATE VIEW {VIEW} AS SELECT id, lower(prompt) || char(1,1) AS prompt,"
          " lower(IFNULL(actual_prompt,'')) || char(1,1) AS actual_prompt FROM results",
    TABLE: f"CREATE VIRTUAL TABLE {TABLE} USING fts5(prompt, actual_prompt, content='{VIEW}',"
           " content_rowid='id', tokenize='trigram case_sensitive 1', detail=full, columnsize=0)",
    TERMS: f"CREATE VIRTUAL TABLE {TERMS} USING fts5vocab({TABLE}, 'row')",
    KEYS: f"CREATE INDEX {KEYS} ON results(id, status, owner, created, task, model)",
    f"{TABLE}_insert": f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON results BEGIN {_INSERT} END",
    f"{TABLE}_delete": f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON results BEGIN {_DELETE} END",
    f"{TABLE}_update": f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF prompt, actual_prompt ON results"
                       f" BEGIN {_DELETE} {_INSERT} END",
}


# The rows out of id order (see the module's docstring), kept by triggers. A row is late when it is inserted
# with a ``created`` older than the clock, or with an id below another (AUTOINCREMENT never does that, an
# explicit id could), or when its ``created`` changes. The clock is the newest time of the rows that are not
# late, so each of them is at least as new as every one before it: among them id order is (created, id)
# order, all the walk needs. The clock never goes back (a delete leaves it): at worst a row is listed that
# need not be, which costs a LIKE on it, never a wrong page.
ORDER_OBJECTS = {
    LATE: f"CREATE TABLE {LATE}(id INTEGER PRIMARY KEY)",
    CLOCK: f"CREATE TABLE {CLOCK}(t REAL NOT NULL)",
    f"{LATE}_insert": f"CREATE TRIGGER {LATE}_insert AFTER INSERT ON results BEGIN"
                      f" INSERT OR IGNORE INTO {LATE}(id) SELECT new.id FROM {CLOCK}"
                      f" WHERE new.created < t OR new.id < (SELECT MAX(id) FROM results);"
                      f" UPDATE {CLOCK} SET t = new.created WHERE t < new.created"
                      f" AND new.id NOT IN (SELECT id FROM {LATE}); END",
    f"{LATE}_update": f"CREATE TRIGGER {LATE}_update AFTER UPDATE OF created ON results"
                      f" WHEN new.created IS NOT old.created BEGIN"
                      f" INSERT OR IGNORE INTO {LATE}(id) VALUES (new.id); END",
    f"{LATE}_delete": f"CREATE TRIGGER {LATE}_delete AFTER DELETE ON results BEGIN"
                      f" DELETE FROM {LATE} WHERE id = old.id; END",
}
# Filling them once for the rows already there: a row is late when one before it (in id order) is newer;
# the clock is the newest of all (the newest row is never late).
_ORDER_FILL = (
    f"INSERT INTO {CLOCK}(t) SELECT IFNULL(MAX(created), -1e308) FROM results",
    f"INSERT INTO {LATE}(id) SELECT id FROM (SELECT id, created, MAX(created) OVER"
    " (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newest FROM results) WHERE created < newest",
)


def _missing(db: sqlite3.Connection, objects: dict[str, str]) -> bool:
    marks = ",".join("?" * len(objects))
    found = db.execute(f"SELECT COUNT(*) FROM sqlite_master WHERE name IN ({marks})", list(objects)).fetchone()[0]
    return int(found) != len(objects)


def installed(db: sqlite3.Connection) -> bool:
    """True when every object of the index (and of the order it pages by) is in the database."""
    return not _missing(db, OBJECTS) and not _missing(db, ORDER_OBJECTS)


def _drop(db: sqlite3.Connection, objects: dict[str, str]) -> None:
    for name in reversed(list(objects)):  # triggers first: they name the tables
        kind = db.execute("SELECT type FROM sqlite_master WHERE name=?", (name,)).fetchone()
        if kind is not None:
            db.execute(f"DROP {kind[0].upper()} {name}")


def uninstall(db: sqlite3.Connection) -> None:
    """Remove every object of the index: the store as one made before it (benchmarks and tests)."""
    _drop(db, ORDER_OBJECTS)
    _drop(db, OBJECTS)


def install(db: sqlite3.Connection) -> bool:
    """Make sure the search index exists (call inside the store's opening transaction); True when
    searches can use it, False when this SQLite has no FTS5 trigram tokenizer (searches scan).

    The first time (a store made before schema :data:`SINCE`, or one whose index lost a part) it is
    created and filled from every row in one pass; after that this is one look at ``sqlite_master``.
    """
    if installed(db):
        return True
    if _missing(db, OBJECTS):
        db.execute("SAVEPOINT search_index")  # a SQLite without FTS5 fails half-way: leave nothing behind
        try:
            _drop(db, OBJECTS)
            for statement in OBJECTS.values():
                db.execute(statement)
            db.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('rebuild')")
        except sqlite3.OperationalError:
            db.execute("ROLLBACK TO search_index")
            db.execute("RELEASE search_index")
            return False
        db.execute("RELEASE search_index")
    if _missing(db, ORDER_OBJECTS):  # apart from the index: a store of schema 4 gets them without a rebuild
        _drop(db, ORDER_OBJECTS)
        for statement in (*ORDER_OBJECTS.values(), *_ORDER_FILL):
            db.execute(statement)
    return True


def like_clause(query: str) -> tuple[str, list[str]]:
    """The scan: ``LIKE`` on both prompts (wildcards in ``query`` taken literally)."""
    like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return "(prompt LIKE ? ESCAPE '\\' OR IFNULL(actual_prompt,'') LIKE ? ESCAPE '\\')", [like, like]


def _phrase(text: str) -> str:
    """``text`` as one FTS5 phrase (a quoted string: no operator or column name inside it counts)."""
    return '"' + text.replace('"', '""') + '"'


def _after(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no such string)."""
    last = ord(prefix[-1])
    if last == 0x10FFFF:
        return None
    nxt = 0xE000 if last == 0xD7FF else last + 1  # surrogates are no characters
    return prefix[:-1] + chr(nxt)


def clause(db: sqlite3.Connection, query: str, indexed: bool) -> tuple[str, list[str], bool]:
    """The condition on ``results`` that a gallery search for ``query`` (already stripped, not empty)
    adds: ``(sql, args, uses_index)``. The matches are those of :func:`like_clause` either way."""
    if not indexed or "\x01" in query:
        return (*like_clause(query), False)
    folded = str(db.execute("SELECT lower(?)", (query,)).fetchone()[0])  # the same fold as the index
    if len(folded) >= 3:
        match = _phrase(folded)
    else:
        upper = _after(folded)
        sql, args = f"SELECT term FROM {TERMS} WHERE term >= ?", [folded]
        if upper is not None:
            sql, args = sql + " AND term < ?", [folded, upper]
        terms = [t for (t,) in db.execute(sql + f" LIMIT {MAX_TERMS + 1}", args) if t.startswith(folded)]
        if len(terms) > MAX_TERMS:
            return (*like_clause(query), False)
        if not terms:  # no trigram starts with it, so no text contains it
            return "0", [], False
        match = " OR ".join(_phrase(t) for t in terms)
    return f"id IN (SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH ?)", [match], True


def source(uses_index: bool) -> str:
    """What a search's count reads: with the index, its hits are filtered (status, owner, task, model)
    on the covering index, not on the rows."""
    return f"results INDEXED BY {KEYS}" if uses_index else "results"


def page_source(db: sqlite3.Connection, uses_index: bool, matches: int, end: int) -> str:
    """What a search's page reads, once the count (``matches``) is known; ``end``: offset + limit.

    Few matches: sort them on the covering index. Many: let SQLite walk the newest rows on its
    (status|owner, created) index and stop at the ``end``-th match, about ``end * rows / matches``
    steps, fewer than sorting every match when ``matches**2 > end * rows``.
    """
    if not uses_index:
        return "results"
    rows = int(db.execute("SELECT IFNULL(MAX(id), 0) FROM results").fetchone()[0])  # ids: at least the rows
    return "results" if matches * matches > end * rows else source(True)


@dataclass
class Found:
    """The ids of one page of a search's matches, newest first, and how many match: ``total`` exactly,
    or (``exact`` False) a count that stopped at a cap: more than ``total`` match."""

    ids: list[int]
    total: int
    exact: bool = True


def _count(db: sqlite3.Connection, sql: str, args: list, bound: int | None) -> tuple[int, bool]:
    """How many rows ``sql`` gives, counting at most ``bound`` (None: all): ``(n, exact)``; when it
    stopped at ``bound``, ``n`` is ``bound - 1`` and more than that many match."""
    if bound is None:
        return int(db.execute(f"SELECT COUNT(*) FROM ({sql})", args).fetchone()[0]), True
    n = int(db.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT {bound})", args).fetchone()[0])
    return (n, True) if n < bound else (bound - 1, False)


def _few_rows(db: sqlite3.Connection, owner: str | None) -> bool:
    """True when ``owner`` (not the local view) has at most :data:`SMALL` rows, read on their index."""
    if owner is None:
        return False
    sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM results INDEXED BY {OWNER_INDEX} WHERE owner=? LIMIT {SMALL + 1})"
    return int(db.execute(sql, (owner,)).fetchone()[0]) <= SMALL


NEWEST = "ORDER BY created DESC, id DESC"  # the gallery's order


def find(db: sqlite3.Connection, query: str, indexed: bool, where: list[str], args: list, *, offset: int,
         limit: int, cap: int | None = None, owner: str | None = None) -> Found:
    """One page (``offset``, ``limit``) of the ids of the rows that match the search ``query`` (stripped,
    not empty) and the filters ``where`` (clauses on ``results``' own columns, with ``args``), newest
    first, and how many match. ``cap``: count at most ``max(cap, offset + limit) + 1`` matches (so a
    next page is always known to exist or not); None counts them all. ``owner``: the owner filter's
    value (in ``where`` too), to read a small owner's rows directly. The matches are those of
    ``LIKE`` (:func:`like_clause`) on every path.

    The paths, cheapest first:

    - an owner with few rows: their rows on the owner index, matched with ``LIKE``, sorted;
    - the index: its hits walked newest id first, filtered on the covering index, stopped at the
      count's cap and at the page's end; the late rows (:data:`LATE`) matched with ``LIKE`` and merged;
    - no index (or a 1-2 character query that starts thousands of trigrams): ``LIKE`` on the rows,
      walked on their (status, created) order.
    """
    cond = " AND ".join(where) or "1"
    bound = None if cap is None else max(cap, offset + limit) + 1
    if _few_rows(db, owner):
        like, like_args = like_clause(query)
        sql = f"SELECT id FROM results INDEXED BY {OWNER_INDEX} WHERE {cond} AND {like} {NEWEST}"
        ids = [int(r[0]) for r in db.execute(sql, [*args, *like_args])]
        return Found(ids[offset:offset + limit], len(ids))
    text, text_args, uses_index = clause(db, query, indexed)
    if text == "0":  # no trigram starts with it: nothing contains it
        return Found([], 0)
    if not uses_index:
        sql = f"SELECT id FROM results WHERE {cond} AND {text}"
        total, exact = _count(db, sql, [*args, *text_args], bound)
        rows = [] if offset >= total and exact else \
            db.execute(f"{sql} {NEWEST} LIMIT ? OFFSET ?", [*args, *text_args, limit, offset]).fetchall()
        return Found([int(r[0]) for r in rows], total, exact)
    # the hits in the index's order, filtered on the covering index (the rows themselves are never read)
    walk = (f"SELECT r.id AS id, r.created AS created FROM {TABLE} CROSS JOIN results AS r INDEXED BY {KEYS}"
            f" ON r.id = {TABLE}.rowid WHERE {TABLE} MATCH ? AND {cond}")
    walk_args = [*text_args, *args]
    if bound is None:  # every match counted: on the covering index, the hits' ids looked up once each
        total = int(db.execute(f"SELECT COUNT(*) FROM {source(True)} WHERE {cond} AND {text}",
                               [*args, *text_args]).fetchone()[0])
        exact = True
    else:
        total, exact = _count(db, walk, walk_args, bound)
    if offset >= total and exact:
        return Found([], total)
    return Found(_indexed_page(db, query, walk, walk_args, (cond, args, text, text_args), total, offset, limit),
                 total, exact)


def _indexed_page(db: sqlite3.Connection, query: str, walk: str, walk_args: list, filters: tuple[str, list, str, list],
                  total: int, offset: int, limit: int) -> list[int]:
    """The page's ids on the index: ``walk`` (the filtered hits, id order) stopped at the page's end and
    merged with the late rows that match; ``filters``: the filters and the index's condition on ``results``
    (``cond, args, text, text_args``), for the older way when too many rows are late."""
    cond, args, text, text_args = filters
    end = offset + limit
    late = int(db.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {LATE} LIMIT {LATE_MAX + 1})").fetchone()[0])
    if late > LATE_MAX:  # too many rows out of order to merge: sort the matches
        src = page_source(db, True, total, end)
        sql = f"SELECT id FROM {src} WHERE {cond} AND {text} {NEWEST} LIMIT ? OFFSET ?"
        return [int(r[0]) for r in db.execute(sql, [*args, *text_args, limit, offset])]
    # The first ``end`` in-order matches by id hold every in-order match of the page (among them id order is
    # the page's order); the late ones that match join them, and the page is cut from the sorted union.
    sql = f"SELECT * FROM ({walk} AND r.id NOT IN (SELECT id FROM {LATE}) ORDER BY {TABLE}.rowid DESC LIMIT ?)"
    sql_args = [*walk_args, end]
    if late:
        like, like_args = like_clause(query)
        sql += f" UNION ALL SELECT id, created FROM results WHERE id IN (SELECT id FROM {LATE}) AND {cond} AND {like}"
        sql_args += [*args, *like_args]
    rows = db.execute(f"SELECT id FROM ({sql}) {NEWEST} LIMIT ? OFFSET ?", [*sql_args, limit, offset])
    return [int(r[0]) for r in rows]
