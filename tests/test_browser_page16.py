"""The page as a new user meets it (issue 16 §5-§8, §10), in headless Chromium at desktop
(1440x1000) and phone (390x844) sizes, en-US and zh-CN. Screenshots land in test-artifacts/.

One app for the module: local mode on the test emulator with a configured key and a daily budget
of ¥2.90 (Qwen-Image Max × 6, ¥3.00, is always over it; the dozen Plus images the tests make are not).
"""

from __future__ import annotations

import re

import pytest

from .appserver import running
from .conftest import ARTIFACTS, TEST_KEY, WAIT_MS
from .test_browser import browser  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1440, "height": 1000}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "browser-page16",
                       ["--base-url", emulator_server.base_url, "--daily-budget", "2.9"],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


@pytest.fixture(scope="module")
def spender(tmp_path_factory, emulator_server):
    """The same app without a budget, for the tests that make images: what they spend must not
    decide whether the budget tests' Generate is enabled (it did, once their sum neared ¥2.90)."""
    yield from running(tmp_path_factory, "browser-page16-spender", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


def open_page(browser, url: str, locale: str, size: str = "desktop"):  # noqa: F811
    phone = size == "phone"
    page = browser.new_page(locale=locale, viewport=SIZES[size], is_mobile=phone, has_touch=phone)
    page.goto(url, wait_until="load")  # "networkidle" never fires: the queue keeps a connection open
    page.wait_for_selector("#t2i-prompt textarea")
    return page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def set_n(page, prefix: str, n: int) -> None:
    page.fill(f"#{prefix}-n input[type=number]", str(n))
    page.press(f"#{prefix}-n input[type=number]", "Tab")


# --- §8: controls that cannot act look it ---------------------------------------------------------
OVERRIDE = {"en-US": ("Best (Max", "Advanced", "Not used: the model chosen under Advanced (qwen-image-3.0) decides"),
            "zh-CN": ("最佳", "高级选项", "未使用：由高级选项中选定的模型（qwen-image-3.0）决定")}


@pytest.mark.parametrize("locale, size", [("en-US", "desktop"), ("zh-CN", "phone")])
def test_generate_is_disabled_while_the_cost_line_says_it_cannot_run(browser, app, locale, size):  # noqa: F811
    best, advanced, overridden = OVERRIDE[locale]
    page = open_page(browser, app.url, locale, size)
    page.wait_for_selector("#t2i-cost:has-text('¥')")
    assert page.is_enabled("#t2i-run")
    # The cost line names the model once the switch took (a click can land before the page's
    # listeners on a busy machine: click again then).
    for _ in range(3):
        page.locator("#tab-t2i").get_by_text(best).first.click()
        try:
            page.wait_for_selector("#t2i-cost:has-text('qwen-image-max')")
            break
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError: try the click again
            continue
    set_n(page, "t2i", 6)  # 6 × Max = ¥3.00, over the daily budget of ¥2.90
    page.wait_for_selector("#t2i-cost:has-text('✗')")
    page.wait_for_selector("#t2i-run:disabled")
    page.locator("#t2i-run").scroll_into_view_if_needed()
    shot(page, f"page16-blocked-{size}-{locale[:2]}")
    set_n(page, "t2i", 1)  # ¥0.50: it can run again
    page.wait_for_selector("#t2i-run:enabled")
    assert "✗" not in page.inner_text("#t2i-cost")
    # The quality switch says when the model picked under Advanced overrides it, and is disabled.
    page.locator("#tab-t2i").get_by_text(advanced).first.click()
    page.click("#t2i-model input")
    page.get_by_role("option").filter(has_text=re.compile(r"qwen-image-3\.0(?!-)")).first.click()
    quality = page.locator("#tab-t2i fieldset").filter(has_text=best).first
    page.wait_for_function("""() => [...document.querySelectorAll('#tab-t2i fieldset input[type=radio]')]
                                      .some(i => i.disabled)""")
    assert overridden in quality.inner_text()
    assert all(r.is_disabled() for r in quality.locator("input[type=radio]").all())
    quality.scroll_into_view_if_needed()
    shot(page, f"page16-quality-overridden-{size}-{locale[:2]}")
    page.click("#t2i-model input")
    page.get_by_role("option").first.click()  # auto: the switch decides again
    page.wait_for_function("""() => [...document.querySelectorAll('#tab-t2i fieldset input[type=radio]')]
                                      .every(i => !i.disabled)""")
    assert overridden not in quality.inner_text()
    page.close()


# --- §5: an error is said once, where the user looks ---------------------------------------------
ERRORS = {"en-US": ("The API key you entered is invalid", "Best (Max",
                    "Nothing was sent: see the line under the Run button"),
          "zh-CN": ("你输入的 API Key 无效", "最佳", "未发送任何请求：原因见运行按钮下方那一行")}
# The status line's text is what a tap or a look lands on at its centre: nothing lies over it.
ON_TOP = """sel => { const el = document.querySelector(sel); const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + 20, r.top + r.height / 2);
  return !!hit && (hit === el || el.contains(hit)); }"""
DOC_URL = "https://help.aliyun.com/zh/model-studio/error-code"
TOASTS = "() => [...document.querySelectorAll('.toast-body')].filter(t => t.offsetParent !== null).length"


def _said_once(page, status: str) -> None:
    """The status line's text is not covered (no red "Error" pill over it) and no toast repeats it."""
    page.wait_for_timeout(600)  # a toast would be up by now
    assert page.evaluate(TOASTS) == 0
    assert not page.locator(f"{status} [data-testid=status-tracker] .error").is_visible()
    page.locator(f"{status} .md p").first.scroll_into_view_if_needed()
    assert page.evaluate(ON_TOP, f"{status} .md p"), "something covers the status text"


@pytest.mark.parametrize("locale, size", [("zh-CN", "desktop"), ("en-US", "phone")])
def test_an_error_is_said_once_where_the_user_looks(browser, app, emulator_server, locale, size):  # noqa: F811
    typed_remedy, best, see_cost = ERRORS[locale]
    status = "#t2i-status"
    page = open_page(browser, app.url, locale, size)
    # A key typed in the page that the service refuses: the remedy names the key box, not the
    # server's DASHSCOPE_API_KEY; said in the status line only.
    page.click("#key-box")
    page.fill("#api-key input", "sk-invalid-key-0000000000")
    page.fill("#t2i-prompt textarea", f"errors said once {locale}")
    page.click("#t2i-run")
    page.wait_for_selector(f"{status}:has-text('{typed_remedy}')")
    assert "DASHSCOPE_API_KEY" not in page.inner_text(status)
    _said_once(page, status)
    page.locator(status).scroll_into_view_if_needed()
    shot(page, f"page16-typed-key-{size}-{locale[:2]}")
    # A URL in a message links the URL only, not the sentence after it (zh: "。请检查尺寸…").
    page.fill("#api-key input", "")
    emulator_server.clear()
    emulator_server.fail(status=400, code="InvalidParameter", message=f"see {DOC_URL}")
    try:
        page.click("#t2i-run")
        # The refusal's own link (a link seen earlier may be the run's "working…" line, naming the endpoint).
        page.wait_for_selector(f"{status} a[href='{DOC_URL}']")
    finally:
        emulator_server.clear()
    # The status is drawn again as the run ends (its last update): read its links once they are there.
    page.wait_for_function("s => document.querySelectorAll(s + ' a').length > 0", arg=status, timeout=WAIT_MS)
    links = page.eval_on_selector_all(f"{status} a", "as => as.map(a => [a.textContent, a.getAttribute('href')])")
    assert links == [[DOC_URL, DOC_URL]], links
    _said_once(page, status)
    page.locator(status).scroll_into_view_if_needed()
    shot(page, f"page16-url-{size}-{locale[:2]}")
    # A budget refusal: the cost line states it (and Generate is disabled); a run that gets through
    # anyway (here: the button forced) is told in the status line by a pointer to it, no toast.
    page.locator("#tab-t2i").get_by_text(best).first.click()
    set_n(page, "t2i", 6)
    page.wait_for_selector("#t2i-run:disabled")
    why = page.inner_text("#t2i-cost")
    page.evaluate("document.querySelector('#t2i-run').disabled = false")
    page.click("#t2i-run")
    page.wait_for_selector(f"{status}:has-text('{see_cost}')")
    assert why.split("：" if locale == "zh-CN" else ": ", 1)[1][:40] not in page.inner_text(status)
    _said_once(page, status)
    page.locator("#t2i-cost").scroll_into_view_if_needed()
    shot(page, f"page16-budget-once-{size}-{locale[:2]}")
    page.close()


# --- §6: running and queued apart, with the seconds ticking ---------------------------------------
PROGRESS = {"en-US": (r"(\d+) running", r"(\d+) queued \(account limit 2 at a time\)", r"(\d+) s\b", "Done"),
            "zh-CN": (r"(\d+) 个进行中", r"(\d+) 个排队中（账号并发上限 2）", r"(\d+) 秒", "完成")}


@pytest.mark.parametrize("locale, size", [("en-US", "desktop"), ("zh-CN", "phone")])
def test_progress_says_running_and_queued_apart_and_the_seconds_tick(browser, spender, emulator_server, locale, size):  # noqa: F811
    """n=4 under an account limit of 2: "2 running · 2 queued (account limit 2) · 3 s", and the
    seconds move on while no request comes back (nothing else changes)."""
    running_re, queued_re, seconds_re, done = PROGRESS[locale]
    page = open_page(browser, spender.url, locale, size)
    emulator_server.clear()
    emulator_server.hold()  # the first two stay out until released: the counts hold still meanwhile
    emulator_server.task_limit = 2
    try:
        page.fill("#t2i-prompt textarea", f"progress {locale} {size}")
        set_n(page, "t2i", 4)
        page.click("#t2i-run")
        status = "#t2i-status"
        page.wait_for_function(f"""() => /{queued_re}/.test(document.querySelector('{status}').innerText)""")
        first = page.inner_text(status)
        assert re.search(running_re, first).group(1) == "2", first
        assert re.search(queued_re, first).group(1) == "2", first
        before = int(re.search(seconds_re, first).group(1))
        # Nothing comes back while held: the seconds move on while the counts stay.
        page.wait_for_function(f"""() => {{ const m = (document.querySelector('{status}')?.innerText ?? '')
                                   .match(/{seconds_re}/); return m && +m[1] > {before}; }}""")
        later = page.inner_text(status)
        assert re.search(running_re, later).group(1) == "2", later
        page.locator(status).scroll_into_view_if_needed()
        shot(page, f"page16-progress-{size}-{locale[:2]}")
        emulator_server.release()
        page.wait_for_selector(f"{status}:has-text('{done}')")
        assert page.locator("#t2i-results img").count() == 4
        assert not re.search(running_re, page.inner_text(status))
    finally:
        emulator_server.release()
        emulator_server.task_limit = None
    page.close()


# --- §7: on a phone, what a tap changed comes into view ---------------------------------------------
IN_VIEW = """sel => { const r = document.querySelector(sel).getBoundingClientRect();
  return r.top >= -2 && r.top < window.innerHeight * 0.5; }"""
GALLERY_TAB = {"zh-CN": "图库", "en-US": "Gallery"}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_phone_scrolls_to_what_a_tap_changed(browser, spender, locale):  # noqa: F811
    page = open_page(browser, spender.url, locale, "phone")
    page.fill("#t2i-prompt textarea", f"a phone scrolls {locale}")
    page.locator("#t2i-run").scroll_into_view_if_needed()
    page.wait_for_selector("#t2i-results", state="attached", timeout=WAIT_MS)  # a busy page mounts it late
    assert not page.evaluate(IN_VIEW, "#t2i-results")  # the results are below the button, out of sight
    page.tap("#t2i-run")
    page.wait_for_function(IN_VIEW, arg="#t2i-results")  # the page went to them
    page.wait_for_selector("#t2i-results img")
    page.wait_for_timeout(300)
    assert page.locator("#t2i-status").bounding_box()["y"] < 844  # the status line is on the screen too
    shot(page, f"page16-phone-after-generate-{locale[:2]}")
    # A tap on a gallery thumbnail brings its details (below the whole grid) into view.
    page.locator("#tabs button[role=tab]").filter(has_text=GALLERY_TAB[locale]).tap()
    page.wait_for_selector("#gallery-grid .thumbnail-item", timeout=WAIT_MS)
    page.wait_for_selector("#gallery-preview", state="attached", timeout=WAIT_MS)
    assert not page.evaluate(IN_VIEW, "#gallery-preview")
    page.locator("#gallery-grid .thumbnail-item").first.tap()
    page.wait_for_function(IN_VIEW, arg="#gallery-preview")
    page.wait_for_selector("#gallery-preview img")
    page.wait_for_timeout(300)
    shot(page, f"page16-phone-gallery-details-{locale[:2]}")
    page.close()


# --- §10: smaller things ----------------------------------------------------------------------------
SMALL = {"en-US": {"edit": "Image edit", "gallery": "Gallery", "fuse": "Multi-image fusion",
                   "bad": "✗ Input image: “fake.png” is not an image", "ok": "✓ Input image: 640×480 px",
                   "hint": "Prefilled with the standard negative prompt (in Chinese): low resolution",
                   "added": "Added #{id} to fusion slot 图{slot}"},
         "zh-CN": {"edit": "图像编辑", "gallery": "图库", "fuse": "多图融合",
                   "bad": "✗ 输入图片：“fake.png”", "ok": "✓ 输入图片：640×480 像素",
                   "hint": "已预填标准反向提示词", "added": "已将 #{id} 加入融合的 图{slot}"}}


@pytest.mark.parametrize("locale, size", [("en-US", "desktop"), ("zh-CN", "phone")])
def test_smaller_things_of_the_edit_gallery_and_results(browser, spender, tmp_path, locale, size):  # noqa: F811
    from PIL import Image

    s = SMALL[locale]
    page = open_page(browser, spender.url, locale, size)
    # The default negative prompt (Chinese) says what it means.
    page.locator("#tab-t2i").get_by_text(OVERRIDE[locale][1]).first.click()  # "Advanced"
    page.wait_for_selector("#t2i-negative textarea")
    assert s["hint"] in page.inner_text("#t2i-negative")
    # A run's zip downloads with one click.
    page.fill("#t2i-prompt textarea", f"small things {locale}")
    set_n(page, "t2i", 2)
    page.click("#t2i-run")
    page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 2")
    page.wait_for_selector("#t2i-act-zip:enabled")
    with page.expect_download() as got:
        page.click("#t2i-act-zip")
    assert got.value.suggested_filename.endswith(".zip")
    # The edit tab checks an upload when it arrives: a text file named fake.png is refused at once.
    page.locator("#tabs button[role=tab]").filter(has_text=s["edit"]).click()
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    page.set_input_files("#edit-image input[type=file]", str(fake))
    page.wait_for_selector(f"#edit-image-note:has-text('{s['bad']}')")
    page.locator("#edit-image-note").scroll_into_view_if_needed()
    shot(page, f"page16-edit-fake-{size}-{locale[:2]}")
    real = tmp_path / "real.png"
    Image.new("RGB", (640, 480), (30, 90, 160)).save(real)
    page.reload(wait_until="load")
    page.wait_for_selector("#t2i-prompt textarea")
    page.locator("#tabs button[role=tab]").filter(has_text=s["edit"]).click()
    page.set_input_files("#edit-image input[type=file]", str(real))
    page.wait_for_selector(f"#edit-image-note:has-text('{s['ok']}')")
    # The gallery's "Add to fusion" fills the next free slot and stays on the gallery.
    page.locator("#tabs button[role=tab]").filter(has_text=s["gallery"]).click()
    page.wait_for_selector("#gallery-grid .thumbnail-item")
    for slot in (1, 2):
        page.locator("#gallery-grid .thumbnail-item").nth(slot - 1).click()
        page.wait_for_selector("#gallery-details table")
        page.wait_for_timeout(300)
        page.click("#gallery-to-fuse")
        page.wait_for_function(f"(document.querySelector('#gallery-status')?.innerText ?? '').includes('图{slot}')")
        assert page.locator("#gallery-grid").is_visible()  # still on the gallery
    assert re.search(s["added"].format(id=r"\d+", slot=2), page.inner_text("#gallery-status"))
    shot(page, f"page16-gallery-to-fusion-{size}-{locale[:2]}")
    page.locator("#tabs button[role=tab]").filter(has_text=s["fuse"]).click()
    page.wait_for_selector("#fuse-img1 img")
    page.wait_for_selector("#fuse-img2 img")
    assert page.locator("#fuse-img3 img").count() == 0
    page.close()


CLEARED = {"en-US": ("PNG info", "✓"), "zh-CN": ("PNG 信息", "✓")}


@pytest.mark.parametrize("locale, size", [("en-US", "desktop"), ("zh-CN", "phone")])
def test_a_refused_png_info_file_leaves_no_stale_loaded_line(browser, app, tmp_path, locale, size):  # noqa: F811
    from PIL import Image, PngImagePlugin

    title, ok = CLEARED[locale]
    recipe = PngImagePlugin.PngInfo()
    recipe.add_text("parameters", "a red fox in snow\nNegative prompt: blurry\n"
                                  "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512")
    good = tmp_path / "fox.png"
    Image.new("RGB", (64, 64), (200, 80, 20)).save(good, pnginfo=recipe)
    (tmp_path / "notes.txt").write_text("not a png")
    page = open_page(browser, app.url, locale, size)
    page.locator("#png-info").get_by_text(title).first.click()
    page.set_input_files("#png-info-file input[type=file]", str(good))
    page.wait_for_selector(f"#png-info-status:has-text('{ok}')")
    # Another file: clear the drop area, drop a file the page refuses (not a .png).
    page.locator("#png-info-file button[aria-label]").last.click()
    page.set_input_files("#png-info-file input[type=file]", str(tmp_path / "notes.txt"))
    page.wait_for_function("!(document.querySelector('#png-info-status')?.innerText ?? '').includes('✓')")
    page.locator("#png-info").scroll_into_view_if_needed()
    shot(page, f"page16-png-info-cleared-{size}-{locale[:2]}")
    page.close()
