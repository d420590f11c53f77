"""A run outlives its page in Chromium (issue 18 item 2): start a run, reload mid-run, the strip of
recent runs lists it, "Follow again" brings it back into its panel, and its images land there. A batch
too: reload mid-batch, the strip lists it, turns to done by itself (its timer), and opens it in the
Batch tab. Screenshots in test-artifacts/recent-runs-*.png and recent-batch-*.png."""

from __future__ import annotations

import pytest

from .test_browser import app, browser, run_t2i, shot  # noqa: F401 - fixtures

# A held run, a reload and two page loads: on a loaded 2-core machine that can pass the default 120 s.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

CASES = {"en-US": ({"width": 1440, "height": 1000}, "desktop", "running: 0 of 2", "Done", "done: 2 of 2 saved"),
         "zh-CN": ({"width": 390, "height": 844}, "phone", "进行中：0/2", "完成", "完成：已保存 2/2")}


@pytest.mark.parametrize("locale", list(CASES))
def test_reload_mid_run_then_follow_it_again(browser, app, emulator_server, locale):  # noqa: F811
    viewport, kind, running, done, listed = CASES[locale]
    page = browser.new_page(locale=locale, viewport=viewport)
    page.goto(app.url, wait_until="load")  # "networkidle" never fires: the queue keeps a connection open
    page.wait_for_selector("#t2i-prompt textarea")
    emulator_server.clear()
    emulator_server.hold()  # the run's requests stay out until released: no clock raced by the reload
    prompt = f"lighthouse that outlives the page {locale}"
    try:
        run_t2i(page, prompt, 2)
        deadline = 600
        while len(emulator_server.calls("generation")) < 2 and deadline:
            page.wait_for_timeout(100)
            deadline -= 1
        page.reload(wait_until="load")
        page.wait_for_selector("#t2i-prompt textarea")
        page.wait_for_selector(f"#recent-runs-list:has-text('{prompt[:30]}')")
        assert running in page.inner_text("#recent-runs-list")
        assert page.is_visible("#recent-runs-attach")
        shot(page, f"recent-runs-strip-{locale}-{kind}")
        page.click("#recent-runs-attach")
        page.wait_for_selector("#t2i-status:has-text('0/2')")  # followed again, while still out
        emulator_server.release()
        page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 2")
        page.wait_for_selector(f"#t2i-status:has-text('{done}')")
        shot(page, f"recent-runs-followed-{locale}-{kind}")
    finally:
        emulator_server.release()
    assert len(emulator_server.calls("generation")) == 2  # the reload sent nothing again
    page.wait_for_selector(f"#recent-runs-list:has-text('{listed}')")  # listed again at the end
    page.click("#recent-runs-refresh")
    page.wait_for_selector(f"#recent-runs-list:has-text('{listed}')")
    page.wait_for_function("document.querySelectorAll('#recent-runs-thumbs img').length >= 2")
    shot(page, f"recent-runs-done-{locale}-{kind}")
    page.close()


BATCH = {"en-US": ({"width": 1440, "height": 1000}, "desktop", "Batch", "running: 0 of 3", "done: 3 of 3 saved",
                   "3 of 3 images stored"),
         "zh-CN": ({"width": 390, "height": 844}, "phone", "批量", "进行中：0/3", "完成：已保存 3/3",
                   "已保存 3/3 张图片")}


def _line_with(page, prompt: str, text: str) -> None:
    """Wait until the strip lists a line with both ``prompt`` and ``text`` (the timer refreshes it)."""
    page.wait_for_function(
        "([p, t]) => [...document.querySelectorAll('#recent-runs-list li')].some("
        "li => li.innerText.includes(p) && li.innerText.includes(t))", arg=[prompt, text], timeout=90_000)


@pytest.mark.parametrize("locale", list(BATCH))
def test_a_batch_outlives_the_page_and_the_strip_sees_it_end_by_itself(browser, app, emulator_server,  # noqa: F811
                                                                        locale):
    """Start a batch (held at the emulator: no clock raced), reload: the strip lists it running with a
    way to open it; release: the strip changes to done without a reload (its timer); picking it opens
    the Batch tab on it."""
    viewport, kind, tab, running, done, stored = BATCH[locale]
    phone = kind == "phone"
    page = browser.new_page(locale=locale, viewport=viewport, is_mobile=phone, has_touch=phone)
    page.goto(app.url, wait_until="load")
    page.wait_for_selector("#t2i-prompt textarea")
    page.click(f"button[role=tab]:has-text('{tab}')")
    first = f"harbor at dawn {locale}"
    page.fill("#batch-prompts textarea", f"{first}\nharbor at noon {locale}\nharbor at dusk {locale}")
    emulator_server.clear()
    emulator_server.hold()
    try:
        page.click("#batch-run")
        deadline = 900
        while not emulator_server.calls("generation") and deadline:
            page.wait_for_timeout(100)
            deadline -= 1
        page.reload(wait_until="load")
        page.wait_for_selector("#t2i-prompt textarea")
        _line_with(page, first, running)
        page.wait_for_selector("#recent-runs-batches", state="visible")
        shot(page, f"recent-batch-running-{locale}-{kind}")
    finally:
        emulator_server.release()
    _line_with(page, first, done)  # no reload: the strip's timer saw the batch end
    page.wait_for_function("document.querySelectorAll('#recent-runs-thumbs img').length >= 3")
    shot(page, f"recent-batch-done-{locale}-{kind}")
    assert len(emulator_server.calls("generation")) == 3  # the reload sent nothing again
    page.click("#recent-runs-batches label >> nth=0")
    page.wait_for_function("t => (document.querySelector('#batch-status')?.innerText || '').includes(t)",
                           arg=stored)
    assert page.is_visible("#batch-results")
    # what the pick changed is on the screen, on a phone too, where it lies screens below the strip
    page.wait_for_function("() => { const r = document.querySelector('#batch-results').getBoundingClientRect();"
                           " return r.top < window.innerHeight && r.bottom > 0; }")
    shot(page, f"recent-batch-opened-{locale}-{kind}")
    page.close()
