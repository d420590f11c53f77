"""Nothing is lost, in a real browser (zh-CN and en-US): reuse of an edit brings its input image
back in a fresh page, Delete offers Undo and Undo brings the image back, a dropped PNG fills the
panel of its task (its input image too, from the kept copy). Screenshots in test-artifacts/keep-*.png."""

from __future__ import annotations

import json
import sqlite3

import pytest

from aliyun_image.recipes.read import read_png_recipe

from .appserver import running
from .conftest import WAIT_MS
from .test_browser import browser, open_page, png, shot  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LOCALES = ["zh-CN", "en-US"]
TAB = {"zh-CN": {"edit": "图像编辑", "gallery": "图库"}, "en-US": {"edit": "Image edit", "gallery": "Gallery"}}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """Local offline app of its own: the tests below share its gallery."""
    yield from running(tmp_path_factory, "browser-keep", ["--offline"])


def _open_gallery_first(page, locale: str) -> None:
    page.click(f"button[role=tab]:has-text('{TAB[locale]['gallery']}')")
    page.wait_for_selector("#gallery-grid img", timeout=WAIT_MS)
    page.click("#gallery-grid button.thumbnail-item >> nth=0")
    page.wait_for_selector("#gallery-details table", timeout=WAIT_MS)


def _edit_once(page, locale: str, image: str, instruction: str) -> None:
    page.click(f"button[role=tab]:has-text('{TAB[locale]['edit']}')")
    page.set_input_files("#edit-image input[type=file]", image)
    page.wait_for_selector("#edit-image img")
    page.fill("#edit-instruction textarea", instruction)
    page.click("#edit-run")
    page.wait_for_selector("#edit-results img", timeout=WAIT_MS)


@pytest.mark.parametrize("locale", LOCALES)
def test_reuse_of_an_edit_brings_its_input_image_back(browser, app, tmp_path, locale):  # noqa: F811
    page = open_page(browser, app.url, locale)
    _edit_once(page, locale, png(tmp_path / "photo.png", (900, 600), (200, 60, 140)), f"reuse me {locale}")
    page.close()
    page = open_page(browser, app.url, locale)  # a fresh page: nothing left in the form
    _open_gallery_first(page, locale)
    page.click("#gallery-reuse")
    page.wait_for_selector("#edit-image img", timeout=WAIT_MS)
    assert page.input_value("#edit-instruction textarea") == f"reuse me {locale}"
    status = page.inner_text("#edit-status")
    assert ("1 张输入图片" if locale == "zh-CN" else "1 input image") in status
    src = page.get_attribute("#edit-image img", "src") or ""
    assert "/inputs/" in src or "gradio_api/file" in src
    shot(page, f"keep-reuse-edit-{locale}")
    page.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_delete_then_undo_brings_the_image_back(browser, app, tmp_path, locale):  # noqa: F811
    page = open_page(browser, app.url, locale)
    _edit_once(page, locale, png(tmp_path / "del.png", (640, 640), (20, 160, 90)), f"delete me {locale}")
    _open_gallery_first(page, locale)
    before = page.locator("#gallery-grid button.thumbnail-item").count()
    page.click("#gallery-delete")
    page.wait_for_selector("#gallery-undo", state="visible", timeout=WAIT_MS)
    page.wait_for_function(f"document.querySelectorAll('#gallery-grid button.thumbnail-item').length == {before - 1}")
    assert ("回收站" if locale == "zh-CN" else "trash") in page.inner_text("#gallery-status")
    shot(page, f"keep-deleted-{locale}")
    page.click("#gallery-undo")
    page.wait_for_selector("#gallery-undo", state="hidden", timeout=WAIT_MS)
    page.wait_for_function(f"document.querySelectorAll('#gallery-grid button.thumbnail-item').length == {before}")
    assert ("已恢复" if locale == "zh-CN" else "is back") in page.inner_text("#gallery-status")
    shot(page, f"keep-undone-{locale}")
    page.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_dropping_a_png_fills_the_panel(browser, app, locale):  # noqa: F811
    made = sorted((app.data_dir / "images").rglob("*.png"))
    assert made, "the tests above made results"
    page = open_page(browser, app.url, locale)
    page.click("#png-info .label-wrap")
    page.set_input_files("#png-info-file input[type=file]", str(made[-1]))
    page.wait_for_selector("#edit-status:not(:empty)", timeout=WAIT_MS)
    page.wait_for_function("(document.querySelector('#edit-instruction textarea')?.value ?? '').length > 0")
    assert page.input_value("#edit-instruction textarea") == read_png_recipe(made[-1]).prompt
    page.wait_for_selector("#edit-image img", timeout=WAIT_MS)  # its input, from the kept copy
    assert "✓" in page.inner_text("#png-info-status")
    assert ("1/1" if locale == "zh-CN" else "1 of 1") in page.inner_text("#edit-status")
    shot(page, f"keep-png-info-{locale}")
    page.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_reuse_of_a_fusion_puts_its_images_back_in_order(browser, app, tmp_path, locale):  # noqa: F811
    page = open_page(browser, app.url, locale)
    page.click("#tab-fuse-button, button[role=tab]:has-text('" + ("多图融合" if locale == "zh-CN" else
                                                                 "Multi-image fusion") + "')")
    for i, color in ((1, (230, 40, 40)), (2, (40, 40, 230))):
        page.set_input_files(f"#fuse-img{i} input[type=file]", png(tmp_path / f"{i}.png", (500, 500), color))
        page.wait_for_selector(f"#fuse-img{i} img")
    page.fill("#fuse-instruction textarea", f"图1 beside 图2 {locale}")
    page.click("#fuse-run")
    page.wait_for_selector("#fuse-results img", timeout=WAIT_MS)
    page.close()
    db = sqlite3.connect(app.data_dir / "gallery.sqlite3")
    (inputs,) = db.execute("SELECT inputs FROM results WHERE task='fuse' ORDER BY id DESC LIMIT 1").fetchone()
    db.close()
    digests = [i["sha256"] for i in json.loads(inputs)]
    page = open_page(browser, app.url, locale)
    _open_gallery_first(page, locale)
    page.click("#gallery-reuse")
    page.wait_for_selector("#fuse-img2 img", timeout=WAIT_MS)
    srcs = [page.get_attribute(f"#fuse-img{i} img", "src") or "" for i in (1, 2)]
    assert all(d in s for d, s in zip(digests, srcs, strict=True)), srcs  # 图1, 图2 in their order
    assert page.query_selector("#fuse-img3 img") is None
    assert ("2 张输入图片" if locale == "zh-CN" else "2 input image") in page.inner_text("#fuse-status")
    shot(page, f"keep-reuse-fuse-{locale}")
    page.close()
