"""The page's side of the current models' parameters (issue 17.2) and fusion that sends what it says
(issue 16.1), through the run handlers against the emulator (what was sent is read off the wire):
the 3.0 rewriting mode and thinking switch, 2.1-pro's ten fusion slots, its disabled negative box
and n up to 6, and fusion references that follow the images sent or are refused before sending.
"""

from __future__ import annotations

import pytest

from aliyun_image.ui import AppContext, AppOptions
from aliyun_image.ui.endpoints import OPTIONAL, PARAMS, call_args
from aliyun_image.ui.fusion_slots import extra_slots_shown, fusion_send
from aliyun_image.ui.model_controls import ModelControls
from aliyun_image.ui.run_handlers import RunHandlers
from aliyun_image.ui.rewrite_options import controls, rewrite_values

from .conftest import TEST_KEY
from .test_ui_handlers import EDIT_DEFAULTS, GEN_DEFAULTS, drain, req

URLS = [f"https://example.com/ref{i}.png" for i in range(1, 11)]
OPTIONS = {k: v for k, v in EDIT_DEFAULTS.items() if k not in ("image", "image_url", "instruction")}


@pytest.fixture
def runs(emu, clean_env):
    """The run handlers of an app on the emulator (local mode: URLs and paths are taken as given)."""
    ctx = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env)))
    yield RunHandlers(ctx)
    ctx.close()


def fuse(h, request, slots, instruction, **kw):
    """Call /fuse as Gradio does, ``slots``: the ten slots' values (missing ones empty)."""
    images = {f"image{k}": v for k, v in enumerate(list(slots) + [None] * (10 - len(slots)), 1)}
    return drain(h.fuse(*call_args("fuse", **{**OPTIONS, **images, "instruction": instruction, **kw}),
                        request, TEST_KEY))


def generate(h, request, prompt="a lighthouse", **kw):
    return drain(h.generate(*call_args("generate", **{**GEN_DEFAULTS, "prompt": prompt, **kw}), request, TEST_KEY))


def wire(emu) -> tuple[list[str], str, dict]:
    """The one generation request the emulator received: its images, its text, its parameters."""
    (call,) = emu.calls("generation")
    content = call.json["input"]["messages"][0]["content"]
    return [c["image"] for c in content if "image" in c], content[-1]["text"], call.json["parameters"]


# --- fusion that sends what it says ------------------------------------------------------------------
def test_a_gap_moves_the_references_with_the_images_and_the_page_says_so(runs, emu):
    out = fuse(runs, req(lang="en-US"), [URLS[0], None, URLS[2]], "图1的人物站在图3的场景里")
    assert out.error is None, out
    images, text, _ = wire(emu)
    assert images == [URLS[0], URLS[2]] and text == "图1的人物站在图2的场景里"  # names only what it carries
    status = out[-1][1]
    assert "图3 was sent as 图2" in status and status.count("图3 was sent as 图2") == 1
    assert "Empty slots skipped: the images are sent in the order" not in status  # one line, not two
    emu.clear()
    zh = fuse(runs, req(lang="zh-CN"), [None, URLS[1], URLS[2]], "put image 2 on picture 3")
    images, text, _ = wire(emu)
    assert images == URLS[1:3] and text == "put image 1 on picture 2"  # the English forms move too
    assert "图2已作为图1发送" in zh[-1][1] and "图3已作为图2发送" in zh[-1][1]


def test_a_reference_to_an_empty_slot_is_refused_before_sending_naming_the_slot(runs, emu):
    for lang, words in (("en-US", "Put an image in 图3"), ("zh-CN", "请在图3放入图片"), ("ja-JP", "图3に画像を入れる")):
        out = fuse(runs, req(lang=lang), [URLS[0], URLS[1]], "图1的人物站在图3的场景里")
        assert out.error is not None and words in out.error.message, (lang, out.error)
        assert words in out[-1][1]
    out = fuse(runs, req(), [URLS[0], None, URLS[2]], "mix image 2 with image 5")
    assert out.error is not None and "图2, 图5" in out.error.message
    assert not emu.calls("generation")  # nothing was sent, nothing billed


def test_a_fusion_with_one_image_says_what_is_missing_and_no_order(runs, emu):
    for instruction in ("图3的风格", "make it blue"):
        out = fuse(runs, req(lang="en-US"), [None, None, URLS[2]], instruction)
        assert out.error is not None and "2-3" in out.error.message, out.error
        said = " ".join(s for _, s in out) + out.error.message
        assert "sent in the order" not in said and "was sent as" not in said, said
    assert not emu.calls("generation")


def test_an_order_note_stays_for_gaps_the_instruction_does_not_name(runs, emu):
    out = fuse(runs, req(lang="en-US"), [URLS[0], None, URLS[2]], "blend them")
    assert wire(emu)[1] == "blend them"
    assert "the images are sent in the order 图1 → 图3" in out[-1][1]
    assert fusion_send([URLS[0], URLS[1]], "图1 and 图2", "en").note == ""  # nothing to say


def test_2_1_pro_fuses_five_references_in_order_from_slots_4_and_5(runs, emu):
    out = fuse(runs, req(), URLS[:5], "图5的光线照在图1的人物上，背景取自图4", model="qwen-image-2.1-pro",
               negative="")
    assert out.error is None, out
    images, text, params = wire(emu)
    assert images == URLS[:5] and text.startswith("图5的光线")
    assert "negative_prompt" not in params
    emu.clear()
    # A gap among ten: 图7 is the sixth image sent.
    slots = URLS[:5] + [None] + URLS[6:8]
    fuse(runs, req(lang="en-US"), slots, "图7 lights 图8", model="qwen-image-2.1-pro", negative="")
    images, text, _ = wire(emu)
    assert images == URLS[:5] + URLS[6:8] and text == "图6 lights 图7"
    emu.clear()
    refused = fuse(runs, req(lang="en-US"), URLS[:4], "merge them", model="qwen-image-3.0")  # 3.0 takes three
    assert refused.error is not None and "2-3" in refused.error.message and not emu.calls("generation")


def test_the_disabled_negative_box_of_2_1_pro_adds_no_note_but_a_typed_one_does(runs, emu):
    from aliyun_image.catalog import DEFAULT_NEGATIVE

    out = generate(runs, req(lang="en-US"), model="qwen-image-2.1-pro", negative=DEFAULT_NEGATIVE)
    assert out.error is None and "negative_prompt" not in wire(emu)[2]
    assert "takes no negative prompt" not in out[-1][1]  # the box showed it, greyed out: no blame
    emu.clear()
    out = fuse(runs, req(lang="en-US"), URLS[:2], "图1 and 图2", model="qwen-image-2.1-pro", negative="blurry")
    assert "negative_prompt" not in wire(emu)[2] and "takes no negative prompt" in out[-1][1]


# --- the 3.0 rewriting options -----------------------------------------------------------------------
def test_the_rewriting_options_reach_the_wire_where_the_model_takes_them(runs, emu):
    generate(runs, req(), model="qwen-image-3.0", extend_mode="agent", thinking=False)
    params = wire(emu)[2]
    assert params["prompt_extend_mode"] == "agent" and params["enable_thinking"] is False
    emu.clear()
    generate(runs, req())  # the defaults (direct, thinking on) on a model that takes neither: not sent
    assert not {"prompt_extend_mode", "enable_thinking"} & set(wire(emu)[2])
    emu.clear()
    out = generate(runs, req(), extend_mode="agent")  # a changed value for a model that does not take it
    assert out.error is not None and "qwen-image-3.0" in out.error.message and not emu.calls("generation")
    out = fuse(runs, req(), URLS[:2], "图1 and 图2", model="qwen-image-3.0", extend_mode="agent")
    assert out.error is not None and "text-to-image only" in out.error.message and not emu.calls("generation")
    out = fuse(runs, req(), URLS[:2], "图1 and 图2", model="qwen-image-3.0", thinking=False)
    params = wire(emu)[2]
    assert params["prompt_extend_mode"] == "direct" and params["enable_thinking"] is False
    emu.clear()
    generate(runs, req(), model="qwen-image-3.0", prompt_extend=False)  # neither acts without rewriting
    assert not {"prompt_extend_mode", "enable_thinking"} & set(wire(emu)[2])


def test_rewrite_values_send_defaults_only_where_they_act():
    assert rewrite_values("t2i", "plus", "qwen-image-3.0", True, "direct", True) == {"extend_mode": "direct",
                                                                                       "thinking": True}
    assert rewrite_values("t2i", "plus", "", True, "direct", True) == {}  # qwen-image-plus takes neither
    assert rewrite_values("t2i", "plus", "", True, "agent", False) == {"extend_mode": "agent", "thinking": False}
    assert rewrite_values("t2i", "plus", "qwen-image-3.0", False, "direct", True) == {}
    assert rewrite_values("t2i", "plus", "qwen-image-3.0", False, "direct", False) == {"thinking": False}


def _args(update) -> dict:
    return update.constructor_args


def test_the_controls_follow_the_model_and_the_rewriting_switch():
    mode, thinking = controls("t2i", "plus", "qwen-image-3.0-pro", True, values=True)
    assert _args(mode) == {"visible": True, "interactive": True, "value": "direct"}
    assert _args(thinking) == {"visible": True, "interactive": True, "value": True}
    mode, thinking = controls("t2i", "plus", "qwen-image-3.0", False, values=False)  # rewriting off
    assert _args(mode) == {"visible": True, "interactive": False}  # the visitor's choice stays
    assert _args(thinking) == {"visible": True, "interactive": False}
    for model in ("", "qwen-image-2.0-pro", "z-image-turbo"):  # hidden, and back at the defaults
        mode, thinking = controls("t2i", "plus", model, True, values=False)
        assert _args(mode) == {"visible": False, "interactive": False, "value": "direct"}, model
        assert _args(thinking)["visible"] is False and _args(thinking)["value"] is True
    mode, _ = controls("edit", "max", "", True, values=True)  # qwen-image-edit-max
    assert _args(mode)["visible"] is False
    mode, _ = controls("fuse", "plus", "qwen-image-2.1-pro", True, values=True)
    assert _args(mode)["visible"] is True


def test_slots_4_to_10_show_where_the_model_takes_them_or_hold_an_image():
    empty = [None] * 7
    assert [_args(u)["visible"] for u in extra_slots_shown("plus", "qwen-image-2.1-pro", *empty)] == [True] * 7
    assert [_args(u)["visible"] for u in extra_slots_shown("plus", "", *empty)] == [False] * 7
    held = [URLS[3]] + [None] * 6  # 图4 filled, then 3.0 chosen: it stays in sight
    assert [_args(u)["visible"] for u in extra_slots_shown("plus", "qwen-image-3.0", *held)] == [True] + [False] * 6


def test_2_1_pro_disables_the_negative_box_and_allows_six_images():
    models = ModelControls("beijing")
    info, _size, n, _extend, negative, quality = models.follow_edit("plus", "qwen-image-2.1-pro", req())
    assert _args(negative)["interactive"] is False and _args(n)["maximum"] == 6
    assert _args(quality)["interactive"] is False  # the chosen model overrides the quality switch
    info, _size, n, _extend, negative, quality = models.follow_t2i("plus", "qwen-image-2.1-pro", req())
    assert _args(negative)["interactive"] is False and _args(n)["maximum"] == 6
    *_, negative, quality = models.follow_t2i("plus", "qwen-image-3.0", req())
    assert _args(negative)["interactive"] is True
    *_, quality = models.follow_t2i("plus", "", req())
    assert _args(quality)["interactive"] is True and _args(quality)["info"] is None


def test_new_parameters_come_last_with_defaults():
    assert PARAMS["generate"][-2:] == ("extend_mode", "thinking") == PARAMS["edit"][-2:]
    assert PARAMS["fuse"][:4] == ("image1", "image2", "image3", "instruction")
    assert PARAMS["fuse"][-9:] == ("extend_mode", "thinking", *(f"image{k}" for k in range(4, 11)))
    assert OPTIONAL["extend_mode"] == "direct" and OPTIONAL["thinking"] is True


def test_reuse_brings_back_five_references_in_order_and_the_rewriting_options(emu, clean_env, tmp_path):
    from PIL import Image

    from aliyun_image.recipes.reuse import FIELDS
    from aliyun_image.ui.gallery_handlers import ReuseTargets
    from aliyun_image.ui.layout import features

    panels = {p: {k: f"{p}.{k}" for k in FIELDS[p]} for p in FIELDS}
    targets = ReuseTargets("tabs", "status", panels, {p: f"{p}.status" for p in FIELDS})
    ctx = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env)))
    try:
        f = features(ctx, reuse=targets)
        files = []
        for k in range(1, 6):
            files.append(tmp_path / f"r{k}.png")
            Image.new("RGB", (320, 240), (40 * k, 80, 160)).save(files[-1])
        slots = [str(p) for p in files]
        out = fuse(f.runs, req(), slots, "图5的光线照在图1上", model="qwen-image-2.1-pro", negative="")
        assert out.error is None, out
        rec = ctx.store.page(task="fuse")[0][0]
        back = f.gallery.reuse(rec.id, req())
        def colour(path) -> tuple:  # kept inputs are what was sent (re-encoded): compare their colours
            with Image.open(path) as im:
                return im.convert("RGB").getpixel((160, 120))
        got, want = [colour(back[f"fuse.image{k}"]) for k in range(1, 6)], [(40 * k, 80, 160) for k in range(1, 6)]
        assert all(max(abs(a - b) for a, b in zip(g, w, strict=True)) <= 4 for g, w in zip(got, want, strict=True)), got
        assert all(back[f"fuse.image{k}"] is None for k in range(6, 11))
        assert back["fuse.model"] == "qwen-image-2.1-pro" and "5 input image" in back["fuse.status"]
        generate(f.runs, req(), model="qwen-image-3.0", extend_mode="agent", thinking=False)
        rec = ctx.store.page(task="t2i")[0][0]
        back = f.gallery.reuse(rec.id, req())
        assert back["t2i.extend_mode"] == "agent" and back["t2i.thinking"] is False
        generate(f.runs, req())  # qwen-image-plus: nothing sent, the defaults come back
        rec = ctx.store.page(task="t2i")[0][0]
        back = f.gallery.reuse(rec.id, req())
        assert back["t2i.extend_mode"] == "direct" and back["t2i.thinking"] is True
    finally:
        ctx.close()
