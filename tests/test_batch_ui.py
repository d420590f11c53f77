"""The Batch tab's endpoints (issue 18 items 1-3, page side) through one launched hosted app: the plan,
a run that fills every place and ends with a summary and a zip, Stop then Resume with nothing sent
twice, a batch that goes on when its page is gone and is found again by its owner's cookie, and what
a hostile visitor can send through the raw queue (another owner's batch id, no session, a template
of a million combinations, a burst of Runs, the hosted quota).

Calls with the ``X-DashScope-API-Key`` header go to the test emulator (the visitor's own key: no
hourly quota); calls without it go to the app's offline demo, capped at 3 images per visitor."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from aliyun_image.config import Settings
from aliyun_image.generation import batch as batches
from aliyun_image.ui.batch_view import BatchLimits, page_spec, variable_axes

from .appserver import running
from .conftest import TEST_KEY
from .test_hosted_safety import _fn_index, _join, _listen

pytestmark = pytest.mark.slow  # launches the app in a subprocess
KEY = {"X-DashScope-API-Key": TEST_KEY}


def args(prompts: str, mode: str = "list", variables: str = "", x: tuple[str, str] = ("seed", ""),
         y: tuple[str, str] = ("", ""), n: int = 1) -> list:
    """The values of /batch_run and /batch_plan in the page's order."""
    return [mode, prompts, variables, x[0], x[1], y[0], y[1], "plus", "", "1328*1328", n, -1, "", False, False,
            "direct", True]


def sent(emu) -> list:
    """Generation requests the emulator carried out (each may be billed)."""
    return [r for r in emu.calls("generation") + emu.calls("task_create") if not r.throttled]


def batches_stored(app) -> int:
    with sqlite3.connect(app.data_dir / "gallery.sqlite3") as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='batches'").fetchone():
            return 0  # the batch tables are made on first use
        return db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]


def wait_for(check, what: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "batch-ui", ["--hosted", "--base-url", emulator_server.base_url,
                                                       "--demo-session-limit", "3"], hosted=True)


@pytest.fixture
def client(app):
    from gradio_client import Client

    return Client(app.url, headers=KEY, verbose=False)


# --- input limits, no app -------------------------------------------------------------------------------
def test_limits_are_the_modes_and_the_environment_changes_them():
    def limits(hosted: bool, env: dict) -> BatchLimits:
        return BatchLimits.from_settings(Settings.from_env(env, hosted=hosted))

    assert limits(True, {}).max_items == 100
    assert limits(False, {}).max_items == batches.MAX_UNITS
    assert limits(True, {"ALIYUN_IMAGE_BATCH_MAX_ITEMS": "7"}).max_items == 7
    assert limits(False, {"ALIYUN_IMAGE_BATCH_MAX_ITEMS": "7"}).max_items == 7
    assert limits(True, {"ALIYUN_IMAGE_BATCH_MAX_ITEMS": "lots"}).max_items == 100  # ignored, as always
    assert limits(True, {"ALIYUN_IMAGE_BATCH_MAX_ITEMS": "5000"}).max_items == batches.MAX_UNITS
    assert Settings.from_env({"ALIYUN_IMAGE_BATCH_MAX_RUNNING": "2"}).concurrency.batch_max_running == 2
    assert Settings.from_env({"ALIYUN_IMAGE_BATCH_MAX_RUNNING": "0"}).concurrency.batch_max_running == 8


def test_the_batch_tab_reads_its_limits_through_the_app_context(emu, clean_env, monkeypatch):
    from aliyun_image.runtime import AppContext, AppOptions
    from aliyun_image.ui.batch_handlers import BatchHandlers

    monkeypatch.setenv("ALIYUN_IMAGE_BATCH_MAX_ITEMS", "7")
    monkeypatch.setenv("ALIYUN_IMAGE_BATCH_MAX_RUNNING", "2")
    ctx = AppContext(AppOptions(hosted=True, base_url=emu.base_url, data_dir=str(clean_env)))
    try:
        assert BatchHandlers(ctx).view.limits.max_items == 7 and ctx.run_slots.batches == 2
    finally:
        ctx.close()


def test_variables_box_and_grid_axes_become_the_engines_axes():
    axes = variable_axes("animal=cat, fox\n# a comment\n{time} = noon,night\n")
    assert [(a.name, a.values) for a in axes] == [("animal", ("cat", "fox")), ("time", ("noon", "night"))]
    spec = page_spec(BatchLimits(10), "grid", "a {animal}", "", [("{animal}", "cat,fox"), ("seed", "1,2")],
                     {"n": 4})
    assert spec.kind == "grid" and spec.options["n"] == 1 and [a.name for a in spec.axes] == ["animal", "seed"]


# --- the plan and a run ---------------------------------------------------------------------------------
def test_plan_says_items_images_and_price_and_sends_nothing(app, client, emu):
    before = batches_stored(app)
    text = client.predict(*args("a red {animal}\n# skip me\na blue {animal}", variables="animal=cat,fox", n=2),
                          api_name="/batch_plan")
    assert "4 item(s)" in text and "8 image(s)" in text and "¥" in text, text
    assert not sent(emu) and batches_stored(app) == before


def test_run_fills_every_place_then_summary_zip_and_the_owners_list(client, emu):
    job = client.submit(*args("a red fox\na blue fox\na green fox", n=2), api_name="/batch_run")
    final = job.result(timeout=120)
    first = job.outputs()[0][0]
    assert len(first) == 6 and all("waiting" in tile["caption"] for tile in first)  # every place from the start
    captions = [tile["caption"] for tile in final[0]]
    assert [c.split(" · ")[0] for c in captions] == ["1.1", "1.2", "2.1", "2.2", "3.1", "3.2"]
    assert all(re.search(r" · #\d+ · a (red|blue|green) fox", c) for c in captions), captions
    assert "6 of 6 images stored" in final[1], final[1]
    with zipfile.ZipFile(final[3]["value"]) as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 6
    picker = final[4]
    assert picker["value"] in [value for _, value in picker["choices"]]
    assert len(sent(emu)) in (3, 6)  # one request per item, or one per image for a fan-out model


def test_stop_keeps_what_was_sent_and_resume_makes_only_the_rest(client, emu):
    emu.latency = 1.5
    prompts = [f"stop test {i}" for i in range(8)]
    job = client.submit(*args("\n".join(prompts)), api_name="/batch_run")
    wait_for(lambda: sent(emu), "the first request")
    assert "Stopping batch" in client.predict(api_name="/batch_stop")
    stopped = job.result(timeout=120)
    first = len(sent(emu))
    assert 1 <= first < 8
    assert stopped[1].count("#") == 0 and f"{first} of 8 images stored" in stopped[1], stopped[1]
    assert f"{8 - first} request(s) were not sent" in stopped[1]
    emu.latency = 0.0
    batch_id = stopped[4]["value"]
    resumed = client.submit(batch_id, api_name="/batch_resume").result(timeout=120)
    assert "8 of 8 images stored" in resumed[1], resumed[1]
    bodies = [r.body for r in sent(emu)]
    assert len(bodies) == 8 and all(sum(p.encode() in b for b in bodies) == 1 for p in prompts)  # none twice


# --- a page closed mid-batch, reopened; another owner --------------------------------------------------
def _visitor(app) -> requests.Session:
    """A browser's cookie jar: the page load sets the visitor cookie (hosted mode)."""
    s = requests.Session()
    s.get(app.url, timeout=10).raise_for_status()
    assert s.cookies, "the hosted page sets a visitor cookie"
    return s


def _call(app, visitor: requests.Session | None, api_name: str, data: list, session: str | None = None,
          headers: dict | None = None) -> dict:
    """One queued call as a page sends it, in a session of its own; its completion message."""
    session = session or uuid.uuid4().hex[:11]
    cookie = "; ".join(f"{k}={v}" for k, v in visitor.cookies.items()) if visitor is not None else ""
    event = _join(app, session, _fn_index(app, api_name), data, headers={**(headers or {}), "Cookie": cookie})
    return _listen(app, session, {event})[event]


def test_batch_goes_on_when_its_page_is_gone_and_only_its_owner_finds_it(app, emu):
    alice, mallory = _visitor(app), _visitor(app)
    emu.latency = 0.5
    session = uuid.uuid4().hex[:11]
    event = _join(app, session, _fn_index(app, "batch_run"),
                  args("\n".join(f"closed page {i}" for i in range(6))), headers={**KEY, "Cookie": "; ".join(
                      f"{k}={v}" for k, v in alice.cookies.items())})
    with requests.get(f"{app.url}gradio_api/queue/data", params={"session_hash": session}, stream=True,
                      timeout=30) as stream:  # the page shows the first tiles, then goes away
        for line in stream.iter_lines():
            if line.startswith(b"data:") and json.loads(line[5:]).get("msg") == "process_generating":
                break
    requests.post(f"{app.url}gradio_api/cancel", json={"session_hash": session, "event_id": event,
                                                        "fn_index": _fn_index(app, "batch_run")}, timeout=10)
    # Mallory, with Alice's batch id: she cannot stop it, see it, resume it, or find it in her list.
    listing = _call(app, alice, "batch_list", [])
    batch_id = listing["output"]["data"][0]["choices"][0][1]
    assert "No batch of yours is running" in _call(app, mallory, "batch_stop", [])["output"]["data"][0]
    for name in ("batch_show", "batch_resume"):
        done = _call(app, mallory, name, [batch_id], headers=KEY)
        assert not done["success"] and "no batch" in str(done["output"]).lower(), done
    theirs = _call(app, mallory, "batch_list", [])["output"]["data"][0]["choices"]
    assert batch_id not in [value for _, value in theirs]
    # Alice comes back in a new page (a new session, her cookie): the batch ran on without her.
    wait_for(lambda: len(sent(emu)) == 6, "all six requests", 120)
    shown = _call(app, alice, "batch_show", [batch_id])
    assert shown["success"], shown
    gallery, status = shown["output"]["data"][0], shown["output"]["data"][1]
    assert "6 of 6 images stored" in status and len(gallery) == 6, status
    assert len(sent(emu)) == 6  # Mallory's Resume sent nothing


def test_session_less_calls_see_no_batch(app, client):
    client.predict(*args("one for the record"), api_name="/batch_run")
    r = requests.post(f"{app.url}gradio_api/call/batch_list", json={"data": []}, timeout=10)
    event = r.json()["event_id"]
    body = requests.get(f"{app.url}gradio_api/call/batch_list/{event}", timeout=30).text
    assert '"choices": []' in body or '"choices":[]' in body, body


# --- what a hostile visitor sends -------------------------------------------------------------------------
@pytest.mark.parametrize("prompts,variables,words", [
    ("{a} {b} {c}", "\n".join(f"{n}=" + ",".join(str(i) for i in range(100)) for n in "abc"),
     "1000000 combinations"),
    ("\n".join(f"prompt {i}" for i in range(150)), "", "150 combinations"),
    ("x" * 200_000, "", "200000 characters"),
    ("a {v0}", "\n".join(f"v{i}=1,2" for i in range(30)), "30 variable lines"),
])
def test_huge_input_is_refused_before_anything(app, emu, prompts, variables, words):
    before = batches_stored(app)
    t0 = time.monotonic()
    done = _call(app, None, "batch_run", args(prompts, variables=variables), headers=KEY)
    assert not done["success"] and words in str(done["output"]), done
    assert batches_stored(app) == before and not sent(emu)
    assert time.monotonic() - t0 < 30  # refused by counting, not by building a million prompts


def test_a_burst_of_runs_stores_one_batch(app, emu):
    visitor, session = _visitor(app), uuid.uuid4().hex[:11]
    emu.latency = 0.5
    before = batches_stored(app)
    with ThreadPoolExecutor(10) as pool:
        outs = list(pool.map(lambda i: _call(app, visitor, "batch_run", args(f"burst {i}\nburst {i} again"),
                                             session=uuid.uuid4().hex[:11], headers=KEY), range(10)))
    assert sum(o["success"] for o in outs) == 1, [str(o["output"])[:120] for o in outs]
    refused = [o for o in outs if not o["success"]]
    assert all("running already" in str(o["output"]) for o in refused)
    assert batches_stored(app) == before + 1 and len(sent(emu)) == 2
    del session


def test_the_hosted_quota_refuses_a_batch_before_anything(app, emu):
    before = batches_stored(app)
    data = args("\n".join(f"free {i}" for i in range(4)))  # 4 images; the offline demo allows 3 an hour
    plan = _call(app, None, "batch_plan", data)["output"]["data"][0]
    assert "4 image(s)" in plan and "3 or fewer" in plan, plan
    done = _call(app, None, "batch_run", data)
    assert not done["success"] and "3 or fewer" in str(done["output"]), done
    assert batches_stored(app) == before and not sent(emu)
