"""Attacks on the parts added with the visitor cookie, batches, /batch and /grid, lineage and Compare,
through one launched hosted app and the raw Gradio queue (what a hostile visitor of the shared demo can
send). Each test named a defect of the code it was written against; see the docstrings."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from aliyun_image.storage.records import DB_NAME
from aliyun_image.ui.endpoints import call_args

from .appserver import launch
from .test_visitor import raw_call as _call

pytestmark = pytest.mark.slow  # launches the app in a subprocess

LIMIT = 100  # offline-demo images per visitor per hour (the address: four times that)


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Hosted offline demo, no proxy trusted (the connection's address counts); a visitor's own key goes to
    the service (here the test emulator)."""
    root = tmp_path_factory.mktemp("attack-new")
    (root / "work").mkdir()
    # Every visitor here calls from 127.0.0.1: no cap on one address's runs going, and room for nine batches
    # at once (test_slow_batches_...; the caps themselves are tests/test_run_cap.py's).
    running = launch(["--hosted", "--base-url", emulator_server.base_url, "--demo-session-limit", str(LIMIT),
                      "--demo-total-limit", "1000"],
                     root / "persist", cwd=root / "work",
                     env_extra={"ALIYUN_IMAGE_RUNS_PER_ADDRESS": "0", "ALIYUN_IMAGE_BATCH_MAX_RUNNING": "16"})
    try:
        yield running
    finally:
        running.stop()


BATCH = dict(variables="", negative="", quality="plus", model="", size="", n=1, seed=-1, prompt_extend=True,
             watermark=False)


def _batch(app, prompts: str, **who) -> dict:
    return _call(app, "batch", call_args("batch", **{**BATCH, "prompts": prompts}), **who)


def _cookie(app) -> str:
    r = requests.get(app.url, timeout=10)
    return r.headers["set-cookie"].split(";")[0].split("=", 1)[1]


def _db(app, sql: str, *args) -> list[tuple]:
    db = sqlite3.connect(f"file:{Path(app.data_dir) / DB_NAME}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _units(app) -> int:
    if not _db(app, "SELECT name FROM sqlite_master WHERE name='batch_units'"):
        return 0  # created with the first batch
    return int(_db(app, "SELECT count(*) FROM batch_units")[0][0])


def test_the_same_batch_sent_eight_times_at_once_is_made_and_paid_once(app):
    """Was: each call looked for its batch, planned it, then stored a new one: calls at once (a double
    click, a client retrying) made the same images two or three times, each paid (and counted)."""
    cookie = _cookie(app)
    tag = uuid.uuid4().hex[:8]
    prompts = "\n".join(f"twice {tag} thing {i}" for i in range(40))
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: _batch(app, prompts, cookie=cookie), range(8)))
    assert any(o["success"] for o in outs), outs
    assert _db(app, "SELECT count(*) FROM results WHERE prompt LIKE ?", f"twice {tag} %")[0][0] == 40
    assert _db(app, "SELECT count(*) FROM batches WHERE spec LIKE ?", f"%twice {tag} %")[0][0] == 1
    for o in outs:  # the others were told the batch is busy (naming it) or that one of theirs runs, or found it done
        text = str(o["output"]["data"][1] if o["success"] else o["output"]["error"])
        assert ("Batch " in text or "A batch of yours is running already" in text) and "Traceback" not in text, text


def test_a_batch_refused_by_the_quota_leaves_no_rows(app):
    """Was: the batch and its units were stored before the quota and budgets were asked, so a caller
    refused in a loop (a new owner each call without a session or cookie, or new prompts) added up to a
    hundred rows per call, for ever."""
    cookie = _cookie(app)
    for _half in range(2):  # the visitor's hour, used up
        out = _batch(app, "\n".join(f"use up {uuid.uuid4().hex[:6]} {k}" for k in range(LIMIT // 2)), cookie=cookie)
        assert out["success"], out
    before = _units(app)
    for i in range(5):
        out = _batch(app, "\n".join(f"over quota {i} {k}" for k in range(5)), cookie=cookie)
        assert not out["success"]
        assert "Quota.Exceeded" in str(out["output"]["error"]), out
    assert _units(app) == before


def test_a_refused_key_stops_a_batch_after_its_first_answers_and_leaves_no_trace(app, emulator_server):
    """Was: a visitor's junk key (not limited by the hourly quota: their key, their bill) made the server
    send every request of the batch, each refused the same way: a hundred doomed requests per call."""
    emulator_server.clear()
    key = "sk-invalid-" + uuid.uuid4().hex
    prompts = "\n".join(f"junk key {k}" for k in range(40))
    out = _call(app, "batch", call_args("batch", **{**BATCH, "prompts": prompts}),
                headers={"X-DashScope-API-Key": key})
    assert not out["success"]
    error = str(out["output"]["error"])
    assert "InvalidApiKey" in error or "key" in error.lower()
    sent = len(emulator_server.calls("generation")) + len(emulator_server.calls("image-synthesis"))
    assert 1 <= sent < 40
    files = [p for p in Path(app.data_dir).rglob("*") if p.is_file()] + [Path(app.log)]
    assert not [p for p in files if key.encode() in p.read_bytes()]


GRID = dict(y="", negative="", quality="plus", model="", size="", seed=-1, prompt_extend=True, watermark=False)


def test_a_visitors_key_leaves_no_trace_in_a_grid_its_batch_rows_lineage_or_the_log(app):
    """Held: a visitor's own (valid) key makes a grid; the key is nowhere in the data dir (database, PNGs
    with their recipes, the grid image), Gradio's temp dir or the log; a second visitor cannot list it."""
    key = "sk-canary-" + uuid.uuid4().hex
    cookie = _cookie(app)
    data = call_args("grid", **{**GRID, "prompt": "a {thing} on a table", "x": "thing=cup,bowl",
                                "y": "seed=1,2"})
    out = _call(app, "grid", data, cookie=cookie, headers={"X-DashScope-API-Key": key})
    assert out["success"], out
    assert len(out["output"]["data"][0]) == 5  # four cells and the grid
    roots = [Path(app.data_dir), Path(app.data_dir).parent / "gradio-tmp"]
    files = [p for r in roots for p in r.rglob("*") if p.is_file()] + [Path(app.log)]
    assert not [p for p in files if key.encode() in p.read_bytes()]
    other = _call(app, "gallery_first_page", ["", "", ""], cookie=_cookie(app))
    assert other["success"], other
    assert "table" not in json.dumps(other["output"])


def test_slow_batches_of_one_visitor_do_not_hold_up_another_visitors_batch(app, emulator_server):
    """Was: /batch and /grid ran in the event loop's default executor (six threads on two cores): eight
    batches whose requests hang at the service (a visitor's own key, a slow network) held all of them, and
    another visitor's one-image batch waited until they ended."""
    emulator_server.clear()
    emulator_server.fault("hang", times=8, seconds=30)
    try:
        def slow(i: int) -> dict:
            return _call(app, "batch", call_args("batch", **{**BATCH, "prompts": f"slow {i} {uuid.uuid4().hex}"}),
                         cookie=_cookie(app), headers={"X-DashScope-API-Key": f"sk-slow-{i}-{uuid.uuid4().hex}"})

        with ThreadPoolExecutor(8) as pool:
            hung = [pool.submit(slow, i) for i in range(8)]
            deadline = time.monotonic() + 60
            while len(emulator_server.calls("generation")) < 6 and time.monotonic() < deadline:
                time.sleep(0.1)  # the slow batches have started (six at least: the old executor's size)
            out = _batch(app, f"quick {uuid.uuid4().hex}", cookie=_cookie(app))
            assert out["success"], out
            assert not [f for f in hung if f.done()]  # answered while every slow batch still waited
            emulator_server.state.stopping.set()  # wake the hung requests
    finally:
        emulator_server.state.stopping.clear()
        emulator_server.clear()


def test_a_template_with_thousands_of_variables_is_refused_before_any_work(app):
    """Was: each line's variables were searched again for every axis (and every name in a list): 2000
    one-value variables took 23 s of a core to refuse, the 1 MiB a call may carry hours."""
    n = 3000
    data = call_args("batch", **{**BATCH, "prompts": " ".join(f"{{v{i}}}" for i in range(n)),
                                 "variables": "\n".join(f"v{i}=a" for i in range(n))})
    out = _call(app, "batch", data, cookie=_cookie(app))
    assert not out["success"]
    error = str(out["output"]["error"])
    assert f"{n}" in error and "20" in error and "Validation.Batch" in error, error
