"""A hosted visitor's identity survives a reload (issue 16 item 3), through the raw HTTP and queue API
of a launched hosted app, and in Chromium.

- The page load sets the visitor cookie (HttpOnly, SameSite, Path=/, Max-Age; Secure over https behind
  a trusted proxy); the cookie, not Gradio's session, owns the gallery and the hourly quota.
- The hourly limits also count per client address: a new cookie, no cookie, or a forged leftmost
  ``X-Forwarded-For`` entry does not give a new budget.
- Someone else's session hash without their cookie reaches none of their results; the cookie is
  never in the database, the results folder or the log.
- The results folder is outside the app's working dir here (as ``/data`` is on a Space): results are
  shown, and Gradio's file route does not serve that folder by path.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from aliyun_image.config import Settings, hosting_from_env, persistent_data_dir
from aliyun_image.money.quota import HourlyQuota, Payers
from aliyun_image.ui.http_guard import COOKIE, HttpGuard, client_address, visitor_token

from .appserver import launch
from .conftest import ARTIFACTS, WAIT_MS
from .test_hosted_safety import _gen_data

A = "203.0.113.7"  # the address the platform's proxy saw (the last X-Forwarded-For entry)
B = "198.51.100.20"
C = "192.0.2.33"


# --- the app: hosted offline demo, one trusted proxy, its results folder outside its working dir ---
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("visitor-app")
    (root / "work").mkdir()
    running = launch(["--hosted", "--demo-session-limit", "2", "--demo-total-limit", "100"], root / "persist",
                     env_extra={"ALIYUN_IMAGE_TRUSTED_PROXIES": "1", "ALIYUN_IMAGE_ADDRESS_SHARE": "2"},
                     cwd=root / "work")
    try:
        yield running
    finally:
        running.stop()


def _fn(app, api_name: str) -> int:
    cfg = requests.get(f"{app.url}config", timeout=10).json()
    return next(d["id"] for d in cfg["dependencies"] if d.get("api_name") == api_name)


def _new_cookie(app, addr: str = A) -> str:
    r = requests.get(app.url, headers={"X-Forwarded-For": addr}, timeout=10)
    assert r.status_code == 200
    token = visitor_token(r.headers["set-cookie"].split(";")[0])
    assert token is not None
    return token


def raw_call(app, api_name: str, data: list, *, cookie: str | None = None, session: str | None = None,
             headers: dict | None = None) -> dict:
    """One raw queue call (join, then the session's event stream) as the page makes it; returns
    Gradio's ``process_completed`` message (also used by tests/test_attack_new.py)."""
    session = session or uuid.uuid4().hex[:11]
    cookies = {COOKIE: cookie} if cookie else {}
    r = requests.post(f"{app.url}gradio_api/queue/join",
                      json={"data": data, "fn_index": _fn(app, api_name), "session_hash": session,
                            "event_data": None, "trigger_id": None},
                      headers=headers or {}, cookies=cookies, timeout=10)
    r.raise_for_status()
    event = r.json()["event_id"]
    deadline = time.monotonic() + 120
    with requests.get(f"{app.url}gradio_api/queue/data", params={"session_hash": session}, stream=True,
                      timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith(b"data:"):
                got = json.loads(line[5:])
                if got.get("msg") == "process_completed" and got.get("event_id") == event:
                    return got
            assert time.monotonic() < deadline, "no answer"
    raise AssertionError("stream ended without an answer")


def _call(app, api_name: str, data: list, *, cookie: str | None = None, session: str | None = None,
          forwarded: str = A, extra: dict | None = None) -> dict:
    """:func:`raw_call` from the address ``forwarded`` (the proxy's last X-Forwarded-For entry)."""
    return raw_call(app, api_name, data, cookie=cookie, session=session,
                    headers={"X-Forwarded-For": forwarded, **(extra or {})})


def _generate(app, prompt: str, n: int = 1, **who) -> dict:
    return _call(app, "generate", _gen_data(prompt, n), **who)


def _error(out: dict) -> str:
    assert not out["success"], out
    return str(out["output"].get("error"))


def _gallery(app, **who) -> list[str]:
    """The captions of the caller's first gallery page (the page's own private event)."""
    out = _call(app, "gallery_first_page", ["", "", ""], **who)
    assert out["success"], out
    grid = out["output"]["data"][0]
    items = grid.get("value", grid) if isinstance(grid, dict) else grid
    return [item.get("caption") or "" for item in items or []]


# --- the cookie ----------------------------------------------------------------------------------------
def test_the_page_load_sets_an_opaque_http_only_cookie(app):
    r = requests.get(app.url, headers={"X-Forwarded-For": A}, timeout=10)
    cookie = r.headers["set-cookie"]
    parts = [p.strip() for p in cookie.split(";")]
    name, _, token = parts[0].partition("=")
    assert name == COOKIE and re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # token_urlsafe(32): 256 bits
    assert {"HttpOnly", "Path=/", "SameSite=Lax", f"Max-Age={7 * 86400}"} <= set(parts)
    assert "Secure" not in parts  # plain http, and no proxy said https
    assert token not in r.url and token not in r.text
    # behind the trusted proxy, a page that came over https gets a Secure cookie
    r = requests.get(app.url, headers={"X-Forwarded-For": A, "X-Forwarded-Proto": "https"}, timeout=10)
    assert "Secure" in [p.strip() for p in r.headers["set-cookie"].split(";")]
    # a well-formed cookie is kept; a malformed one is replaced; API calls get none
    assert "set-cookie" not in requests.get(app.url, cookies={COOKIE: token}, timeout=10).headers
    again = requests.get(app.url, cookies={COOKIE: "short"}, timeout=10).headers["set-cookie"]
    assert again.startswith(COOKIE + "=") and token not in again
    assert "set-cookie" not in requests.get(f"{app.url}config", timeout=10).headers


def test_a_reload_keeps_the_gallery_and_the_quota_and_a_new_cookie_not_the_address_limit(app):
    me = _new_cookie(app)
    first = _generate(app, "visitor lighthouse", cookie=me)
    assert first["success"], first
    # reload: a new page session with the same cookie sees the gallery and the quota used
    assert any("visitor lighthouse" in c or "#" in c for c in _gallery(app, cookie=me))
    assert len(_gallery(app, cookie=me)) == 1
    refused = _error(_generate(app, "two more", n=2, cookie=me))
    assert "per visitor" in refused and "Ask for 1 or fewer" in refused
    # "download all" in the banner: the visitor's own results, one zip
    zipped = _call(app, "download_all", [], cookie=me)
    assert zipped["success"] and "matching-1-images.zip" in json.dumps(zipped["output"]), zipped
    assert "Nothing matches" in _error(_call(app, "download_all", []))  # no cookie: nothing of theirs
    # cleared cookies: a new gallery, but the address keeps what it used (share 2 x 2 = 4 an hour)
    fresh = _new_cookie(app)
    assert _gallery(app, cookie=fresh) == []
    assert _generate(app, "new cookie", n=2, cookie=fresh)["success"]  # the address has used 3 of 4
    refused = _error(_generate(app, "no cookie", n=2))  # a raw client from the same address
    assert "network address" in refused and "Ask for 1 or fewer" in refused
    # a client that writes its own leftmost X-Forwarded-For entry is still the address the proxy saw
    forged = _error(_generate(app, "forged", n=2, forwarded=f"192.0.2.99, {A}"))
    assert "network address" in forged
    assert _generate(app, "another office", n=2, forwarded=B)["success"]  # per address, not for everyone


def test_another_sites_page_sending_the_visitors_cookie_is_served_as_a_stranger(app):
    """Gradio allows any Origin with credentials: a hostile page could send the visitor's cookie
    (SameSite=None on a Space) and read the reply. Such a call is served as one without a cookie."""
    here = "198.51.100.77"  # an address of its own: the other tests count theirs
    me = _new_cookie(app, here)
    assert _generate(app, "cross site canary", cookie=me, forwarded=here)["success"]
    own = app.url.split("://", 1)[1].rstrip("/")
    same = {"Origin": f"http://{own}", "Sec-Fetch-Site": "same-origin"}  # the app's own page
    assert len(_gallery(app, cookie=me, forwarded=here, extra=same)) == 1
    for hostile in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        assert _gallery(app, cookie=me, forwarded=here, extra=hostile) == [], hostile


def test_someone_elses_session_hash_without_their_cookie_reaches_nothing(app):
    victim, session = _new_cookie(app, B), uuid.uuid4().hex[:11]
    assert _generate(app, "victim's secret", cookie=victim, session=session, forwarded=B)["success"]
    assert len(_gallery(app, cookie=victim, session=session, forwarded=B)) == 1
    # the attacker replays the victim's page session hash, without the cookie
    assert _gallery(app, session=session, forwarded=B) == []
    none = _error(_call(app, "download_matching", ["", "", ""], session=session, forwarded=B))
    assert "Nothing matches" in none
    # a well-formed cookie of their own making is just another new visitor
    assert _gallery(app, cookie="x" * 43, session=session, forwarded=B) == []


def test_the_cookie_is_never_in_the_database_the_results_or_the_log(app):
    token = _new_cookie(app, B)
    assert _generate(app, "cookie trace", cookie=token, forwarded=B)["success"]
    places = [app.log, *[p for p in app.data_dir.rglob("*") if p.is_file()],
              *[p for p in (app.data_dir.parent / "gradio-tmp").rglob("*") if p.is_file()]]
    assert any(p.name == "gallery.sqlite3" for p in places)
    for path in places:
        assert token.encode() not in path.read_bytes(), path
    assert COOKIE not in app.log.read_text(errors="replace")


def test_results_outside_the_working_dir_are_shown_but_not_served_by_path(app):
    token = _new_cookie(app, C)
    out = _generate(app, "outside the working dir", cookie=token, forwarded=C)
    assert out["success"], out
    shown = out["output"]["data"][0]
    shown = shown.get("value", shown) if isinstance(shown, dict) else shown
    url = shown[0]["image"]["url"]
    assert str(app.data_dir.resolve()) not in url  # a copy in Gradio's cache is shown
    assert requests.get(url, timeout=10).status_code == 200
    image = next(app.data_dir.glob("images/*/*.png"))
    for path in (str(image), str(image.parent) + "/../" + image.parent.name + "/" + image.name,
                 str(app.data_dir / ".visitor-secret"), str(app.data_dir / "gallery.sqlite3")):
        for route in ("gradio_api/file=", "file=", "gradio_api/file/"):
            r = requests.get(app.url + route + path, timeout=10)
            assert r.status_code == 404, (route, path, r.status_code)


# --- the parts, without an app -------------------------------------------------------------------------
def test_the_client_address_is_what_the_outermost_trusted_proxy_saw():
    assert client_address("1.1.1.1", "10.0.0.1", 0) == "10.0.0.1"  # no proxy trusted: the peer
    assert client_address("6.6.6.6, 1.1.1.1", "10.0.0.1", 1) == "1.1.1.1"  # the leftmost is the client's word
    assert client_address("6.6.6.6, 1.1.1.1, 10.0.0.2", "10.0.0.1", 2) == "1.1.1.1"
    assert client_address(None, "10.0.0.1", 1) == "10.0.0.1"
    assert client_address("1.1.1.1", "10.0.0.1", 2) == "10.0.0.1"  # did not come through both proxies
    assert visitor_token(f"a=b; {COOKIE}={'Q' * 43}; c=d") == "Q" * 43
    assert visitor_token(f"{COOKIE}=bad value") is None and visitor_token(None) is None


def test_an_address_gets_a_larger_share_than_a_visitor_and_refunds_reach_both():
    quota = HourlyQuota(2, 0, clock=lambda: 0.0, kind="offline", address_share=3)
    for visitor in ("v1", "v2", "v3"):
        quota.take(Payers(visitor, "1.2.3.4"), 2)
    refusal = quota.refusal(Payers("v4", "1.2.3.4"), 1)
    assert refusal is not None and refusal.key == "money.quota_address.offline"
    assert quota.refusal(Payers("v4", "5.6.7.8"), 2) is None
    quota.settle(Payers("v3", "1.2.3.4"), 2, 0)  # a refused run: both counters get the images back
    assert quota.used("v3") == 0 and quota.used_by_address("1.2.3.4") == 4
    assert quota.refusal("v1", 1) is not None  # a bare visitor id still works (the CLI's tests use them)


def test_a_space_with_persistent_storage_keeps_results_under_it(tmp_path):
    storage = tmp_path / "data"
    storage.mkdir()
    space = {"SPACE_ID": "someone/aliyun-image"}
    assert persistent_data_dir(space, storage) == storage / "aliyun-image"
    assert persistent_data_dir({}, storage) is None  # not a Space
    assert persistent_data_dir(space, tmp_path / "absent") is None  # no persistent storage mounted
    kept = hosting_from_env(space, storage / "aliyun-image", storage)
    assert kept["restart_clears"] is False and kept["trusted_proxies"] == 1 and kept["cookie_samesite"] == "none"
    lost = hosting_from_env(space, Path("outputs"), tmp_path / "absent")
    assert lost["restart_clears"] is True
    local = hosting_from_env({}, Path("outputs"), storage)
    assert local["trusted_proxies"] == 0 and local["cookie_samesite"] == "lax" and not local["restart_clears"]
    explicit = Settings.from_env({"SPACE_ID": "x", "ALIYUN_IMAGE_DATA_DIR": str(tmp_path / "mine")})
    assert explicit.data_dir == tmp_path / "mine"  # the host's choice wins
    assert hosting_from_env({"ALIYUN_IMAGE_TRUSTED_PROXIES": "2", "ALIYUN_IMAGE_ADDRESS_SHARE": "8"},
                            Path("o"))["trusted_proxies"] == 2


def test_the_banner_says_how_long_results_are_kept_and_when_a_restart_clears_them(monkeypatch, tmp_path):
    from aliyun_image.ui import AppContext, AppOptions
    from aliyun_image.ui.banner import banner_text

    monkeypatch.setenv("SPACE_ID", "someone/demo")  # a Space without /data here (or /data: see restart)
    ctx = AppContext(AppOptions(hosted=True, offline=True, data_dir=str(tmp_path / "o")))
    try:
        text = banner_text(ctx, "hosted_offline", "en")
        assert "for 7 days" in text and "clearing cookies starts a new gallery" in text
        assert ("A restart of this Space clears them" in text) == ctx.settings.hosting.restart_clears
        assert "7 天" in banner_text(ctx, "hosted_offline", "zh")
        assert "DASHSCOPE_API_KEY" in banner_text(ctx, "live_host", "en") and "billed" in banner_text(
            ctx, "live_host", "en")
    finally:
        ctx.close()


def test_the_guard_closes_file_urls_into_the_results_folder_however_spelled(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data)
    reached: list[str] = []

    async def gradio(scope, receive, send):  # stands in for Gradio's routes
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guard = HttpGuard(gradio, closed_dirs=[data])

    def status(path: str) -> int:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b""}

        asyncio.run(guard({"type": "http", "method": "GET", "path": path, "headers": []}, receive, send))
        return sent[0]["status"]

    for path in (f"/gradio_api/file={data}/images/a.png", f"/file={data}/x/../images/a.png",
                 f"/gradio_api/file/{data}/a.png", f"/gradio_api/file={tmp_path}/link/images/a.png"):
        assert status(path) == 404, path
    assert status(f"/gradio_api/file={tmp_path}/gradio/abc/a.png") == 200 and len(reached) == 1


# --- in Chromium: run, reload, the gallery is still there -----------------------------------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (bash scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from .conftest import CHROMIUM_ARGS, PatientBrowser

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield PatientBrowser(b)
        b.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("locale,size", [("en-US", "desktop"), ("zh-CN", "phone")])
def test_a_reload_in_the_browser_keeps_the_gallery(app, browser, locale, size):
    viewport = {"width": 1440, "height": 1000} if size == "desktop" else {"width": 390, "height": 844}
    context = browser.new_context(locale=locale, viewport=viewport)  # its own cookie jar: a new visitor
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(app.url, wait_until="load")
    page.wait_for_selector("#t2i-prompt textarea")
    cookies = [c for c in context.cookies() if c["name"] == COOKIE]
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find(COOKIE) == -1  # HttpOnly: no script reads it
    if size == "phone":  # a hosted phone page starts with the key box closed
        page.wait_for_selector("#api-key input", state="hidden", timeout=10000)
    prompt = f"a reload survivor {locale}"
    page.fill("#t2i-prompt textarea", prompt)
    page.click("#t2i-run")
    page.wait_for_selector("#t2i-results img", timeout=60000)
    page.reload(wait_until="load")
    page.wait_for_selector("#t2i-prompt textarea")
    gallery = {"en-US": "Gallery", "zh-CN": "图库"}[locale]
    page.click(f"button[role=tab]:has-text('{gallery}')")
    page.wait_for_selector("#gallery-grid img", timeout=20000)
    assert page.locator("#gallery-grid button.thumbnail-item").count() == 1
    banner = page.inner_text("#banner")
    assert ("7 days" in banner) if locale == "en-US" else ("7 天" in banner)
    assert page.is_visible("#download-all")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"visitor-reload-{locale}-{size}.png"), full_page=True)
    context.close()
    assert os.path.exists(ARTIFACTS / f"visitor-reload-{locale}-{size}.png")
