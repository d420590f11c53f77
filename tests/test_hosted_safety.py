"""The shared demo against a hostile visitor, through the raw queue API where it matters.

- Stop without the page's cancel, racing the end of a run, many at once: every handler ends and
  every concurrency slot is free afterwards.
- Calls without a session never share an owner.
- Limits: upload size, offline-demo images per visitor and per hour, disk budget, sessions kept.
- Money and data: a call whose outcome is unknown counts as spent; a full disk keeps paid
  results pending and saves them when there is room, without showing server paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from aliyun_image.ui import AppContext, AppOptions
from aliyun_image.ui.endpoints import call_args
from aliyun_image.ui.layout import features
from aliyun_image.ui.layout import launch_kwargs

from .appserver import running
from .conftest import TEST_KEY
from .test_faults import tmpfs
from .test_ui_handlers import GEN_DEFAULTS, generate as handler_generate, req

def _gen_data(prompt: str, n: int = 1) -> list:
    """The raw API data of a /generate call (values in the API's order)."""
    return call_args("generate", **{**GEN_DEFAULTS, "prompt": prompt, "n": n})


def _fn_index(app, api_name: str) -> int:
    cfg = requests.get(f"{app.url}config", timeout=5).json()
    return next(d["id"] for d in cfg["dependencies"] if d.get("api_name") == api_name)


def _join(app, session: str, fn_index: int, data: list, headers: dict | None = None) -> str:
    r = requests.post(f"{app.url}gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                      "session_hash": session, "event_data": None, "trigger_id": None},
                      headers=headers or {}, timeout=10)
    r.raise_for_status()
    return r.json()["event_id"]


def _listen(app, session: str, events: set[str], deadline_s: float = 60) -> dict[str, dict]:
    """Read the session's event stream until every event in ``events`` completed (or the deadline:
    then the missing ones are absent from the result). Gradio sends a heartbeat every 15 s, so a
    stream that carries nothing else still lets the deadline be checked."""
    done: dict[str, dict] = {}
    deadline = time.monotonic() + deadline_s
    with requests.get(f"{app.url}gradio_api/queue/data", params={"session_hash": session}, stream=True,
                      timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed" and msg.get("event_id") in events:
                    done[msg["event_id"]] = msg
            if events <= done.keys() or time.monotonic() > deadline:
                break
    return done


# --- 1. Stop cannot leak a run ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def race_app(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "race-app", ["--base-url", emulator_server.base_url, "--concurrency", "6"],
                       # The account-limit scheduler off: this checks that Gradio's slots come back.
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY, "ALIYUN_IMAGE_TASK_LIMIT": "0"})


@pytest.mark.slow
def test_stop_without_cancel_racing_the_end_of_runs_leaks_nothing(race_app, emulator_server):
    emulator_server.clear()
    emulator_server.latency = (0.1, 0.4)
    gen, stop = _fn_index(race_app, "generate"), _fn_index(race_app, "stop_t2i")

    def pair(i: int) -> tuple[int, dict, str, str]:
        session = f"race-{i}-{uuid.uuid4().hex[:8]}"
        run_id = _join(race_app, session, gen, _gen_data(f"race {i}", n=2))
        time.sleep((i % 8) * 0.08)  # before, during and after the end of the run
        stop_id = _join(race_app, session, stop, [])  # no /cancel, as a script would do it
        return i, _listen(race_app, session, {run_id, stop_id}), run_id, stop_id

    def lone_stop(i: int) -> bool:
        session = f"nobody-{i}-{uuid.uuid4().hex[:8]}"
        event = _join(race_app, session, stop, [])
        return bool(_listen(race_app, session, {event}, deadline_s=60))

    try:
        with ThreadPoolExecutor(8) as pool:
            pairs = list(pool.map(pair, range(24)))
            assert all(pool.map(lone_stop, range(40))), "a Stop with no run must return at once"
        for i, done, run_id, stop_id in pairs:
            assert run_id in done and stop_id in done, f"pair {i}: a handler never finished"
            assert done[run_id]["success"] and done[stop_id]["success"], (i, done)
            status = done[stop_id]["output"]["data"][1]
            if isinstance(status, str) and "Stopped" in status:
                assert "Done:" not in status, status  # "Stopped: k of n kept", not followed by "Done"

        # Every slot is free again: six fresh runs (the app's concurrency) are all in flight at once.
        emulator_server.clear()
        emulator_server.latency = 10.0  # long next to starting six runs on a busy machine (parallel workers)
        sessions = [f"fresh-{i}-{uuid.uuid4().hex[:8]}" for i in range(6)]
        events = {s: _join(race_app, s, gen, _gen_data(f"fresh {s}")) for s in sessions}
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda s: _listen(race_app, s, {events[s]}), sessions))
        assert all(r and next(iter(r.values()))["success"] for r in results)
        assert emulator_server.peak_in_flight == 6
    finally:
        emulator_server.latency = 0.0


# --- 4. Isolation without a session -------------------------------------------------------------------
@pytest.fixture(scope="module")
def limits_app(tmp_path_factory):
    """Hosted offline demo (no host key) with small limits."""
    yield from running(tmp_path_factory, "limits-app", ["--hosted", "--max-upload-mb", "1",
                                                        "--demo-session-limit", "2", "--demo-total-limit", "6"],
                       hosted=True)


def _call_api(app, prompt: str) -> list:
    """The session-less REST API: POST /gradio_api/call/generate, then read its result stream."""
    r = requests.post(f"{app.url}gradio_api/call/generate", json={"data": _gen_data(prompt)}, timeout=10)
    r.raise_for_status()
    event = r.json()["event_id"]
    with requests.get(f"{app.url}gradio_api/call/generate/{event}", stream=True, timeout=30) as s:
        lines = [line.decode() for line in s.iter_lines() if line]
    return lines


@pytest.mark.slow
def test_callers_without_a_session_never_share_a_gallery(limits_app):
    first = _call_api(limits_app, "caller one")
    second = _call_api(limits_app, "caller two")
    assert any("event: complete" in line for line in first) and any("event: complete" in line for line in second)
    db = sqlite3.connect(limits_app.data_dir / "gallery.sqlite3")
    owners = dict(db.execute("SELECT prompt, owner FROM results WHERE prompt LIKE 'caller %'"))
    assert set(owners) == {"caller one", "caller two"}
    assert owners["caller one"] and owners["caller two"] and owners["caller one"] != owners["caller two"]
    assert "anonymous" not in str(owners.values())


# --- 3. Limits ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_upload_cap_refuses_big_files_in_the_callers_language(limits_app, tmp_path):
    url = f"{limits_app.url}gradio_api/upload"
    big = os.urandom(2 << 20)
    r = requests.post(url, files={"files": ("big.png", big, "image/png")}, timeout=30)
    assert r.status_code == 413 and r.json() == {"detail": "The upload is too large (limit 1 MB). Compress or "
                                                           "shrink the image and try again."}
    r = requests.post(url, files={"files": ("big.png", big, "image/png")}, headers={"Accept-Language": "ja-JP"},
                      timeout=30)
    assert r.status_code == 413 and r.json()["detail"].startswith("アップロードが大きすぎます（上限 1 MB）")

    def chunks():  # no Content-Length: the cap must hold while the body streams in
        boundary = b"--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n\r\n"
        yield boundary
        for i in range(0, len(big), 1 << 16):
            yield big[i:i + (1 << 16)]
        yield b"\r\n--xyz--\r\n"
    try:
        r = requests.post(url, data=chunks(), headers={"Content-Type": "multipart/form-data; boundary=xyz"},
                          timeout=30)
        assert r.status_code >= 400
    except requests.ConnectionError:
        pass  # the server may close the connection on a body it refused: also a refusal
    r = requests.post(url, files={"files": ("small.png", os.urandom(200_000), "image/png")}, timeout=30)
    assert r.status_code == 200
    # queue calls carry prompts, never files: a huge JSON body is refused before it is read
    r = requests.post(f"{limits_app.url}gradio_api/queue/join", data=b"[" + b"1," * (1 << 20) + b"1]",
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413


@pytest.mark.slow
def test_offline_demo_images_are_limited_per_visitor_and_per_hour(limits_app):
    from .test_app_api import client, generate, refused

    a = client(limits_app)
    assert len(generate(a, "demo one", n=2)[0]) == 2
    message = refused(generate, a, "demo three")
    assert "offline demo makes at most 2" in message and "离线演示" not in message  # English: no Accept-Language
    b = client(limits_app)
    assert len(generate(b, "demo four", n=2)[0]) == 2  # 6 for everyone this hour, 2 went to session-less calls
    message = refused(generate, client(limits_app), "demo five")  # a new visitor, but the hour is used up
    assert "budget for everyone (6 images" in message


def test_session_state_capacity_and_upload_cap_reach_gradio(emu, clean_env):
    ctx = AppContext(AppOptions(hosted=True, base_url=emu.base_url, data_dir=str(clean_env), max_sessions=300,
                                max_upload_mb=20))
    try:
        kw = launch_kwargs(ctx)
        assert kw["state_session_capacity"] == 300 and kw["max_file_size"] == 20 << 20
    finally:
        ctx.close()
    local = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env), max_upload_mb=0))
    try:
        kw = launch_kwargs(local)
        assert "state_session_capacity" not in kw and kw["max_file_size"] is None
    finally:
        local.close()


def test_disk_budget_deletes_the_oldest_hosted_results(emu, clean_env):
    ctx = AppContext(AppOptions(hosted=True, base_url=emu.base_url, data_dir=str(clean_env), disk_budget_mb=0))
    try:
        h = features(ctx)
        for i in range(5):
            handler_generate(h, f"budget {i}", req(f"v{i}"), api_key="")
        total = ctx.store.records.bytes_used()
        each = total // 5
        ctx.opts.disk_budget_mb = (2.5 * each) / (1 << 20)  # room for two and a half
        ctx.enforce_disk_budget()
        recs, count = ctx.store.page(limit=10)
        assert count == 2 and [r.prompt for r in recs] == ["budget 4", "budget 3"]
        assert ctx.store.records.bytes_used() <= 2.5 * each
        assert len(list((clean_env / "images").rglob("*.png"))) == 2
    finally:
        ctx.close()


# --- 5. Money and data -------------------------------------------------------------------------------
def test_a_call_whose_outcome_is_unknown_counts_against_the_host_quota(emu, clean_env, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    ctx = AppContext(AppOptions(hosted=True, base_url=emu.base_url, data_dir=str(clean_env), session_limit=2,
                                settings_overrides={"read_timeout": 0.5}))
    try:
        h = features(ctx)
        emu.fault("hang", seconds=3)
        out = handler_generate(h, "no reply", req("v"), api_key="")
        assert out.error is not None and "may have run and been billed" in out[-1][1]
        assert ctx.quota.used(ctx.owner("v")) == 1  # not refunded: it may have been billed
        emu.fail(status=400, code="DataInspectionFailed", message="flagged")
        out = handler_generate(h, "flagged", req("v"), api_key="")
        assert out.error is not None and ctx.quota.used(ctx.owner("v")) == 1  # a refusal is free: refunded
        assert len(handler_generate(h, "works", req("v"), api_key="")[-1][0]) == 1
        over = handler_generate(h, "over", req("v"), api_key="")  # the error says it; the status points to it
        assert "per visitor per hour" in over.error.message and "Nothing was sent" in over[-1][1]
    finally:
        ctx.close()


def test_full_disk_keeps_paid_results_pending_and_saves_them_later(emu, tmp_path):
    with tmpfs(tmp_path / "small", "3m") as mnt:
        ctx = AppContext(AppOptions(hosted=True, base_url=emu.base_url, data_dir=str(mnt / "outputs")))
        try:
            h = features(ctx)
            assert len(handler_generate(h, "fits", req("v"), api_key="")[-1][0]) == 1
            filler = mnt / "filler"
            with open(filler, "wb", buffering=0) as fh:  # fill the disk to the last block
                for chunk in (65536, 4096):
                    with contextlib.suppress(OSError):
                        while fh.write(b"\0" * chunk):
                            pass
            # Then leave exactly 32 KiB: room for the database's few new pages, none for an image (the
            # emulator's are 40 KiB and more). Left to the last 64 KiB write, what stayed free varied,
            # and now and then one of the two images fitted.
            os.truncate(filler, filler.stat().st_size - 32768)
            out = handler_generate(h, "paid but no room", req("v"), n=2, api_key="")
            status = out[-1][1]
            assert "saved automatically" in status and "disk is full" in status
            assert str(mnt) not in status and "download command" not in status and "DATA_DIR" not in status
            pending = ctx.store.pending()
            assert [p.prompt for p in pending] in (["paid but no room"] * 2, ["paid but no room"])
            assert all(p.url for p in pending)  # each one kept with its link, to be fetched again
            if len(pending) == 2:
                assert out.error is not None, "nothing was saved: the API caller must see an error"
            else:
                # The first failed write gives up the disk reserve to record its row; a download already
                # writing then has room and is saved: paid for, and not lost.
                assert ctx.gallery("v").page()[1] == 2
            assert not list((mnt / "outputs" / ".partial").iterdir())
            filler.unlink()
            ctx.housekeeping()  # what the periodic retry does
            assert not ctx.store.pending()
            recs, total = ctx.gallery("v").page()
            assert total == 3 and all(r.file.is_file() for r in recs)
        finally:
            ctx.close()


def test_summary_counts_what_came_back_honestly(emu, clean_env):
    import asyncio

    from aliyun_image.jobs import build_job
    from aliyun_image.generation.service import Event
    from aliyun_image.storage.store import Record
    from aliyun_image.ui.run_handlers import run_summary
    from aliyun_image.ui.runs import Run

    job = build_job("t2i", "a cat", n=1)
    loop = asyncio.new_event_loop()
    try:
        run = Run(job, "en", "own", loop)
        for i in range(3):
            rec = Record(id=i + 1, batch_id="b", idx=i, task="t2i", model=job.model, prompt="a cat", negative="",
                         params={}, seed=7, inputs=[], request_id="r", usage={}, actual_prompt=None, url="",
                         url_expires=None, status="done", error="", path="", bytes=1, width=1, height=1, owner=None,
                         created=0.0, updated=0.0, file=Path("x.png"))
            run.apply(Event("result", record=rec))
        run.apply(Event("done"))
    finally:
        loop.close()
    text = run_summary(run)
    assert "3 image(s) saved, 1 requested" in text and "3 of 1" not in text
    assert "Seed 7." in text  # each distinct seed once


# --- found by a hostile review --------------------------------------------------------------------
def test_stop_keeps_an_async_task_that_already_runs(settings, emu):
    """A task that already runs cannot be cancelled and will be billed: Stop still collects it."""
    import threading

    from aliyun_image.generation.service import ImageService

    svc = ImageService(settings.with_(poll_schedule=(0.05,)))
    emu_delay = emu.task_delay
    emu.task_delay = 1.5  # the emulator's task is PENDING for the first third, then RUNNING
    cancel = threading.Event()
    try:
        timer = threading.Timer(0.8, cancel.set)  # Stop while the task runs
        timer.start()
        batch = svc.generate("async and stopped", model="qwen-image", use_async=True, cancel=cancel)
        timer.join()
        assert len(batch.results) == 1 and batch.results[0].file.is_file(), batch.failures
        assert not svc.store.pending()
    finally:
        emu.task_delay = emu_delay
        svc.store.close()


def test_event_ids_of_session_less_calls_are_not_sessions():
    from types import SimpleNamespace

    from aliyun_image.ui.request_info import request_session

    def call(path: str, session: str = "abc123"):
        return SimpleNamespace(session_hash=session, request=object(), url=SimpleNamespace(path=path))

    assert request_session(call("/gradio_api/queue/join")) == "abc123"
    assert request_session(call("/gradio_api/call/generate")) is None  # Gradio used the public event id
    # The page sends un-queued events (the gallery's) to /run/predict with the hash it chose.
    assert request_session(call("/gradio_api/run/predict")) == "abc123"
    assert request_session(call("/gradio_api/call/v2/generate")) is None


def test_crafted_gallery_and_number_inputs_are_refused_cleanly(emu, clean_env):
    import zipfile

    ctx = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env)))
    try:
        h = features(ctx)
        handler_generate(h, "zip me", req())
        (rec,), _ = ctx.store.page()
        path, _ = h.gallery.gallery_zip([rec.id] * 5000, req())  # one id repeated: one file, not 5000
        assert zipfile.ZipFile(path).namelist() == [rec.file.name]
        out = handler_generate(h, "a cat", req(), n=float("nan"))
        assert out.error is not None and "1-6" in out[-1][1]  # the service's own bilingual refusal
    finally:
        ctx.close()


@pytest.mark.slow
def test_deep_link_parameter_is_dropped_however_it_is_spelled(limits_app):
    for query in ("deep_link=abc", "deep%5Flink=abc", "deep%5flink=abc"):
        cfg = requests.get(f"{limits_app.url}config?{query}", timeout=5).json()
        assert cfg.get("deep_link_state") in (None, "none"), query
