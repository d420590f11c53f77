"""The gallery at 100,000 results: search, pages and opening, before (the ``LIKE`` scan) and after
(the FTS5 trigram index of :mod:`aliyun_image.storage.search`), side by side in one run.

The store is filled through ``ResultStore`` (``add_pending`` + ``commit_file``, tiny files: see
:mod:`bench.gallery`), then its search index is removed and the schema set back to 3, as a store
made before the index looks. Then:

- ``open``: opening that store as the code before the index did (no index to look for) against
  opening it now (the index is there: one look at ``sqlite_master``); ``migrate`` is the one-time
  first opening that builds the index;
- ``search_*``: ``ResultStore.page(query=..., limit=24)`` (the count and the first page) against the
  statements the store ran before (``LIKE`` on both prompts), on their own connection to the same
  file; queries of 1, 2 and more characters, Chinese and ASCII, one that matches nothing;
- ``page_first``/``page_deep``: a page without a query, now and before (the first, and the last of
  100,000: ``OFFSET 99976``).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from unittest import mock

from aliyun_image.storage import search
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
_OLD_LIKE = "(prompt LIKE ? ESCAPE '\\' OR IFNULL(actual_prompt,'') LIKE ? ESCAPE '\\')"


class Before:
    """The statements ``ResultStore.page`` ran before the index (count, then the page with
    ``LIMIT/OFFSET`` on the rows), on a connection of their own; rows decoded as the store does."""

    def __init__(self, root: Path):
        self.root = root
        self.db = sqlite3.connect(root / DB_NAME, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row

    def page(self, *, offset: int = 0, limit: int = PAGE, query: str | None = None) -> tuple[list[Record], int]:
        where, args = " WHERE status=?", ["done"]
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
            variants = {}
            found: dict[str, dict[str, int]] = {"ours": {}, "before": {}}
            for key, (query, _) in QUERIES.items():
                def ours(q: str = query, k: str = key) -> None:
                    found["ours"][k] = store.page(limit=PAGE, query=q)[1]

                def old(q: str = query, k: str = key) -> None:
                    found["before"][k] = before.page(limit=PAGE, query=q)[1]
                variants[f"{key}_ours"], variants[f"{key}_before"] = ours, old
            variants["first_ours"] = lambda: store.page(limit=PAGE)
            variants["first_before"] = lambda: before.page(limit=PAGE)
            variants["deep_ours"] = lambda: store.page(offset=total - PAGE, limit=PAGE)
            variants["deep_before"] = lambda: before.page(offset=total - PAGE, limit=PAGE)
            t = interleaved(variants, reps, warmup=1)
            assert found["ours"] == found["before"], found  # the same matches, or the figures mean nothing
            # the same page, not only the same count
            for key, (query, _) in QUERIES.items():
                assert [r.id for r in store.page(limit=PAGE, query=query)[0]] == \
                    [r.id for r in before.page(limit=PAGE, query=query)[0]], key
            db_bytes = sum(p.stat().st_size for p in root.glob("gallery.sqlite3*"))
        finally:
            before.close()
            store.close()
    m = {k: median(v) for k, v in t.items()}
    info = {"rows": total, "page": PAGE, "build_s": build_s, "db_bytes_before": db_bytes_before,
            "db_bytes_with_index": db_bytes}
    rows = []
    for key, (query, what) in QUERIES.items():
        rows.append(Row(f"{NAME}_search_{key}", f"page(query={query!r}, limit={PAGE}) of {total:,}: {what}; "
                        "index vs LIKE", "s", m[f"{key}_ours"], m[f"{key}_before"], goal="ours < 20 ms",
                        check=("max_value", 0.020), reps=reps,
                        samples={"ours": t[f"{key}_ours"], "baseline": t[f"{key}_before"]},
                        extra={**info, "query": query, "matches": found["ours"][key]}))
    for key, what in (("first", "first page"), ("deep", f"last page (offset {total - PAGE:,})")):
        rows.append(Row(f"{NAME}_page_{key}", f"{what} of {total:,}, no query: now vs before", "s",
                        m[f"{key}_ours"], m[f"{key}_before"], goal="ours < 10 ms", check=("max_value", 0.010),
                        reps=reps, samples={"ours": t[f"{key}_ours"], "baseline": t[f"{key}_before"]}, extra=info))
    rows.append(Row(f"{NAME}_open", f"opening the store of {total:,} (index there) vs before the index", "s",
                    median(opens["now"]), median(opens["before"]), goal="no rebuild: about the same",
                    check=("max_ratio", 1.2), reps=open_reps,
                    samples={"ours": opens["now"], "baseline": opens["before"]}, extra=info))
    rows.append(Row(f"{NAME}_migrate", f"the first opening after the upgrade (builds the index of {total:,}), "
                    "vs an opening before", "s", migrate_s, median(opens["before"]), goal="once per store", reps=1,
                    extra=info))
    return rows
