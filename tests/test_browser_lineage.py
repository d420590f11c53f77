"""Lineage and compare in a real headless Chromium (issue 18.4 and 18.5), in Chinese and English: a chain made
through the public API (generate, edit of a downloaded result, fusion, variations), then the gallery's details
show it with buttons that open each linked result, and "Compare with…" on two results shows them side by side,
as a slider and with their recipes' differences. Screenshots: test-artifacts/lineage-*.png, compare-*.png."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from aliyun_image.ui.page_text import caption_id

from .appserver import running
from .conftest import TEST_KEY
from .test_app_api import edit, fuse, generate
from .test_browser import browser, open_page, shot  # noqa: F401 - the module's browser fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Local mode on the test emulator with a configured key, and a chain: #1 fox, #2 forest, #3 an edit of #1
    (its downloaded file uploaded again), #4 a fusion of #2 + #3, #5 a variation of #4."""
    for running_app in running(tmp_path_factory, "browser-lineage", ["--base-url", emulator_server.base_url],
                               env_extra={"DASHSCOPE_API_KEY": TEST_KEY}):
        c = Client(running_app.url, verbose=False)
        fox = generate(c, "a red fox sitting in the snow, morning light", seed=11)[0][0]
        forest = generate(c, "a quiet snowy pine forest", seed=12)[0][0]
        edited = edit(c, handle_file(fox["image"]), "make it night, with a full moon")[0][0]
        fused = fuse(c, [handle_file(forest["image"]), handle_file(edited["image"])],
                     "put the fox of 图2 into the forest of 图1")[0][0]
        variation = c.predict(caption_id(fused["caption"]), api_name="/variations")[0][0]
        assert [caption_id(x["caption"]) for x in (fox, forest, edited, fused, variation)] == [1, 2, 3, 4, 5]
        yield running_app


def _open_gallery(page, tab: str) -> None:
    page.click(f"button[role=tab]:has-text('{tab}')")
    page.wait_for_selector("#gallery-grid img")


def _click_result(page, rid: int, newest: int = 5) -> None:
    """Click result ``rid``'s thumbnail (the page lists newest first) and wait for its details."""
    page.click(f"#gallery-grid button.thumbnail-item >> nth={newest - rid}")
    page.wait_for_selector(f"#gallery-details:has-text('#{rid}')")


@pytest.mark.parametrize(("locale", "tab", "pair", "words"), [
    ("zh-CN", "图库", (4, 5), {"from": "来源", "fuse": "融合自 #2 + #3", "earlier": "更早", "kids": "变体：#5",
                     "compare": "与…对比", "differ": "项不同"}),
    ("en-US", "Gallery", (1, 2), {"from": "Made from", "fuse": "fusion of #2 + #3", "earlier": "Before that",
                          "kids": "variations: #5", "compare": "Compare with", "differ": "differ"}),
])
def test_lineage_details_and_compare(browser, app, locale, tab, pair, words):  # noqa: F811 - the fixture
    page = open_page(browser, app.url, locale)
    _open_gallery(page, tab)
    _click_result(page, 4)
    page.wait_for_selector(f"#gallery-lineage:has-text('{words['fuse']}')")
    chain = page.inner_text("#gallery-lineage")
    assert words["from"] in chain and words["earlier"] in chain and "#1" in chain and words["kids"] in chain
    buttons = page.inner_text("#gallery-lineage-links")
    assert all(label in buttons for label in ("↑ #2", "↑ #3", "↑ #1", "↓ #5")), buttons
    page.locator("#gallery-details").scroll_into_view_if_needed()
    shot(page, f"lineage-{locale}")
    page.click("#gallery-lineage-links button:has-text('↑ #3')")  # opens #3's details and its own chain
    page.wait_for_selector("#gallery-details:has-text('#3')")
    page.wait_for_selector("#gallery-lineage:has-text('#1')")
    # the highlighted thumbnail follows: #3's (the page lists #5..#1), not #4's any more
    page.wait_for_function("() => { const t = [...document.querySelectorAll('#gallery-grid button.thumbnail-item')];"
                           " return t.length === 5 && t[2].classList.contains('selected')"
                           " && !t[1].classList.contains('selected'); }")
    # "Compare with…" on each of the pair: #4 (the fusion) and #5 (its variation, another seed), or #1 and #2
    # (two prompts: word-diffed).
    _click_result(page, pair[0])
    page.click("#gallery-compare-pick")
    page.wait_for_function(f"document.querySelector('#compare-a input')?.value === '{pair[0]}'")  # drawn anew
    _click_result(page, pair[1])
    page.click("#gallery-compare-pick")
    page.wait_for_selector("#compare-table table")
    page.wait_for_selector("#compare-image-a img")
    page.wait_for_selector("#compare-slider img")
    assert words["differ"] in page.inner_text("#compare-note")
    assert page.locator("#compare-table tr[data-differs]").count() >= 1  # the seed at least
    page.locator("#compare").scroll_into_view_if_needed()
    page.locator("#compare").screenshot(path=str(_artifact(f"compare-{locale}")))
    page.close()


def _artifact(name: str):
    from .conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"
