"""A hostile visitor of the hosted demo against what landed on 2026-12-05 (the strip's batches and timer,
the run slots, batch expiry, grid lineage), through the raw Gradio queue of one launched hosted app.

The app: visitors bring their own key (the test emulator, which holds its replies while a test looks: no
clocks), one trusted proxy (the last ``X-Forwarded-For`` entry is the client's address), the account
scheduler off, and a small queue (``--concurrency 8``) so that a group of events one visitor could fill
shows at once as another visitor's wait.

Found and fixed (each test failed on the main of that night):

- Following a running batch in the Batch tab (batch_show, batch_resume, the strip's pick) takes a place
  in the app's "batches" queue group for as long as it follows: a visitor may follow in as many pages at
  once as they may have runs going, an address as many as its runs; the extra ones are refused at once
  in the reader's language, every place comes back on every way out, and another visitor's batch starts
  meanwhile.
- One address (many cookies) could hold every batch place of the app: an address runs half of them.
- Every show of a finished batch wrote its whole zip again: now once per set of results.
- The hosted housekeeping deleted the local user's old batches (the host's CLI on the same data dir).
- An owner's listing of batches scanned everyone's rows: an index.

Tried and held (kept as tests): runs refused by the hourly limit keep no place; runs whose client never
reads the stream give their place back when they end; "Follow again" asked ten times leaves one watcher;
a stranger with the victim's session hash and address (forged cookie, another cookie, none) sees, stops
and follows nothing of theirs.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from aliyun_image.errors import ValidationError
from aliyun_image.generation import BatchSpec, batch as batches
from aliyun_image.money import Payers
from aliyun_image.runtime import RunKind, RunSlots
from aliyun_image.ui.http_guard import COOKIE

from .appserver import launch
from .conftest import TEST_KEY, run_cli
from .test_batch_ui import args as batch_args
from .test_hosted_safety import _gen_data
from .test_run_cap import Call, all_start_at_once, sent, wait_for
from .test_visitor import _call, _fn, _new_cookie

A, B, C = "203.0.113.61", "198.51.100.62", "192.0.2.63"
FOLLOWING = "You are already following your batch in 3 pages"


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    root = tmp_path_factory.mktemp("attack-tonight")
    (root / "work").mkdir()
    running = launch(["--hosted", "--base-url", emulator_server.base_url, "--concurrency", "8",
                      "--demo-session-limit", "1", "--demo-total-limit", "1000"], root / "persist",
                     cwd=root / "work", env_extra={"ALIYUN_IMAGE_TRUSTED_PROXIES": "1", "ALIYUN_IMAGE_TASK_LIMIT": "0"})
    try:
        yield running
    finally:
        running.stop()


class Page(Call):
    """A raw queue call (see tests/test_run_cap.py ``Call``) with the page's language."""

    def __init__(self, app, api_name: str, data: list, *, lang: str = "en-US", key: bool = True, **kw):
        self.lang, self.key = lang, key
        super().__init__(app, api_name, data, **kw)

    def _join(self, api_name: str, data: list) -> str:
        self.headers["Accept-Language"] = self.lang
        if not self.key:  # no key of their own: the free offline demo, within its hourly limit
            self.headers.pop("X-DashScope-API-Key", None)
        return super()._join(api_name, data)


def _batches(app, cookie: str, addr: str) -> list[str]:
    """The caller's batch ids, newest first (the Batch tab's list)."""
    out = _call(app, "batch_list", [], cookie=cookie, forwarded=addr)
    assert out["success"], out
    return [value for _, value in out["output"]["data"][0]["choices"]]


def _start_batch(app, emu, tag: str, cookie: str, addr: str) -> tuple[Page, str]:
    """A batch of one prompt started from the Batch tab and held at the emulator; (its page, its id)."""
    page = Page(app, "batch_run", batch_args(f"{tag} batch"), cookie=cookie, addr=addr)
    wait_for(lambda: len(sent(emu, f"{tag} batch")) == 1, "the batch to send")
    return page, _batches(app, cookie, addr)[0]


def _follow(app, batch_id: str, cookie: str, n: int) -> list[Page]:
    """``n`` pages of ``cookie`` following ``batch_id``, each tried again while the app is still giving back
    the places of pages that went away (refused at once until then)."""
    pages: list[Page] = []
    while len(pages) < n:
        page = Page(app, "batch_show", [batch_id], cookie=cookie, addr=A)
        wait_for(lambda p=page: p.generating.is_set() or p.done, "an answer")
        if page.done:
            assert FOLLOWING in page.error, page.completed
            continue
        pages.append(page)
    return pages


def test_one_visitor_cannot_fill_the_batch_queue_with_watchers_of_their_batch(app, emulator_server):
    """Ten pages of one cookie follow its running batch (batch_show, batch_resume, the strip's pick): three
    follow, seven are refused at once with the emulator still holding the batch, a Chinese page in Chinese;
    a forged leftmost X-Forwarded-For entry brings no more. Another visitor's batch starts meanwhile.
    Watchers whose client went away give their place back, and once the batch ends every place is free:
    three pages follow the next batch."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me = _new_cookie(app, A)
    emu.clear()
    emu.hold()
    try:
        started, batch_id = _start_batch(app, emu, tag, me, A)
        events = ["batch_show", "batch_resume", "batch_show_1"]
        pages = [Page(app, events[i % 3], [batch_id], cookie=me, addr=A) for i in range(10)]
        wait_for(lambda: sum(p.done for p in pages) >= 7, "the refusals", 30)
        refused = [p for p in pages if p.done]
        assert len(refused) == 7 and all(FOLLOWING in p.error for p in refused), [p.completed for p in refused]
        following = [p for p in pages if not p.done]
        wait_for(lambda: all(p.generating.is_set() for p in following), "the three to follow")
        zh = Page(app, "batch_show", [batch_id], cookie=me, addr=A, lang="zh-CN").wait()
        assert "已在 3 个页面" in str(zh["output"]["error"]), zh
        forged = Page(app, "batch_show", [batch_id], cookie=me, addr=f"10.9.8.7, {A}").wait()
        assert FOLLOWING in str(forged["output"]["error"]), forged
        # another visitor's batch is not held up by the watchers
        other, other_id = _start_batch(app, emu, f"{tag} other", _new_cookie(app, B), B)
        assert not other.done and other_id != batch_id
        # pages that went away give their place back
        for p in following:
            p.drop = True
        for p in following:
            p.thread.join(30)
            assert not p.thread.is_alive()
        again = _follow(app, batch_id, me, 3)
    finally:
        emu.release()
    for p in (started, other, *again):
        assert p.wait()["success"], p.completed
    # the batch is over: every place is free for the next one
    emu.hold()
    try:
        nxt, next_id = _start_batch(app, emu, f"{tag} next", me, A)
        more = [Page(app, "batch_show", [next_id], cookie=me, addr=A) for _ in range(3)]
        wait_for(lambda: all(p.generating.is_set() for p in more) or any(p.done for p in more), "three to follow")
        assert not [p.completed for p in more if p.done]
    finally:
        emu.release()
    for p in (nxt, *more):
        assert p.wait()["success"], p.completed


def test_a_stranger_with_the_victims_session_and_address_cannot_see_stop_or_follow_their_batch(
        app, emulator_server):
    """The victim's batch runs (held). A stranger sends the victim's page session hash and address with a
    forged cookie of the right shape, another real cookie, or none: the strip lists nothing, the tick
    nothing, the victim's batch id shows "no batch", Stop finds nothing of theirs, Follow again nothing,
    and none of it takes a watcher's place of the victim's (three of their pages still follow)."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    victim = _new_cookie(app, A)
    emu.clear()
    emu.hold()
    try:
        started, batch_id = _start_batch(app, emu, tag, victim, A)
        session = uuid.uuid4().hex[:11]  # a page of the victim's that lists the batch (the stranger learnt its hash)
        assert batch_id in json.dumps(_call(app, "recent_runs", [], cookie=victim, session=session, forwarded=A))
        for cookie in ("f" * 32, _new_cookie(app, A), None):
            who = dict(cookie=cookie, session=session, forwarded=A)
            listing = _call(app, "recent_runs", [], **who)["output"]["data"]
            assert batch_id not in json.dumps(listing) and tag not in json.dumps(listing), listing
            assert batch_id not in json.dumps(_call(app, "recent_runs_tick", [None], **who)["output"])
            for event in ("batch_show", "batch_resume", "batch_show_1"):
                out = _call(app, event, [batch_id], **who)
                assert not out["success"] and "no batch" in str(out["output"]).lower(), (event, out)
            stop = _call(app, "batch_stop", [], **who)
            assert stop["success"] and "no batch of yours is running" in str(stop["output"]).lower(), stop
            follow = _call(app, "recent_follow_t2i", [], **who)
            assert follow["success"] and tag not in json.dumps(follow["output"]), follow
        mine = _follow(app, batch_id, victim, 3)
        assert not started.done and len(sent(emu, tag)) == 1
    finally:
        emu.release()
    for p in (started, *mine):
        assert p.wait()["success"], p.completed


def test_one_address_cannot_hold_every_batch_place_of_the_app(app, emulator_server):
    """The app runs 8 batches at once and lets an address have 8 runs going: without a share of its own, one
    address with eight cookies (one batch each) would hold every batch place and every other visitor's
    batch would be refused. An address runs at most half of them: the fifth cookie behind it is told so
    at once, and a batch from another address starts."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    crowd = "198.51.100.99"
    emu.clear()
    emu.hold()
    try:
        going = [_start_batch(app, emu, f"{tag} crowd {i}", _new_cookie(app, crowd), crowd)[0] for i in range(4)]
        fifth = Page(app, "batch_run", batch_args(f"{tag} fifth"), cookie=_new_cookie(app, crowd), addr=crowd).wait()
        assert "Your network address already has 4 batches running" in str(fifth["output"]["error"]), fifth
        other, _ = _start_batch(app, emu, f"{tag} elsewhere", _new_cookie(app, B), B)
        assert not [p for p in going if p.done] and not other.done and not sent(emu, f"{tag} fifth")
    finally:
        emu.release()
    for p in (*going, other):
        assert p.wait()["success"], p.completed


def test_watchers_count_apart_from_runs_hosted_only():
    """The rules without an app: a page following a batch holds a watcher's place (3 a visitor, the address's 8
    in all), never one of the runs; an address runs half the app's batches; locally nothing counts."""
    slots = RunSlots(hosted=True, per_visitor=3, per_address=8, batches=8)
    me, colleague = Payers("me", "10.0.0.1"), Payers("colleague", "10.0.0.1")
    runs = [slots.take(me) for _ in range(3)]
    watching = [slots.take(me, RunKind.WATCH) for _ in range(3)]  # beside three runs going
    with pytest.raises(ValidationError) as refused:
        slots.take(me, RunKind.WATCH)
    assert refused.value.code == "Runs.Watchers" and "3 个页面" in refused.value.text("zh")
    watching += [slots.take(colleague, RunKind.WATCH) for _ in range(3)]
    watching += [slots.take(Payers(f"v{i}", "10.0.0.1"), RunKind.WATCH) for i in range(2)]
    with pytest.raises(ValidationError) as refused:  # the address's eight, whoever they are
        slots.take(Payers("new cookie", "10.0.0.1"), RunKind.WATCH)
    assert refused.value.code == "Runs.WatchersPerAddress"
    assert slots.going(me) == 3  # watching took none of the runs' places
    for s in runs + watching:
        s.release()
    assert not slots._going
    crowd = [slots.take(Payers(f"c{i}", "10.0.0.9"), RunKind.BATCH) for i in range(4)]  # half the app's 8
    with pytest.raises(ValidationError) as refused:
        slots.take(Payers("c5", "10.0.0.9"), RunKind.API_BATCH)
    assert refused.value.code == "Batch.PerAddress" and slots.batches_going() == 4
    for s in crowd:
        s.release()
    assert RunSlots(hosted=True, per_visitor=3, per_address=0, batches=8).address_batches == 0  # not capped
    local = RunSlots(hosted=False, per_visitor=3, per_address=8, batches=8)
    assert all(not local.take(me, RunKind.WATCH).held for _ in range(20)) and not local._going



def test_runs_refused_by_the_hourly_limit_keep_no_place(app, emulator_server):
    """A visitor past the free demo's hourly limit (here 1 image) has five runs refused by it, one after the
    other; none of them keeps a place: three runs with their own key then go at once."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me = _new_cookie(app, C)
    assert Page(app, "generate", _gen_data(f"{tag} free"), cookie=me, addr=C, key=False).wait()["success"]
    for i in range(5):
        out = Page(app, "generate", _gen_data(f"{tag} over {i}"), cookie=me, addr=C, key=False).wait()
        assert not out["success"] and "per hour" in str(out["output"]["error"]), out
    emu.clear()
    all_start_at_once(emu, lambda i: Page(app, "generate", _gen_data(f"{tag} mine {i}"), cookie=me, addr=C),
                      f"{tag} mine", "three runs after five refusals")


def test_follow_again_of_a_run_is_one_watcher_however_often_it_is_asked(app, emulator_server):
    """Ten pages of one cookie press the strip's "Follow again" on its run (held at the emulator): each new
    one takes the run over and the one before steps aside at once, so at most one page follows it, and the
    run's place is its own (one). Another cookie's "Follow again" finds nothing."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me = _new_cookie(app, A)
    emu.clear()
    emu.hold()
    try:
        run = Page(app, "generate", _gen_data(f"{tag} followed"), cookie=me, addr=A)
        wait_for(lambda: len(sent(emu, f"{tag} followed")) == 1, "the run to send")
        pages = []
        for _ in range(10):
            pages.append(Page(app, "recent_follow_t2i", [], cookie=me, addr=A))
            wait_for(lambda p=pages[-1]: p.generating.is_set(), "the page to follow")
        wait_for(lambda: run.done and all(p.done for p in pages[:-1]), "the pages before the last to step aside")
        assert not pages[-1].done
        stranger = Page(app, "recent_follow_t2i", [], cookie=_new_cookie(app, B), addr=B).wait()
        assert stranger["success"] and f"{tag} followed" not in str(stranger), stranger
    finally:
        emu.release()
    last = pages[-1].wait()
    assert last["success"] and "1 of 1" in str(last["output"]), last
    assert len(sent(emu, f"{tag} followed")) == 1



def test_runs_whose_client_never_reads_the_stream_give_their_place_back_when_they_end(app, emulator_server):
    """Three runs joined through the queue by a client that never opens the event stream (nor cancels):
    they hold the visitor's three places while they go (a fourth is refused), end on the server, and then
    three new runs go."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me = _new_cookie(app, B)
    fn = _fn(app, "generate")
    emu.clear()
    emu.hold()
    try:
        for i in range(3):
            r = requests.post(f"{app.url}gradio_api/queue/join", cookies={COOKIE: me}, timeout=10,
                              headers={"X-Forwarded-For": B, "X-DashScope-API-Key": TEST_KEY},
                              json={"data": _gen_data(f"{tag} unread {i}"), "fn_index": fn,
                                    "session_hash": uuid.uuid4().hex[:11], "event_data": None, "trigger_id": None})
            r.raise_for_status()
        wait_for(lambda: len(sent(emu, f"{tag} unread")) == 3, "the unread runs to send")
        fourth = Page(app, "generate", _gen_data(f"{tag} fourth"), cookie=me, addr=B).wait()
        assert "You already have 3 runs going" in str(fourth["output"]["error"]), fourth
    finally:
        emu.release()
    wait_for(lambda: _strip(app, me, B).count("done: 1 of 1 saved") == 3, "the unread runs to end")
    all_start_at_once(emu, lambda i: Page(app, "generate", _gen_data(f"{tag} after {i}"), cookie=me, addr=B),
                      f"{tag} after", "three runs after the unread ones")


def test_showing_a_finished_batch_again_and_again_zips_it_once(app, emulator_server):
    """Every show of a finished batch (the Batch tab's list, the strip's pick) offers its zip. Ten shows of
    one at once, through the raw queue, write that zip once, not ten times: a visitor cannot have the
    server write (and hold on its disk at once) one zip of their whole batch per show."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me = _new_cookie(app, C)
    emu.clear()
    done = Page(app, "batch_run", batch_args(f"{tag} one\n{tag} two"), cookie=me, addr=C).wait()
    assert done["success"], done
    batch_id = _batches(app, me, C)[0]
    assert Page(app, "batch_show", [batch_id], cookie=me, addr=C).wait()["success"]
    (zipped,) = Path(tempfile.gettempdir()).glob(f"aliyun-image-zips-*/*/aliyun-image-batch-{batch_id}.zip")
    first = zipped.stat()
    shows = [Page(app, "batch_show", [batch_id], cookie=me, addr=C) for _ in range(10)]
    assert all(p.wait()["success"] for p in shows)
    again = zipped.stat()
    assert (again.st_ino, again.st_size) == (first.st_ino, first.st_size), "the zip was written again"


def _strip(app, cookie: str, addr: str) -> str:
    """The owner's strip of recent runs, as text."""
    out = _call(app, "recent_runs", [], cookie=cookie, forwarded=addr)
    assert out["success"], out
    listing = out["output"]["data"][1]
    return listing if isinstance(listing, str) else str(listing.get("value", ""))


# --- expiry ------------------------------------------------------------------------------------------------
def _age(data_dir, batch_id: str, days: float) -> None:
    """Make a stored batch look untouched for ``days`` (its row and its units)."""
    then = time.time() - days * 86400
    with sqlite3.connect(data_dir / "gallery.sqlite3") as db:
        db.execute("UPDATE batches SET updated=? WHERE id=?", (then, batch_id))
        db.execute("UPDATE batch_units SET updated=? WHERE batch_id=?", (then, batch_id))


def test_the_hosted_housekeeping_keeps_the_local_users_batches_in_its_store(emu, clean_env, monkeypatch):
    """The host's own batches in the hosted app's store (``aliyun-image batch`` on the same data dir: owner
    NULL, the local user's) are not a visitor's: the visitor retention does not delete them, however old;
    an old visitor's batch beside them goes."""
    from aliyun_image.runtime import AppContext, AppOptions, Visitor

    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    monkeypatch.setenv("ALIYUN_IMAGE_VISITOR_DAYS", "2")
    prompts = clean_env.parent / "prompts.txt"
    prompts.write_text("the host's own lantern\n", encoding="utf-8")
    local = run_cli(["batch", str(prompts)], {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url},
                    clean_env)
    assert local.returncode == 0, local.stderr
    ctx = AppContext(AppOptions(hosted=True, base_url=emu.base_url, data_dir=str(clean_env)))
    try:
        (mine, _), = batches.recent(ctx.live_service, None, 5)
        assert mine.owner is None
        visitor = ctx.owner_of(Visitor(token="t" * 32))
        theirs = batches.submit(ctx.live_service, BatchSpec("a visitor's lantern"), owner=visitor, api_key=TEST_KEY)
        for bid in (mine.id, theirs.batch_id):
            _age(clean_env, bid, 30)
        ctx.housekeeping()
        assert batches.find(ctx.live_service, mine.id) is not None  # the host's, kept
        assert batches.find(ctx.live_service, theirs.batch_id) is None  # the visitor's, forgotten
    finally:
        ctx.close()


# --- the cost of a listing ------------------------------------------------------------------------------------
def _listing_steps(book, owner: str) -> int:
    """SQLite virtual-machine steps (in hundreds) of one owner's listing of recent batches: the work it does,
    whatever the machine's speed."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    book._db.set_progress_handler(count, 100)
    try:
        book.recent(owner, 5)
    finally:
        book._db.set_progress_handler(None, 0)
    return steps[0]


def test_listing_a_visitors_batches_does_not_read_everyone_elses(clean_env):
    """The strip's tick (once something changed), the Batch tab's list and each batch page list the caller's
    newest batches: with 20,000 batches of other visitors in the store, that costs what it costs with 200
    (the owner's rows are found, not searched for among everyone's)."""
    from aliyun_image.storage import ResultStore
    from aliyun_image.storage.batches import BatchBook

    ResultStore.open(clean_env).close()
    book = BatchBook(clean_env)
    try:
        now = time.time()

        def add(first: int, count: int, owner) -> None:
            rows = [(f"b{i}", owner(i), f"fp{i}", now - i) for i in range(first, first + count)]
            with sqlite3.connect(clean_env / "gallery.sqlite3") as db:
                db.executemany("INSERT INTO batches (id, owner, fingerprint, kind, spec, runner, created, updated)"
                               " VALUES (?, ?, ?, 'batch', '{}', '', ?, ?)", [(*r, r[3]) for r in rows])

        add(0, 50, lambda i: "me")
        add(50, 200, lambda i: f"visitor {i % 97}")
        small = _listing_steps(book, "me")
        add(250, 20_000, lambda i: f"visitor {i % 997}")
        large = _listing_steps(book, "me")
        assert [r.id for r in book.recent("me", 5)] == [f"b{i}" for i in range(5)]
        assert large <= 2 * small + 2, (small, large)
    finally:
        book.close()
