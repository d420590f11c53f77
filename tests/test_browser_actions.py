"""Actions on a run's results and the gallery at fifty images a day, in headless Chromium (zh-CN
and en-US). Screenshots: test-artifacts/result-actions-zh.png, variations-en.png,
gallery-search-en.png, gallery-one-hit-en.png, gallery-select-zh.png, variations-price-zh.png,
variations-price-en.png."""

from __future__ import annotations

import io
import re
import sqlite3
import zipfile

import pytest
import requests

from aliyun_image.ui.page_text import caption_id

from .appserver import running
from .conftest import TEST_KEY, WAIT_MS, gradio_client
from .test_app_api import generate
from . import test_browser
from .test_browser import open_page, run_t2i, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
THUMB = "#gallery-grid .thumbnail-item"


browser = test_browser.browser  # the module-scoped Chromium fixture, shared


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Local mode on the test emulator with a configured key (one shared gallery)."""
    yield from running(tmp_path_factory, "browser-actions", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


def _captions(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} .caption-label", "els => els.map(e => e.innerText)")


def _seeds(app) -> dict[int, int]:
    return dict(sqlite3.connect(app.data_dir / "gallery.sqlite3").execute("SELECT id, seed FROM results"))


def _open_gallery(page, tab: str) -> None:
    """Open the gallery tab and let its first page land (or it could overwrite a search)."""
    page.click(f"button[role=tab]:has-text('{tab}')")
    page.wait_for_selector(f"{THUMB} img", timeout=WAIT_MS)
    page.wait_for_function("/\\d/.test((document.querySelector('#gallery-page')?.innerText ?? ''))")


def test_run_then_edit_this_and_use_as_slot_zh(browser, app):
    page = open_page(browser, app.url, "zh-CN")
    run_t2i(page, "一只橘猫在窗台上打盹", 2)
    page.wait_for_selector("#t2i-status:has-text('完成')", timeout=WAIT_MS)
    page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 2")
    caps = _captions(page, "#t2i-results")
    assert caps and all(re.match(r"#\d+ · ", c) for c in caps), caps  # every result names its #id
    first = caption_id(caps[0])
    # the run's prompt is now one click away under the prompt box
    page.wait_for_selector("#t2i-recent:has-text('一只橘猫在窗台上打盹')", timeout=WAIT_MS)
    shot(page, "result-actions-zh")
    page.click("#t2i-act-slot2")
    page.wait_for_selector(f"#t2i-act-note:has-text('#{first} 已放入多图融合的 图2')", timeout=WAIT_MS)
    page.click("#t2i-act-edit")
    page.wait_for_selector("#edit-image img", timeout=WAIT_MS)  # the edit tab, with the image as input
    assert page.is_visible("#edit-instruction textarea")
    assert f"#{first} 已设为输入图片" in page.inner_text("#edit-status")
    shot(page, "edit-this-zh")
    page.click("button[role=tab]:has-text('多图融合')")
    page.wait_for_selector("#fuse-img2 img", timeout=WAIT_MS)
    assert not page.query_selector("#fuse-img1 img")
    page.close()


def test_variations_make_new_seeds_and_recent_prompt_fills_the_box_en(browser, app):
    page = open_page(browser, app.url, "en-US")
    run_t2i(page, "a lighthouse at dusk, variations", 2)
    page.wait_for_selector("#t2i-status:has-text('Done')", timeout=WAIT_MS)
    page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 2")
    before = [caption_id(c) for c in _captions(page, "#t2i-results")]
    page.click("#t2i-results .thumbnail-item >> nth=1")  # act on the second image
    page.wait_for_selector(f"#t2i-act-note:has-text('act on #{before[1]}')", timeout=WAIT_MS)
    page.keyboard.press("Escape")
    page.click("#t2i-act-variations")
    page.wait_for_selector("#t2i-status:has-text('Variations of')", timeout=WAIT_MS)
    page.wait_for_selector("#t2i-status:has-text('Done')", timeout=WAIT_MS)
    page.wait_for_function(f"!(document.querySelector('#t2i-results')?.innerText ?? '').includes('#{before[0]} ')")
    after = [caption_id(c) for c in _captions(page, "#t2i-results")]
    assert len(after) == 2 and not set(after) & set(before)
    seeds = _seeds(app)
    assert {seeds[i] for i in after}.isdisjoint({seeds[i] for i in before})
    assert f"Variations of #{before[1]}" in page.inner_text("#t2i-status")
    assert "act on" not in page.inner_text("#t2i-act-note")  # the line named the old result
    shot(page, "variations-en")
    page.fill("#t2i-prompt textarea", "")
    page.click("#t2i-recent button:has-text('a lighthouse at dusk, variations')")
    page.wait_for_function("(document.querySelector('#t2i-prompt textarea')?.value ?? '') === "
                           "'a lighthouse at dusk, variations'")
    page.close()


def test_gallery_search_as_you_type_one_hit_and_ids_en(browser, app):
    c = gradio_client(app.url, verbose=False)
    for prompt, n in [("harbour crane at night", 3), ("zebra crossing", 2), ("unique quokka selfie", 1)]:
        generate(c, prompt, n=n)
    page = open_page(browser, app.url, "en-US")
    _open_gallery(page, "Gallery")
    caps = _captions(page, "#gallery-grid")
    ids = [caption_id(x) for x in caps]
    assert None not in ids and len(set(ids)) == len(ids), caps  # an #id on each
    # Newest first, run by run (the images of one run are stored in the order they land, not by id).
    runs = [next(p for p in ("quokka", "zebra", "harbour") if p in x) for x in caps[:6]]
    assert runs == ["quokka", "zebra", "zebra", "harbour", "harbour", "harbour"], caps
    full_width = page.eval_on_selector(THUMB, "e => e.getBoundingClientRect().width")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.click("#gallery-search input")
    page.keyboard.type("harbour", delay=40)  # no Enter: the grid follows the typing
    page.wait_for_selector("#gallery-page:has-text('3 result')", timeout=WAIT_MS)
    assert all("harbour" in x for x in _captions(page, "#gallery-grid"))
    assert len(posts) < 4, posts  # debounced: one search for the word (a busy machine: two), not seven
    shot(page, "gallery-search-en")
    page.fill("#gallery-search input", "")
    page.keyboard.type("quokka", delay=40)
    page.wait_for_selector("#gallery-page:has-text('1 result')", timeout=WAIT_MS)
    box = page.eval_on_selector(THUMB, "e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }")
    assert abs(box[0] - full_width) < 2 and abs(box[0] - box[1]) < 2, (box, full_width)  # same size, square
    assert re.match(r"#\d+ · unique quokka selfie", _captions(page, "#gallery-grid")[0])
    shot(page, "gallery-one-hit-en")
    page.close()


def test_gallery_select_on_thumbnails_all_none_and_zips_zh(browser, app):
    generate(gradio_client(app.url, verbose=False), "选择打包的猫", n=3)
    page = open_page(browser, app.url, "zh-CN")
    _open_gallery(page, "图库")
    page.click("#gallery-search input")
    page.keyboard.insert_text("选择打包")  # as an input method delivers it: no key presses
    page.wait_for_selector("#gallery-page:has-text('共 3 张')", timeout=WAIT_MS)
    page.click("#gallery-select-mode input")
    page.click(f"{THUMB} >> nth=1")
    page.wait_for_selector("#gallery-select-info:has-text('已选 1 张')", timeout=WAIT_MS)
    assert [x.startswith("✓") for x in _captions(page, "#gallery-grid")] == [False, True, False]
    page.click("#gallery-pick-all")
    page.wait_for_selector("#gallery-select-info:has-text('已选 3 张')", timeout=WAIT_MS)
    assert all(x.startswith("✓") for x in _captions(page, "#gallery-grid"))
    page.click("#gallery-zip")
    page.wait_for_selector("#gallery-zip-file td.filename[aria-label$='.zip']", timeout=WAIT_MS)
    href = page.get_attribute("#gallery-zip-file a.download-link", "href")
    assert len(zipfile.ZipFile(io.BytesIO(requests.get(href, timeout=10).content)).namelist()) == 3
    assert "已打包 3 张" in page.inner_text("#gallery-status")
    shot(page, "gallery-select-zh")
    page.click("#gallery-pick-none")
    page.wait_for_selector("#gallery-select-info:has-text('未选择')", timeout=WAIT_MS)
    page.click("#gallery-zip-matching")
    page.wait_for_selector("#gallery-select-info:has-text('已打包全部匹配结果：3 张')", timeout=WAIT_MS)
    page.close()


def test_stop_stops_variations_en(browser, app, emulator_server):
    """Variations run like Generate: the panel's Stop stops them; requests already sent are kept."""
    page = open_page(browser, app.url, "en-US")
    run_t2i(page, "stop these variations", 6)
    page.wait_for_selector("#t2i-status:has-text('Done')", timeout=WAIT_MS)
    emulator_server.clear()
    emulator_server.hold()  # the first requests stay out until Stop has landed, on a machine of any speed
    try:
        page.click("#t2i-act-variations")
        # Wait on the state (a request is out), not on a clock: a busy machine can take seconds.
        for _ in range(600):
            if emulator_server.calls("generation"):
                break
            page.wait_for_timeout(100)
        page.click("#t2i-stop")
        page.wait_for_selector("#t2i-status:has-text('Stopping')", timeout=WAIT_MS)  # the server has it
        emulator_server.release()
        page.wait_for_selector("#t2i-status:has-text('Stopped')", timeout=WAIT_MS)
        sent = len(emulator_server.calls("generation"))
        assert 0 < sent < 6 and f"{sent} of 6" in page.inner_text("#t2i-status")
    finally:
        emulator_server.release()
    page.close()


@pytest.mark.parametrize("locale, before, after", [
    ("zh-CN", "再来几张（新种子）", "再来几张（新种子） · 3 张，约 ¥0.60"),
    ("en-US", "Variations (new seeds)", "Variations (new seeds) · 3 images, about ¥0.60"),
])
def test_variations_button_says_its_price_and_actions_wait_for_a_result(browser, app, locale, before, after):
    page = open_page(browser, app.url, locale)
    button = "#t2i-act-variations"
    page.wait_for_selector(f"{button}:has-text('{before}')")
    for action in (button, "#t2i-act-edit", "#t2i-act-slot1", "#t2i-act-zip", "#t2i-stop"):  # nothing to act on
        assert page.is_disabled(action), action
    run_t2i(page, f"three paper boats, {locale}", 3)
    page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 3", timeout=WAIT_MS)
    page.wait_for_selector(f"{button}:has-text('{after}')", timeout=WAIT_MS)  # the price before the click
    assert page.is_enabled(button) and page.is_enabled("#t2i-act-edit")
    page.wait_for_selector("#t2i-stop:disabled", timeout=WAIT_MS)  # the run ended: nothing to stop
    page.click("#t2i-results .thumbnail-item >> nth=2")  # another result of the run: the same recipe, same price
    page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    assert page.inner_text(button).strip() == after
    page.locator(button).scroll_into_view_if_needed()
    shot(page, f"variations-price-{locale[:2]}")
    page.close()
