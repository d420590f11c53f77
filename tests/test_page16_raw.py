"""The events issue 16 added or changed (§5-§10), called raw as a hostile visitor of the hosted demo
would: no session, someone else's session, out of order, wrong shapes, paths that were never uploaded.

- ``send_to_fuse`` (the gallery's Add to fusion): now takes the fusion model and every slot 1-10.
- ``check_upload`` (the edit upload's check as it arrives): new; reads the file it is handed.
- ``update`` (the cost line): now also says whether the Run button can act.
"""

from __future__ import annotations

import io
import uuid

import pytest
import requests
from PIL import Image

from .appserver import launch
from .test_hosted_safety import _fn_index, _gen_data, _join, _listen

pytestmark = pytest.mark.slow  # launches the app in a subprocess


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Hosted offline demo (strangers share it; each sees only their own results)."""
    root = tmp_path_factory.mktemp("page16-raw")
    app = launch(["--hosted"], root / "outputs", cwd=root)
    try:
        yield app
    finally:
        app.stop()


def _raw(app, session: str | None, api_name: str, data: list) -> requests.Response:
    body = {"data": data, "fn_index": _fn_index(app, api_name), "trigger_id": None, "event_data": None,
            **({"session_hash": session} if session is not None else {})}
    return requests.post(f"{app.url}gradio_api/run/predict", json=body, timeout=30)


def _upload(app, name: str, content: bytes) -> dict:
    r = requests.post(f"{app.url}gradio_api/upload", files={"files": (name, content, "image/png")}, timeout=30)
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}


def test_add_to_fusion_raw_gives_nobody_anothers_result(demo):
    alice = f"alice-{uuid.uuid4().hex[:8]}"
    event = _join(demo, alice, _fn_index(demo, "generate"), _gen_data("alice's private cat", n=1))
    done = _listen(demo, alice, {event})[event]
    assert done["success"], done
    rid = int(done["output"]["data"][0][0]["caption"].split("·")[0].strip().lstrip("#"))
    # With her id, from another session and from none at all.
    for session in (f"mallory-{uuid.uuid4().hex[:8]}", None):
        r = _raw(demo, session, "send_to_fuse", [rid, "plus", "qwen-image-2.1-pro"] + [None] * 10)
        assert r.status_code == 200, r.text
        out = r.json()["data"]
        assert out[:10] == [None] * 10 and "#" not in str(out[:10]), out  # no slot got her file
    # Wrong shapes and garbage: refused or ignored, never a crash with a traceback.
    for data in ([rid], [rid, "plus", ""] + [None] * 30, ["1 OR 1=1", {"x": 1}, ["y"]] + [None] * 10):
        r = _raw(demo, None, "send_to_fuse", data)
        assert r.status_code in (200, 422, 500) and "Traceback" not in r.text, r.text
    # The selection is the session's own state (the id sent is not used): out of order, even her
    # own session gets nothing before she selects in the page.
    r = _raw(demo, alice, "send_to_fuse", [rid, "plus", ""] + [None] * 10)
    assert r.json()["data"][:10] == [None] * 10, r.text


def test_the_edit_upload_check_reads_only_uploads(demo):
    buf = io.BytesIO()
    Image.new("RGB", (321, 123), (10, 20, 30)).save(buf, "PNG")
    good = _upload(demo, "ok.png", buf.getvalue())
    fake = _upload(demo, "fake.png", b"not an image at all")
    assert "321×123" in str(_raw(demo, None, "check_upload", [good]).json())  # no session: still just this file
    assert "fake.png" in str(_raw(demo, None, "check_upload", [fake]).json())
    # A path the caller never uploaded (a server file, the results database) is not read.
    for path in ("/etc/passwd", str(demo.data_dir / "gallery.sqlite3"), "../../etc/hosts"):
        r = _raw(demo, None, "check_upload", [{"path": path, "meta": {"_type": "gradio.FileData"}}])
        assert "✓" not in r.text and "Traceback" not in r.text, r.text


def test_the_cost_line_raw_says_whether_a_run_can_go(demo):
    r = _raw(demo, None, "update", ["max", "", 6, False, False, "1664*928"])
    assert r.status_code == 200, r.text
    text, button = r.json()["data"]
    assert isinstance(text, str) and "interactive" in button
    for data in (["max", "no-such-model", "NaN", None, "x"], [None] * 5, ["plus"]):
        r = _raw(demo, None, "update", data)
        assert r.status_code in (200, 422, 500) and "Traceback" not in r.text, r.text
