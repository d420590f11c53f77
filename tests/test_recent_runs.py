"""Runs that outlive the page (issue 18 item 2), through the raw queue API of a launched hosted app.

- A run whose client went away (the page closed, the API client dropped) goes on; the same visitor
  (same cookie, any new session) sees it in the strip of recent runs, in progress and then done with
  its results, and can follow it again in a panel.
- Nobody else sees it: another cookie, the owner's session hash without the cookie, no cookie at all.
- The strip's events are private (not in the API page) and its registry stays bounded.
- A batch left mid-run is listed for its owner only (cookie; not a replayed session hash, not no cookie)
  and the strip's timer sees it end; a thousand ticks through the raw queue stay bounded.
- After a restart, downloads the stop cut short are finished by the housekeeping, never requested
  again, and the page says so.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import requests

from aliyun_image.enums import EventKind, Payer
from aliyun_image.generation import Event
from aliyun_image.ui.http_guard import COOKIE
from aliyun_image.ui.recent_runs import RecentRuns
from aliyun_image.ui.runs import Run

from .appserver import launch
from .conftest import TEST_KEY
from .test_batch_ui import args as batch_args
from .test_hosted_safety import _gen_data, _join, _listen
from .test_visitor import _call, _fn, _new_cookie

A = "203.0.113.70"


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Hosted, the host's key on the test emulator (its latency is the test's to set), an account limit of
    one task: a run of 3 still has requests waiting, unsent, when its client goes away."""
    root = tmp_path_factory.mktemp("recent-app")
    running = launch(["--hosted", "--base-url", emulator_server.base_url, "--session-limit", "50",
                      "--total-limit", "200"], root / "outputs", cwd=root,
                     env_extra={"DASHSCOPE_API_KEY": TEST_KEY, "ALIYUN_IMAGE_TRUSTED_PROXIES": "1",
                                "ALIYUN_IMAGE_TASK_LIMIT": "1"})  # one request out at a time: the rest wait
    try:
        yield running
    finally:
        running.stop()


def _start_and_drop(app, prompt: str, n: int, cookie: str, session: str, api_name: str = "generate",
                    data: list | None = None) -> None:
    """Start /generate (or ``api_name`` with ``data``) as the page does, read its stream until the run
    has started, then go away."""
    r = requests.post(f"{app.url}gradio_api/queue/join",
                      json={"data": _gen_data(prompt, n) if data is None else data, "fn_index": _fn(app, api_name),
                            "session_hash": session, "event_data": None, "trigger_id": None},
                      headers={"X-Forwarded-For": A}, cookies={COOKIE: cookie}, timeout=10)
    r.raise_for_status()
    event = r.json()["event_id"]
    with requests.get(f"{app.url}gradio_api/queue/data", params={"session_hash": session}, stream=True,
                      timeout=30) as s:
        for line in s.iter_lines():
            if line.startswith(b"data:"):
                got = json.loads(line[5:])
                if got.get("event_id") == event and got.get("msg") == "process_generating":
                    return  # the first status line: the run is under way; the connection closes here
                assert got.get("msg") != "process_completed", got
    raise AssertionError("the run never started")


def _strip(app, event: str = "recent_runs", **who) -> tuple[bool, str, list[str], bool]:
    """(shown, listing, thumbnail captions, Follow again shown) as the caller's page would get them."""
    out = _call(app, event, [], forwarded=A, **who)
    assert out["success"], out.get("output")
    box, listing, thumbs, attach = out["output"]["data"][:4]
    items = thumbs.get("value", thumbs) if isinstance(thumbs, dict) else thumbs
    return (bool(box.get("visible")), listing if isinstance(listing, str) else listing.get("value", ""),
            [i.get("caption") or "" for i in items or []], bool(attach.get("visible")))


def test_a_dropped_run_goes_on_and_only_its_owner_finds_it_again(app, emulator_server):
    me, other = _new_cookie(app, A), _new_cookie(app, A)
    first_session = uuid.uuid4().hex[:11]
    emulator_server.clear()
    emulator_server.latency = 3.0  # x 3 requests one after the other: time to come back while it runs
    try:
        _start_and_drop(app, "lantern outliving the page", 3, me, first_session)
        shown, listing, _, attach = _strip(app, cookie=me)  # a reload: same cookie, a new session
        assert shown and "lantern outliving the page" in listing and "running: 0 of 3" in listing, listing
        assert attach
        # nobody else: another cookie, the owner's session hash without the cookie, nothing at all
        assert _strip(app, cookie=other) == (False, "", [], False)
        assert _strip(app, session=first_session) == (False, "", [], False)
        assert _strip(app) == (False, "", [], False)
        # Follow again in a third page: its panel streams the run to its end
        followed = _call(app, "recent_follow_t2i", [], cookie=me, forwarded=A)
        assert followed["success"], followed
        gallery, status = followed["output"]["data"]
        gallery = gallery.get("value", gallery) if isinstance(gallery, dict) else gallery
        assert len(gallery) == 3 and "Done" in str(status), status  # the unsent ones were sent after all
        # someone else's Follow again follows nothing
        nothing = _call(app, "recent_follow_t2i", [], cookie=other, forwarded=A)
        assert nothing["success"] and nothing["output"]["data"] in ([None, None], [{"__type__": "update"}] * 2)
    finally:
        emulator_server.latency = 0.0
    shown, listing, thumbs, attach = _strip(app, cookie=me)
    assert shown and "done: 3 of 3 saved" in listing and not attach, listing
    # A page load shows the strip closed once nothing runs (the results are in the gallery; an open
    # strip would push the tabs off a phone's screen); Refresh opens it.
    loaded = _call(app, "recent_runs_on_load", [], cookie=me, forwarded=A)["output"]["data"][0]
    assert loaded.get("visible") and loaded.get("open") is False, loaded
    assert _call(app, "recent_runs", [], cookie=me, forwarded=A)["output"]["data"][0].get("open") is True
    assert len(thumbs) == 3 and all("lantern outliving" in c for c in thumbs)
    assert len(emulator_server.calls("generation")) == 3  # each once
    assert _strip(app, cookie=other) == (False, "", [], False)


def test_stop_stops_a_run_followed_again_in_another_page(app, emulator_server):
    me, page = _new_cookie(app, A), uuid.uuid4().hex[:11]
    emulator_server.clear()
    emulator_server.latency = 3.0
    try:
        _start_and_drop(app, "lantern stopped from another page", 3, me, uuid.uuid4().hex[:11])
        headers = {"Cookie": f"{COOKIE}={me}", "X-Forwarded-For": A}
        _join(app, page, _fn(app, "recent_follow_t2i"), [], headers)
        for _ in range(100):  # until the follow has registered the run for this page's Stop
            stop = _join(app, page, _fn(app, "stop_t2i"), [], headers)
            status = _listen(app, page, {stop})[stop]["output"]["data"][1]
            if isinstance(status, str):
                break
            time.sleep(0.2)
        assert "Stopped" in status, status
    finally:
        emulator_server.latency = 0.0
    assert len(emulator_server.calls("generation")) < 3  # what was still waiting was never sent
    shown, listing, _, attach = _strip(app, cookie=me)
    assert "lantern stopped from another page" in listing and "stopped:" in listing and not attach, listing


def _data(out: dict) -> list:
    assert out["success"], out.get("output")
    return out["output"]["data"]


def _value(update):
    return update.get("value", update) if isinstance(update, dict) else update


def _tick(app, session: str, **who) -> list:
    """One timer tick as a page sends it (its ``gr.State`` is the session's: the page sends null)."""
    return _data(_call(app, "recent_runs_tick", [None], session=session, forwarded=A, **who))


def test_a_batch_left_mid_run_is_listed_for_its_owner_only_and_the_timer_sees_it_end(app, emulator_server):
    """A page starts a batch and goes away; the owner's new page lists it running (with a way to open
    it in the Batch tab, and the timer on); another cookie, the first page's session hash without the
    cookie, and no cookie see nothing, not even through the tick or the tab's handler. Released, the
    owner's ticks list it done with what landed, and switch the timer off."""
    me, other = _new_cookie(app, A), _new_cookie(app, A)
    first = uuid.uuid4().hex[:11]
    prompts = ["strip lantern one", "strip lantern two", "strip lantern three"]
    emulator_server.clear()
    emulator_server.hold()  # the batch stays out while the test looks; no clock raced
    try:
        _start_and_drop(app, "", 0, me, first, "batch_run", batch_args("\n".join(prompts)))
        deadline = time.monotonic() + 60
        while not emulator_server.calls("generation"):
            assert time.monotonic() < deadline, "the batch sent nothing"
            time.sleep(0.05)
        box, listing, thumbs, attach, picks, timer = _data(_call(app, "recent_runs", [], cookie=me, forwarded=A))[:6]
        listing = _value(listing)
        assert box.get("visible") and "**Batch**" in listing and "strip lantern one" in listing, listing
        assert "running: 0 of 3" in listing and timer.get("active") is True, (listing, timer)
        batch_id = picks["choices"][0][1]
        assert picks.get("visible") and f"`{batch_id}`" in listing
        page = uuid.uuid4().hex[:11]  # the owner's new page: its first tick lists, the next ones say "no change"
        assert "running: 0 of 3" in _value(_tick(app, page, cookie=me)[1])
        assert all(o in (None, {"__type__": "update"}) for o in _tick(app, page, cookie=me)), "a tick re-sent"
        # nobody else: another cookie, the first page's session hash without the cookie, nothing at all
        for who in ({"cookie": other}, {"session": first}, {}):
            assert _strip(app, **who) == (False, "", [], False), who
            shown = _data(_call(app, "recent_runs", [], forwarded=A, **who))
            assert not shown[4].get("choices") and shown[5].get("active") is False, (who, shown)
            ticked = _tick(app, who.get("session") or uuid.uuid4().hex[:11], **({"cookie": who["cookie"]}
                                                                               if "cookie" in who else {}))
            assert batch_id not in json.dumps(ticked) and ticked[5].get("active") is False, (who, ticked)
            # the handler the strip's pick runs (the Batch tab's own) shows the owner's batches only
            stolen = _call(app, "batch_show_1", [batch_id], forwarded=A, **who)
            assert not stolen["success"] and "no batch" in str(stolen["output"]).lower(), stolen
        # The strip's pick takes only a batch the strip listed in that page: Gradio checks the choice against
        # the session's own list (the owner's page picks it; a page that was not shown it cannot).
        picked = _data(_call(app, "recent_open_batch", [batch_id], cookie=me, session=page, forwarded=A))
        assert picked[0].get("selected") == "batch" and picked[1].get("value") == batch_id, picked
        assert not _call(app, "recent_open_batch", [batch_id], cookie=other, forwarded=A)["success"]
    finally:
        emulator_server.release()
    deadline = time.monotonic() + 120
    while True:  # the owner's page ticks on until the strip changes to done
        out = _tick(app, page, cookie=me)
        if "done: 3 of 3 saved" in str(_value(out[1])):
            break
        assert time.monotonic() < deadline, out
        time.sleep(0.3)
    assert out[5].get("active") is False, out  # nothing live: the timer is off
    captions = [i.get("caption") or "" for i in _value(out[2]) or []]
    assert len(captions) == 3 and all("strip lantern" in c for c in captions), captions
    assert len(emulator_server.calls("generation")) == 3  # each sent once
    shown = _data(_call(app, "batch_show_1", [batch_id], cookie=me, forwarded=A))
    assert "3 of 3 images stored" in str(shown[1]), shown[1]


def test_a_flood_of_ticks_through_the_raw_queue_stays_bounded(app):
    """Ticks queued at once by one client, without a timer: 100 with no cookie, then 300 by a visitor
    whose page has had its listing (the in-process test below sends 1,000; through the queue each
    costs the test client as much as the app, so fewer prove the same). All are answered, the
    cookie-less ones with an empty strip and the timer off, the visitor's with "no change" (answered
    from memory, nothing re-sent); the app still answers afterwards."""
    me = _new_cookie(app, A)
    fn = _fn(app, "recent_runs_tick")
    for cookie, count in ((None, 100), (me, 300)):
        session = uuid.uuid4().hex[:11]
        headers = {"X-Forwarded-For": A, **({"Cookie": f"{COOKIE}={cookie}"} if cookie else {})}
        if cookie:
            _tick(app, session, cookie=cookie)  # the page's first listing (what it has seen)
        events = [_join(app, session, fn, [None], headers) for _ in range(count)]
        done = _listen(app, session, set(events), deadline_s=300)
        assert len(done) == count and all(done[e]["success"] for e in events)
        answers = [done[e]["output"]["data"] for e in events]
        if cookie is None:
            assert all(a[0].get("visible") is False and a[5].get("active") is False for a in answers)
        else:
            assert all(o in (None, {"__type__": "update"}) for a in answers for o in a), answers[0]
    assert _strip(app, cookie=me)[0] is False  # answered at once: nothing to list for a fresh cookie


def test_the_strips_events_are_private(app):
    info = requests.get(f"{app.url}gradio_api/info", timeout=10).json()
    names = json.dumps(info)
    assert "recent_runs" not in names and "recent_follow_t2i" not in names and "recent_open_batch" not in names
    cfg = requests.get(f"{app.url}config", timeout=10).json()
    mine = [d for d in cfg["dependencies"] if str(d.get("api_name", "")).startswith(("recent_", "batch_show_"))]
    listed = {d.get("api_name") for d in mine}
    assert {"recent_runs_tick", "recent_open_batch", "batch_show_1"} <= listed, listed
    assert all(d.get("api_visibility") == "private" for d in mine), mine


def test_a_thousand_visitors_stay_bounded(service):
    """1000 owners x 30 runs: at most 20 runs each, at most max_owners owners, finished runs let go
    of their run (and its job's inputs), and forgotten once their time is up."""
    loop = asyncio.new_event_loop()
    try:
        job = service.plan("t2i", "bounded", [], n=1)
        recent = RecentRuns(max_owners=500)
        runs = []
        for owner in range(1000):
            for _ in range(30):
                run = Run(job, "en", Payer.OFFLINE, loop)
                runs.append(run)
                recent.add(f"o{owner}", run)
        assert len(recent) == 500
        assert len(recent.entries("o999")) == 20 and recent.entries("o0") == []
        runs[-1].stopping = True
        for run in runs[-30:]:
            run.apply(Event(EventKind.DONE))
        entries = recent.entries("o999")
        assert [e.state for e in entries] == ["stopped"] + ["done"] * 19 and all(e.run is None for e in entries)
        recent.keep_s = -1.0  # their hour is over
        assert recent.entries("o999") == [] and len(recent) == 499
        assert recent.entries(None) == [] and recent.running(None, "t2i") is None
    finally:
        loop.close()


def test_after_a_restart_cut_short_downloads_are_saved_never_requested_again(tmp_path, emulator_server):
    data = tmp_path / "data"
    args = ["--base-url", emulator_server.base_url, "--retry-interval", "3600"]
    env = {"DASHSCOPE_API_KEY": TEST_KEY}
    emulator_server.clear()
    emulator_server.download_fault("truncate", times=1000)  # every download is cut short
    first = launch(args, data, env_extra=env)
    try:
        out = _call(first, "generate", _gen_data("cut short by a stop", 2))
        assert "cut short by a stop" not in json.dumps(out.get("output", {}).get("data", [None])[0] or [])
    finally:
        first.stop()
    emulator_server.clear()  # the service's links still live: the next start can fetch them
    sent = len(emulator_server.calls("generation"))
    second = launch(args, data, env_extra=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            shown, listing, _, _ = _strip(second)
            if "they have been saved" in listing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert shown and "2 result(s) were being downloaded when the server stopped; they have been saved" in listing
        assert len(emulator_server.calls("generation")) == sent  # nothing requested again
    finally:
        second.stop()


# --- batches in the strip, and its timer (in-process: the handlers the page's events call) -------------
def _local_strip(emu, clean_env):
    """A local app's context, the Batch tab's view (whose registry of running batches the strip reads)
    and the strip's view, over the test emulator."""
    from aliyun_image.runtime import AppContext, AppOptions
    from aliyun_image.ui.batch_view import BatchView
    from aliyun_image.ui.recent_view import RecentRunsView
    from aliyun_image.ui.run_handlers import RunHandlers

    ctx = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env)))
    batch = BatchView(ctx)
    return ctx, batch, RecentRunsView(ctx, RunHandlers(ctx), batch.live)


def _start_batch(ctx, view, prompts: list[str]):
    """Store and start a batch as the Batch tab's Run does (locally: no owner)."""
    from aliyun_image.generation import BatchSpec, batch as batches

    route = ctx.route(TEST_KEY)
    prepared = batches.prepare(route.service, BatchSpec("\n".join(prompts), (), {"n": 1}), new=True)
    return view.start_held(route, None, "en", None, lambda: prepared.batch_id)


def _text(update) -> str:
    return update if isinstance(update, str) else ""


def test_the_timers_tick_is_memory_only_while_nothing_changes_then_lists_the_batch_done(emu, clean_env):
    """A batch running (held at the emulator): the first tick lists it with the timer on; 1,000 more
    ticks while nothing lands answer "no change" without growing memory; released, the next tick
    that sees the change lists it done and switches the timer off."""
    import tracemalloc

    from aliyun_image.ui.recent_view import TICK_S

    assert TICK_S >= 2  # a thousand open pages: at most one tick each every TICK_S seconds
    ctx, batch, strip = _local_strip(emu, clean_env)
    loop = asyncio.new_event_loop()
    emu.hold()
    try:
        live = _start_batch(ctx, batch, ["held lantern one", "held lantern two"])
        first = loop.run_until_complete(strip.recent_runs_tick(None, None))
        box, listing, thumbs, attach, picks, timer, seen = first
        assert "**Batch** `" + live.batch_id + "`" in listing and "running: 0 of 2" in listing, listing
        assert timer.active is True and box.visible is True and picks.visible is True
        assert [value for _, value in picks.choices] == [live.batch_id]
        deadline = time.monotonic() + 60
        while not emu.calls("generation"):  # the batch's thread has done its start-up (its allocations)
            assert time.monotonic() < deadline, "no request went out"
            time.sleep(0.05)
        for _ in range(100):  # and the loop's own warm-up
            loop.run_until_complete(strip.recent_runs_tick(seen, None))
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            out = loop.run_until_complete(strip.recent_runs_tick(seen, None))
            assert out[-1] is seen and all(isinstance(o, dict) and o == {"__type__": "update"} for o in out[:6])
        grown = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        # Nothing kept per tick: 1,000 ticks keeping even 48 bytes each would pass 48 KiB. (The batch's and the
        # emulator's threads allocate meanwhile too: 17 KiB was seen once, so not a 16 KiB bound.)
        assert grown < 48 * 1024, grown
    finally:
        emu.release()
    deadline = time.monotonic() + 60
    while True:
        out = loop.run_until_complete(strip.recent_runs_tick(seen, None))
        if out[-1] is not seen:
            seen = out[-1]
            if "done: 2 of 2 saved" in _text(out[1]):
                break
        assert time.monotonic() < deadline, out
        time.sleep(0.05)
    assert out[5].active is False and len(out[2].value or []) == 2, out  # the timer off, what landed shown
    assert len(emu.calls("generation")) == 2
    loop.close()
    ctx.close()


def test_the_strip_lists_what_is_going_first_and_a_few_finished_ones(emu, clean_env):
    """Seven finished runs and one going: the live one first, then the newest four finished, then one
    line for the rest (a phone's strip stays short enough to keep the tabs in reach)."""
    from aliyun_image.ui.recent_runs import LOCAL
    from aliyun_image.ui.recent_view import LINES

    ctx, _batch, strip = _local_strip(emu, clean_env)
    loop = asyncio.new_event_loop()
    try:
        runs = []
        for i in range(8):
            job = ctx.live_service.plan("t2i", f"run number {i}", [], n=1)
            run = Run(job, "en", Payer.OFFLINE, loop)
            strip.runs.recent.add(LOCAL, run)
            runs.append(run)
        for run in runs[:-1]:  # all but the newest end
            run.apply(Event(EventKind.DONE))
        lines, _, _ = strip._read(LOCAL, "en", strip.runs.recent.entries(LOCAL))
        assert len(lines) == 1 + LINES + 1, lines
        assert "run number 7" in lines[0] and "running" in lines[0]
        assert [n for n in range(7) if any(f"run number {n}" in line for line in lines[1:-1])] == [3, 4, 5, 6]
        assert "and 3 more finished" in lines[-1]
        zh, _, _ = strip._read(LOCAL, "zh", strip.runs.recent.entries(LOCAL))
        assert "另有 3 个已完成" in zh[-1]
    finally:
        loop.close()
