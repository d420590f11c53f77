"""Attacks on the endpoints added with the result actions, kept inputs, trash and cost line, through a
launched hosted app and the raw queue / un-queued routes (what a hostile visitor of the shared demo can
send). Each test here failed on the code it was written against; see the docstrings."""

from __future__ import annotations

import io
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from aliyun_image.ui.endpoints import call_args

from .appserver import launch
from .conftest import TEST_KEY
from .test_app_api import EDIT_DEFAULTS
from .test_hosted_safety import _fn_index, _gen_data, _join, _listen

pytestmark = pytest.mark.slow  # launches the app in a subprocess


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Hosted offline demo; its temp files (zips, Gradio's cache) under the test's own folder."""
    root = tmp_path_factory.mktemp("attack")
    (root / "tmp").mkdir()
    app = launch(["--hosted"], root / "outputs", cwd=root, env_extra={"TMPDIR": str(root / "tmp")})
    try:
        yield app
    finally:
        app.stop()


def test_repeated_zip_of_the_same_results_does_not_fill_the_disk(demo):
    """``/download_matching`` (and ``/download_run``) write a new zip of up to 200 originals per call,
    kept ten minutes in the app's zip folder and copied again into Gradio's cache (kept six hours
    when hosted), outside the disk budget. A visitor who asks for the same zip over and over, or a
    script, fills the server's disk: 8 calls here leave 8+ copies of one zip."""
    visitor = f"zipper-{uuid.uuid4().hex[:8]}"
    gen, match = _fn_index(demo, "generate"), _fn_index(demo, "download_matching")
    event = _join(demo, visitor, gen, _gen_data("zip flood cat", n=4))
    assert _listen(demo, visitor, {event})[event]["success"]
    temp = [demo.data_dir.parent / "tmp", demo.data_dir.parent / "gradio-tmp"]
    start = sum(_du(p) for p in temp)
    sizes = []
    for i in range(8):
        event = _join(demo, visitor, match, ["", "", ""])
        done = _listen(demo, visitor, {event})[event]
        assert done["success"] or i > 0, done  # the first zip is made; repeats may be refused
        if done["success"]:
            sizes.append(Path(done["output"]["data"][0]["path"]).stat().st_size)
    grown = sum(_du(p) for p in temp) - start
    # One zip made twice (the app's copy and Gradio's cached copy) is what the same request needs.
    assert grown <= 2 * max(sizes) + 4096, f"8 identical zips of {max(sizes)} bytes left {grown} bytes"


@pytest.fixture(scope="module")
def keyless(tmp_path_factory, emulator_server):
    """Hosted, no host key, a visitor's key goes to the service (here the emulator); 1 MB disk budget."""
    root = tmp_path_factory.mktemp("attack-keys")
    app = launch(["--hosted", "--base-url", emulator_server.base_url, "--disk-budget-mb", "1"], root / "outputs",
                 cwd=root)
    try:
        yield app
    finally:
        app.stop()


def _noise_upload(app) -> dict:
    """A fresh 600x600 noise PNG (about 1 MB, new content each time) uploaded like the page does."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng().integers(0, 255, (600, 600, 3), dtype=np.uint8)).save(buf, "PNG")
    r = requests.post(f"{app.url}gradio_api/upload", files={"files": ("n.png", buf.getvalue(), "image/png")},
                      timeout=30)
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}


def test_runs_refused_for_a_bad_key_keep_no_input_images(keyless):
    """Kept inputs are written before the request is sent (service.py ``keep_job_inputs``), per owner,
    outside the disk budget (``store.prune`` counts only done results) and collected only when a prune
    or the trash removes a row, after an hour. A visitor with any made-up key (no quota: "own" key)
    sends fusions of three fresh uploads: each is refused (401, nothing made, no row), yet its three
    images stay in ``outputs/inputs/<owner>/``. Three calls here leave ~9 MB against a 1 MB budget; at
    the hosted 20 MB upload limit that is 60 MB per call."""
    fuse, visitor = _fn_index(keyless, "fuse"), f"mallory-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        data = call_args("fuse", **{**EDIT_DEFAULTS, "image1": _noise_upload(keyless), "image2": _noise_upload(keyless),
                                    "image3": _noise_upload(keyless), "instruction": "merge 图1 图2 图3"})
        event = _join(keyless, visitor, fuse, data, headers={"X-DashScope-API-Key": "not-a-key"})
        done = _listen(keyless, visitor, {event})[event]
        assert not done["success"] and "InvalidApiKey" in str(done["output"]), done
    db = sqlite3.connect(keyless.data_dir / "gallery.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0  # nothing was made
    kept = _du(keyless.data_dir / "inputs")
    assert kept <= 1 << 20, f"{kept} bytes of inputs kept for runs that made nothing (disk budget 1 MB)"


def _direct(app, session: str, api_name: str, data: list, index: int | None = None) -> dict:
    """An un-queued event as the page sends it (``/gradio_api/run/predict``), in ``session``."""
    body = {"data": data, "fn_index": _fn_index(app, api_name), "session_hash": session, "trigger_id": None,
            "event_data": None if index is None else {"index": index, "value": None, "selected": True}}
    r = requests.post(f"{app.url}gradio_api/run/predict", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """Hosted offline demo with a 0.5 MB disk budget."""
    root = tmp_path_factory.mktemp("attack-trash")
    app = launch(["--hosted", "--disk-budget-mb", "0.5"], root / "outputs", cwd=root)
    try:
        yield app
    finally:
        app.stop()


def test_trash_counts_against_the_disk_budget(tight):
    """``store.bytes_used``/``prune`` count and delete only ``done`` results: a deleted result's file
    moves to ``trash/`` and stays there a day (hosted), outside the disk budget. Make, delete, make
    again: the results folder holds more than its budget (the oldest *other* visitors' results are
    pruned to make room for the new ones, while the trash keeps growing)."""
    visitor = f"trasher-{uuid.uuid4().hex[:8]}"
    gen = _fn_index(tight, "generate")
    for round_ in range(3):
        event = _join(tight, visitor, gen, _gen_data(f"trash round {round_}", n=4))
        assert _listen(tight, visitor, {event})[event]["success"]
        if round_ == 2:
            break
        for _ in range(4):  # select the first thumbnail of the page and delete it, as the page does
            _direct(tight, visitor, "gallery_page", ["", "", "", 1])
            _direct(tight, visitor, "gallery_select", [None], index=0)
            _direct(tight, visitor, "gallery_delete", [None])
    trash = _du(tight.data_dir / "trash")
    assert trash > 0, "nothing was deleted: the test's clicks did not work"
    used = _du(tight.data_dir / "images") + trash
    assert used <= (1 << 19) + 200_000, f"{used} bytes of images and trash against a 0.5 MB budget ({trash} trash)"


@pytest.fixture(scope="module")
def two_slots(tmp_path_factory, emulator_server):
    """Hosted with the host's key, two runs at once (Gradio's ``runs`` concurrency); the account-limit
    scheduler off, so only Gradio's limit is in play."""
    root = tmp_path_factory.mktemp("attack-direct")
    app = launch(["--hosted", "--base-url", emulator_server.base_url, "--concurrency", "2"], root / "outputs",
                 cwd=root, env_extra={"DASHSCOPE_API_KEY": TEST_KEY, "ALIYUN_IMAGE_TASK_LIMIT": "0"})
    try:
        yield app
    finally:
        app.stop()


def test_direct_run_route_keeps_the_runs_concurrency_limit(two_slots, emulator_server):
    """Queued events (generate, variations, download_run, download_matching) also answer on the
    un-queued ``/gradio_api/run/<api_name>`` route (Gradio's ``api_open``), where no
    ``concurrency_limit`` applies: the ``runs`` limit (here 2) and the ``zips`` limit (2) are not
    enforced for a script, and since today's fix that route also acts as the session it names.
    Six direct calls here put six requests in flight at once."""
    emulator_server.clear()
    emulator_server.latency = 1.0
    try:
        def direct(i: int) -> int:
            r = requests.post(f"{two_slots.url}gradio_api/run/generate", timeout=60,
                              json={"data": _gen_data(f"direct {i}"), "session_hash": f"d{i}-{uuid.uuid4().hex[:8]}"})
            return r.status_code

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(direct, range(6)))
        db = sqlite3.connect(two_slots.data_dir / "gallery.sqlite3")
        # the abandoned generators go on in the background: wait for their results (none when refused)
        for _ in range(600 if any(c != 404 for c in codes) else 0):
            if db.execute("SELECT COUNT(*) FROM results WHERE status='done'").fetchone()[0] >= 6:
                break
            time.sleep(0.1)
        peak = emulator_server.peak_in_flight
    finally:
        emulator_server.latency = 0.0
    assert all(c == 404 for c in codes) or peak <= 2, f"direct calls {codes}: {peak} requests in flight, limit 2"
