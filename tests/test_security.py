"""Secrets stay secret, visitors stay apart: canary keys are pushed through a hosted app, then every
place a key could leak is searched (logs, files, database, PNG metadata, page, config, errors)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from gradio_client import handle_file
from PIL import Image

from .conftest import gradio_client
from .appserver import running
from .test_app_api import KEY_HEADER, edit, generate, refused

HOST_KEY = "sk-canary-host-0123-4567-89ab"
ALICE_KEY = "sk-canary-alice-0123-4567-89"
BOB_KEY = "sk-canary-bob-0123-4567-89ab"
CANARIES = (HOST_KEY, ALICE_KEY, BOB_KEY)


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "security-app",
                       ["--hosted", "--base-url", emulator_server.base_url, "--session-limit", "50"],
                       hosted=True, env_extra={"DASHSCOPE_API_KEY": HOST_KEY})


def _scan_tree(root: Path) -> list[str]:
    hits = []
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            hits += [f"{f}: {k[:12]}" for k in CANARIES if k.encode() in data]
    return hits


def _join(app, session: str, fn_index: int, data: list, headers: dict | None = None) -> requests.Response:
    """A raw queue call, as any HTTP client can send it (no gradio_client checks)."""
    return requests.post(f"{app.url}gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                         "session_hash": session, "event_data": None, "trigger_id": None},
                         headers=headers or {}, timeout=10)


def _fn_index(app, api_name: str) -> int:
    cfg = requests.get(f"{app.url}config", timeout=5).json()
    return next(d["id"] for d in cfg["dependencies"] if d.get("api_name") == api_name)


@pytest.mark.slow
def test_keys_never_leak_anywhere(app, emulator_server, tmp_path):
    emulator_server.clear()
    alice, bob = gradio_client(app.url, verbose=False), gradio_client(app.url, verbose=False)
    img = tmp_path / "in.png"
    Image.new("RGB", (640, 480), "purple").save(img)
    generate(alice, "alice with her key", api_key=ALICE_KEY, n=2)
    edit(alice, handle_file(str(img)), "alice edits", api_key=ALICE_KEY)
    generate(bob, "bob on the host key")
    message = refused(generate, bob, "bob with a wrong key", api_key="sk-invalid-wrong-canary-000")
    assert "wrong-canary" not in message and "API key you entered is invalid" in message
    # A pasted key with a full-width space: the page percent-encodes what a header cannot carry.
    message = refused(generate, bob, "bob with a broken key", api_key=quote(BOB_KEY + " \u3000x"))
    assert BOB_KEY not in message and "Copy it again" in message

    # the wire carried each key where it belonged
    auth = {c.json["input"]["messages"][0]["content"][-1]["text"]: c.headers["authorization"]
            for c in emulator_server.calls("generation")}
    assert auth["alice with her key"] == f"Bearer {ALICE_KEY}"
    assert auth["alice edits"] == f"Bearer {ALICE_KEY}"
    assert auth["bob on the host key"] == f"Bearer {HOST_KEY}"

    # Deep links: Gradio would dump the session's inputs to a file and serve them back.
    r = requests.get(f"{app.url}gradio_api/deep_link", params={"session_hash": alice.session_hash}, timeout=5)
    assert r.status_code == 404
    # Malformed queue calls (too few values) make Gradio print the inputs it got: with the key in the
    # header, and with a careless client that put a key among the values.
    gen = _fn_index(app, "generate")
    _join(app, alice.session_hash, gen, ["half a call"], headers={KEY_HEADER: ALICE_KEY})
    _join(app, bob.session_hash, gen, ["half a call", BOB_KEY])
    time.sleep(1.0)  # let the server write its log

    # files: data dir (SQLite + images + thumbnails), Gradio's temp dir and cache, the server log
    assert app.log.is_file() and "half a call" in app.log.read_text(errors="replace")  # the log was written
    assert _scan_tree(app.data_dir.parent) == []
    for png in app.data_dir.rglob("*.png"):
        with Image.open(png) as im:
            assert not any(k in str(im.info) for k in CANARIES)

    # what any browser can fetch, deep-link ids included (the key was never in session state)
    for path in ("", "config", "gradio_api/info", "gradio_api/openapi.json",
                 f"?deep_link={alice.session_hash}", f"config?deep_link={alice.session_hash}"):
        r = requests.get(app.url + path, timeout=5)
        assert not any(k in r.text for k in CANARIES), path


@pytest.mark.slow
def test_two_visitors_with_different_keys_at_once(app, emulator_server):
    """Concurrent runs in two sessions never swap keys (no shared mutable state holds a key)."""
    emulator_server.clear()
    emulator_server.latency = (0.05, 0.3)
    errors = []

    def visitor(name, key, rounds=4):
        c = gradio_client(app.url, verbose=False)
        for i in range(rounds):
            gallery, status = generate(c, f"{name} round {i}", api_key=key)
            if len(gallery) != 1:
                errors.append(status)

    try:
        threads = [threading.Thread(target=visitor, args=a) for a in (("alice", ALICE_KEY), ("bob", BOB_KEY))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        emulator_server.latency = 0.0
    assert not errors
    for call in emulator_server.calls("generation"):
        prompt = call.json["input"]["messages"][0]["content"][-1]["text"]
        expected = ALICE_KEY if prompt.startswith("alice") else BOB_KEY
        assert call.headers["authorization"] == f"Bearer {expected}", prompt


def test_service_logs_never_carry_the_key(service, emu, caplog):
    """Even at DEBUG, with urllib3's connection logs on, no key reaches a log record."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    service.generate("log me", api_key=ALICE_KEY, n=2)
    emu.fail(status=429, code="Throttling.RateQuota", message=f"bad key {ALICE_KEY}", times=1, retry_after=0.01)
    service.generate("log me again", api_key=ALICE_KEY)
    # a service message that echoes the key is scrubbed before anyone sees it
    emu.fail(status=400, code="InvalidParameter", message=f"header was Bearer {ALICE_KEY}", times=1)
    batch = service.generate("and fail", api_key=ALICE_KEY)
    err = batch.failures[0]
    assert ALICE_KEY not in err.text("en") + err.text("zh") + err.message and "sk-***" in err.text("en")
    assert ALICE_KEY not in caplog.text


def test_internal_download_targets_are_refused(service, emu):
    """A hostile reply pointing result URLs at internal addresses is never fetched."""
    from aliyun_image.errors import DownloadError

    for url in ("http://169.254.169.254/latest/meta-data/iam", "http://127.0.0.1:22/", "http://10.1.2.3/x.png",
                "http://[::1]:6379/", "http://metadata.google.internal/"):
        with pytest.raises(DownloadError) as ei:
            service.download_url(url)
        assert ei.value.code == "Download.HostNotAllowed"
