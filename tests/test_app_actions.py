"""The actions on results and the gallery's zips through a launched app: gradio_client for the
public endpoints, and the raw queue API for what a hostile visitor of the shared demo could send
(another session's ids, no session, garbage)."""

from __future__ import annotations

import sqlite3
import uuid
import zipfile

import pytest
import requests
from gradio_client.exceptions import AppError

from aliyun_image.ui.page_text import caption_id

from .appserver import running
from .conftest import TEST_KEY, gradio_client
from .test_app_api import generate
from .test_hosted_safety import _fn_index, _join, _listen

pytestmark = pytest.mark.slow  # launches the app in a subprocess
KEYED = {"X-DashScope-API-Key": TEST_KEY}


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    yield from running(tmp_path_factory, "actions-offline", ["--offline"])


@pytest.fixture(scope="module")
def hosted_app(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "actions-hosted", ["--hosted", "--base-url", emulator_server.base_url],
                       hosted=True)


def _ids(gallery) -> list[int]:
    ids = [caption_id(item["caption"]) for item in gallery]
    assert None not in ids, gallery
    return [i for i in ids if i is not None]


def _seeds(app, ids) -> dict[int, int]:
    db = sqlite3.connect(app.data_dir / "gallery.sqlite3")
    marks = ",".join("?" * len(ids))
    return dict(db.execute(f"SELECT id, seed FROM results WHERE id IN ({marks})", ids).fetchall())


def test_variations_run_zip_and_matching_zip(offline_app):
    c = gradio_client(offline_app.url, verbose=False)
    gallery, _ = generate(c, "a red fox in the snow", n=2, seed=1000)
    first = _ids(gallery)
    new_gallery, status = c.predict(first[0], api_name="/variations")
    new = _ids(new_gallery)
    assert len(new) == 2 and not set(new) & set(first) and f"Variations of #{first[0]}" in status
    assert set(_seeds(offline_app, new).values()).isdisjoint({1000, 1001})  # same recipe, new seeds
    zpath, message = c.predict(new[1], api_name="/download_run")
    names = zipfile.ZipFile(zpath).namelist()
    assert len(names) == 2 and all(n.endswith(".png") for n in names) and "2 image" in message
    zpath, message = c.predict("red fox", "t2i", "", api_name="/download_matching")
    assert len(zipfile.ZipFile(zpath).namelist()) == 4
    with pytest.raises(AppError, match="Nothing matches"):
        c.predict("no such prompt anywhere", "", "", api_name="/download_matching")


def test_hosted_visitors_act_on_their_own_ids_only(hosted_app):
    alice, bob = gradio_client(hosted_app.url, headers=KEYED), gradio_client(hosted_app.url, headers=KEYED)
    gallery, _ = generate(alice, "alice's private cat", n=2)
    ids = _ids(gallery)
    assert len(_ids(alice.predict(ids[0], api_name="/variations")[0])) == 2  # her own: fine
    for rid in (ids[0], ids[1], "garbage", -1, 10**30, None):
        with pytest.raises(AppError):
            bob.predict(rid, api_name="/variations")
        with pytest.raises(AppError):
            bob.predict(rid, api_name="/download_run")
    with pytest.raises(AppError, match="Nothing matches"):
        bob.predict("alice", "", "", api_name="/download_matching")
    db = sqlite3.connect(hosted_app.data_dir / "gallery.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM results WHERE prompt LIKE 'alice%'").fetchone()[0] == 4


def test_raw_queue_other_session_no_session_and_garbage(hosted_app):
    """The page's private events, sent by hand: nothing of Alice's reaches Bob's outputs."""
    alice = gradio_client(hosted_app.url, verbose=False, headers=KEYED)
    ids = _ids(generate(alice, "alice's raw-queue cat")[0])
    edit_this, use_as = _fn_index(hosted_app, "edit_this"), _fn_index(hosted_app, "use_as")
    variations, run_zip = _fn_index(hosted_app, "variations"), _fn_index(hosted_app, "download_run")
    toggle, pick_all = _fn_index(hosted_app, "gallery_toggle"), _fn_index(hosted_app, "gallery_pick_all")
    bob = f"bob-{uuid.uuid4().hex[:8]}"
    calls = {
        "edit": (edit_this, [ids[0]]), "slot": (use_as, [ids[0], None]), "var": (variations, [ids[0]]),
        "zip": (run_zip, [ids[0]]), "all": (pick_all, [[ids[0]]]), "toggle": (toggle, [[ids[0]], True, []]),
        "junk": (edit_this, ["'; DROP TABLE results; --"]), "big": (variations, [1e308]),
    }
    events = {name: _join(hosted_app, bob, fn, data, headers=KEYED) for name, (fn, data) in calls.items()}
    done = _listen(hosted_app, bob, set(events.values()), deadline_s=60)
    out = {name: done[e] for name, e in events.items()}
    assert "not one of yours" in str(out["edit"]["output"]["data"][2])
    assert "not one of yours" in str(out["slot"]["output"]["data"][1])
    assert not out["var"]["success"] and not out["zip"]["success"] and not out["big"]["success"]
    assert out["all"]["output"]["data"][0] == [] and out["all"]["output"]["data"][1]["value"] == []
    text = str(out)
    assert ".png" not in text and ".jpg" not in text and ".zip" not in text  # no file of Alice's
    # Without a session (the REST API's call route) an id names nobody's result.
    r = requests.post(f"{hosted_app.url}gradio_api/call/variations", json={"data": [ids[0]]}, headers=KEYED,
                      timeout=10)
    event = r.json()["event_id"]
    stream = requests.get(f"{hosted_app.url}gradio_api/call/variations/{event}", timeout=30).text
    assert "event: error" in stream and ".png" not in stream
    db = sqlite3.connect(hosted_app.data_dir / "gallery.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM results WHERE prompt LIKE 'alice%raw%'").fetchone()[0] == 1
