"""The request scheduler (issue 9, section 4): AIMD rules on a fake clock, and real runs over HTTP
against an emulator that limits tasks in flight per key."""

from __future__ import annotations

import threading
import time

import pytest

from aliyun_image.dashscope.client import DashScopeClient
from aliyun_image.config import Settings
from aliyun_image.emulator import Emulator
from aliyun_image.errors import ThrottledError, may_be_billed
from aliyun_image.enums import EventKind
from aliyun_image.dashscope.scheduler import MAX_REQUEUES, OK, OTHER, THROTTLED, Lane, Scheduler, lane_id, queued_text
from aliyun_image.generation.service import ImageService
from tests.conftest import TEST_KEY
from tests.test_catalog import use_user_file

MODEL = "qwen-image-plus"  # one image per request: n images are n requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def granted(tickets) -> list[bool]:
    return [t.granted.is_set() for t in tickets]


# --- AIMD on a fake clock ----------------------------------------------------------------------
def test_lane_starts_at_its_limit_and_queues_the_rest():
    lane = Lane(2, 5, clock=FakeClock())
    tickets = [lane.enqueue("run") for _ in range(3)]
    assert granted(tickets) == [True, True, False] and lane.waiting == 1
    lane.finish(tickets[0], OK)
    assert granted(tickets) == [True, True, True] and lane.active == 2


def test_additive_increase_after_successes_up_to_the_ceiling():
    lane = Lane(2, 3, clock=FakeClock(), increase_every=2)
    limits = []
    for _ in range(6):
        lane.finish(lane.enqueue("r"), OK)
        limits.append(lane.limit)
    assert limits == [2, 3, 3, 3, 3, 3]  # +1 after 2 successes in a row, never above the ceiling


def test_multiplicative_decrease_once_per_window_and_never_below_one():
    clock = FakeClock()
    lane = Lane(4, 8, clock=clock)
    a, b, c, d = (lane.enqueue("r") for _ in range(4))
    lane.finish(a, THROTTLED, 0)
    assert lane.limit == 2  # halved
    lane.finish(b, THROTTLED, 0)  # started in the same window: the same overload, no second cut
    assert lane.limit == 2 and lane.throttles == 2
    e = lane.enqueue("r")  # after the cut: a new window
    lane.finish(c, OTHER)
    lane.finish(d, OTHER)
    assert e.granted.is_set()
    lane.finish(e, THROTTLED, 0)
    assert lane.limit == 1
    f = lane.enqueue("r")
    lane.finish(f, THROTTLED, 0)
    assert lane.limit == 1  # at least one


def test_retry_after_holds_every_new_start_until_it_has_passed():
    clock = FakeClock()
    lane = Lane(2, 5, clock=clock)
    first = lane.enqueue("r")
    lane.finish(first, THROTTLED, retry_after=5.0)
    waiting = lane.enqueue("r")
    assert not waiting.granted.is_set()
    clock.now += 4.9
    lane.pump()
    assert not waiting.granted.is_set()
    clock.now += 0.1
    lane.pump()
    assert waiting.granted.is_set()


def test_without_retry_after_the_hold_is_an_exponential_backoff():
    clock = FakeClock()
    lane = Lane(1, 5, clock=clock, backoff_base=1.0, backoff_max=3.0)
    holds = []
    for _ in range(4):
        t = lane.enqueue("r")
        clock.now = max(clock.now, lane.hold_until)
        lane.pump()
        assert t.granted.is_set()
        lane.finish(t, THROTTLED)
        holds.append(lane.hold_until - clock.now)
    assert holds == [1.0, 2.0, 3.0, 3.0]  # doubling, capped at backoff_max


def test_no_increase_during_the_cooldown_after_a_429():
    clock = FakeClock()
    lane = Lane(2, 5, clock=clock, increase_every=1, cooldown=60)
    lane.finish(lane.enqueue("r"), THROTTLED, 0)
    assert lane.limit == 1
    for _ in range(3):
        lane.finish(lane.enqueue("r"), OK)
    assert lane.limit == 1
    clock.now += 60
    lane.finish(lane.enqueue("r"), OK)
    assert lane.limit == 2


def test_the_run_served_least_goes_next_and_each_keeps_its_order():
    lane = Lane(1, 1, clock=FakeClock())
    first = lane.enqueue("a")
    order = []
    tickets = {(run, i): lane.enqueue(run) for run in "abc" for i in range(2)}
    lane.finish(first, OK)
    for _ in range(len(tickets)):
        (name,) = [k for k, t in tickets.items() if t.granted.is_set() and k not in order]
        order.append(name)
        lane.finish(tickets[name], OK)
    assert order == [("b", 0), ("c", 0), ("a", 0), ("b", 1), ("c", 1), ("a", 1)]  # a had one already


def test_a_refused_request_keeps_its_place_at_the_head_of_the_queue():
    lane = Lane(1, 1, clock=FakeClock())
    t1 = lane.enqueue("a")
    t2, t3 = lane.enqueue("a"), lane.enqueue("b")
    again = lane.finish(t1, THROTTLED, 0, requeue=True)
    assert again is not None and again.granted.is_set() and not t2.granted.is_set() and not t3.granted.is_set()


def test_withdraw_takes_out_queued_tickets_only():
    lane = Lane(1, 1, clock=FakeClock())
    running, queued = lane.enqueue("a"), lane.enqueue("a")
    assert not lane.withdraw(running) and lane.withdraw(queued) and lane.waiting == 0


def test_lanes_are_named_by_a_hash_never_the_key(settings):
    sched = Scheduler(settings)
    sched.lane(TEST_KEY, MODEL)
    digest, model = lane_id(settings.base_url, TEST_KEY, MODEL)
    assert model == MODEL and TEST_KEY not in digest and TEST_KEY not in repr(sched.__dict__)
    assert lane_id(settings.base_url, "sk-other-key-1234", MODEL) != (digest, model)


def test_idle_lanes_are_forgotten_busy_ones_kept(settings):
    from aliyun_image.dashscope.scheduler import MAX_IDLE_LANES

    sched = Scheduler(settings)
    busy = sched.lane("sk-busy-visitor-0", MODEL)
    ticket = busy.enqueue("run")
    for i in range(MAX_IDLE_LANES + 1):
        sched.lane(f"sk-visitor-{i:04d}", MODEL)
    assert len(sched._lanes) < MAX_IDLE_LANES and sched.lane("sk-busy-visitor-0", MODEL) is busy
    busy.finish(ticket, OK)


def test_start_limit_from_settings_env_model_data_or_default(monkeypatch, tmp_path, settings):
    assert Scheduler(settings).start_limit(MODEL) == 2
    assert Settings.from_env({"ALIYUN_IMAGE_TASK_LIMIT": "3"}).concurrency.task_limit == 3
    with pytest.raises(Exception, match="0-64"):
        Settings.from_env({"ALIYUN_IMAGE_TASK_LIMIT": "-1"})
    use_user_file(monkeypatch, tmp_path, f'[[model]]\nid = "{MODEL}"\ntask_limit = 4\n')
    assert Scheduler(settings).start_limit(MODEL) == 4
    assert Scheduler(settings.with_(task_limit=1)).start_limit(MODEL) == 1
    assert not Scheduler(settings.with_(task_limit=0)).enabled


# --- real runs against a limited emulator ------------------------------------------------------
@pytest.fixture(scope="module")
def limited():
    """An emulator whose account allows 2 tasks in flight per key."""
    with Emulator(task_limit=2, limit_retry_after=0.2, task_delay=0.3) as emu:
        yield emu


@pytest.fixture
def lemu(limited):
    limited.clear()
    limited.latency = 0.3
    limited.task_limit = 2
    yield limited
    limited.clear()


def make_service(lemu, tmp_path, **kw) -> ImageService:
    s = Settings.from_env(base_url=lemu.base_url, api_key=TEST_KEY, data_dir=tmp_path / "data", fsync=False,
                          backoff_base=0.05, backoff_max=0.2, poll_schedule=(0.05, 0.1), read_timeout=10, **kw)
    return ImageService(s)


def accepted(emu, endpoint="generation"):
    return [r for r in emu.calls(endpoint) if not r.throttled]


def test_emulator_limit_answers_the_documented_429(lemu):
    client = DashScopeClient(Settings.from_env(base_url=lemu.base_url, api_key=TEST_KEY))
    lemu.task_limit, lemu.latency, lemu.limit_retry_after = 1, 1.0, 7
    body = {"model": MODEL, "input": {"messages": [{"role": "user", "content": [{"text": "a cat"}]}]}}
    t = threading.Thread(target=client.generate, args=(TEST_KEY, body))
    t.start()
    while lemu.in_flight < 1:
        time.sleep(0.01)
    with pytest.raises(ThrottledError) as info:
        client.generate(TEST_KEY, body, retry_throttled=False)
    t.join()
    err = info.value
    assert err.status == 429 and err.code == "Throttling.RateQuota" and err.retry_after == 7
    assert not may_be_billed(err)
    refused = [r for r in lemu.calls("generation") if r.throttled]
    assert len(refused) == 1 and lemu.throttled == 1  # not retried by the client: the scheduler decides
    lemu.limit_retry_after = 0.2


def test_six_images_under_a_limit_of_two(lemu, tmp_path):
    svc = make_service(lemu, tmp_path)
    events = []
    batch = svc.generate("a lighthouse", n=6, on_event=events.append)
    assert len(batch.results) == 6 and not batch.failures
    assert all(r.file and r.file.exists() for r in batch.results)
    assert lemu.throttled <= 2
    seeds = [r.json["parameters"]["seed"] for r in accepted(lemu)]
    assert sorted(seeds) == sorted(batch.job.seeds)  # each request carried out exactly once
    assert lemu.peak_in_flight <= 2
    statuses = [e.text for e in events if e.kind == EventKind.STATUS and e.text]
    assert statuses == [queued_text(2)]  # said once, while the other four waited
    # Progress counts the scheduler's truth: never more than 2 out, 2 out while 4 wait, none at the end.
    counts = [(e.running, e.queued) for e in events if e.kind == EventKind.STATUS and e.running is not None]
    assert max(r for r, _ in counts) == 2 and (2, 4) in counts and counts[-1] == (0, 0)


def test_starting_too_high_costs_few_429s_and_loses_nothing(lemu, tmp_path):
    svc = make_service(lemu, tmp_path, task_limit=4)
    batch = svc.generate("a lighthouse", n=6)
    assert len(batch.results) == 6 and not batch.failures
    assert 1 <= lemu.throttled <= 2
    seeds = [r.json["parameters"]["seed"] for r in accepted(lemu)]
    assert sorted(seeds) == sorted(batch.job.seeds)
    assert svc.scheduler.lane(TEST_KEY, MODEL).limit == 2  # learned the account's limit


def test_a_request_that_may_have_been_billed_is_never_resent(lemu, tmp_path):
    svc = make_service(lemu, tmp_path, task_limit=4)
    lemu.fault("reset", times=1)  # the first request arrives, then its connection drops
    batch = svc.generate("a lighthouse", n=6)
    assert len(batch.results) == 5 and len(batch.failures) == 1 and may_be_billed(batch.failures[0])
    reset_seed = lemu.calls("generation")[0].json["parameters"]["seed"]
    sent = [r.json["parameters"]["seed"] for r in lemu.calls("generation")]
    assert sent.count(reset_seed) == 1


def test_three_runs_sharing_a_key_interleave(lemu, tmp_path):
    svc = make_service(lemu, tmp_path)
    lemu.latency = 0.6  # long next to starting a run's threads on a busy machine
    prompts = ["run A cat", "run B dog", "run C fox"]
    batches: dict[str, object] = {}
    landed: list[str] = []  # the run of each stored image, in the order they were stored
    start = threading.Barrier(3)

    def go(prompt: str) -> None:
        start.wait()
        batches[prompt] = svc.generate(prompt, n=4, on_event=lambda ev: landed.append(prompt)
                                       if ev.kind == EventKind.RESULT else None)

    threads = [threading.Thread(target=go, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(len(batches[p].results) == 4 and not batches[p].failures for p in prompts)  # type: ignore[attr-defined]
    sent = [r.json["input"]["messages"][0]["content"][0]["text"] for r in accepted(lemu)]
    assert len(sent) == 12 and len(landed) == 12 and lemu.throttled <= 2
    for order in (sent, landed):  # every run started, and had an image, before any run finished
        firsts = [order.index(p) for p in prompts]
        lasts = [len(order) - 1 - order[::-1].index(p) for p in prompts]
        assert max(firsts) < min(lasts), order


def test_stop_while_queued_sends_nothing_more(lemu, tmp_path):
    svc = make_service(lemu, tmp_path)
    lemu.latency = 2.0
    job = svc.plan("t2i", "a lighthouse", n=6)
    events = []
    done = threading.Event()

    def on_event(ev):
        events.append(ev)
        if ev.kind == EventKind.DONE:
            done.set()

    cancel = svc.start(job, on_event)
    deadline = time.monotonic() + 10
    while lemu.in_flight < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lemu.in_flight == 2  # two sent; four queued on the limit
    cancel.set()
    assert done.wait(30)
    cancelled = [e for e in events if e.error is not None and e.error.code == "Cancelled"]
    assert len(cancelled) == 4 and all(not may_be_billed(e.error) for e in cancelled)
    assert len([e for e in events if e.kind == EventKind.RESULT]) == 2  # those sent were paid for: kept
    assert len(lemu.calls("generation")) == 2  # the queued ones never reached the service


def test_async_task_holds_its_slot_until_it_ends(lemu, tmp_path):
    svc = make_service(lemu, tmp_path)
    lemu.latency = 0.0
    batch = svc.generate("a lighthouse", n=4, use_async=True)
    assert len(batch.results) == 4 and not batch.failures
    assert len(lemu.calls("task_create")) == 4 and lemu.throttled == 0  # never more than 2 tasks running


def test_an_account_that_keeps_refusing_fails_the_request_unbilled(lemu, tmp_path):
    svc = make_service(lemu, tmp_path, task_limit=1)
    lemu.fail(status=429, code="Throttling.RateQuota", message="Requests rate limit exceeded, please try again "
              "later.", times=MAX_REQUEUES + 1, retry_after=0.01)
    batch = svc.generate("a lighthouse", n=1)
    (err,) = batch.failures
    assert isinstance(err, ThrottledError) and not may_be_billed(err)
    assert f"{MAX_REQUEUES + 1}" in err.zh and f"refused {MAX_REQUEUES + 1} times" in err.en
    assert len(lemu.calls("generation")) == MAX_REQUEUES + 1


def test_emulator_limit_is_set_through_the_control_endpoint(lemu):
    import requests

    url = lemu.origin + "/_emulator/control"
    assert requests.post(url, json={"action": "set", "task_limit": 3, "limit_retry_after": 1.5}).ok
    assert lemu.task_limit == 3 and lemu.limit_retry_after == 1.5
    assert requests.post(url, json={"action": "set", "task_limit": None}).ok and lemu.task_limit is None
    assert requests.post(url, json={"action": "set", "task_limit": 0}).status_code == 400
    lemu.limit_retry_after = 0.2


# --- the flags ---------------------------------------------------------------------------------
def test_cli_task_limit_flag_reaches_the_scheduler(lemu, tmp_path):
    from tests.test_cli import run

    r = run(["generate", "a lighthouse", "-n", "3", "--task-limit", "1"],
            {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": lemu.base_url}, tmp_path / "data")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 3 and lemu.peak_in_flight == 1 and lemu.throttled == 0


def test_emulator_command_plays_an_account_limit(tmp_path):
    import subprocess
    import sys

    from tests.appserver import free_port
    from tests.test_cli import ROOT

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aliyun_image", "emulator", "--port", str(port), "--latency", "2",
                             "--account-limit", "1", "--limit-retry-after", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PYTHONPATH": str(ROOT)})
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        client = DashScopeClient(Settings.from_env(env={}, base_url=base, api_key=TEST_KEY, max_retries=0))
        body = {"model": MODEL, "input": {"messages": [{"role": "user", "content": [{"text": "a cat"}]}]}}
        for _ in range(100):  # until it listens
            try:
                client.session.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        first = threading.Thread(target=client.generate, args=(TEST_KEY, body))
        first.start()
        health = f"http://127.0.0.1:{port}/_emulator/health"
        while client.session.get(health, timeout=5).json()["in_flight"] < 1:  # admitted, inside its latency
            time.sleep(0.02)
        with pytest.raises(ThrottledError) as info:
            client.generate(TEST_KEY, body, retry_throttled=False)
        first.join()
        assert info.value.retry_after == 3 and info.value.code == "Throttling.RateQuota"
        assert client.session.get(health, timeout=5).json()["throttled"] == 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_emulated_latency_grows_with_the_images_of_a_reply(lemu, tmp_path):
    svc = make_service(lemu, tmp_path)
    lemu.latency, lemu.image_latency = 0.05, 0.1
    try:
        batch = svc.generate("a lighthouse", model="qwen-image-2.0-pro", n=3)
    finally:
        lemu.image_latency = 0.0
    assert len(batch.results) == 3
    (call,) = lemu.calls("generation")
    assert call.latency == pytest.approx(0.05 + 3 * 0.1)  # what the emulator added, not a wall-clock reading
