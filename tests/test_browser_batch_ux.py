"""The new user's batch findings in a real headless Chromium (see tests/test_batch_ux.py for the handlers):
a template batch stopped after its first request, whose places never sent read "not sent", and the batch
opened from "Your batches" in another page, which fills the form with what it ran: in English on a
desktop, then in Chinese on a phone (390x844). Also *Compare with…* on a phone: the first pick says what
to do next under the button, the second brings the compare view into sight. Screenshots in
test-artifacts/batchux-*.png."""

from __future__ import annotations

import pytest

from .appserver import running
from .conftest import TEST_KEY
from .test_browser import browser, run_t2i, shot  # noqa: F401 - the module's browser fixture
from .test_browser_batch import DESKTOP, PHONE, WAIT, open_batch

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TEMPLATE = "a {animal} in a {place}, watercolor"


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Local mode on the test emulator, one request at a time (so Stop finds requests not sent yet)."""
    yield from running(tmp_path_factory, "browser-batchux", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY, "ALIYUN_IMAGE_TASK_LIMIT": "1"})


def _captions(page) -> list[str]:
    return page.locator("#batch-results .caption-label, #batch-results figcaption").all_inner_texts()


def _status_has(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#batch-status')?.innerText || '').includes(t)",
                           arg=text, timeout=WAIT)


def _open_from_list(page) -> None:
    """Pick the newest batch under "Your batches" (the picker's own event: its images, then the form)."""
    page.click("#batch-picker input")
    page.locator("ul[role=listbox] li").first.click()


def test_stopped_batch_says_not_sent_and_opening_it_fills_the_form(browser, app, emulator_server):  # noqa: F811
    page = open_batch(browser, app.url, "en-US", DESKTOP, "Batch")
    page.fill("#batch-prompts textarea", TEMPLATE)
    page.fill("#batch-variables textarea", "animal=cat,fox,owl\nplace=forest,city")
    page.wait_for_function("() => (document.querySelector('#batch-plan')?.innerText || '').includes('6 image(s)')",
                           timeout=WAIT)
    emulator_server.hold()
    try:
        page.click("#batch-run")
        page.wait_for_function("() => /0 done/.test(document.querySelector('#batch-status')?.innerText || '')",
                               timeout=WAIT)
        # a request held at the service: its place says it is on its way, the others wait their turn
        page.wait_for_function("() => [...document.querySelectorAll('#batch-results .caption-label, #batch-results "
                               "figcaption')].some(e => e.innerText.includes('sent, on its way'))", timeout=WAIT)
        assert any("waiting" in c for c in _captions(page))
        shot(page, "batchux-inflight-en")
        page.wait_for_function("() => !document.querySelector('#batch-stop button, button#batch-stop')?.disabled",
                               timeout=WAIT)
        page.click("#batch-stop")
        page.wait_for_function("() => /Stopping batch/.test(document.querySelector('#batch-status')?.innerText || '')",
                               timeout=WAIT)
    finally:
        emulator_server.release()
    _status_has(page, "were not sent")
    page.wait_for_function("() => [...document.querySelectorAll('#batch-results .caption-label, #batch-results "
                           "figcaption')].some(e => e.innerText.includes('not sent'))", timeout=WAIT)
    shown = _captions(page)
    assert not [c for c in shown if "waiting" in c or "on its way" in c], shown
    assert sum("not sent" in c for c in shown) >= 4, shown
    assert "Took " in page.inner_text("#batch-status") and "0:00." not in page.inner_text("#batch-status")
    shot(page, "batchux-stopped-en")
    page.close()

    # another page (the form empty), the batch opened from "Your batches": the form says what it ran
    page = open_batch(browser, app.url, "en-US", DESKTOP, "Batch")
    assert page.input_value("#batch-prompts textarea") == ""
    _open_from_list(page)
    page.wait_for_function("t => document.querySelector('#batch-prompts textarea')?.value === t", arg=TEMPLATE,
                           timeout=WAIT)
    assert page.input_value("#batch-variables textarea") == "animal=cat,fox,owl\nplace=forest,city"
    _status_has(page, "were not sent")
    page.wait_for_function("() => (document.querySelector('#batch-plan')?.innerText || '').includes('6 image(s)')",
                           timeout=WAIT)  # the plan line follows the filled form
    assert sum("not sent" in c for c in _captions(page)) >= 4
    shot(page, "batchux-opened-en")
    page.close()

    # Chinese, on a phone: the same batch opened, its places and its form
    page = open_batch(browser, app.url, "zh-CN", PHONE, "批量")
    _open_from_list(page)
    page.wait_for_function("t => document.querySelector('#batch-prompts textarea')?.value === t", arg=TEMPLATE,
                           timeout=WAIT)
    page.wait_for_function("() => [...document.querySelectorAll('#batch-results .caption-label, #batch-results "
                           "figcaption')].some(e => e.innerText.includes('未发送'))", timeout=WAIT)
    assert not [c for c in _captions(page) if "等待" in c]
    page.locator("#batch-prompts").scroll_into_view_if_needed()
    shot(page, "batchux-opened-zh-phone")
    page.close()


def test_compare_on_a_phone_says_what_next_then_shows_the_pair(browser, app):  # noqa: F811
    page = browser.new_page(locale="zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(app.url, wait_until="load")
    page.wait_for_selector("#t2i-prompt textarea")
    run_t2i(page, "a lighthouse at dusk", 2)  # two results of one prompt (two seeds)
    page.wait_for_function("() => document.querySelectorAll('#t2i-results img').length >= 2", timeout=WAIT)
    page.click("button[role=tab]:has-text('图库')")
    page.wait_for_selector("#gallery-grid .thumbnail-item", timeout=WAIT)  # the batch's first image, at least
    thumbs = page.locator("#gallery-grid .thumbnail-item")
    thumbs.nth(0).click()
    page.wait_for_selector("#gallery-details:has-text('#')", timeout=WAIT)
    page.click("#gallery-compare-pick")
    page.wait_for_function("() => (document.querySelector('#gallery-status')?.innerText || '').includes('为 A')",
                           timeout=WAIT)
    page.wait_for_function("() => { const r = document.querySelector('#gallery-status').getBoundingClientRect();"
                           " return r.top >= 0 && r.bottom <= window.innerHeight; }", timeout=WAIT)  # in sight
    page.screenshot(path=_artifact("batchux-compare-first-zh-phone"))
    page.evaluate("window.scrollTo(0, 0)")
    thumbs.nth(1).click()
    page.wait_for_timeout(300)
    page.click("#gallery-compare-pick")
    page.wait_for_selector("#compare-table table", timeout=WAIT)
    page.wait_for_function("() => { const r = document.querySelector('#compare').getBoundingClientRect();"
                           " return r.top >= -5 && r.top < window.innerHeight * 0.5; }", timeout=WAIT)
    page.screenshot(path=_artifact("batchux-compare-second-zh-phone"))  # the viewport: what the user sees
    page.close()


def _artifact(name: str) -> str:
    from .conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")
