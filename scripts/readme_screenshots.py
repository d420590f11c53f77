"""Retake the README's screenshots (assets/screenshots/*.jpg) from the offline demo.

Usage: ``python scripts/readme_screenshots.py [--locale en-US]`` (needs Playwright and Debian's
``/usr/bin/chromium``, which ``bash scripts/test.sh`` installs). It launches ``app.py --offline`` in
a temporary folder, so the images are the emulator's labelled stand-ins and no real results are
shown. Not a test: the browser tests check behaviour; this only keeps the README honest.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.appserver import launch  # noqa: E402 - the repo root is put on the path just above

OUT = ROOT / "assets" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _save(page: Page, name: str, tmp: Path) -> None:
    """A full-page PNG, stored as a compact JPEG (the README loads four of them)."""
    raw = tmp / f"{name}.png"
    page.screenshot(path=str(raw), full_page=True)
    Image.open(raw).convert("RGB").save(OUT / f"{name}.jpg", quality=82, optimize=True)
    print(f"wrote {OUT / f'{name}.jpg'}")


def _swatch(path: Path, size: tuple[int, int], color: tuple[int, int, int]) -> str:
    Image.new("RGB", size, color).save(path)
    return str(path)


def _t2i(page: Page, tmp: Path) -> None:
    page.fill("#t2i-prompt textarea", "一只橘猫在阳光下打盹，窗台，暖色调，胶片质感")
    page.fill("#t2i-n input[type=number]", "2")
    page.press("#t2i-n input[type=number]", "Tab")
    page.click("#t2i-run")
    page.wait_for_function("document.querySelectorAll('#t2i-results img').length >= 2", timeout=60000)
    page.wait_for_selector("#t2i-status:has-text('Done')", timeout=60000)
    _save(page, "text-to-image", tmp)


def _edit(page: Page, tmp: Path) -> None:
    page.click("button[role=tab]:has-text('Image edit')")
    page.set_input_files("#edit-image input[type=file]", _swatch(tmp / "photo.png", (1200, 800), (40, 90, 160)))
    page.wait_for_selector("#edit-image img")
    page.click("#edit-fill")
    page.wait_for_function("document.querySelector('#edit-instruction textarea').value.length > 0")
    page.click("#edit-run")
    page.wait_for_selector("#edit-status:has-text('Done')", timeout=60000)
    page.wait_for_selector("#edit-compare img")
    _save(page, "edit", tmp)


def _fuse(page: Page, tmp: Path) -> None:
    page.click("button[role=tab]:has-text('Multi-image fusion')")
    for i, color in enumerate([(220, 120, 30), (30, 160, 90), (60, 60, 200)], 1):
        page.set_input_files(f"#fuse-img{i} input[type=file]", _swatch(tmp / f"{i}.png", (800, 600), color))
        page.wait_for_selector(f"#fuse-img{i} img")
    page.fill("#fuse-instruction textarea", "图1的猫坐在图2的沙发上，背景换成图3的房间")
    page.click("#fuse-run")
    page.wait_for_selector("#fuse-status:has-text('Done')", timeout=60000)
    _save(page, "fusion", tmp)


def _gallery(page: Page, tmp: Path) -> None:
    page.click("button[role=tab]:has-text('Gallery')")
    page.wait_for_selector("#gallery-grid img", timeout=30000)
    page.click("#gallery-grid img >> nth=0")
    page.wait_for_selector("#gallery-details table", timeout=30000)
    _save(page, "gallery", tmp)


def main() -> None:
    """Launch the offline app, make one text-to-image, edit and fusion run, and shoot each panel."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locale", default="en-US", help="the browser's locale (the page follows it)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        app = launch(["--offline"], tmp / "data")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(locale=args.locale, viewport={"width": 1400, "height": 1000})
                page.goto(app.url, wait_until="load")
                page.wait_for_selector("#t2i-prompt textarea")
                for step in (_t2i, _edit, _fuse, _gallery):
                    step(page, tmp)
                browser.close()
        finally:
            app.stop()


if __name__ == "__main__":
    main()
