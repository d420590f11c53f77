"""The Batch tab in a real headless Chromium: a template batch in English on a desktop, an X/Y grid in
Chinese, and a batch on a phone (390x844). Screenshots in test-artifacts/batch-*.png."""

from __future__ import annotations

import pytest

from .appserver import running
from .conftest import TEST_KEY
from .test_browser import browser, shot  # noqa: F401 - the module's browser fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
WAIT = 120_000  # ms: a loaded CI machine


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Local mode on the test emulator with a configured key."""
    yield from running(tmp_path_factory, "browser-batch", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


def open_batch(browser, url: str, locale: str, viewport: dict, tab: str):  # noqa: F811
    page = browser.new_page(locale=locale, viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    page.goto(url, wait_until="load")  # "networkidle" never fires: the queue keeps a connection open
    page.wait_for_selector("#t2i-prompt textarea")
    page.click(f"button[role=tab]:has-text('{tab}')")
    page.wait_for_selector("#batch-prompts textarea")
    return page


def run_and_wait(page, done_text: str) -> None:
    page.click("#batch-run")
    page.wait_for_function("t => (document.querySelector('#batch-status')?.innerText || '').includes(t)",
                           arg=done_text, timeout=WAIT)


def test_a_template_batch_in_english_on_a_desktop(browser, app, emulator_server):  # noqa: F811
    page = open_batch(browser, app.url, "en-US", DESKTOP, "Batch")
    # the help, before any prompt (the plan may still be on its way on a busy machine: wait for it)
    page.wait_for_function("() => (document.querySelector('#batch-plan')?.innerText || '').toLowerCase()"
                           ".includes('one prompt per line')", timeout=WAIT)
    page.fill("#batch-prompts textarea", "a red {animal} in the snow\n# not this line\na blue {animal} at night")
    page.fill("#batch-variables textarea", "animal=cat,fox")
    page.wait_for_function("() => (document.querySelector('#batch-plan')?.innerText || '').includes('4 image(s)')",
                           timeout=WAIT)
    assert "¥" in page.inner_text("#batch-plan")
    shot(page, "batch-plan-en")
    emulator_server.latency = 2.0  # long enough to see the places waiting
    try:
        page.click("#batch-run")
        page.wait_for_function("() => /[1-3] done/.test(document.querySelector('#batch-status')?.innerText || '')",
                               timeout=WAIT)
        shot(page, "batch-running-en")
        page.wait_for_function("() => (document.querySelector('#batch-status')?.innerText || '')"
                               ".includes('4 of 4 images stored')", timeout=WAIT)
    finally:
        emulator_server.latency = 0.0
    captions = page.locator("#batch-results .caption-label, #batch-results figcaption").all_inner_texts()
    assert any("a red cat in the snow" in c for c in captions) or page.locator("#batch-results img").count() == 4
    assert page.locator("#batch-zip").is_visible()
    assert page.locator("#batch-picker input").input_value()  # the batch is picked in "Your batches"
    shot(page, "batch-done-en")


def test_an_xy_grid_in_chinese(browser, app):  # noqa: F811
    page = open_batch(browser, app.url, "zh-CN", DESKTOP, "批量")
    page.click("#batch-mode label:has-text('X/Y 网格')")
    page.wait_for_selector("#batch-x-values", state="visible")
    page.fill("#batch-prompts textarea", "雪地里的一只狐狸，水彩")
    page.fill("#batch-x-values input, #batch-x-values textarea", "1,2")
    page.click("#batch-y_axis input")
    page.click("ul[role=listbox] li:has-text('提示词改写')")
    page.fill("#batch-y-values input, #batch-y-values textarea", "on,off")
    page.wait_for_function("() => (document.querySelector('#batch-plan')?.innerText || '').includes('4 张图片')",
                           timeout=WAIT)
    run_and_wait(page, "已保存 4/4 张图片")
    page.wait_for_selector("#batch-grid img", timeout=WAIT)
    page.locator("#batch-grid").scroll_into_view_if_needed()
    shot(page, "batch-grid-zh")


def test_a_batch_on_a_phone(browser, app):  # noqa: F811
    page = open_batch(browser, app.url, "en-US", PHONE, "Batch")
    page.fill("#batch-prompts textarea", "a lighthouse at dawn\na lighthouse at dusk")
    run_and_wait(page, "2 of 2 images stored")
    options = page.locator("#batch-picker input")
    assert options.input_value()
    shot(page, "batch-phone-en")
