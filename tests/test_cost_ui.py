"""Money in the page: the cost line beside each Run button, the gallery's spend line and details,
and budget refusals reaching the UI and API callers (handlers in-process, then the launched app)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aliyun_image.money import ledger
from aliyun_image.ui.cost_lines import cost_text, spend_text
from aliyun_image.ui.gallery_handlers import details_md

from .appserver import running
from .conftest import TEST_KEY, gradio_client
from .test_app_api import generate, refused
from . import test_ui_handlers
from .test_ui_handlers import generate as handler_generate
from .test_ui_handlers import req

make_ctx = test_ui_handlers.make_ctx  # the fixture, shared


def test_cost_line_follows_model_n_and_rewriting(make_ctx, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    ctx = make_ctx()
    assert cost_text(ctx, "t2i", "plus", "", 2, True, "zh") == "预计花费：约 ¥0.40 · 2 × qwen-image-plus · 北京"
    assert cost_text(ctx, "t2i", "max", "", 3, True, "en") == (
        "Estimated cost: about ¥1.50 · 3 × qwen-image-max · Beijing")
    assert "¥0.10 · 1 × z-image-turbo" in cost_text(ctx, "t2i", "plus", "z-image-turbo", 1, False, "en")
    assert "¥0.20 · 1 × z-image-turbo" in cost_text(ctx, "t2i", "plus", "z-image-turbo", 1, True, "en")
    assert "price unknown · 1 × qwen-image-2.1-pro" in cost_text(ctx, "t2i", "plus", "qwen-image-2.1-pro", 1, True,
                                                                  "en")
    # 3.0-pro: the size picks the class; none chosen: "up to" its 2K price; edits add an input image's fee
    pro = "qwen-image-3.0-pro"
    assert "about ¥0.25 · 1 × qwen-image-3.0-pro (1K)" in cost_text(ctx, "t2i", "plus", pro, 1, True, "en",
                                                                    size="1024*1024")
    assert "up to ¥1.00 · 2 × qwen-image-3.0-pro (2K)" in cost_text(ctx, "t2i", "plus", pro, 2, True, "en", size="")
    assert "about ¥0.50 · 1 × qwen-image-3.0-pro (2K)" in cost_text(ctx, "t2i", "plus", pro, 1, True, "en",
                                                                    size="16:9")
    edit = cost_text(ctx, "edit", "plus", pro, 1, True, "en", inputs=1)
    assert "up to ¥0.52" in edit and "incl. 1 input image × ¥0.02" in edit
    assert "¥0.30 · 1 × qwen-image-edit" in cost_text(ctx, "edit", "plus", "qwen-image-edit", 1.0, True, "en")
    assert cost_text(ctx, "t2i", "plus", "", 1, True, "ja").startswith("見積もり費用：")
    assert spend_text(ctx, "ja", None).startswith("支出 · ")


def test_offline_demo_line_says_free(make_ctx):
    ctx = make_ctx(offline=True)
    assert cost_text(ctx, "t2i", "plus", "", 1, True, "en").startswith("Offline demo, not billed (real price: about")
    assert "不计费" in spend_text(ctx, "zh", None)
    from aliyun_image.ui.layout import features

    out = handler_generate(features(ctx), "一只猫", req(lang="zh-CN"), api_key="")
    assert "本次花费：¥0（离线演示，不计费）" in out[-1][1]


def test_budget_blocks_in_the_line_and_in_the_run(make_ctx, monkeypatch, emu):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    ctx = make_ctx(settings_overrides={"daily_budget": Decimal("0.5")})
    h_line = cost_text(ctx, "t2i", "plus", "", 2, True, "en")
    assert h_line.startswith("Estimated cost")
    from aliyun_image.ui.layout import features

    h = features(ctx)
    first = handler_generate(h, "a cat", req(), n=2)
    assert len(first[-1][0]) == 2 and "This run cost: ¥0.40 (2 × ¥0.20)" in first[-1][1]  # ¥0.40 spent
    line = cost_text(ctx, "t2i", "plus", "", 1, True, "en")
    assert line.startswith("✗ Cannot run: This run would cross the daily budget") and "¥0.40 (2 images)" in line
    assert "不能运行" in cost_text(ctx, "t2i", "plus", "", 1, True, "zh")
    emu.clear()
    out = handler_generate(h, "one more", req(), n=1)
    assert out.error is not None and "daily budget" in out.error.message and not emu.calls("generation")
    assert "Nothing was sent" in out[-1][1]  # the status points to the cost line, which says why
    assert "¥0.10 left of the daily budget" in spend_text(ctx, "en", None)
    assert spend_text(ctx, "zh", None).startswith("花费 · 今天 ¥0.40（2 张） · 本月 ¥0.40（2 张）")
    rec = ctx.store.page()[0][0]
    assert "| Cost | ¥0.20 · qwen-image-plus · Beijing |" in details_md(rec, "en")
    assert "| 花费 | ¥0.20 · qwen-image-plus · 北京 |" in details_md(rec, "zh")


def test_hosted_spend_is_per_visitor(make_ctx, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    ctx = make_ctx(hosted=True)
    from aliyun_image.ui.layout import features

    h = features(ctx)
    assert len(handler_generate(h, "a cat", req("visitor-a"), n=1)[-1][0]) == 1
    mine = ledger.spend(ctx.store, owner=ctx.owner("visitor-a"))
    assert mine.billed.amount() == Decimal("0.2")
    assert "¥0.20 (1 image)" in spend_text(ctx, "en", ctx.owner("visitor-a"))
    assert "¥0.00 (0 images)" in spend_text(ctx, "en", ctx.owner("visitor-b"))


@pytest.fixture(scope="module")
def budget_app(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "budget-app", ["--base-url", emulator_server.base_url, "--daily-budget",
                                                        "0.5"], env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


@pytest.mark.slow
def test_api_callers_get_the_budget_refusal_and_nothing_is_sent(budget_app, emulator_server):
    client = gradio_client(budget_app.url, verbose=False)
    emulator_server.clear()
    assert len(generate(client, "a cat", n=2)[0]) == 2  # ¥0.40 of ¥0.50
    emulator_server.clear()
    msg = refused(generate, client, "one more", n=1)
    assert "daily budget" in msg and "Nothing was sent" in msg
    assert not emulator_server.calls("generation")
