"""The fast gallery search (storage/search.py ``find``) returns exactly what the slow query returns.

The slow query is the one the gallery ran before the index: ``LIKE`` on both prompts, every match
counted, sorted by ``created DESC, id DESC``, cut with ``LIMIT/OFFSET``. The fast one walks the index's
hits in id order and merges the rows out of that order (``search.LATE``); it counts at most a cap; a
small owner's rows are matched directly. A property test compares them page by page on random stores:
rows inserted with times out of order (as the paid-result journal does), equal times, changed times,
deleted, trashed and restored rows, owners, tasks, models, and every path forced in turn (the thresholds
set low). Then the gallery tab's page line past the cap, in three languages, and in Chromium
(screenshots test-artifacts/search-capped-zh-CN.png and -en-US.png).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import threading
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliyun_image.storage import search
from aliyun_image.storage.records import DB_NAME, NewResult, ResultRecords
from aliyun_image.ui import AppContext, AppOptions
from aliyun_image.ui.layout import features

ALPHABET = ["a", "A", "b", "猫", "橘", " ", "%", "_", "é", "É", "\\"]
OWNERS = [None, "o1", "o2"]
STATUSES = ["done", "trashed", "pending", "failed"]
text = st.text(alphabet=st.sampled_from(ALPHABET), min_size=0, max_size=7)
row = st.fixed_dictionaries({
    "prompt": text, "actual": st.none() | text, "owner": st.sampled_from(OWNERS),
    "task": st.sampled_from(["t2i", "edit"]), "model": st.sampled_from(["m1", "m2"]),
    "status": st.sampled_from(STATUSES), "created": st.integers(0, 12),  # ties and times out of id order
})
# after the inserts: (what, which row, a new time): delete, a changed time, trashed and restored
change = st.tuples(st.sampled_from(["delete", "retime", "trash_restore"]), st.integers(0, 59), st.integers(0, 12))
PAGES = [(0, 3, 2), (0, 100, None), (2, 2, 1), (4, 3, 0), (1, 5, 100)]  # (offset, limit, count cap)


def _new(r: dict, i: int) -> NewResult:
    return NewResult(batch_id="b", idx=i, task=r["task"], model=r["model"], prompt=r["prompt"], negative="",
                     params={}, seed=None, inputs=[], request_id="", usage={}, actual_prompt=r["actual"], url="",
                     url_expires=None, owner=r["owner"])


def _slow(db: sqlite3.Connection, query: str, owner: str | None, status: str | None, task: str | None) -> list[int]:
    """The gallery's query before the index: every match, sorted."""
    where, args = ["1"], []
    for col, value in (("status", status), ("owner", owner), ("task", task)):
        if value is not None:
            where.append(f"{col}=?")
            args.append(value)
    like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = (f"SELECT id FROM results WHERE {' AND '.join(where)} AND (prompt LIKE ? ESCAPE '\\'"
           " OR IFNULL(actual_prompt,'') LIKE ? ESCAPE '\\') ORDER BY created DESC, id DESC")
    return [r[0] for r in db.execute(sql, [*args, like, like])]


def _in_order(db: sqlite3.Connection) -> bool:
    """Every row not listed late is at least as new as every such row with a smaller id."""
    rows = db.execute(f"SELECT created FROM results WHERE id NOT IN (SELECT id FROM {search.LATE}) ORDER BY id")
    times = [r[0] for r in rows]
    return all(a <= b for a, b in zip(times, times[1:], strict=False))


@contextlib.contextmanager
def _records(rows: list[dict], changes: list[tuple[str, int, int]]):
    """A store of ``rows`` (inserted one by one at their own times) after ``changes``; the records and a
    plain connection to the same file."""
    with tempfile.TemporaryDirectory() as tmp:
        records = ResultRecords(Path(tmp), threading.RLock())
        db = sqlite3.connect(Path(tmp) / DB_NAME, isolation_level=None)
        try:
            ids = [records.insert_pending([_new(r, i)], lambda rid, p, when: f"images/{rid}.png",
                                          now=float(r["created"]))[0] for i, r in enumerate(rows)]
            for r, rid in zip(rows, ids, strict=True):
                records.mark(rid, r["status"])
            for what, which, when in changes:
                rid = ids[which % len(ids)]
                if what == "delete":
                    records.delete(rid)
                elif what == "retime":
                    db.execute("UPDATE results SET created=? WHERE id=?", (float(when), rid))
                else:  # the trash and back: the row keeps its id and time
                    records.mark(rid, "trashed")
                    records.mark(rid, rows[which % len(ids)]["status"])
            yield records, db
        finally:
            db.close()
            records.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=60), changes=st.lists(change, max_size=8),
       queries=st.lists(text.filter(str.strip), min_size=1, max_size=4),
       small=st.sampled_from([0, 3, search.SMALL]), late_max=st.sampled_from([0, 2, search.LATE_MAX]),
       max_terms=st.sampled_from([1, search.MAX_TERMS]))
def test_every_page_is_the_slow_querys_page(rows, changes, queries, small, late_max, max_terms):
    with mock.patch.multiple(search, SMALL=small, LATE_MAX=late_max, MAX_TERMS=max_terms), \
            _records(rows, changes) as (records, db):
        assert records.text_index and _in_order(db)
        for query in [*queries, ""]:  # "": a page without a search (LIKE '%%' is every row)
            for owner in OWNERS:
                for status in ("done", None, "trashed"):
                    for task in (None, "edit"):
                        want = _slow(db, query.strip(), owner, status, task)
                        for offset, limit, cap in PAGES:
                            got = records.browse(offset=offset, limit=limit, query=query, owner=owner,
                                                 status=status, task=task, count_cap=cap)
                            case = (query, owner, status, task, offset, limit, cap)
                            assert [r.id for r in got.records] == want[offset:offset + limit], case
                            assert got.more == (offset + limit < len(want)), case
                            if got.exact:
                                assert got.total == len(want), case
                            else:  # stopped counting: more than total match, and total reaches the page's end
                                assert cap is not None and len(want) > got.total >= max(cap, offset + limit), case


def test_late_rows_are_kept_by_triggers_and_found_again_when_the_store_is_upgraded(tmp_path):
    records = ResultRecords(tmp_path, threading.RLock())
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    try:
        times = [5, 6, 6, 3, 7, 2, 8, 8, 1, 9]  # 3, 2 and 1 come after newer rows: late
        ids = [records.insert_pending([_new({"task": "t2i", "model": "m", "prompt": f"猫 {i}", "actual": None,
                                             "owner": None}, i)], lambda rid, p, w: "x.png", now=float(t))[0]
               for i, t in enumerate(times)]
        late = {r[0] for r in db.execute(f"SELECT id FROM {search.LATE}")}
        assert late == {ids[3], ids[5], ids[8]} and _in_order(db)
        db.execute("UPDATE results SET created=100 WHERE id=?", (ids[0],))  # a changed time: late too
        assert ids[0] in {r[0] for r in db.execute(f"SELECT id FROM {search.LATE}")} and _in_order(db)
        (later,) = records.insert_pending([_new({"task": "t2i", "model": "m", "prompt": "猫 10", "actual": None,
                                                 "owner": None}, 10)], lambda rid, p, w: "x.png", now=10.0)
        assert later not in {r[0] for r in db.execute(f"SELECT id FROM {search.LATE}")}  # the clock is 9, not 100
        ids.append(later)
        records.delete(ids[3])  # a deleted row leaves the list
        assert ids[3] not in {r[0] for r in db.execute(f"SELECT id FROM {search.LATE}")}
        # a store of schema 4 made before the list: the first opening fills it, the text index is not rebuilt
        for name in reversed(list(search.ORDER_OBJECTS)):
            kind = db.execute("SELECT type FROM sqlite_master WHERE name=?", (name,)).fetchone()[0]
            db.execute(f"DROP {kind.upper()} {name}")
        ran: list[str] = []
        db.set_trace_callback(ran.append)
        assert search.install(db) and search.installed(db) and not any("rebuild" in s for s in ran)
        # ids[0] is now the newest, so every row after it is late: more than the triggers listed, never fewer
        assert {r[0] for r in db.execute(f"SELECT id FROM {search.LATE}")} == set(ids[1:]) - {ids[3]}
        assert _in_order(db)
        want = _slow(db, "猫", None, "pending", None)
        assert [r.id for r in records.browse(query="猫", status="pending", limit=100).records] == want
    finally:
        db.close()
        records.close()


@pytest.mark.parametrize("lang,first,last", [
    ("en-US", "Page 1 of 42+ · more than 1000 results", "Page 43 of 43 · 1030 result(s)"),
    ("zh-CN", "第 1/42+ 页 · 超过 1000 张", "第 43/43 页 · 共 1030 张"),
    ("ja-JP", "1/42+ ページ · 1000 件以上", "43/43 ページ · 全 1030 件"),
])
def test_the_gallery_says_1000_plus_and_pages_on_past_it(emu, clean_env, lang, first, last):
    ctx = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env)))
    try:
        _gallery_pages(ctx, lang, first, last)
    finally:
        ctx.close()


def _gallery_pages(ctx: AppContext, lang: str, first: str, last: str) -> None:
    records = ctx.store.records
    news = [_new({"task": "t2i", "model": "qwen-image-plus", "prompt": f"橘猫 {i}", "actual": None, "owner": None},
                 i) for i in range(1030)]
    ids = records.insert_pending(news, lambda rid, p, w: f"images/{rid}.png")
    for rid in ids:
        records.mark(rid, "done")
    request = type("Req", (), {"headers": {"accept-language": lang}, "session_hash": "s"})()
    h = features(ctx)
    _, info, shown, page, _, _ = h.gallery.gallery_page("橘猫", "", "", 1, request)
    assert info == first and page == 1 and shown == ids[::-1][:24]
    _, info, shown, page, _, _ = h.gallery.gallery_page("橘猫", "", "", 43, request)  # past the capped count
    assert info == last and page == 43 and shown == ids[::-1][1008:]
    _, info, _, page, _, _ = h.gallery.gallery_step("橘猫", "", "", 43, 1, request)  # past the end: the last page
    assert page == 43 and info == last


@pytest.mark.browser
@pytest.mark.slow
def test_browser_gallery_line_past_the_cap(tmp_path_factory, emulator_server):
    """The gallery tab in Chromium, zh-CN and en-US: a search matching 1,030 results says "more than
    1000". Screenshots: test-artifacts/search-capped-<locale>.png."""
    from .appserver import running
    from .conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, TEST_KEY, WAIT_MS, PatientBrowser

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (bash scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    for app in running(tmp_path_factory, "search-capped", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY}):
        _fill_files(app.data_dir, 1030)
        with sync_api.sync_playwright() as p:
            browser = PatientBrowser(p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))
            for locale, want in (("zh-CN", "第 1/42+ 页 · 超过 1000 张"), ("en-US", "Page 1 of 42+ · more than 1000")):
                page = browser.new_page(locale=locale, viewport={"width": 1400, "height": 1000})
                page.goto(app.url, wait_until="load")
                page.click("#tab-gallery-button")
                page.fill("#gallery-search input", "橘猫")
                page.press("#gallery-search input", "Enter")
                page.wait_for_function(f"document.querySelector('#gallery-page').innerText.includes({want!r})",
                                       timeout=WAIT_MS)
                page.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
                settled = ("() => !document.querySelector('#gallery-grid .translucent, #gallery-grid .pending,"
                           " #gallery-page .translucent, #gallery-page .pending, #gallery-page.pending')")
                page.wait_for_function(settled, timeout=WAIT_MS)  # no progress veil over what is shot
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"search-capped-{locale}.png"), full_page=True)
                page.close()


def _fill_files(data_dir: Path, n: int) -> None:
    """``n`` done results with tiny image files, written into a running app's store (SQLite: shared)."""
    import io

    from PIL import Image

    from aliyun_image.storage.store import ResultStore

    buf = io.BytesIO()
    Image.new("RGB", (16, 9), (200, 120, 40)).save(buf, "PNG")
    store = ResultStore.open(data_dir, fsync=False)
    try:
        news = [_new({"task": "t2i", "model": "qwen-image-plus", "prompt": f"一只橘猫 {i}", "actual": None,
                      "owner": None}, i) for i in range(n)]
        for rid in store.add_pending(news):
            with store.files.partial(rid) as fh:
                fh.write(buf.getvalue())
                store.commit_file(rid, fh, width=16, height=9)
    finally:
        store.close()
