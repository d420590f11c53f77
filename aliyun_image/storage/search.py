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

A SQLite without FTS5 (or older than 3.34, no trigram tokenizer) keeps the ``LIKE`` scan.
"""

from __future__ import annotations

import sqlite3

SINCE = 4  # the schema version that added the index (a store below it is migrated by install())
TABLE = "results_search"
VIEW = "results_search_text"
TERMS = "results_search_terms"  # fts5vocab 'row' table: one row per distinct trigram
KEYS = "results_search_keys"  # covering index: filter the index's hits without reading the rows
PAD = "\x01\x01"  # appended to indexed text: a 1-2 character match at the end still starts a trigram
MAX_TERMS = 2000  # more trigrams than this start with a 1-2 character query: scan (it matches most rows)


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


def installed(db: sqlite3.Connection) -> bool:
    """True when every object of the index is in the database."""
    marks = ",".join("?" * len(OBJECTS))
    found = db.execute(f"SELECT COUNT(*) FROM sqlite_master WHERE name IN ({marks})", list(OBJECTS)).fetchone()[0]
    return int(found) == len(OBJECTS)


def install(db: sqlite3.Connection) -> bool:
    """Make sure the search index exists (call inside the store's opening transaction); True when
    searches can use it, False when this SQLite has no FTS5 trigram tokenizer (searches scan).

    The first time (a store made before schema :data:`SINCE`, or one whose index lost a part) it is
    created and filled from every row in one pass; after that this is one look at ``sqlite_master``.
    """
    if installed(db):
        return True
    db.execute("SAVEPOINT search_index")  # a SQLite without FTS5 fails half-way: leave nothing behind
    try:
        for name in reversed(list(OBJECTS)):  # triggers first: they name the table
            kind = db.execute("SELECT type FROM sqlite_master WHERE name=?", (name,)).fetchone()
            if kind is not None:
                db.execute(f"DROP {kind[0].upper()} {name}")
        for statement in OBJECTS.values():
            db.execute(statement)
        db.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('rebuild')")
    except sqlite3.OperationalError:
        db.execute("ROLLBACK TO search_index")
        db.execute("RELEASE search_index")
        return False
    db.execute("RELEASE search_index")
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
