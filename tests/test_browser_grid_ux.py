"""The X/Y grid as a user reads it, in a real headless Chromium (one app): a grid on Model x Seed made
from the Chinese Batch tab (the Model axis lists the models; the captions name the axes in Chinese),
then its record in the English gallery (axes, cells, "varies (Model)", no rewritten-wording button).
Screenshots in test-artifacts/grid-ux-*.png."""

from __future__ import annotations

import pytest

from .appserver import running
from .conftest import TEST_KEY
from .test_browser import browser, shot  # noqa: F401 - the module's browser fixture
from .test_browser_batch import DESKTOP, WAIT, open_batch, run_and_wait

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Local mode on the test emulator with a configured key."""
    yield from running(tmp_path_factory, "browser-grid-ux", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


def test_a_model_by_seed_grid_read_in_chinese_then_in_the_english_gallery(browser, app):  # noqa: F811
    page = open_batch(browser, app.url, "zh-CN", DESKTOP, "批量")
    page.click("#batch-mode label:has-text('X/Y 网格')")
    page.wait_for_selector("#batch-x-values", state="visible")
    page.fill("#batch-prompts textarea", "海边的灯塔，黄昏")
    page.click("#batch-x_axis input")
    page.click("ul[role=listbox] li:has-text('模型')")
    # the values box lists the text-to-image models once the axis is Model
    page.wait_for_selector("#batch-x-values:has-text('qwen-image-max')", timeout=WAIT)
    page.fill("#batch-x-values input, #batch-x-values textarea", "qwen-image-plus,qwen-image-max")
    page.click("#batch-y_axis input")
    page.click("ul[role=listbox] li:has-text('种子')")
    page.fill("#batch-y-values input, #batch-y-values textarea", "1,2")
    page.wait_for_function("() => (document.querySelector('#batch-plan')?.innerText || '').includes('4 张图片')",
                           timeout=WAIT)
    run_and_wait(page, "已保存 4/4 张图片")
    page.wait_for_selector("#batch-grid img", timeout=WAIT)
    captions = page.locator("#batch-results .caption-label, #batch-results figcaption").all_inner_texts()
    assert any("模型=qwen-image-plus · 种子=1" in c for c in captions), captions
    assert not any("model=" in c for c in captions), captions
    page.locator("#batch-results").scroll_into_view_if_needed()
    shot(page, "grid-ux-captions-zh")
    page.close()

    en = browser.new_page(locale="en-US", viewport=DESKTOP)
    en.goto(app.url, wait_until="load")
    en.wait_for_selector("#t2i-prompt textarea")
    en.click("button[role=tab]:has-text('Gallery')")
    en.wait_for_selector("#gallery-grid img", timeout=WAIT)
    en.click("#gallery-grid button.thumbnail-item >> nth=0")  # the newest: the grid
    en.wait_for_selector("#gallery-details:has-text('Axes')", timeout=WAIT)
    details = en.inner_text("#gallery-details")
    assert "Model: qwen-image-plus, qwen-image-max × Seed: 1, 2" in details and "varies (Model)" in details
    assert "None" not in details
    en.wait_for_selector("#gallery-keep-wording", state="hidden", timeout=WAIT)
    en.locator("#gallery-details").scroll_into_view_if_needed()
    shot(en, "grid-ux-details-en")
