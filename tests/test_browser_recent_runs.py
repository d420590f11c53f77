"""A run outlives its page in Chromium (issue 18 item 2): start a run, reload mid-run, the strip of
recent runs lists it, "Follow again" brings it back into its panel, and its images land there.
Screenshots in test-artifacts/recent-runs-*.png."""

from __future__ import annotations

import pytest

from .test_browser import app, browser, run_t2i, shot  # noqa: F401 - fixtures

# A 15 s run, a reload and two page loads: on a loaded 2-core machine that can pass the default 120 s.
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
    emulator_server.latency = 15.0  # the run is still out while the page reloads, even on a busy machine
    prompt = f"lighthouse that outlives the page {locale}"
    try:
        run_t2i(page, prompt, 2)
        deadline = 600
        while len(emulator_server.calls("generation")) < 2 and deadline:
            page.wait_for_timeout(100)
            deadline -= 1
        page.reload(wait_until="load")
        page.wait_for_selector("#t2i-prompt textarea")
        page.wait_for_selector(f"#recent-runs-list:has-text('{prompt[:30]}')", timeout=20000)
        assert running in page.inner_text("#recent-runs-list")
        assert page.is_visible("#recent-runs-attach")
        shot(page, f"recent-runs-strip-{locale}-{kind}")
        page.click("#recent-runs-attach")
        page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 2", timeout=60000)
        page.wait_for_selector(f"#t2i-status:has-text('{done}')", timeout=60000)
        shot(page, f"recent-runs-followed-{locale}-{kind}")
    finally:
        emulator_server.latency = 0.0
    assert len(emulator_server.calls("generation")) == 2  # the reload sent nothing again
    page.wait_for_selector(f"#recent-runs-list:has-text('{listed}')", timeout=20000)  # listed again at the end
    page.click("#recent-runs-refresh")
    page.wait_for_selector(f"#recent-runs-list:has-text('{listed}')", timeout=20000)
    page.wait_for_function("document.querySelectorAll('#recent-runs-thumbs img').length >= 2", timeout=20000)
    shot(page, f"recent-runs-done-{locale}-{kind}")
    page.close()
