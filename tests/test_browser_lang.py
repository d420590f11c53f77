"""One language per page, prompt rewriting in the open, and the small form helps (issue 10 §4-6),
in headless Chromium in zh-CN, en-US and ja-JP. Screenshots land in test-artifacts/."""

from __future__ import annotations

import functools
import re

import pytest

from aliyun_image import i18n

from .appserver import running
from .conftest import ARTIFACTS, TEST_KEY, WAIT_MS
from .test_browser import app, browser, hosted, open_page, png, run_t2i, shot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLES = {"zh-CN": "通义千问图像工作台", "en-US": "Qwen-Image studio"}
OTHER = {"zh-CN": "en-US", "en-US": "zh-CN"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Local, no key anywhere: the offline demo on the in-process emulator."""
    yield from running(tmp_path_factory, "browser-demo", [])


def _tab(page, name: str) -> None:
    page.click(f"button[role=tab]:has-text('{name}')")


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_page_is_in_one_language(browser, demo, locale):  # noqa: F811
    zh = locale == "zh-CN"
    page = open_page(browser, demo.url, locale)
    head = page.inner_text("#title") + page.inner_text("#banner")
    assert TITLES[locale] in head and TITLES[OTHER[locale]] not in page.inner_text("body")
    assert ("离线演示" if zh else "Offline demo") in head
    assert ("Offline demo" if zh else "离线演示") not in page.inner_text("body")
    shot(page, f"page-{'zh' if zh else 'en'}")
    _tab(page, "多图融合" if zh else "Multi-image fusion")
    help_text = page.inner_text("#fuse-help")
    assert ("最后一张" if zh else "last") in help_text and ("Add 2 or 3" in help_text) is not zh
    label = page.inner_text("#fuse-instruction label, #fuse-instruction [data-testid=block-info]")
    assert label.strip() == ("融合指令" if zh else "Instruction")
    _tab(page, "图像编辑" if zh else "Image edit")
    page.click("#tab-edit .gr-accordion button, #tab-edit button:has-text('快捷模板'), "
               "#tab-edit button:has-text('Quick templates')") if not page.is_visible("#edit-preset") else None
    page.click("#edit-preset input")
    options = page.locator("[role=option]").all_inner_texts()
    assert ("更换背景" if zh else "Replace background") in " ".join(options)
    page.keyboard.press("Escape")
    tabs = [t.strip() for t in page.locator("#tabs button[role=tab]").all_inner_texts()]
    _tab(page, "图库" if zh else "Gallery")
    page.click("#gallery-task input")
    names = [o.strip() for o in page.locator("[role=option]").all_inner_texts()]
    assert names[1:] == tabs[:3], (names, tabs)  # the filter names are the tab names
    page.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_on_a_phone_the_header_leaves_room_for_the_form(browser, demo, locale):  # noqa: F811
    page = browser.new_page(locale=locale, viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(demo.url, wait_until="load")
    page.wait_for_selector("#t2i-prompt textarea")
    page.wait_for_timeout(500)
    banner = page.locator("#banner").bounding_box()
    prompt = page.locator("#t2i-prompt textarea").bounding_box()
    assert banner is not None and prompt is not None
    assert banner["y"] + banner["height"] < 844 * 0.5, banner  # header and banner: under half the first screen
    assert prompt["y"] < 844, prompt  # the prompt box is on the first screen
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"phone-{'zh' if locale == 'zh-CN' else 'en'}.png"))  # the first screen
    page.close()


def test_a_typed_key_switches_the_banner_to_live(browser, demo):  # noqa: F811
    page = open_page(browser, demo.url, "en-US")
    assert page.is_visible("#banner") and not page.is_visible("#banner-own")
    page.click("#key-box")
    page.fill("#api-key input", "sk-typed-here-0000")
    page.wait_for_selector("#banner-own", state="visible")
    assert not page.is_visible("#banner")
    own = page.inner_text("#banner-own")
    assert "Live: your key" in own and "sk-typed" not in own
    shot(page, "key-banner-en")
    # Gradio may draw the box anew, empty, with no input event: the banner still follows the box
    page.evaluate("document.querySelector('#api-key input').value = ''")
    page.wait_for_selector("#banner", state="visible")
    page.fill("#api-key input", "sk-typed-again-0000")
    page.wait_for_selector("#banner-own", state="visible")
    page.fill("#api-key input", "")
    assert page.input_value("#api-key input") == ""
    page.wait_for_selector("#banner", state="visible")
    assert not page.is_visible("#banner-own")
    storage = page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert "sk-typed" not in storage
    page.close()


def test_hosted_without_a_host_key_says_stand_ins_before_the_first_run(browser, hosted):  # noqa: F811
    page = open_page(browser, hosted.url, "zh-CN")
    banner = page.inner_text("#banner")
    assert "替代图片" in banner and "Shared demo" not in page.inner_text("body")
    page.close()


def test_rewriting_side_by_side_and_keep_this_wording(browser, app, emulator_server):  # noqa: F811
    page = open_page(browser, app.url, "en-US")
    emulator_server.clear()
    run_t2i(page, "a lighthouse at dusk", 1)
    page.wait_for_selector("#t2i-status table", timeout=WAIT_MS)
    cells = page.locator("#t2i-status td").all_inner_texts()
    assert cells[0] == "a lighthouse at dusk" and cells[1].startswith("a lighthouse at dusk. Rich detail")
    assert "Rewritten by the service" in page.inner_text("#t2i-status")
    page.wait_for_selector("#t2i-keep-wording", state="visible")
    shot(page, "rewrite-en")
    seed = emulator_server.calls("generation")[0].json["parameters"]["seed"]
    page.click("#t2i-keep-run")
    page.wait_for_function("(document.querySelector('#t2i-prompt textarea')?.value ?? '').includes('Rich detail')")
    page.wait_for_function("() => { const s = (document.querySelector('#t2i-status')?.innerText ?? '');"
                           " return s.includes('Done') && !s.includes('Rewritten'); }", timeout=WAIT_MS)
    again = emulator_server.calls("generation")[-1].json
    assert len(emulator_server.calls("generation")) == 2
    assert again["parameters"]["prompt_extend"] is False and again["parameters"]["seed"] == seed
    assert again["input"]["messages"][0]["content"][0]["text"] == cells[1]
    page.wait_for_selector("#t2i-keep-wording", state="hidden")  # nothing rewritten this time
    page.close()


def test_gallery_details_show_both_wordings(browser, app):  # noqa: F811
    page = open_page(browser, app.url, "zh-CN")
    run_t2i(page, "一只橘猫", 1)
    page.wait_for_selector("#t2i-status table", timeout=WAIT_MS)
    _tab(page, "图库")
    page.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
    page.click("#gallery-grid button.thumbnail-item >> nth=0")
    page.wait_for_selector("#gallery-details table >> nth=1", timeout=WAIT_MS)
    details = page.inner_text("#gallery-details")
    assert "你的提示词" in details and "画面细节丰富" in details
    shot(page, "rewrite-gallery-zh")
    page.click("#gallery-keep-wording")
    page.wait_for_function("(document.querySelector('#t2i-prompt textarea')?.value ?? '').includes('画面细节丰富')")
    page.locator("#tab-t2i").get_by_text("高级选项").click()
    assert not page.locator("#tab-t2i input[type=checkbox]").first.is_checked()  # rewriting off
    page.close()


def test_fusion_flags_a_file_that_is_not_an_image_when_dropped(browser, app, tmp_path):  # noqa: F811
    page = open_page(browser, app.url, "zh-CN")
    _tab(page, "多图融合")
    page.set_input_files("#fuse-img1 input[type=file]", png(tmp_path / "a.png", (640, 480), (200, 0, 0)))
    page.wait_for_selector("#fuse-slot-note:has-text('640×480')", timeout=WAIT_MS)
    assert "输出比例跟随这张图片" in page.inner_text("#fuse-slot-note")
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    page.set_input_files("#fuse-img2 input[type=file]", str(fake))
    page.wait_for_selector("#fuse-slot-note:has-text('notes.png')", timeout=WAIT_MS)
    note = page.inner_text("#fuse-slot-note")
    assert "✗ 图2" in note and "不是本应用能读取的图片" in note
    assert "图1：640×480 像素 · 输出比例跟随这张图片" in note  # the last image that is one
    shot(page, "fuse-not-image-zh")
    page.close()


def test_a_template_fills_at_once_but_never_overwrites_typed_text(browser, app):  # noqa: F811
    page = open_page(browser, app.url, "en-US")
    _tab(page, "Image edit")
    box = "#edit-instruction textarea"

    def choose(name: str) -> None:
        page.click("#edit-preset input")
        page.get_by_role("option", name=name, exact=True).click()

    choose("Remove an object")
    page.wait_for_function(
        f"(document.querySelector('{box}')?.value ?? '') === 'Remove the passers-by from the picture'")
    choose("Enhance details")  # still the template's own text: replaced without asking
    page.wait_for_function(f"(document.querySelector('{box}')?.value ?? '').startsWith('Enhance details')")
    page.fill(box, "make the sky purple")
    choose("Add an object")
    page.wait_for_selector("#edit-template-note:has-text('Your instruction was kept')")
    assert page.input_value(box) == "make the sky purple"
    page.wait_for_timeout(500)  # let the option list close before the screenshot
    shot(page, "template-kept-en")
    page.click("#edit-fill")
    page.wait_for_function(f"(document.querySelector('{box}')?.value ?? '') === 'Add a cat to the picture'")
    assert page.inner_text("#edit-template-note").strip() == ""
    page.close()


def test_the_key_check_still_works_with_the_banner_script(browser, app):  # noqa: F811
    """The key banner script listens to the key box only: the region check is unaffected."""
    page = open_page(browser, app.url, "en-US")
    page.click("#key-box")
    page.fill("#api-key input", TEST_KEY)
    page.wait_for_selector("#banner-own", state="visible")
    page.click("#key-check")
    page.wait_for_function("(document.querySelector('#key-report')?.innerText ?? '').includes('region')")
    page.close()


def test_an_edit_shows_its_rewritten_instruction_and_keeps_it(browser, app, tmp_path):  # noqa: F811
    page = open_page(browser, app.url, "zh-CN")
    _tab(page, "图像编辑")
    page.set_input_files("#edit-image input[type=file]", png(tmp_path / "p.png", (800, 600), (10, 120, 60)))
    page.wait_for_selector("#edit-image img")
    page.fill("#edit-instruction textarea", "把背景换成星空")
    page.fill("#edit-n input[type=number]", "2")
    page.press("#edit-n input[type=number]", "Tab")
    page.click("#edit-run")
    page.wait_for_selector("#edit-status table", timeout=WAIT_MS)
    status = page.inner_text("#edit-status")
    seed = status.split("种子 ", 1)[1].split("。", 1)[0]
    assert seed.isdigit(), status  # one request, two images, one seed: said once
    page.click("#edit-keep-wording")
    page.wait_for_function(
        "(document.querySelector('#edit-instruction textarea')?.value ?? '').includes('画面细节丰富')")
    page.locator("#tab-edit").get_by_text("高级选项").click()
    assert page.input_value("#edit-seed input") == seed
    shot(page, "rewrite-edit-zh")
    page.close()


# --- Japanese (ja-JP): the whole page, a run's status and a toast ----------------------------------
JA_TABS = ["画像生成", "画像編集", "複数画像の融合", "バッチ", "ギャラリー"]
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}


@functools.cache  # about a second of CPU to build: once per worker, not once per look
def _foreign_phrases() -> tuple[str, ...]:
    """Pieces of the catalogue's English and Chinese texts (placeholders and Markdown marks cut
    out) that no Japanese text contains: none may show on a ja-JP page. Every table counts: the
    page shows the run summary's, the errors' and the money texts too."""
    ja = list(i18n.catalogue("ja").values())
    found = set()
    for lang in ("en", "zh"):
        for text in i18n.catalogue(lang).values():
            for piece in re.split(r"\{[a-z_]+\}|[*`#\n]+", text):
                piece = piece.strip(" .:：（(")
                han = re.search(r"[\u4e00-\u9fff]", piece)
                if (len(piece) >= 3 if han else " " in piece and len(piece) >= 6) and not any(piece in j for j in ja):
                    found.add(piece)
    return tuple(sorted(found))


def _assert_japanese_only(text: str, where: str) -> None:
    shown = [p for p in _foreign_phrases() if p in text]
    assert not shown, (where, shown)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_japanese_browser_gets_the_page_its_run_and_its_toast_in_japanese(browser, app, emulator_server, size):  # noqa: F811
    phone = size == "phone"
    page = browser.new_page(locale="ja-JP", viewport=PHONE if phone else DESKTOP, is_mobile=phone)
    page.goto(app.url, wait_until="load")
    page.wait_for_selector("#t2i-prompt textarea")
    assert "Qwen-Image スタジオ" in page.inner_text("#title")
    assert "プロンプト" in page.inner_text("#t2i-prompt")
    assert page.inner_text("#t2i-run").strip() == "生成"  # the shortcut is named by style.css where a keyboard is
    tabs = [t.strip() for t in page.locator("#tabs button[role=tab]").all_inner_texts() if t.strip()]
    # On a phone Gradio may fold the last tabs into an overflow menu: the ones shown come first.
    assert tabs and tabs == JA_TABS[:len(tabs)], tabs
    if phone:
        page.screenshot(path=str(ARTIFACTS / "phone-ja.png"))  # the first screen
    else:
        shot(page, "page-ja")
    _assert_japanese_only(page.inner_text("body"), "page")

    emulator_server.hold()  # the run stays under way until released: its status is read meanwhile
    try:
        run_t2i(page, "夕暮れの灯台、水彩画風", 1)
        page.wait_for_selector("#t2i-status:has-text('処理中')", timeout=WAIT_MS)
    finally:
        emulator_server.release()
    page.wait_for_selector("#t2i-results img", timeout=WAIT_MS)
    page.wait_for_function("!(document.querySelector('#t2i-status')?.innerText ?? '').includes('処理中')",
                           timeout=WAIT_MS)
    status = page.inner_text("#t2i-status")
    _assert_japanese_only(status, "status")
    if "run.done" in i18n.catalogue("ja"):  # the run summary's own texts ([run], aliyun_image/summary.py)
        assert i18n.t("ja", "run.done").split("{", 1)[0].strip() in status, status
    page.locator("#t2i-status").scroll_into_view_if_needed()
    if phone:
        page.screenshot(path=str(ARTIFACTS / "phone-ja-run.png"))
    else:
        shot(page, "run-ja")
    _assert_japanese_only(page.inner_text("body"), "page after the run")

    # A refused run: said once, in the status line (issue 16 §5), in Japanese only, no Markdown escapes.
    _tab(page, "画像編集")
    page.fill("#edit-url input", "not_a*url")
    page.fill("#edit-instruction textarea", "背景を星空に")
    page.click("#edit-run")
    page.wait_for_selector("#edit-status:has-text('「not_a*url」は画像の URL ではありません')")
    _assert_japanese_only(page.inner_text("#edit-status"), "edit status")
    # A refusal with no status line of its own is a toast: in Japanese only, with a Japanese title.
    _tab(page, "ギャラリー")
    page.fill("#gallery-search input", "何にも一致しない検索語")
    page.wait_for_timeout(800)
    page.click("#gallery-zip-matching")
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=WAIT_MS)
    # Gradio heads the toast with its type's English name; the page's CSS shows ours instead.
    title = toast.locator(".toast-title").evaluate("e => getComputedStyle(e, '::before').content")
    assert title == '"エラー"' and toast.locator(".toast-title").evaluate("e => getComputedStyle(e).fontSize") == "0px"
    message = toast.locator(".toast-message-text").first.inner_text()
    assert "ZIP にするものがありません" in message and "\\" not in message, message
    _assert_japanese_only(message, "toast")
    page.wait_for_timeout(800)  # the toast's fade-in
    page.screenshot(path=str(ARTIFACTS / f"{'phone-' if phone else ''}ja-toast.png"))  # toasts float: the screen
    page.close()


@pytest.mark.parametrize("locale", ["zh-HK", "zh-SG"])
def test_chinese_locales_gradio_does_not_ship_still_read_chinese(browser, demo, locale):  # noqa: F811
    """Gradio would show these browsers English labels next to Chinese messages (static/locale.html)."""
    page = open_page(browser, demo.url, locale)
    tabs = [t.strip() for t in page.locator("#tabs button[role=tab]").all_inner_texts()]
    assert tabs[:2] == ["文生图", "图像编辑"], tabs
    assert "离线演示" in page.inner_text("#banner") and "Offline demo" not in page.inner_text("body")
    page.close()


def test_a_japanese_browser_reads_the_banners_in_japanese(browser, demo):  # noqa: F811
    page = open_page(browser, demo.url, "ja-JP")
    assert page.inner_text("#banner").startswith("オフラインデモ。")
    page.click("#key-box")
    page.fill("#api-key input", "sk-typed-here-0000")
    page.wait_for_selector("#banner-own", state="visible")
    # read while shown (a banner Gradio draws anew is hidden for up to a second until the page's script
    # looks again; a hidden element's innerText is its raw text)
    page.wait_for_function("() => (document.querySelector('#banner-own')?.innerText || '').trim()"
                           ".startsWith('本番呼び出し：あなたのキー。')")
    own = page.inner_text("#banner-own")
    assert "{region}" not in own  # filled in when built
    _assert_japanese_only(page.inner_text("body"), "page with a key typed")
    shot(page, "key-banner-ja")
    page.close()
