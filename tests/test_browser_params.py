"""The current models' controls in a real headless Chromium, zh-CN and en-US (issues 16.1, 17.2):
2.1-pro's fusion panel growing to five references and more, the 3.0 rewriting mode and thinking
switch on text-to-image, and a fusion with a gap whose instruction goes out renumbered.

Screenshots land in test-artifacts/ (browser-params-*.png).
"""

from __future__ import annotations

import re

import pytest

from .test_browser import browser, open_page, png, shot  # noqa: F401  (fixtures and helpers)
from .appserver import running
from .conftest import TEST_KEY, WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TEXT = {"en-US": {"advanced": "Advanced", "fuse": "Multi-image fusion", "done": "Done",
                  "agent": "Agent (plans the picture)", "moved": "图3 was sent as 图2"},
        "zh-CN": {"advanced": "高级选项", "fuse": "多图融合", "done": "完成", "agent": "智能体（先规划画面）",
                  "moved": "图3已作为图2发送"}}
COLORS = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (220, 200, 30), (160, 30, 200)]


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Local mode on the test emulator with a configured key."""
    yield from running(tmp_path_factory, "browser-params", ["--base-url", emulator_server.base_url],
                       env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


def pick_model(page, prefix: str, model: str) -> None:
    """Choose ``model`` in the panel's picker (its advanced options open)."""
    page.click(f"#{prefix}-model input")
    page.get_by_role("option", name=re.compile(rf"› {re.escape(model)}( ·|$)")).click()


def visible(page, selector: str) -> bool:
    return page.locator(selector).count() > 0 and page.locator(selector).first.is_visible()


def wire_images_and_text(emulator_server) -> tuple[int, str]:
    (call,) = emulator_server.calls("generation")
    content = call.json["input"]["messages"][0]["content"]
    return sum(1 for c in content if "image" in c), content[-1]["text"]


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_2_1_pro_fusion_panel_with_five_references(browser, app, tmp_path, emulator_server, locale):  # noqa: F811
    words = TEXT[locale]
    page = open_page(browser, app.url, locale)
    page.click(f"button[role=tab]:has-text('{words['fuse']}')")
    page.wait_for_selector("#fuse-img3")
    assert not visible(page, "#fuse-img4")  # the default model takes three
    page.locator("#tab-fuse").get_by_text(words["advanced"]).click()
    pick_model(page, "fuse", "qwen-image-2.1-pro")
    page.wait_for_selector("#fuse-img10", state="visible")
    assert all(visible(page, f"#fuse-img{k}") for k in range(4, 11))
    assert page.get_attribute("#fuse-n input[type=range]", "max") == "6"
    page.wait_for_function("document.querySelector('#fuse-negative textarea').disabled")
    for k, color in enumerate(COLORS, 1):
        page.set_input_files(f"#fuse-img{k} input[type=file]", png(tmp_path / f"{k}.png", (480, 360), color))
        page.wait_for_selector(f"#fuse-img{k} img")
    page.wait_for_function("(document.querySelector('#fuse-slot-note')?.innerText ?? '').includes('图5')")
    page.fill("#fuse-instruction textarea", "图5的光线照在图1的人物上，背景取自图4")
    shot(page, f"browser-params-fuse-2.1-pro-five-{locale}")
    emulator_server.clear()
    page.click("#fuse-run")
    page.wait_for_selector(f"#fuse-status:has-text('{words['done']}')", timeout=WAIT_MS)
    assert wire_images_and_text(emulator_server) == (5, "图5的光线照在图1的人物上，背景取自图4")
    pick_model(page, "fuse", "qwen-image-3.0")  # 图4 and 图5 hold images: they stay in sight
    page.wait_for_selector("#fuse-img10", state="hidden")
    assert visible(page, "#fuse-img5") and not visible(page, "#fuse-img6")
    page.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_fusion_with_a_gap_sends_the_instruction_renumbered(browser, app, tmp_path, emulator_server,  # noqa: F811
                                                              locale):
    words = TEXT[locale]
    page = open_page(browser, app.url, locale)
    page.click(f"button[role=tab]:has-text('{words['fuse']}')")
    for k in (1, 3):
        page.set_input_files(f"#fuse-img{k} input[type=file]", png(tmp_path / f"g{k}.png", (600, 400), COLORS[k]))
        page.wait_for_selector(f"#fuse-img{k} img")
    page.fill("#fuse-instruction textarea", "图1的人物站在图3的场景里")
    emulator_server.clear()
    page.click("#fuse-run")
    page.wait_for_selector(f"#fuse-status:has-text('{words['done']}')", timeout=WAIT_MS)
    assert words["moved"] in page.inner_text("#fuse-status")
    assert wire_images_and_text(emulator_server) == (2, "图1的人物站在图2的场景里")
    shot(page, f"browser-params-fuse-gap-{locale}")
    page.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_3_0_rewriting_controls_on_text_to_image(browser, app, emulator_server, locale):  # noqa: F811
    words = TEXT[locale]
    page = open_page(browser, app.url, locale)
    page.locator("#tab-t2i").get_by_text(words["advanced"]).click()
    assert not visible(page, "#t2i-extend-mode") and not visible(page, "#t2i-thinking")  # qwen-image-plus
    pick_model(page, "t2i", "qwen-image-3.0")
    page.wait_for_selector("#t2i-extend-mode", state="visible")
    assert page.locator("#t2i-thinking input[type=checkbox]").is_checked()
    page.locator("#t2i-extend-mode").get_by_text(words["agent"]).click()
    page.fill("#t2i-prompt textarea", "a lighthouse at dusk" if locale == "en-US" else "黄昏的灯塔")
    shot(page, f"browser-params-t2i-3.0-{locale}")
    emulator_server.clear()
    page.click("#t2i-run")
    page.wait_for_selector(f"#t2i-status:has-text('{words['done']}')", timeout=WAIT_MS)
    (call,) = emulator_server.calls("generation")
    assert call.json["parameters"]["prompt_extend_mode"] == "agent"
    assert call.json["parameters"]["enable_thinking"] is True
    # Rewriting off: the mode and thinking stay in sight but cannot act (greyed out).
    page.locator("#tab-t2i input[type=checkbox]").first.uncheck()
    page.wait_for_function("document.querySelector('#t2i-thinking input').disabled")
    assert page.locator("#t2i-extend-mode input").first.is_disabled()
    shot(page, f"browser-params-t2i-3.0-rewriting-off-{locale}")
    pick_model(page, "t2i", "qwen-image-2.0")  # takes neither: hidden
    page.wait_for_selector("#t2i-thinking", state="hidden")
    page.close()
