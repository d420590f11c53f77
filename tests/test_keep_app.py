"""Nothing is lost, through the launched app: gradio_client on the public API, and the raw queue
API (what any HTTP client can send) for the private reuse / delete / Undo / PNG info events of a
hosted app, where one visitor must never reach another's inputs or trash."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid

import pytest
import requests
from gradio_client import handle_file
from PIL import Image

from .conftest import gradio_client
from .appserver import running
from .test_app_api import edit, fuse
from .test_hosted_safety import _listen

pytestmark = pytest.mark.slow  # launches the app in a subprocess


@pytest.fixture(scope="module")
def hosted_app(tmp_path_factory):
    yield from running(tmp_path_factory, "keep-hosted", ["--offline", "--hosted"], hosted=True)


@pytest.fixture(scope="module")
def local_app(tmp_path_factory):
    yield from running(tmp_path_factory, "keep-local", ["--offline"])


def _rows(app) -> list[dict]:
    db = sqlite3.connect(app.data_dir / "gallery.sqlite3")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT id, status, inputs, owner FROM results ORDER BY id")]
    finally:
        db.close()


def _call(app, name: str, data: list, session: str, event_data: dict | None = None, whole: bool = False):
    """A raw queue call of the event named ``name`` (private ones too): its output values (or the
    whole completion message)."""
    cfg = requests.get(f"{app.url}config", timeout=5).json()
    fn = next(d["id"] for d in cfg["dependencies"] if d.get("api_name") == name)
    r = requests.post(f"{app.url}gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session,
                      "event_data": event_data, "trigger_id": None}, timeout=10)
    r.raise_for_status()
    event = r.json()["event_id"]
    msg = _listen(app, session, {event}, 30)[event]
    return msg if whole else (msg.get("output") or {}).get("data") or []


def _select_first(app, session: str) -> None:
    """What the page does when a visitor opens the gallery and clicks the first thumbnail."""
    _call(app, "gallery_page", ["", "", "", 1], session)
    _call(app, "gallery_select", [None], session, {"index": 0, "value": None})


def test_edit_and_fusion_inputs_are_kept_once(local_app, tmp_path):
    c = gradio_client(local_app.url, verbose=False)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (640, 480), "teal").save(a)
    Image.new("RGB", (480, 640), "gold").save(b)
    edit(c, handle_file(str(a)), "make it blue")
    fuse(c, [handle_file(str(a)), handle_file(str(b))], "图1 和 图2")
    rows = _rows(local_app)
    inputs = [json.loads(r["inputs"]) for r in rows]
    stored = {i["stored"] for row in inputs for i in row}
    assert len(stored) == 2 and inputs[0][0]["stored"] == inputs[1][0]["stored"]  # a.png twice, kept once
    for row in inputs:
        for i in row:
            data = (local_app.data_dir / i["stored"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == i["sha256"]


def test_hosted_reuse_delete_and_undo_reach_only_the_owners_results(hosted_app, tmp_path):
    src = tmp_path / "alice.png"
    Image.new("RGB", (640, 480), "purple").save(src)
    alice = gradio_client(hosted_app.url, verbose=False)
    edit(alice, handle_file(str(src)), "alice edits")
    row = _rows(hosted_app)[-1]
    rid, kept = row["id"], json.loads(row["inputs"])[0]["stored"]
    bob = "bob-" + uuid.uuid4().hex[:8]

    # Bob sends Alice's id to every private event: nothing of hers comes back or changes.
    out = _call(hosted_app, "reuse", [rid], bob)
    assert "Select an image" in out[1] and kept.split("/")[-1] not in json.dumps(out)
    assert "Select an image" in _call(hosted_app, "gallery_delete", [rid], bob)[1]
    assert _rows(hosted_app)[-1]["status"] == "done"
    # Alice's own session: reuse gives her input image back (a file Gradio serves to her page).
    _select_first(hosted_app, alice.session_hash)
    out = _call(hosted_app, "reuse", [None], alice.session_hash)
    assert "1 input image" in json.dumps(out) and any(isinstance(v, dict) and v.get("path") for v in out)
    # She deletes; Bob's Undo (even with her id) restores nothing, hers does.
    assert "trash" in _call(hosted_app, "gallery_delete", [None], alice.session_hash)[1]
    assert _rows(hosted_app)[-1]["status"] == "trashed"
    assert "Nothing to undo" in _call(hosted_app, "gallery_undo", [rid], bob)[0]
    assert _rows(hosted_app)[-1]["status"] == "trashed"
    assert f"#{rid} is back" in _call(hosted_app, "gallery_undo", [None], alice.session_hash)[0]
    assert _rows(hosted_app)[-1]["status"] == "done"


def test_hosted_png_info_refuses_a_crafted_server_path(hosted_app):
    secret = hosted_app.data_dir / "gallery.sqlite3"
    msg = _call(hosted_app, "png_info", [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}],
                "eve-" + uuid.uuid4().hex[:8], whole=True)
    # Gradio itself refuses a file that was not uploaded (the handler's own check is the second line:
    # tests/test_keep.py::test_hosted_png_info_reads_only_uploads); nothing is read or filled.
    assert msg["success"] is False and "data" not in msg["output"]
