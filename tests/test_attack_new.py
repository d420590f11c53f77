"""Attacks on the parts added with the visitor cookie, batches, /batch and /grid, lineage and Compare,
through one launched hosted app and the raw Gradio queue (what a hostile visitor of the shared demo can
send). Each test named a defect of the code it was written against; see the docstrings."""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from aliyun_image.storage.records import DB_NAME
from aliyun_image.ui.endpoints import call_args

from .appserver import launch
from .test_visitor import _call

pytestmark = pytest.mark.slow  # launches the app in a subprocess

LIMIT = 100  # offline-demo images per visitor per hour (the address: four times that)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """Hosted offline demo, no proxy trusted (the connection's address counts)."""
    root = tmp_path_factory.mktemp("attack-new")
    (root / "work").mkdir()
    running = launch(["--hosted", "--demo-session-limit", str(LIMIT), "--demo-total-limit", "1000"],
                     root / "persist", cwd=root / "work")
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
    for o in outs:  # the others were told the batch is busy (naming it), or found it done
        text = str(o["output"]["data"][1] if o["success"] else o["output"]["error"])
        assert "Batch " in text and "Traceback" not in text, text


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
