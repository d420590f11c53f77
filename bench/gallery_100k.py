"""The gallery at 100,000 results: search, pages and opening, before (the ``LIKE`` scan) and after
(the FTS5 trigram index of :mod:`aliyun_image.storage.search`), side by side in one run.

The store is filled through ``ResultStore`` (``add_pending`` + ``commit_file``, tiny files: see
:mod:`bench.gallery`), then its search index is removed and the schema set back to 3, as a store
made before the index looks. Then:

- ``open``: opening that store as the code before the index did (no index to look for) against
  opening it now (the index is there: one look at ``sqlite_master``); ``migrate`` is the one-time
  first opening that builds the index;
- ``search_*``: what the gallery tab asks, ``Gallery.browse(query=..., limit=24)`` (the first page and a
  count that stops past :data:`~aliyun_image.storage.gallery.COUNT_CAP` matches), against the statements
  the store ran before the index (``LIKE`` on both prompts, every match counted), on their own
  connection to the same file; queries of 1, 2 and more characters, Chinese and ASCII, one that
  matches nothing; ``search_en2_deep``: page 51 of the broadest query (past the capped count);
  ``search_en2_exact``: every match counted (``ResultStore.page``: the CLI's ``history``, the zip);
- ``search_owner_*``/``page_owner``: hosted, one visitor's 100 results spread among the 100,000
  (every 1,000th id), searched and paged by that visitor;
- ``page_first``/``page_deep``: a page without a query, now and before (the first, and the last of
  100,000: ``OFFSET 99976``).

Both sides must give the same pages and counts (a capped count: fewer than the true one, at least
the cap), or the run stops. The load average is logged before and after the timing (2 shared cores:
a busy machine shows in every figure) and kept in each row's ``extra``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from unittest import mock

from aliyun_image.storage import Gallery, search
from aliyun_image.storage.gallery import COUNT_CAP
from aliyun_image.storage.records import Record, record_from_row
from aliyun_image.storage.store import DB_NAME, ResultStore

from .common import Row, interleaved, log, median, tmp_root
from .gallery import build

NAME = "gallery_100k"
TOTAL = 100_000
PAGE = 24
# name -> (query, what); the data set's prompts are bench.gallery's (Chinese and English, ~150 characters
# with the rewritten prompt)
QUERIES = {
    "zh1": ("猫", "Chinese, 1 character (一只橘猫, 熊猫: ~13%)"),
    "zh2": ("橘猫", "Chinese, 2 characters (~5%)"),
    "zh6": ("竹林里的熊猫", "Chinese, 6 characters (~8%)"),
    "en1": ("x", "ASCII, 1 character (most rows)"),
    "en2": ("8K", "ASCII, 2 characters, upper case (high detail, 8k: ~37%)"),
    "en10": ("Lighthouse", "ASCII, 10 characters, mixed case (~8%)"),
    "none": ("zzz-no-such-prompt", "matches nothing"),
}
OWNER = "visitor-1"  # hosted: one visitor's results, every OWNER_EVERY-th id
OWNER_EVERY = 1000
OWNER_QUERIES = {"en2": "8K", "zh1": "猫"}
DEEP = 50 * PAGE  # search_en2_deep: page 51, past the capped count
_OLD_LIKE = "(prompt LIKE ? ESCAPE '\\' OR IFNULL(actual_prompt,'') LIKE ? ESCAPE '\\')"


class Before:
    """The statements ``ResultStore.page`` ran before the index (count, then the page with
    ``LIMIT/OFFSET`` on the rows), on a connection of their own; rows decoded as the store does."""

    def __init__(self, root: Path):
        self.root = root
        self.db = sqlite3.connect(root / DB_NAME, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row

    def page(self, *, offset: int = 0, limit: int = PAGE, query: str | None = None,
             owner: str | None = None) -> tuple[list[Record], int]:
        where, args = " WHERE status=?", ["done"]
        if owner is not None:
            where += " AND owner=?"
            args.append(owner)
        if query and query.strip():
            like = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where += " AND " + _OLD_LIKE
            args += [like, like]
        total = self.db.execute(f"SELECT COUNT(*) FROM results{where}", args).fetchone()[0]
        rows = self.db.execute(f"SELECT * FROM results{where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
                               (*args, limit, offset)).fetchall()
        return [record_from_row(row, self.root) for row in rows], int(total)

    def close(self) -> None:
        self.db.close()


def _as_before(root: Path) -> None:
    """Make the store look as one made before the index (schema 3)."""
    db = sqlite3.connect(root / DB_NAME)
    search.uninstall(db)
    db.execute("PRAGMA user_version=3")
    db.execute("UPDATE results SET owner=? WHERE id % ? = 0", (OWNER, OWNER_EVERY))
    db.commit()
    db.execute("VACUUM")
    db.close()


def _open_before(root: Path) -> float:
    """Seconds to open the store as the code before the index did (no index to look for)."""
    with mock.patch.object(search, "install", return_value=False):
        t0 = time.perf_counter()
        store = ResultStore.open(root, fsync=False)
        dt = time.perf_counter() - t0
    store.close()
    return dt


def _open_now(root: Path) -> float:
    t0 = time.perf_counter()
    store = ResultStore.open(root, fsync=False)
    dt = time.perf_counter() - t0
    assert store.records.text_index
    store.close()
    return dt


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _variants(store: ResultStore, before: Before, total: int, found: dict[str, dict[str, tuple[int, bool]]]) -> dict:
    """name -> call: ``<key>_ours`` and ``<key>_before`` for each row; counts go into ``found``."""
    local, visitor = Gallery(store, None), Gallery(store, OWNER)
    variants = {}

    def pair(key: str, ours, old) -> None:
        def run_ours() -> None:
            got = ours()
            found["ours"][key] = (got.total, got.exact) if hasattr(got, "exact") else (got[1], True)

        def run_old() -> None:
            found["before"][key] = (old()[1], True)
        variants[f"{key}_ours"], variants[f"{key}_before"] = run_ours, run_old

    for key, (query, _) in QUERIES.items():
        pair(key, lambda q=query: local.browse(limit=PAGE, query=q), lambda q=query: before.page(query=q))
    en2 = QUERIES["en2"][0]
    pair("en2_deep", lambda: local.browse(offset=DEEP, limit=PAGE, query=en2),
         lambda: before.page(offset=DEEP, query=en2))
    pair("en2_exact", lambda: store.page(limit=PAGE, query=en2), lambda: before.page(query=en2))
    for key, query in OWNER_QUERIES.items():
        pair(f"owner_{key}", lambda q=query: visitor.browse(limit=PAGE, query=q),
             lambda q=query: before.page(query=q, owner=OWNER))
    pair("owner_first", lambda: visitor.browse(limit=PAGE), lambda: before.page(owner=OWNER))
    pair("first", lambda: store.page(limit=PAGE), lambda: before.page())
    pair("deep", lambda: store.page(offset=total - PAGE, limit=PAGE), lambda: before.page(offset=total - PAGE))
    return variants


def _same(store: ResultStore, before: Before, found: dict[str, dict[str, tuple[int, bool]]]) -> None:
    """Both sides gave the same pages and counts (a capped count: past the cap, below the true one)."""
    local, visitor = Gallery(store, None), Gallery(store, OWNER)
    for key, (ours, exact) in found["ours"].items():
        true = found["before"][key][0]
        assert (ours == true) if exact else (COUNT_CAP <= ours < true), (key, ours, exact, true)
    pages = [(local.browse(limit=PAGE, query=q), before.page(query=q)) for q, _ in QUERIES.values()]
    en2 = QUERIES["en2"][0]
    pages.append((local.browse(offset=DEEP, limit=PAGE, query=en2), before.page(offset=DEEP, query=en2)))
    pages += [(visitor.browse(limit=PAGE, query=q), before.page(query=q, owner=OWNER))
              for q in [*OWNER_QUERIES.values(), None]]
    for ours, old in pages:
        assert [r.id for r in ours.records] == [r.id for r in old[0]]


def run(quick: bool = False, total: int = TOTAL) -> list[Row]:
    """The rows above (``total``: fewer results, for a test of this harness)."""
    reps = 7 if quick else 21
    open_reps = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-gallery100k-", dir=tmp_root()) as tmp:
        root = Path(tmp)
        log(f"  building {total:,} results ...")
        build_s = build(root, total=total, batch=1000)
        _as_before(root)
        db_bytes_before = (root / DB_NAME).stat().st_size
        migrate_s = _open_now(root)  # the first opening after the upgrade builds the index
        opens = interleaved({"before": lambda: _open_before(root), "now": lambda: _open_now(root)},
                            open_reps, warmup=0)
        store = ResultStore.open(root, fsync=False)
        before = Before(root)
        try:
            assert store.records.count() == total and store.records.text_index
            found: dict[str, dict[str, tuple[int, bool]]] = {"ours": {}, "before": {}}
            load = {"before_timing": _load()}
            log(f"  load average (1, 5, 15 min) before the timing: {load['before_timing']}")
            t = interleaved(_variants(store, before, total, found), reps, warmup=1)
            load["after_timing"] = _load()
            log(f"  load average (1, 5, 15 min) after the timing: {load['after_timing']}")
            _same(store, before, found)  # the same matches and pages, or the figures mean nothing
            db_bytes = sum(p.stat().st_size for p in root.glob("gallery.sqlite3*"))
        finally:
            before.close()
            store.close()
    m = {k: median(v) for k, v in t.items()}
    info = {"rows": total, "page": PAGE, "build_s": build_s, "db_bytes_before": db_bytes_before,
            "db_bytes_with_index": db_bytes, "load_average": load, "count_cap": COUNT_CAP}

    def row(name: str, key: str, what: str, goal: str, limit: float | None, **extra) -> Row:
        shown, exact = found["ours"][key]
        extra.update(info, matches=found["before"][key][0], shown=f"{shown}{'' if exact else '+'}")
        return Row(f"{NAME}_{name}", what, "s", m[f"{key}_ours"], m[f"{key}_before"], goal=goal,
                   check=None if limit is None else ("max_value", limit), reps=reps,
                   samples={"ours": t[f"{key}_ours"], "baseline": t[f"{key}_before"]}, extra=extra)

    rows = []
    for key, (query, what) in QUERIES.items():
        rows.append(row(f"search_{key}", key, f"page(query={query!r}, limit={PAGE}) of {total:,}: {what}; gallery"
                        f" (count capped at {COUNT_CAP:,}) vs LIKE", "ours < 20 ms", 0.020, query=query))
    en2 = QUERIES["en2"][0]
    rows.append(row("search_en2_deep", "en2_deep", f"{en2!r}, page {DEEP // PAGE + 1} (offset {DEEP:,}, past the"
                    " capped count) vs LIKE", "ours < 20 ms", 0.020, query=en2))
    rows.append(row("search_en2_exact", "en2_exact", f"{en2!r} with every match counted (history, zip) vs LIKE",
                    "", None, query=en2))
    visitor = f"hosted: one visitor's {total // OWNER_EVERY:,} results among {total:,}"
    for key, query in OWNER_QUERIES.items():
        rows.append(row(f"search_owner_{key}", f"owner_{key}", f"{visitor}, query {query!r} vs LIKE", "ours < 20 ms",
                        0.020, query=query))
    rows.append(row("page_owner", "owner_first", f"{visitor}: their first page, no query: now vs before",
                    "ours < 10 ms", 0.010))
    rows.append(row("page_first", "first", f"first page of {total:,}, no query: now vs before", "ours < 10 ms", 0.010))
    rows.append(row("page_deep", "deep", f"last page of {total:,} (offset {total - PAGE:,}), no query: now vs before",
                    "ours < 10 ms", 0.010))
    rows.append(Row(f"{NAME}_open", f"opening the store of {total:,} (index there) vs before the index", "s",
                    median(opens["now"]), median(opens["before"]), goal="no rebuild: about the same",
                    check=("max_ratio", 1.2), reps=open_reps,
                    samples={"ours": opens["now"], "baseline": opens["before"]}, extra=info))
    rows.append(Row(f"{NAME}_migrate", f"the first opening after the upgrade (builds the index of {total:,}), "
                    "vs an opening before", "s", migrate_s, median(opens["before"]), goal="once per store", reps=1,
                    extra=info))
    return rows
