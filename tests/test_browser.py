"""The app in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Screenshots land in test-artifacts/ (git-ignored); look at them after a change to the UI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from .appserver import running
from .conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, TEST_KEY, WAIT_MS, PatientBrowser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI needs /usr/bin/chromium: scripts/test.sh installs it with apt-get")
    pytest.skip("Debian's chromium is not installed (bash scripts/test.sh installs it)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield PatientBrowser(b)
        b.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Local mode on the test emulator with a configured key (one shared gallery)."""
    yield from running(tmp_path_factory, "browser-app", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


@pytest.fixture(scope="module")
def hosted(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "browser-hosted", ["--hosted", "--base-url", emulator_server.base_url],
                       hosted=True)


def open_page(browser, url, locale="en-US"):
    page = browser.new_page(locale=locale, viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="load")  # "networkidle" never fires: the queue keeps a connection open
    page.wait_for_selector("#t2i-prompt textarea")
    return page


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def run_t2i(page, prompt: str, n: int) -> None:
    """Type a prompt, set the number of images and press Generate."""
    page.fill("#t2i-prompt textarea", prompt)
    page.fill("#t2i-n input[type=number]", str(n))
    page.press("#t2i-n input[type=number]", "Tab")
    page.click("#t2i-run")


def png(path: Path, size, color) -> str:
    Image.new("RGB", size, color).save(path)
    return str(path)


def test_generate_then_gallery(browser, app):
    page = open_page(browser, app.url, "zh-CN")
    page.fill("#t2i-prompt textarea", "一只橘猫在阳光下打盹，窗台，暖色调")
    assert "17 / 800" in page.inner_text("#t2i-count")
    page.fill("#t2i-n input[type=number]", "2")
    page.press("#t2i-n input[type=number]", "Tab")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 2", timeout=WAIT_MS)
    page.wait_for_selector("#t2i-status:has-text('完成')")
    assert "已保存 2/2" in page.inner_text("#t2i-status")
    shot(page, "t2i-zh")
    page.click("#tab-gallery-button, button[role=tab]:has-text('图库')")
    page.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
    assert "共 2 张" in page.inner_text("#gallery-page")
    page.click("#gallery-grid button.thumbnail-item >> nth=0", timeout=WAIT_MS) if page.query_selector(
        "#gallery-grid button.thumbnail-item") else page.click("#gallery-grid img >> nth=0")
    page.wait_for_selector("#gallery-details table", timeout=WAIT_MS)
    assert "qwen-image-plus" in page.inner_text("#gallery-details")
    shot(page, "gallery-zh")


def test_edit_uploaded_image(browser, app, tmp_path):
    page = open_page(browser, app.url)
    page.click("button[role=tab]:has-text('Image edit')")
    page.set_input_files("#edit-image input[type=file]", png(tmp_path / "photo.png", (1200, 800), (40, 90, 160)))
    page.wait_for_selector("#edit-image img")
    page.click("#edit-fill")  # preset: replace background
    page.wait_for_function("(document.querySelector('#edit-instruction textarea')?.value ?? '').length > 0")
    assert "background" in page.input_value("#edit-instruction textarea")
    page.click("#edit-run")
    page.wait_for_selector("#edit-status:has-text('Done')", timeout=WAIT_MS)
    page.wait_for_selector("#edit-results img")
    page.wait_for_selector("#edit-compare img")
    shot(page, "edit-en")


def test_fuse_three_uploads_in_order(browser, app, tmp_path, emulator_server):
    page = open_page(browser, app.url)
    page.click("button[role=tab]:has-text('Multi-image fusion')")
    colors = [(220, 30, 30), (30, 200, 30), (30, 30, 220)]
    for i, c in enumerate(colors, 1):
        page.set_input_files(f"#fuse-img{i} input[type=file]", png(tmp_path / f"{i}.png", (600, 600), c))
        page.wait_for_selector(f"#fuse-img{i} img")
    page.click("#fuse-swap12")  # now 图1 = green, 图2 = red
    page.wait_for_timeout(800)
    page.fill("#fuse-instruction textarea", "图1的颜色，图2的形状，放在图3的背景里")
    emulator_server.clear()
    page.click("#fuse-run")
    page.wait_for_selector("#fuse-status:has-text('Done')", timeout=WAIT_MS)
    shot(page, "fuse-en")
    import base64
    import io
    (call,) = emulator_server.calls("generation")
    got = [Image.open(io.BytesIO(base64.b64decode(c["image"].split(",", 1)[1]))).convert("RGB").getpixel((5, 5))
           for c in call.json["input"]["messages"][0]["content"][:-1]]
    assert got == [colors[1], colors[0], colors[2]]


def test_invalid_key_message_and_nothing_in_local_storage(browser, hosted):
    page = open_page(browser, hosted.url)
    if not page.is_visible("#api-key input"):
        page.click("#key-box button, #key-box .label-wrap")
    page.fill("#api-key input", "sk-invalid-key-0000000000")
    page.fill("#t2i-prompt textarea", "a lighthouse at dusk")
    page.click("#t2i-run")
    page.wait_for_selector("#t2i-status:has-text('API key you entered is invalid')", timeout=WAIT_MS)
    shot(page, "invalid-key-en")
    storage = page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert "sk-invalid" not in storage
    assert "sk-invalid" not in page.content()
    assert json.loads(page.evaluate("JSON.stringify(Object.keys(localStorage))")) is not None


def test_stop_really_stops_and_keeps_what_was_paid_for(browser, app, emulator_server):
    """n=6 on a fan-out model: Stop while the first requests are out (held by the emulator: the
    account's limit lets 2 go at once) means the rest are never sent, and those already paid for
    still land in the gallery."""
    page = open_page(browser, app.url)
    emulator_server.clear()
    emulator_server.hold()  # the first requests stay out until Stop has landed, on a machine of any speed
    try:
        run_t2i(page, "stop me", 6)
        # Wait on the state (requests out), not on a clock: a busy 2-core machine can take seconds.
        deadline = 600
        while len(emulator_server.calls("generation")) < 2 and deadline:
            page.wait_for_timeout(100)
            deadline -= 1
        page.wait_for_timeout(500)  # a third request, were the limit not held, would be out by now
        out = len(emulator_server.calls("generation"))
        assert 2 <= out < 6
        page.click("#t2i-stop")
        page.wait_for_selector("#t2i-status:has-text('Stopping')", timeout=WAIT_MS)  # the server has it
        emulator_server.release()
        page.wait_for_selector("#t2i-status:has-text('Stopped')", timeout=WAIT_MS)
        assert f"Stopped: {out} of 6" in page.inner_text("#t2i-status")
        assert page.locator("#t2i-results img").count() >= out  # the paid images are shown, not lost
        shot(page, "stopped-en")
        assert len(emulator_server.calls("generation")) == out  # nothing sent after Stop
    finally:
        emulator_server.release()
    page.click("button[role=tab]:has-text('Gallery')")
    # Opening the tab loads the unfiltered page: let it land first, or it can overwrite the search.
    page.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
    page.fill("#gallery-search input", "stop me")
    page.press("#gallery-search input", "Enter")
    page.wait_for_selector(f"#gallery-page:has-text('{out} result')", timeout=WAIT_MS)
    shot(page, "stopped-gallery-en")


def test_key_typed_in_the_page_goes_out_as_a_header_and_stays_nowhere(browser, hosted, emulator_server):
    """The key reaches the service from the page, yet it is in no browser storage and in no
    server-side state that a deep link could dump."""
    canary = "sk-canary-page-0123-4567-89ab"
    emulator_server.clear()
    page = open_page(browser, hosted.url)
    joins = []
    page.on("request", lambda r: joins.append(r) if "/queue/join" in r.url else None)
    if not page.is_visible("#api-key input"):
        page.click("#key-box button, #key-box .label-wrap")
    page.fill("#api-key input", canary)
    page.fill("#t2i-prompt textarea", "a key in a header")
    page.click("#t2i-run")
    page.wait_for_selector("#t2i-status:has-text('Done')", timeout=WAIT_MS)
    (call,) = emulator_server.calls("generation")
    assert call.headers["authorization"] == f"Bearer {canary}"
    storage = page.evaluate("""async () => JSON.stringify({local: {...localStorage}, session: {...sessionStorage},
        cookies: document.cookie, idb: (indexedDB.databases ? await indexedDB.databases() : [])})""")
    assert canary not in storage and canary not in page.content()
    run_join = next(r for r in joins if canary in (r.headers.get("x-dashscope-api-key") or ""))
    assert canary not in (run_join.post_data or "")  # a header, never a value of the call
    session = run_join.post_data_json["session_hash"]
    import requests
    for path in ("config", f"?deep_link={session}", f"config?deep_link={session}"):
        assert canary not in requests.get(hosted.url + path, timeout=5).text
    assert requests.get(f"{hosted.url}gradio_api/deep_link", params={"session_hash": session},
                        timeout=5).status_code == 404
    for f in hosted.data_dir.parent.rglob("*"):
        if f.is_file():
            assert canary.encode() not in f.read_bytes(), f  # results, SQLite, Gradio's temp dir, the log


def test_each_image_is_visible_the_moment_it_lands(browser, app, emulator_server):
    """No progress overlay over streamed results: mid-run, a landed image is the topmost element at
    its own centre, and the only progress text is the status line in the visitor's language."""
    page = open_page(browser, app.url, "zh-CN")
    emulator_server.clear()
    emulator_server.latency = (0.3, 10.0)  # spread wide: the page sees the first land before the last, even when busy
    try:
        run_t2i(page, "一张一张出现", 4)
        page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 1", timeout=WAIT_MS)
        status = page.inner_text("#t2i-status")
        topmost = page.evaluate("""() => {
            const img = document.querySelector('#t2i-results img');
            const r = img.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return hit === img || img.contains(hit) || (hit && hit.contains(img) && hit.tagName !== 'DIV');
        }""")
        shot(page, "streaming-zh")
        assert "处理中" in status, f"the run should still be going: {status!r}"
        assert topmost, "a landed image is covered while the run goes on"
        results_text = page.inner_text("#t2i-results")
        assert "processing" not in results_text.lower() and "eta" not in results_text.lower()
        page.wait_for_selector("#t2i-status:has-text('完成')", timeout=WAIT_MS)
    finally:
        emulator_server.latency = 0.0


def test_controls_follow_the_chosen_model(browser, app):
    page = open_page(browser, app.url, "en-US")
    page.wait_for_function("document.querySelector('#t2i-model-info').innerText.includes('Qwen-Image Plus')")
    assert "fixed sizes" in page.inner_text("#t2i-model-info")
    page.locator("#tab-t2i").get_by_text("Advanced").click()
    page.click("#t2i-model input")
    page.get_by_role("option", name="Qwen-Image 3.0 › qwen-image-3.0 · newest", exact=True).click()
    page.wait_for_function("document.querySelector('#t2i-model-info').innerText.includes('Qwen-Image 3.0')")
    info = page.inner_text("#t2i-model-info")
    assert "free W*H, total pixels 512*512 to 2048*2048" in info and "¥0.18 / image (Beijing)" in info
    assert page.input_value("#t2i-size input") == "auto (the model picks)"
    page.fill("#t2i-prompt textarea", "a lighthouse at dusk")
    page.wait_for_function("document.querySelector('#t2i-count').innerText.includes('/ 4500')")
    assert page.get_attribute("#t2i-n input[type=range]", "max") == "6"
    shot(page, "model-qwen-image-3.0-en")

    page.click("#t2i-model input")
    page.get_by_role("option", name="Z-Image › z-image-turbo", exact=True).click()
    page.wait_for_function("document.querySelector('#t2i-model-info').innerText.includes('Z-Image Turbo')")
    assert "doubles" in page.inner_text("#tab-t2i")  # said next to the rewriting switch
    assert not page.locator("#tab-t2i input[type=checkbox]").first.is_checked()  # rewriting off by default
    page.wait_for_function("document.querySelector('#t2i-count').innerText.includes('/ 800')")
    shot(page, "model-z-image-turbo-en")
    page.close()


def test_check_key_button_says_which_region(browser, app):
    page = open_page(browser, app.url, "zh-CN")
    page.click("#key-box")  # the accordion (closed locally when the host has a key)
    page.click("#key-check")
    page.wait_for_function("(document.querySelector('#key-report')?.innerText ?? '').includes('地域')")
    report = page.inner_text("#key-report")
    # The app runs on an emulator: the check names its address, never a region it cannot know.
    assert "有效" in report and "这个 Key 在所配置的地址 http://127.0.0.1:" in report and TEST_KEY not in report
    assert "北京" not in report and "看不出该地址背后是哪个平台" in report
    shot(page, "key-check-zh")
    page.close()


@pytest.mark.parametrize("locale,queued,done", [("en-US", "queued (account limit", "Done"),
                                                ("zh-CN", "个排队中（账号并发上限", "完成")])
def test_waiting_on_the_account_limit_is_said(browser, app, emulator_server, locale, queued, done):
    """Four images, an account allowing two at a time: the status line says the rest are queued on
    the account's limit (not just "working"), until images arrive; nothing is lost or sent twice."""
    page = open_page(browser, app.url, locale)
    emulator_server.clear()
    emulator_server.hold()  # the queued state lasts until released, on a machine of any speed
    emulator_server.task_limit = 2
    name = f"queued-{locale[:2]}"
    try:
        run_t2i(page, "queued on the account limit", 4)
        page.wait_for_selector(f"#t2i-status:has-text('{queued}')", timeout=WAIT_MS)
        shot(page, name)
        emulator_server.release()
        page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 1", timeout=WAIT_MS)
        page.wait_for_function(
            f"!(document.querySelector('#t2i-status')?.innerText ?? '').includes({json.dumps(queued)})",
            timeout=WAIT_MS)
        page.wait_for_selector(f"#t2i-status:has-text('{done}')", timeout=WAIT_MS)
        shot(page, f"{name}-done")
        assert page.locator("#t2i-results img").count() == 4
        seeds = [c.json["parameters"]["seed"] for c in emulator_server.calls("generation") if not c.throttled]
        assert len(seeds) == len(set(seeds)) == 4
        # The app's scheduler is shared with earlier tests: after 8 successes it may probe 3 at once (one 429).
        assert emulator_server.throttled <= 1
    finally:
        emulator_server.release()
        emulator_server.task_limit = None


def test_hosted_visitor_sees_own_results_in_the_gallery_and_nobody_elses(browser, hosted):
    """The gallery's events are not queued: the page sends them to /run/predict with its session,
    which must be the same owner as the run's (a regression left the hosted gallery empty)."""
    page = open_page(browser, hosted.url)
    run_t2i(page, "hosted gallery is mine", 1)
    page.wait_for_selector("#t2i-status:has-text('Done')", timeout=WAIT_MS)
    page.click("button[role=tab]:has-text('Gallery')")
    page.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
    assert "1 result" in page.inner_text("#gallery-page")
    shot(page, "hosted-gallery-own-en")
    other = open_page(browser, hosted.url, "zh-CN")
    other.click("button[role=tab]:has-text('图库')")
    other.wait_for_selector("#gallery-page:has-text('还没有')", timeout=WAIT_MS)
    assert not other.query_selector("#gallery-grid img")
    page.close()
    other.close()
