"""The cost line and the gallery's spend in a real headless Chromium, in zh-CN and en-US.
Screenshots: test-artifacts/cost-line-{zh,en}.png, cost-blocked-{zh,en}.png, gallery-spend-{zh,en}.png."""

from __future__ import annotations

import pytest

from .appserver import running
from .conftest import TEST_KEY, WAIT_MS
from . import test_browser
from .test_browser import open_page, run_t2i, shot

browser = test_browser.browser  # the module-scoped Chromium fixture, shared

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def budget_app(tmp_path_factory, emulator_server):
    """Local mode on the emulator with a daily budget of ¥1.00."""
    yield from running(tmp_path_factory, "browser-cost", ["--base-url", emulator_server.base_url,
                                                          "--daily-budget", "1"],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


def wait_text(page, selector: str, text: str, timeout: int = WAIT_MS) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout)


def set_n(page, n: int) -> None:
    page.fill("#t2i-n input[type=number]", str(n))
    page.press("#t2i-n input[type=number]", "Tab")


def test_cost_line_follows_the_options_zh(browser, budget_app):
    page = open_page(browser, budget_app.url, "zh-CN")
    wait_text(page, "#t2i-cost", "预计花费：约 ¥0.20 · 1 × qwen-image-plus · 北京")
    set_n(page, 3)
    wait_text(page, "#t2i-cost", "约 ¥0.60 · 3 × qwen-image-plus · 北京")
    shot(page, "cost-line-zh")
    page.locator("#tab-t2i").get_by_text("最佳（Max，较慢）").click()
    set_n(page, 3)  # Max: ¥1.50 would cross the ¥1.00 budget
    wait_text(page, "#t2i-cost", "✗ 不能运行")
    assert "每日预算 ¥1.00" in page.inner_text("#t2i-cost") and "约 ¥1.50" in page.inner_text("#t2i-cost")
    shot(page, "cost-blocked-zh")
    page.click("button[role=tab]:has-text('图像编辑')")
    wait_text(page, "#edit-cost", "约 ¥0.20 · 1 × qwen-image-edit-plus · 北京")
    page.close()


def test_cost_line_en_then_gallery_spend(browser, budget_app):
    page = open_page(browser, budget_app.url, "en-US")
    wait_text(page, "#t2i-cost", "Estimated cost: about ¥0.20 · 1 × qwen-image-plus · Beijing")
    set_n(page, 3)
    wait_text(page, "#t2i-cost", "Estimated cost: about ¥0.60 · 3 × qwen-image-plus · Beijing")
    shot(page, "cost-line-en")
    run_t2i(page, "a lighthouse at dusk", 3)
    wait_text(page, "#t2i-status", "This run cost: ¥0.60 (3 × ¥0.20)", 30000)
    # the options did not change, but ¥0.60 spent + ¥0.60 more would cross ¥1.00: the line says so
    wait_text(page, "#t2i-cost", "✗ Cannot run: This run would cross the daily budget of ¥1.00")
    assert "spent today ¥0.60 (3 images)" in page.inner_text("#t2i-cost")
    shot(page, "cost-blocked-en")
    page.click("button[role=tab]:has-text('Gallery')")
    wait_text(page, "#gallery-spend", "Spend · Today ¥0.60 (3 images)")
    assert "¥0.40 left of the daily budget" in page.inner_text("#gallery-spend")
    page.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
    page.click("#gallery-grid button.thumbnail-item >> nth=0", timeout=WAIT_MS) if page.query_selector(
        "#gallery-grid button.thumbnail-item") else page.click("#gallery-grid img >> nth=0")
    wait_text(page, "#gallery-details", "¥0.20 · qwen-image-plus · Beijing")
    shot(page, "gallery-spend-en")
    page.close()
    zh = open_page(browser, budget_app.url, "zh-CN")
    zh.click("button[role=tab]:has-text('图库')")
    wait_text(zh, "#gallery-spend", "花费 · 今天 ¥0.60（3 张）")
    zh.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
    zh.click("#gallery-grid button.thumbnail-item >> nth=0", timeout=WAIT_MS) if zh.query_selector(
        "#gallery-grid button.thumbnail-item") else zh.click("#gallery-grid img >> nth=0")
    wait_text(zh, "#gallery-details", "¥0.20 · qwen-image-plus · 北京")
    assert "每日预算剩余 ¥0.40" in zh.inner_text("#gallery-spend")
    shot(zh, "gallery-spend-zh")
    zh.close()


@pytest.fixture(scope="module")
def keyless_app(tmp_path_factory, emulator_server):
    """Local mode without a key in the environment: the offline demo until a key is typed."""
    yield from running(tmp_path_factory, "browser-cost-keyless", ["--base-url", emulator_server.base_url])


def test_cost_line_follows_the_key_box(browser, keyless_app):
    page = open_page(browser, keyless_app.url, "en-US")
    wait_text(page, "#t2i-cost", "Offline demo, not billed")
    if not page.is_visible("#api-key input"):
        page.click("#key-box button, #key-box .label-wrap")
    page.fill("#api-key input", "sk-typed-in-the-page-0123456789")
    wait_text(page, "#t2i-cost", "Estimated cost: about ¥0.20 · 1 × qwen-image-plus · Beijing")
    assert not page.is_visible("#key-typed")
    shot(page, "cost-line-key-typed-en")
    page.fill("#api-key input", "")
    wait_text(page, "#t2i-cost", "Offline demo, not billed")
    page.close()
