"""Results you can see whole, and a page a phone can use (issue 16 §2, §4, §7), in headless
Chromium at desktop (1440x1000) and phone (390x844) sizes. Screenshots land in test-artifacts/."""

from __future__ import annotations

import pytest

from .conftest import ARTIFACTS, WAIT_MS
from .test_browser import app, browser, run_t2i  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
TABS = {"zh-CN": "图库", "en-US": "Gallery", "ja-JP": "ギャラリー"}

# The part of an element that can be seen without scrolling inside the results box: its box cut by
# every ancestor (up to the gallery) that clips its overflow.
VISIBLE = """([el, stop]) => {
  const r = el.getBoundingClientRect();
  let box = {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
  const own = {...box};
  for (let a = el.parentElement; a; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX !== 'visible' || s.overflowY !== 'visible') {
      const q = a.getBoundingClientRect();
      box = {top: Math.max(box.top, q.top), bottom: Math.min(box.bottom, q.bottom),
             left: Math.max(box.left, q.left), right: Math.min(box.right, q.right)};
    }
    if (a === stop) break;
  }
  return {own, box};
}"""


def _page(browser, locale: str, size: str, touch: bool = False):  # noqa: F811
    phone = size == "phone"
    page = browser.new_page(locale=locale, viewport=SIZES[size], is_mobile=phone and touch,
                            has_touch=phone and touch)
    return page


def _open(page, url: str) -> None:
    page.goto(url, wait_until="load")  # "networkidle" never fires: the queue keeps a connection open
    page.wait_for_selector("#t2i-prompt textarea")


def _whole(page, selector: str) -> None:
    """Every element matching ``selector`` is seen whole inside the results box, no scrolling."""
    stop = page.query_selector("#t2i-results")
    items = page.query_selector_all(selector)
    assert items, selector
    for i, el in enumerate(items):
        got = page.evaluate(VISIBLE, [el, stop])
        own, box = got["own"], got["box"]
        assert own["bottom"] - own["top"] > 4, (selector, i, own)
        for side in ("top", "bottom", "left", "right"):
            assert abs(own[side] - box[side]) <= 1, (selector, i, side, own, box)


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_result_of_a_run_is_seen_whole_with_its_caption(browser, app, locale, size):  # noqa: F811
    n = 6 if size == "phone" else 4  # a phone's run of 6: three rows in a narrow column
    page = _page(browser, locale, size)
    _open(page, app.url)
    run_t2i(page, "a lighthouse at dusk, watercolour", n)
    page.wait_for_function(f"document.querySelectorAll('#t2i-results img').length >= {n}", timeout=WAIT_MS)
    page.wait_for_function("[...document.querySelectorAll('#t2i-results img')].every(i => i.complete)")
    page.wait_for_timeout(300)  # the grid settles after the last image's size is known
    _whole(page, "#t2i-results img")
    _whole(page, "#t2i-results .caption-label")
    # Each tile has its image's shape (the default size is 16:9): no bands around a wide image.
    shapes = page.evaluate("""() => [...document.querySelectorAll('#t2i-results .thumbnail-item')].map(t => {
      const img = t.querySelector('img'), r = t.getBoundingClientRect();
      return [r.width / r.height, img.naturalWidth / img.naturalHeight]; })""")
    assert shapes and all(abs(tile / image - 1) < 0.06 for tile, image in shapes), shapes
    page.locator("#t2i-results").scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"results-{size}-{locale[:2]}.png"))
    page.close()


# Whether the element's centre is where a tap lands on it (not covered, not clipped away).
TAPPABLE = """el => { const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return !!hit && (hit === el || el.contains(hit)); }"""


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("locale", ["zh-CN", "en-US", "ja-JP"])
def test_every_tab_is_one_tap_away(browser, app, locale, size):  # noqa: F811
    page = _page(browser, locale, size, touch=True)
    _open(page, app.url)
    # Gradio measures and lays out the tab bar after the first paint: wait (bounded) until it has
    page.wait_for_function(f"() => [...document.querySelectorAll('#tabs button[role=tab]')].every({TAPPABLE})",
                           timeout=WAIT_MS)
    view = SIZES[size]
    tabs = page.locator("#tabs button[role=tab]")
    assert tabs.count() == 5  # text to image, edit, fusion, batch, gallery
    for i in range(5):
        tab = tabs.nth(i)
        assert tab.is_visible(), i
        box = tab.bounding_box()
        assert box is not None and box["width"] > 20, (i, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"], (i, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"], (i, box)
        assert tab.evaluate(TAPPABLE), i
        if size == "phone":
            assert box["height"] >= 40, (i, box)
    assert not page.locator("#tabs .overflow-menu").is_visible()
    page.screenshot(path=str(ARTIFACTS / f"tabs-{size}-{locale[:2]}.png"))
    tabs.nth(4).tap() if size == "phone" else tabs.nth(4).click()  # one tap reaches the last tab
    page.wait_for_selector("#gallery-grid")
    page.close()


SHORTCUT_TEXT = """() => [...document.querySelectorAll('.run-btn')].filter(b => b.offsetParent !== null)
  .map(b => b.innerText + getComputedStyle(b, '::before').content + getComputedStyle(b, '::after').content)"""


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_phone_gets_big_tap_targets_and_no_keyboard_shortcut(browser, app, locale):  # noqa: F811
    page = _page(browser, locale, "phone", touch=True)
    _open(page, app.url)
    run_t2i(page, "a lighthouse at dusk, watercolour", 1)
    page.wait_for_selector("#t2i-results img", timeout=WAIT_MS)
    labels = page.evaluate(SHORTCUT_TEXT)
    assert labels and not any("Ctrl" in x for x in labels), labels
    assert "Ctrl+Enter" not in page.inner_text("body")
    small = []
    for sel in ("#t2i-actions button", "#t2i-run", "#t2i-stop"):
        for b in page.locator(sel).all():
            if b.is_visible():
                box = b.bounding_box()
                if box is None or box["height"] < 40:
                    small.append((sel, b.inner_text(), box))
    assert page.locator("#t2i-actions button").count() >= 4
    assert not small, small
    page.locator("#t2i-actions").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"phone-actions-{locale[:2]}.png"))
    page.close()


def test_a_desktop_still_names_the_shortcut(browser, app):  # noqa: F811
    page = _page(browser, "en-US", "desktop")
    _open(page, app.url)
    labels = page.evaluate(SHORTCUT_TEXT)
    assert labels and all("Ctrl+Enter" in x for x in labels), labels
    page.close()
