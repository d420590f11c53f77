"""The handlers behind one language per page, rewriting in the open and the small form helps,
called as Gradio calls them (no browser): templates, fusion slot checks, the rewrite memo and its
"keep this wording", the banner choice and the app's start-up lines."""

from __future__ import annotations

from PIL import Image

import json

from gradio.i18n import I18nData
from aliyun_image import i18n
from aliyun_image.recipes.reuse import FIELDS
from aliyun_image.ui import build_demo
from aliyun_image.ui.form_assist import check_slots, template_changed, template_fill
from aliyun_image.ui.banner import banner_key
from aliyun_image.ui.gallery_handlers import ReuseTargets
from aliyun_image.ui.layout import features
from aliyun_image.ui.layout import page_i18n
from aliyun_image.cli.webapp import startup_lines

from .test_ui_handlers import generate, make_ctx, req  # noqa: F401 - make_ctx is a fixture


def _i18n_keys(value) -> set[str]:
    """Every gr.I18n key a page config names."""
    found: set[str] = set()
    if isinstance(value, I18nData):
        found.add(value.key)
    elif isinstance(value, dict):
        if value.get("__type__") == "translation_metadata":
            found.add(value["key"])
        for v in value.values():
            found |= _i18n_keys(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= _i18n_keys(v)
    elif isinstance(value, str) and value.startswith("__i18n__"):
        found.add(json.loads(value[len("__i18n__"):])["key"])
    return found


def test_every_text_the_page_names_is_translated_in_every_language(make_ctx, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-host-0123456789")
    # local with a host key (the live banner), hosted with one (the hourly limit's banner)
    for ctx in (make_ctx(), make_ctx(hosted=True, session_limit=5)):
        demo = build_demo(ctx)
        names = _i18n_keys(demo.get_config_file())
        tables = page_i18n(ctx).translations_dict
        assert set(tables) == set(i18n.LANGUAGES)  # Gradio matches zh-CN, zh-TW, ja-JP... to these
        assert {"ui.tab_t2i", "ui.built.banner.own", "ui.templates.background", "ui.styles.ink"} <= names
        for lang, table in tables.items():
            missing = sorted(k for k in names if not table.get(k))
            assert not missing, (lang, missing)
        assert tables["ja"]["ui.tab_fuse"] == "複数画像の融合" and tables["zh"]["ui.tab_fuse"] == "多图融合"
        # the model picker's labels are rendered per language when the page is built
        assert tables["en"]["ui.built.model:qwen-image-3.0"] == "Qwen-Image 3.0 › qwen-image-3.0 · newest"
        for name in ("ui.built.banner.own", "ui.built.banner.hosted_hostkey"):  # filled in when built
            assert "{" not in tables["ja"][name] and tables["ja"][name] != tables["en"][name]
    assert "1 時間に 5 枚" in tables["ja"]["ui.built.banner.hosted_hostkey"]


def test_a_template_fills_empty_or_its_own_text_and_keeps_typed_words():
    r = req()
    text, last, note = template_changed("remove", "", "", "", "", r)
    assert text == last == "Remove the passers-by from the picture" and note == ""
    text, last, note = template_changed("add", "", "", last, last, r)  # still the template's words
    assert text == last == "Add a cat to the picture" and note == ""
    kept, last2, note = template_changed("enhance", "", "", "make the sky purple", last, r)
    assert last2 == last and "Your instruction was kept" in note and "Fill instruction" in note
    assert not isinstance(kept, str)  # gr.skip(): the box keeps the user's words
    assert template_fill("enhance", "", "", r)[0].startswith("Enhance details")
    zh = template_changed("style", "oil_painting", "", "", "", req(lang="zh-CN"))
    assert zh[0] == "把这张图片转换成油画风格"
    ja = template_changed("remove", "", "", "", "", req(lang="ja-JP"))
    assert ja[0] == "画面から通行人を消してください" and ja[2] == ""
    note = template_changed("enhance", "", "", "空を紫に", ja[1], req(lang="ja-JP"))[2]
    assert note.startswith("入力済みの指示はそのままにしました") and "*指示に入力*" in note


def test_fusion_slots_say_what_each_file_is(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.new("RGB", (640, 480), "red").save(a)
    Image.new("RGB", (300, 500), "blue").save(b)
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    note = check_slots(req(), str(a), str(bad), str(b))
    lines = note.split("\n\n")
    assert lines[0] == "✓ 图1: 640×480 px"
    assert lines[1].startswith("✗ 图2: “notes.txt” is not an image")
    assert lines[2] == "✓ 图3: 300×500 px · the output follows this image's aspect ratio"
    assert "输出比例跟随这张图片" in check_slots(req(lang="zh-CN"), str(a), None, None)
    ja = check_slots(req(lang="ja-JP"), str(a), str(bad), None).split("\n\n")
    assert ja[0] == "✓ 图1：640×480 px · 出力の縦横比はこの画像に合わせます"  # the slot keeps its name 图1
    assert ja[1].startswith("✗ 图2：「notes.txt」はこのアプリで読める画像ではありません")
    assert check_slots(req(), None, None, None) == ""


def test_keep_this_wording_after_a_rewritten_run(make_ctx):  # noqa: F811
    h = features(make_ctx())
    out = generate(h, "a lighthouse at dusk", req(), seed=42)
    assert "| Your prompt | Rewritten by the service (prompt_extend) |" in out[-1][1]
    keep, keep_run = h.rewrite.offer("t2i", req())
    assert keep.visible and keep_run.visible
    assert not h.rewrite.offer("t2i", req("other-session"))[0].visible  # per session
    assert not h.rewrite.offer("edit", req())[0].visible  # per panel
    prompt, extend, seed, status = h.rewrite.keep("t2i", "Done.", req())
    assert prompt.startswith("a lighthouse at dusk. Rich detail") and extend is False and seed == 42
    assert status.startswith("Done.") and "rewriting is off" in status
    generate(h, prompt, req(), seed=42, prompt_extend=False)
    assert not h.rewrite.offer("t2i", req())[0].visible
    assert "No rewritten prompt" in h.rewrite.keep("t2i", "", req())[3]


def test_gallery_reuse_with_the_rewritten_wording(make_ctx):  # noqa: F811
    targets = ReuseTargets("tabs", "status", {"t2i": {k: f"t2i.{k}" for k in FIELDS["t2i"]}})
    h = features(make_ctx(), reuse=targets)
    generate(h, "一只橘猫", req(), seed=7)
    rec = h.ctx.store.page()[0][0]
    out = h.gallery.reuse_wording(rec.id, req())
    assert out["t2i.prompt"] == rec.actual_prompt and "画面细节丰富" in rec.actual_prompt
    assert out["t2i.extend"] is False and out["t2i.seed"] == 7
    generate(h, "no rewriting", req(), prompt_extend=False)
    plain = h.ctx.store.page()[0][0]
    assert h.gallery.reuse_wording(plain.id, req()) == {
        "status": "No rewritten prompt to keep: run with prompt rewriting on first."}


def test_banner_and_start_up_lines_follow_the_mode(make_ctx, monkeypatch):  # noqa: F811
    demo = make_ctx()
    assert banner_key(demo) == "offline"
    lines = startup_lines(demo, "http://127.0.0.1:7860/", None, "en")
    assert lines[0].startswith("Mode: offline demo") and lines[-1] == "For a public link, restart with --share."
    assert startup_lines(demo, "http://x/", "https://abc.gradio.live", "zh")[-1] == "公开链接：https://abc.gradio.live"
    assert startup_lines(demo, "http://x/", None, "ja")[0].startswith("モード：オフラインデモ")
    assert banner_key(make_ctx(hosted=True)) == "hosted"
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-host-0123456789")
    live = make_ctx()
    assert banner_key(live) == "live_host"  # "billed to the server's key" (issue 16 item 10)
    assert startup_lines(live, "http://x/", None, "en")[0].startswith("Mode: live, region ")
    hosted = startup_lines(make_ctx(hosted=True), "http://x/", None, "zh")
    assert hosted[0].startswith("模式：共享演示（hosted）：真实调用") and "--share" not in hosted[-1]
