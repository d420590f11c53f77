"""Runs going at once per hosted visitor and per client address (issue 18 leftovers, 1): the run events
share the app's places, and a visitor with their own key (no hourly quota: their bill) must not be able
to hold them all through the raw queue.

Through one launched hosted app (the visitors' own key on the test emulator, one trusted proxy, the
scheduler off so that every run that starts has its request at the emulator at once), with the emulator
holding its replies (no clocks): at most 3 runs of one cookie go at once, the others are told so at once
in their language and send nothing; another visitor's run starts meanwhile; every place comes back when
the runs end, whichever way they end (done, failed, refused while planning, stopped, their client gone);
an address counts all its visitors together; a batch (``/batch``) is one of the visitor's runs. And
:class:`~aliyun_image.runtime.RunSlots` itself, without an app: the rules of each mode.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import requests

from aliyun_image.config import Settings
from aliyun_image.errors import ValidationError
from aliyun_image.money import Payers
from aliyun_image.runtime import RunKind, RunSlots
from aliyun_image.ui.endpoints import call_args
from aliyun_image.ui.http_guard import COOKIE

from .appserver import launch
from .conftest import TEST_KEY
from .test_hosted_safety import _gen_data
from .test_visitor import _fn, _new_cookie

A, B, C = "203.0.113.41", "198.51.100.42", "192.0.2.43"
TOO_MANY = "You already have 3 runs going; wait for one to finish or stop one."
ADDRESS_FULL = "Your network address already has 5 runs going"
BATCH = dict(variables="", negative="", quality="plus", model="", size="", n=1, seed=-1, prompt_extend=True,
             watermark=False)


# --- the rules, without an app --------------------------------------------------------------------------
def test_hosted_counts_runs_per_visitor_and_per_address_and_gives_every_place_back():
    slots = RunSlots(hosted=True, per_visitor=3, per_address=5, batches=8)
    me, colleague = Payers("me", "10.0.0.1"), Payers("colleague", "10.0.0.1")
    mine = [slots.take(me) for _ in range(3)]
    with pytest.raises(ValidationError) as refused:
        slots.take(me)
    assert refused.value.code == "Runs.PerVisitor" and slots.going(me) == 3
    assert "已有 3 个运行" in refused.value.text("zh")
    theirs = [slots.take(colleague) for _ in range(2)]
    with pytest.raises(ValidationError) as refused:  # the address has 5 going, whoever they are
        slots.take(colleague)
    assert refused.value.code == "Runs.PerAddress"
    slots.take(Payers("elsewhere", "10.0.0.2")).release()  # another address is not held up
    mine[0].release()
    mine[0].release()  # twice: given back once
    assert slots.going(me) == 2
    slots.take(me).release()
    for s in mine + theirs:
        s.release()
    assert slots.going(me) == slots.going(colleague) == 0 and not slots._going  # nothing kept for anyone


def test_a_batch_is_one_of_the_visitors_runs_one_at_a_time_and_a_few_in_the_app():
    slots = RunSlots(hosted=True, per_visitor=3, per_address=0, batches=2)
    me = Payers("me", "10.0.0.1")
    batch = slots.take(me, RunKind.API_BATCH)
    with pytest.raises(ValidationError) as refused:
        slots.take(me, RunKind.BATCH)  # the page's or the API's: one batch per visitor
    assert refused.value.code == "Batch.OneAtATime"
    runs = [slots.take(me), slots.take(me)]
    with pytest.raises(ValidationError) as refused:
        slots.take(me)
    assert refused.value.code == "Runs.PerVisitor"
    slots.take(Payers("you", "10.0.0.2"), RunKind.BATCH)
    with pytest.raises(ValidationError) as refused:
        slots.take(Payers("them", "10.0.0.3"), RunKind.BATCH)
    assert refused.value.code == "Batch.ServerBusy" and slots.batches_going() == 2
    # handed over to the batch's thread: the old handle gives nothing back, the new one does
    thread_side = batch.hand_over()
    batch.release()
    assert slots.going(me) == 3
    thread_side.release()
    assert slots.going(me) == 2 and slots.batches_going() == 1
    for s in runs:
        s.release()


def test_locally_only_the_pages_batches_count_as_before():
    slots = RunSlots(hosted=False, per_visitor=3, per_address=5, batches=8)
    me = Payers("me", "127.0.0.1")
    runs = [slots.take(me) for _ in range(20)] + [slots.take(me, RunKind.API_BATCH) for _ in range(3)]
    assert slots.going(me) == 0 and not slots._going
    page = slots.take(me, RunKind.BATCH)
    with pytest.raises(ValidationError) as refused:  # another tab (another session): one batch at a time
        slots.take(Payers("another tab", "127.0.0.1"), RunKind.BATCH)
    assert refused.value.code == "Batch.OneAtATime"
    page.release()
    slots.take(me, RunKind.BATCH).release()
    for s in runs:
        s.release()


def test_the_caps_come_from_the_environment():
    assert (Settings.from_env({}).hosting.runs_per_visitor, Settings.from_env({}).hosting.runs_per_address) == (3, 8)
    got = Settings.from_env({"ALIYUN_IMAGE_RUNS_PER_VISITOR": "1", "ALIYUN_IMAGE_RUNS_PER_ADDRESS": "0"}).hosting
    assert (got.runs_per_visitor, got.runs_per_address) == (1, 0)
    for bad in ("-1", "three"):
        with pytest.raises(ValidationError) as refused:
            Settings.from_env({"ALIYUN_IMAGE_RUNS_PER_VISITOR": bad})
        assert "ALIYUN_IMAGE_RUNS_PER_VISITOR" in refused.value.text("en")


# --- through the raw queue of a launched hosted app -----------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Hosted; visitors bring their own key (the test emulator); 3 runs per visitor (the default), 5 per
    address; no account scheduler: a run that starts has its request at the emulator at once."""
    root = tmp_path_factory.mktemp("run-cap")
    running = launch(["--hosted", "--base-url", emulator_server.base_url], root / "outputs", cwd=root,
                     env_extra={"ALIYUN_IMAGE_TRUSTED_PROXIES": "1", "ALIYUN_IMAGE_TASK_LIMIT": "0",
                                "ALIYUN_IMAGE_RUNS_PER_ADDRESS": "5"})
    try:
        yield running
    finally:
        running.stop()


class Call:
    """One raw queue call as a page makes it (join, then the session's event stream, read in a thread).
    ``drop``: go away once the run has shown its first status (the connection closes). A session has one
    stream: :meth:`also` joins another event of the same session, read on this stream."""

    def __init__(self, app, api_name: str, data: list, *, cookie: str | None = None, addr: str = A,
                 session: str | None = None, drop: bool = False):
        self.app, self.session, self.drop = app, session or uuid.uuid4().hex[:11], drop
        self.headers = {"X-Forwarded-For": addr, "X-DashScope-API-Key": TEST_KEY}
        self.cookies = {COOKIE: cookie} if cookie else {}
        self.event = self._join(api_name, data)
        self.waiting = {self.event}
        self.answers: dict[str, dict] = {}
        self.generating = threading.Event()
        self.generated: set[str] = set()  # events that have shown something (a status line)
        self.stream_error: Exception | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _join(self, api_name: str, data: list) -> str:
        r = requests.post(f"{self.app.url}gradio_api/queue/join", headers=self.headers, cookies=self.cookies,
                          timeout=10, json={"data": data, "fn_index": _fn(self.app, api_name),
                                            "session_hash": self.session, "event_data": None, "trigger_id": None})
        r.raise_for_status()
        return r.json()["event_id"]

    def also(self, api_name: str, data: list) -> str:
        """Join another event in this call's session (read on this call's stream); its event id."""
        event = self._join(api_name, data)
        self.waiting.add(event)
        return event

    def _read(self) -> None:
        try:
            self._read_stream()
        except Exception as exc:  # kept for the failure message: a dead reader looks like a silent server
            self.stream_error = exc
            raise

    def _read_stream(self) -> None:
        with requests.get(f"{self.app.url}gradio_api/queue/data", params={"session_hash": self.session},
                          stream=True, timeout=120) as s:
            for line in s.iter_lines():
                got = json.loads(line[5:]) if line.startswith(b"data:") else {}
                if got.get("msg") == "process_generating":
                    self.generated.add(got.get("event_id"))
                if got.get("msg") == "process_generating" and got.get("event_id") == self.event:
                    self.generating.set()
                    if self.drop:
                        return
                if got.get("msg") == "process_completed":
                    self.answers[got.get("event_id")] = got
                    if self.waiting <= self.answers.keys():
                        return

    @property
    def completed(self) -> dict | None:
        return self.answers.get(self.event)

    @property
    def done(self) -> bool:
        return self.completed is not None

    @property
    def error(self) -> str:
        assert self.completed is not None and not self.completed["success"], self.completed
        return str(self.completed["output"].get("error"))

    def wait(self) -> dict:
        self.thread.join(120)
        assert self.completed is not None, "no answer"
        return self.completed


def generate(app, prompt: str, **who) -> Call:
    return Call(app, "generate", _gen_data(prompt), **who)


def sent(emu, tag: str) -> list[str]:
    """The prompts containing ``tag`` the emulator received (each request may be billed)."""
    out = []
    for r in emu.calls("generation") + emu.calls("task_create"):
        text = json.dumps(r.json or {}, ensure_ascii=False)
        if tag in text:
            out.append(text)
    return out


def wait_for(check, what: str, deadline_s: float = 90, explain=None) -> None:
    """Poll ``check`` until it holds; on timeout, fail saying ``what`` and, if given, ``explain()``
    (what the calls received, the app's log: a flake on a busy CI machine must say why)."""
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (f"\n{explain()}" if explain else "")
        time.sleep(0.05)


def _log_tail(app, lines: int = 40) -> str:
    try:
        return "\n".join(app.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no app log: {exc})"


def all_start_at_once(emu, start, prefix: str, what: str, n: int = 3) -> None:
    """``start(i)`` for i < n while the emulator holds replies: all n send before any comes back (each
    found a free place), none is done meanwhile; then, released, every one succeeds."""
    emu.hold()
    try:
        calls = [start(i) for i in range(n)]
        wait_for(lambda: len(sent(emu, prefix)) == n, what)
        assert not [c for c in calls if c.done]
    finally:
        emu.release()
    assert all(c.wait()["success"] for c in calls)


def test_ten_runs_of_one_cookie_at_once_three_go_and_seven_are_told_at_once(app, emulator_server):
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me = _new_cookie(app, A)
    emu.clear()
    emu.hold()
    try:
        calls = [generate(app, f"{tag} mine {i}", cookie=me) for i in range(10)]
        wait_for(lambda: sum(c.done for c in calls) >= 7, "the refusals")
        refused = [c for c in calls if c.done]
        assert len(refused) == 7 and all(TOO_MANY in c.error for c in refused), [c.completed for c in refused]
        wait_for(lambda: len(sent(emu, tag)) == 3, "the three runs going to send")
        assert not [c for c in calls if c.done and c not in refused]  # the three go on, held by the emulator
        # someone else (another cookie, another address) starts meanwhile
        other = generate(app, f"{tag} someone else", cookie=_new_cookie(app, B), addr=B)
        wait_for(lambda: len(sent(emu, f"{tag} someone else")) == 1, "another visitor's run to send")
        assert not other.done
    finally:
        emu.release()
    for c in [c for c in calls if c not in refused] + [other]:
        assert c.wait()["success"], c.completed
    assert len(sent(emu, tag)) == 4  # the refused sent nothing (and so nothing was billed)
    # every place is free again: three more start at once
    all_start_at_once(emu, lambda i: generate(app, f"{tag} again {i}", cookie=me), f"{tag} again",
                      "three new runs to send")


def test_an_address_counts_all_its_visitors_and_session_less_callers_together(app, emulator_server):
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    first, second = _new_cookie(app, C), _new_cookie(app, C)
    emu.clear()
    emu.hold()
    try:
        going = [generate(app, f"{tag} first {i}", cookie=first, addr=C) for i in range(3)]
        wait_for(lambda: len(sent(emu, tag)) == 3, "the first visitor's runs")
        going += [generate(app, f"{tag} second {i}", cookie=second, addr=C) for i in range(2)]
        wait_for(lambda: len(sent(emu, tag)) == 5, "the second visitor's runs")
        late = [generate(app, f"{tag} second late", cookie=second, addr=C),
                generate(app, f"{tag} no cookie", addr=C)]  # a new cookie or none: the same address
        for c in late:
            c.wait()
            assert ADDRESS_FULL in c.error, c.completed
        assert not [c for c in going if c.done]
    finally:
        emu.release()
    assert all(c.wait()["success"] for c in going)
    assert not [p for p in sent(emu, tag) if "late" in p or "no cookie" in p]


def test_every_way_a_run_ends_gives_its_place_back(app, emulator_server):
    """Refused while planning, failed at the service, stopped, and a client gone while its run goes on
    (the run outlives the page and keeps its place until it ends): then three runs still start."""
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me, session = _new_cookie(app, A), uuid.uuid4().hex[:11]
    emu.clear()
    for i in range(3):
        assert not generate(app, "", cookie=me).wait()["success"]  # refused by the service's plan
        emu.fail("generation", status=400, code="InvalidParameter", message="nope")
        emu.fail("task_create", status=400, code="InvalidParameter", message="nope")
        assert not generate(app, f"{tag} fails {i}", cookie=me).wait()["success"]  # failed at the service
        emu.clear()
    emu.hold()
    try:
        stopped = generate(app, f"{tag} stopped", cookie=me, session=session)
        wait_for(lambda: len(sent(emu, f"{tag} stopped")) == 1, "the run to stop")
        stop = stopped.also("stop_t2i", [])
        # Stop takes the run over: the run's own call ends (taken over) and the stop's shows the run. When the
        # run's call completes first, Gradio may close the session's stream before the stop's messages (it
        # closes a stream on a completion that finds no other event of the session pending; seen in CI
        # under load): then the owner's strip says the run was stopped (below), not the stop's own stream.
        wait_for(lambda: stop in stopped.generated or stop in stopped.answers or not stopped.thread.is_alive(),
                 "Stop to take the run over",
                 explain=lambda: f"answers: {stopped.answers}\nthread alive: {stopped.thread.is_alive()}"
                                 f"\nstream error: {stopped.stream_error!r}\napp log:\n{_log_tail(app)}")
        dropped = generate(app, f"{tag} dropped", cookie=me, drop=True)
        wait_for(lambda: dropped.generating.is_set() and len(sent(emu, f"{tag} dropped")) == 1, "the dropped run")
        dropped.thread.join(30)
        # the dropped run goes on without its page: it still counts (two going, one place left)
        one_more = generate(app, f"{tag} one more", cookie=me)
        wait_for(lambda: len(sent(emu, f"{tag} one more")) == 1, "the third run")
        assert TOO_MANY in generate(app, f"{tag} refused", cookie=me).wait()["output"]["error"]
    finally:
        emu.release()
    stopped.thread.join(120)
    if stop in stopped.answers:  # the stop's own stream stayed open: its last word says the run was stopped
        assert stopped.answers[stop]["success"] and "Stopped" in json.dumps(stopped.answers[stop]), stopped.answers
    assert one_more.wait()["success"]
    # whatever the stream did, the run was stopped (not merely finished) and says so to its owner
    wait_for(lambda: f"“{tag} stopped” · stopped: 1 of 1 saved" in _strip(app, me), "the stopped run in the strip",
             explain=lambda: _strip(app, me))
    # the dropped run ends on the server: its owner's strip says so, and then its place is free
    wait_for(lambda: "done: 1 of 1 saved" in _strip(app, me), "the dropped run to end")
    all_start_at_once(emu, lambda i: generate(app, f"{tag} three {i}", cookie=me), f"{tag} three",
                      "three runs after every way out")


def _strip(app, cookie: str) -> str:
    out = Call(app, "recent_runs", [], cookie=cookie).wait()
    assert out["success"], out
    listing = out["output"]["data"][1]
    return listing if isinstance(listing, str) else str(listing.get("value", ""))


def test_a_batch_is_one_of_the_visitors_runs(app, emulator_server):
    emu, tag = emulator_server, uuid.uuid4().hex[:8]
    me = _new_cookie(app, B)
    emu.clear()
    emu.hold()
    try:
        batch = Call(app, "batch", call_args("batch", **{**BATCH, "prompts": f"{tag} batch"}), cookie=me, addr=B)
        wait_for(lambda: len(sent(emu, f"{tag} batch")) == 1, "the batch to send")
        second = Call(app, "batch", call_args("batch", **{**BATCH, "prompts": f"{tag} second batch"}),
                      cookie=me, addr=B).wait()
        assert "A batch of yours is running already" in str(second["output"]["error"]), second
        runs = [generate(app, f"{tag} run {i}", cookie=me, addr=B) for i in range(3)]
        wait_for(lambda: sum(c.done for c in runs) >= 1, "the refusal")
        assert [TOO_MANY in c.error for c in runs if c.done] == [True]
        wait_for(lambda: len(sent(emu, f"{tag} run")) == 2, "two runs beside the batch")
    finally:
        emu.release()
    assert batch.wait()["success"], batch.completed
    assert sum(c.wait()["success"] for c in runs) == 2
    assert not sent(emu, f"{tag} second batch")
