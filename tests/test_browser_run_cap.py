"""The run cap as a visitor of the hosted demo reads it (issue 18 leftovers, 1): with three runs of
theirs going (started through the raw queue with the page's own cookie, held by the emulator), the
page's Generate is refused at once, in the page's language, on the panel's status line.

Screenshots: test-artifacts/run-cap-zh.png, run-cap-en.png."""

from __future__ import annotations

import uuid

import pytest

from aliyun_image.ui.http_guard import COOKIE

from .appserver import launch
from .conftest import WAIT_MS
from .test_browser import browser, open_page, run_t2i, shot  # noqa: F401 (browser: the fixture)
from .test_run_cap import generate, sent, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app(tmp_path_factory, emulator_server):
    """Hosted, no host key (the page alone would get the offline demo); visitors' own keys on the test
    emulator, no account scheduler (a run that starts sends at once)."""
    root = tmp_path_factory.mktemp("browser-run-cap")
    running = launch(["--hosted", "--base-url", emulator_server.base_url], root / "outputs", cwd=root,
                     env_extra={"ALIYUN_IMAGE_TASK_LIMIT": "0"})
    try:
        yield running
    finally:
        running.stop()


SAID = {"zh-CN": "你已有 3 个运行在进行中；请等其中一个结束，或停止一个。",
        "en-US": "You already have 3 runs going; wait for one to finish or stop one."}


@pytest.mark.parametrize("locale,said", list(SAID.items()))
def test_a_fourth_run_is_refused_in_the_pages_language(browser, app, emulator_server, locale, said):  # noqa: F811
    page = open_page(browser, app.url, locale=locale)
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
    tag = uuid.uuid4().hex[:8]
    emulator_server.clear()
    emulator_server.hold()
    try:
        going = [generate(app, f"{tag} going {i}", cookie=cookie) for i in range(3)]
        wait_for(lambda: len(sent(emulator_server, tag)) == 3, "three runs of the page's visitor")
        run_t2i(page, f"{tag} from the page", 1)
        page.wait_for_selector(f"#t2i-status:has-text('{said[:12]}')", timeout=WAIT_MS)
        assert said in page.inner_text("#t2i-status")
        shot(page, f"run-cap-{locale.split('-')[0]}")
        assert not [c for c in going if c.done] and not sent(emulator_server, f"{tag} from the page")
    finally:
        emulator_server.release()
    assert all(c.wait()["success"] for c in going)
