"""Money before the click: the variations button says what it costs for the selected result, the
result actions are disabled until there is one, and an hourly quota that still has a few images
says "ask for N or fewer" (in the reader's language) in the cost line before a run and in the
refusal, keeping "come back in N minutes" for when nothing is left. Handlers in-process, on
results from the emulator."""

from __future__ import annotations

import pytest

from aliyun_image.errors import ValidationError
from aliyun_image.money.quota import HourlyQuota
from aliyun_image.ui.cost_lines import action_buttons, cost_text
from aliyun_image.ui.layout import features

from .conftest import TEST_KEY
from . import test_ui_handlers
from .test_result_actions import _ids
from .test_ui_handlers import generate, req

make_ctx = test_ui_handlers.make_ctx  # the fixture, shared


def _label(buttons) -> str:
    return buttons[0].value


def test_variations_button_says_the_price_of_the_selected_result(make_ctx, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    h = features(make_ctx())
    six = _ids(generate(h, "a red fox", req(), n=6))
    one = _ids(generate(h, "a blue bird", req(), n=1, model="z-image-turbo"))
    unknown = _ids(generate(h, "a hill", req(), n=2, model="qwen-image-2.1-pro"))
    buttons = action_buttons(h.ctx, six[3], False, req())
    assert _label(buttons) == "Variations (new seeds) · 6 images, about ¥1.20"
    assert all(b.interactive for b in buttons) and len(buttons) == 6
    assert _label(action_buttons(h.ctx, six[0], False, req(lang="zh-CN"))) == "再来几张（新种子） · 6 张，约 ¥1.20"
    assert _label(action_buttons(h.ctx, six[0], False, req(lang="ja-JP"))).endswith("6 枚、約 ¥1.20")
    # it follows the selected result: its model and n ("1 image", rewriting priced as the run sent it)
    assert _label(action_buttons(h.ctx, one[0], False, req())).startswith("Variations (new seeds) · 1 image, about ¥0.")
    assert _label(action_buttons(h.ctx, unknown[1], True, req())) == (
        "Variations (new seeds) · 2 images, price unknown")
    # no result (or not one of yours): the plain label, and nothing to click
    for rid in (None, 0, "garbage", 10**9):
        buttons = action_buttons(h.ctx, rid, False, req())
        assert _label(buttons) == "Variations (new seeds)" and not any(b.interactive for b in buttons)


def test_variations_button_is_free_in_the_offline_demo_and_owner_checked(make_ctx):
    h = features(make_ctx(hosted=True))
    ids = _ids(generate(h, "a lighthouse", req("alice"), n=3, api_key=""))
    assert _label(action_buttons(h.ctx, ids[0], False, req("alice"))) == (
        "Variations (new seeds) · 3 images, free (offline demo)")
    assert _label(action_buttons(h.ctx, ids[0], False, req("alice", "zh-CN"))).endswith("3 张，免费（离线演示）")
    # a typed key means the real API: the real price
    assert _label(action_buttons(h.ctx, ids[0], True, req("alice"))).endswith("3 images, about ¥0.60")
    bob = action_buttons(h.ctx, ids[0], False, req("bob"))
    assert _label(bob) == "Variations (new seeds)" and not any(b.interactive for b in bob)


def test_quota_with_some_left_says_how_many_to_ask_for_in_the_readers_language():
    now = [0.0]
    quota = HourlyQuota(6, 100, clock=lambda: now[0], kind="host")
    quota.take("a", 4)
    assert quota.refusal("a", 2) is None and quota.used("a") == 4  # asking reserves nothing
    with pytest.raises(ValidationError) as e:
        quota.take("a", 6)
    assert e.value.code == "Quota.Exceeded" and quota.used("a") == 4
    assert "Ask for 2 or fewer" in e.value.en and "min" not in e.value.en
    assert "请改为 2 张或更少" in e.value.zh and "分钟" not in e.value.zh
    assert "2 枚以下で依頼" in e.value.text("ja")
    now[0] = 600.0
    quota.take("a", 2)
    with pytest.raises(ValidationError) as e:
        quota.take("a", 1)  # nothing left: when to come back
    assert "Try again in about 51 min" in e.value.en and "Ask for" not in e.value.en
    # the demo's shared budget says the same
    shared = HourlyQuota(0, 5, clock=lambda: 0.0, kind="offline")
    shared.take("x", 4)
    assert "has 1 left. Ask for 1 or fewer" in shared.refusal("y", 3).render("en")


def test_cost_line_warns_before_a_run_larger_than_what_is_left(make_ctx):
    ctx = make_ctx(hosted=True, demo_session_limit=6, demo_total_limit=100)
    h = features(ctx)
    owner = ctx.owner("s1")
    assert cost_text(ctx, "t2i", "plus", "", 6, True, "en", owner).startswith("Offline demo, not billed")
    assert len(_ids(generate(h, "four cats", req("s1"), n=4, api_key=""))) == 4
    line = cost_text(ctx, "t2i", "plus", "", 6, True, "zh", owner)
    assert line.startswith("✗ 不能运行：") and "还剩 2 张" in line and "请改为 2 张或更少" in line
    assert cost_text(ctx, "t2i", "plus", "", 2, True, "en", owner).startswith("Offline demo, not billed")
    assert cost_text(ctx, "t2i", "plus", "", 6, True, "en", ctx.owner("s2")).startswith("Offline demo")
    assert cost_text(ctx, "t2i", "plus", "", 6, True, "en", owner, key_typed=True).startswith("Estimated cost")
    # the run itself is refused with the same words, in the reader's language, and reserves nothing
    out = generate(h, "six cats", req("s1", "zh-CN"), n=6, api_key="")
    assert out.error is not None and "请改为 2 张或更少" in out.error.message and "分钟后再试" not in out.error.message
    assert ctx.demo_quota.used(owner) == 4


def test_stop_is_enabled_only_while_the_session_has_a_run(make_ctx, emu):
    import asyncio

    from aliyun_image.enums import Task

    from .test_ui_handlers import GEN_DEFAULTS, call_args

    h = features(make_ctx(hosted=True))
    assert h.runs.stop_state(Task.T2I, req("alice")).interactive is False  # nothing runs
    emu.latency = 1.0  # the run is still out while we look

    async def go():
        args = call_args("generate", **{**GEN_DEFAULTS, "prompt": "slow cat", "n": 1})
        agen = h.runs.generate(*args, req("alice"), TEST_KEY)
        await agen.__anext__()  # the run started
        during = [h.runs.stop_state(t, req(who)).interactive
                  for t, who in ((Task.T2I, "alice"), (Task.EDIT, "alice"), (Task.T2I, "bob"))]
        async for _ in agen:
            pass
        return during
    assert asyncio.run(go()) == [True, False, False]  # alice's text-to-image only
    assert h.runs.stop_state(Task.T2I, req("alice")).interactive is False  # it ended
