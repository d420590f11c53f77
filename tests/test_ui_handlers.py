"""UI handlers called directly (no server): gallery paging, actions, owner isolation, reuse."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from aliyun_image.recipes.reuse import FIELDS
from aliyun_image.ui import AppContext, AppOptions
from aliyun_image.ui.endpoints import PARAMS, call_args, check_handler
from aliyun_image.ui.gallery_handlers import ReuseTargets
from aliyun_image.ui.form_assist import swap, template_fill
from aliyun_image.ui.batch_api import BatchApi
from aliyun_image.ui.gallery_search import GallerySearch
from aliyun_image.ui.layout import features
from aliyun_image.ui.result_actions import ResultActions
from aliyun_image.ui.run_handlers import RunHandlers
from aliyun_image.ui.request_info import request_lang
from aliyun_image.ui.strings import preset_instruction, t

from .conftest import TEST_KEY


def req(session="s1", lang="en-US"):
    return SimpleNamespace(headers={"accept-language": lang}, session_hash=session)


class Outputs(list):
    """What a handler yielded, and the gr.Error it raised at the end (None if it did not)."""

    error: gr.Error | None = None


def drain(agen):
    async def go():
        out = Outputs()
        try:
            async for item in agen:
                out.append(item)
        except gr.Error as exc:
            out.error = exc
        return out
    return asyncio.run(go())


@pytest.fixture
def make_ctx(emu, clean_env):
    made = []

    def make(**kw):
        opts = AppOptions(base_url=emu.base_url, data_dir=str(clean_env), **kw)
        ctx = AppContext(opts)
        made.append(ctx)
        return ctx
    yield make
    for c in made:
        c.close()


GEN_DEFAULTS = dict(negative="", quality="plus", model="", size="1328*1328", n=1, seed=-1, prompt_extend=True,
                    watermark=False)
EDIT_DEFAULTS = dict(image=None, image_url="", instruction="make it blue", quality="plus", model="", n=1,
                     size_mode="auto", size_preset="", width=1024, height=1024, seed=-1, negative="",
                     prompt_extend=True, watermark=False)


def generate(h, prompt, request, n=1, api_key=TEST_KEY, **kw):
    """Call the /generate handler as Gradio does: values by position, in the API's order."""
    args = call_args("generate", **{**GEN_DEFAULTS, "prompt": prompt, "n": n, **kw})
    return drain(h.runs.generate(*args, request, api_key))


def edit(h, request, api_key=TEST_KEY, **kw):
    """Call the /edit handler with the defaults above, ``kw`` by parameter name."""
    return drain(h.runs.edit(*call_args("edit", **{**EDIT_DEFAULTS, **kw}), request, api_key))


def test_stream_yields_each_image_then_summary(make_ctx, emu):
    h = features(make_ctx())
    # The three requests go out at once: replies spread over a second land one by one even on a busy
    # machine (with no latency they may land together, and the page rightly shows them together).
    emu.latency = (0.1, 1.5)
    outs = generate(h, "a cat", req(), n=3, seed=5)
    counts = [len(g) for g, _ in outs]
    assert counts[0] == 0 and counts[-1] == 3 and 1 in counts  # images appear one by one
    assert "Seed 5, 6, 7" in outs[-1][1]


def test_status_follows_browser_language(make_ctx):
    h = features(make_ctx())
    assert "完成" in generate(h, "一只猫", req(lang="zh-CN,zh;q=0.9"))[-1][1]
    assert "提示词为空" in generate(h, "  ", req(lang="zh-CN"))[-1][1]
    assert request_lang(req(lang="en-GB,zh;q=0.5")) == "en" and request_lang(None) == "en"
    assert request_lang(req(lang="ja-JP,ja;q=0.9,en;q=0.8")) == "ja"


def test_a_toast_is_in_one_language_with_its_title_and_no_markdown_escapes(make_ctx):
    h = features(make_ctx())
    for lang, title, words in (("ja-JP", "エラー", "画像の URL ではありません"), ("zh-CN", "错误", "不是图片链接"),
                               ("en-US", "Error", "is not an image URL")):
        out = edit(h, req(lang=lang), image_url="not_a*url")
        assert out.error is not None and out.error.title == title, lang
        toast = out.error.message
        assert words in toast and "not_a*url" in toast and "\\" not in toast, toast  # plain text: no escapes
        assert "not\\_a\\*url" in out[-1][2]  # the status line is Markdown: escaped there
        others = {"ja-JP": ("is not", "不是"), "zh-CN": ("is not", "ありません"), "en-US": ("不是", "ありません")}[lang]
        assert not any(o in toast for o in others), toast
    out = generate(h, "a cat", req(lang="en-US"), size="100*100")  # refused by the service, nothing sent
    assert out.error is not None and out.error.title == "Error"
    assert "100*100" in out.error.message and "\\" not in out.error.message, out.error.message
    assert "100\\*100" in out[-1][1]
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in out.error.message), out.error.message  # no Chinese


def test_gallery_paging_and_hosted_isolation(make_ctx):
    h = features(make_ctx(hosted=True))
    generate(h, "alice cat", req("alice"), n=2)
    generate(h, "bob dog", req("bob"))
    items, info, ids, page, _, _ = h.gallery.gallery_page("", "", "", 1, req("alice"))
    assert len(items) == 2 and "2 result" in info and all("alice" in c for _, c in items)
    assert h.gallery.gallery_page("", "", "", 1, req("bob"))[2] != ids
    assert h.gallery.gallery_page("", "", "", 1, req("mallory"))[2] == []
    # Bob cannot act on Alice's ids even if he learns them.
    assert h.ctx.store.get(ids[0], h.ctx.owner("bob")) is None
    _, msg, undo_id, undo = h.gallery.gallery_delete(ids[0], req("bob"))
    assert "Select" in msg and h.ctx.store.get(ids[0]).status == "done" and undo_id is None
    # Alice deletes; Bob's Undo with her id restores nothing, hers does.
    assert h.gallery.gallery_delete(ids[0], req("alice"))[2] == ids[0]
    msg, _, _ = h.gallery.gallery_undo(ids[0], req("bob"))
    assert "Nothing to undo" in msg and h.ctx.store.get(ids[0]).status == "trashed"
    msg, _, _ = h.gallery.gallery_undo(ids[0], req("alice"))
    assert f"#{ids[0]} is back" in msg and h.ctx.store.get(ids[0]).status == "done"
    zpath, msg = h.gallery.gallery_zip(ids, req("bob"))
    assert zpath is None
    # thumbnails, not originals, in the grid
    assert all("/thumbs/" in path for path, _ in items)


def test_local_mode_shares_one_gallery_and_paging(make_ctx):
    h = features(make_ctx())
    for i in range(3):
        generate(h, f"cat {i}", req(f"s{i}"))
    _, info, ids, _, _, _ = h.gallery.gallery_page("", "", "", 1, req("someone-else"))
    assert len(ids) == 3
    _, _, ids_search, _, _, _ = h.gallery.gallery_page("cat 1", "", "", 1, req())
    assert len(ids_search) == 1
    _, info, none, _, _, _ = h.gallery.gallery_page("zzz-no-such-thing", "", "", 1, req())
    assert none == [] and "Nothing matches" in info
    # stepping past the last page clamps
    _, info, _, page, _, _ = h.gallery.gallery_step("", "", "", 1, 5, req())
    assert page == 1


def test_select_details_actions_zip_delete(make_ctx, tmp_path):
    # reuse() writes to these (names stand in for the widgets)
    targets = ReuseTargets("tabs", "status", {"t2i": {k: f"t2i.{k}" for k in FIELDS["t2i"]}})
    h = features(make_ctx(), reuse=targets)
    generate(h, "一只橘猫", req(), seed=42)
    _, _, ids, _, _, _ = h.gallery.gallery_page("", "", "", 1, req())
    sel, details, preview, download, cleared = h.gallery.gallery_select(ids, SimpleNamespace(index=0), req())
    assert cleared == ""
    assert sel == ids[0] and "qwen-image-plus" in details and "42" in details and preview.endswith(".png")
    image, tabs, msg = h.gallery.send_to_edit(sel, req())
    assert image == preview and "edit" in msg
    # The next free slot, and the page stays on the gallery (no tab switch among the outputs).
    a, b, c, msg = h.gallery.send_to_fuse(req(), sel, "plus", "", "x.png", None, None)
    assert (a, b, c) == ("x.png", preview, None) and "图2" in msg
    full = ["x.png"] * 3 + [None] * 7
    *slots, msg = h.gallery.send_to_fuse(req(), sel, "plus", "", *full)
    assert slots == full and "3" in msg  # a model of three: full
    *slots, msg = h.gallery.send_to_fuse(req(), sel, "plus", "qwen-image-2.1-pro", *full)
    assert slots[3] == preview and "图4" in msg  # a model that takes ten: 图4 next
    out = h.gallery.reuse(sel, req())
    assert out["t2i.prompt"] == "一只橘猫" and out["t2i.seed"] == 42 and out["t2i.size"] == "1328*1328"
    assert out["t2i.n"] == 1  # the run's n, as for every task
    zpath, msg = h.gallery.gallery_zip(ids, req())
    assert zipfile.ZipFile(zpath).namelist() == [preview.rsplit("/", 1)[1]]
    _, msg, undo_id, undo = h.gallery.gallery_delete(sel, req())
    assert "trash" in msg and undo_id == sel and undo.visible is True
    assert h.ctx.store.get(sel).status == "trashed" and h.gallery.gallery_page("", "", "", 1, req())[2] == []
    assert h.gallery.gallery_zip([sel], req())[0] is None
    assert h.gallery.reuse(sel, req()) == {"status": t("en", "no_selection")}
    msg, undo_id, undo = h.gallery.gallery_undo(sel, req())
    assert "back" in msg and undo_id is None and undo.visible is False
    assert h.gallery.gallery_page("", "", "", 1, req())[2] == [sel] and Path(preview).is_file()


def test_presets_and_swap():
    def fill(preset, style, obj, request):
        text, last, note = template_fill(preset, style, obj, request)
        assert last == text and note == ""
        return text

    assert fill("style", "oil_painting", "", req(lang="zh-CN")) == "把这张图片转换成油画风格"
    assert fill("style", "oil_painting", "", req(lang="ja-JP")) == "この画像を油絵風に変換してください"
    assert fill("add", "", "", req(lang="ja-JP")) == "画面に猫を追加してください"
    assert fill("background", "", "", req()) == "Replace the background with a starry sky"
    assert fill("remove", "", "the bin", req()) == "Remove the bin from the picture"
    assert preset_instruction("enhance", "", "zh").startswith("增强细节")
    assert swap("a", "b") == ("b", "a")


def test_host_key_routing_and_quota(make_ctx, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    ctx = make_ctx(hosted=True, session_limit=1, total_limit=5)
    h = features(ctx)
    assert ctx.route("").kind == "host" and ctx.route("sk-mine-123456").kind == "own"
    assert len(generate(h, "first", req("v"), api_key="")[-1][0]) == 1
    refused = generate(h, "second", req("v"), api_key="")
    # API clients get the whole refusal as the error; the page's status line points to its cost
    # line, which says it (issue 16 §5: said once), and gets no toast.
    assert "per visitor per hour" in refused.error.message and refused.error.visible is False
    assert "Nothing was sent: see the line under the Run button" in refused[-1][1]


def test_offline_when_no_key(make_ctx):
    ctx = make_ctx()
    assert ctx.route("").kind == "offline" and ctx.emulator is not None
    assert ctx.route("sk-own-key-123456").kind == "own"


def test_edit_url_box_needs_a_url_and_upload_wins(make_ctx, tmp_path):
    from PIL import Image
    h = features(make_ctx())
    out = edit(h, req(), image_url="not a url")
    assert "not an image URL" in out[-1][2] and out[-1][0] == [] and out.error is not None
    img = tmp_path / "a.png"
    Image.new("RGB", (600, 400), "red").save(img)
    out = edit(h, req(), image=str(img), image_url="https://example.com/x.png")
    assert len(out[-1][0]) == 1 and "uploaded image was used" in out[-1][2]


def test_markdown_in_messages_is_escaped(make_ctx):
    h = features(make_ctx())
    out = generate(h, "a cat", req(), size="1328x1328")
    status = out[-1][1]
    assert "1328\\*1328" in status  # shown as 1328*1328, not as emphasis


def test_custom_size_with_an_empty_field_is_not_silently_automatic(make_ctx):
    h = features(make_ctx())
    out = edit(h, req(), image_url="https://example.com/x.png", size_mode="custom", width=None, height=700)
    assert out[-1][0] == [] and "width" in out[-1][2] and "*700" in out[-1][2].replace("\\\\", "")


def test_each_public_handler_takes_the_api_parameters_in_the_table_order():
    # The feature that serves each endpoint, unbuilt: bound methods, as the layout passes them; no app needed.
    owner = {"generate": RunHandlers, "edit": RunHandlers, "fuse": RunHandlers, "variations": ResultActions,
             "download_run": ResultActions, "download_matching": GallerySearch, "batch": BatchApi, "grid": BatchApi}
    assert set(owner) == set(PARAMS)
    for endpoint, cls in owner.items():
        check_handler(getattr(cls.__new__(cls), endpoint), endpoint)  # raises TypeError on any drift
    with pytest.raises(TypeError, match="missing"):
        call_args("generate", prompt="a cat")
    with pytest.raises(TypeError, match="unknown"):
        call_args("generate", **GEN_DEFAULTS, prompt="a cat", api_key="sk-x")


UI_DIR = Path(__file__).resolve().parent.parent / "aliyun_image" / "ui"


def mixins(folder: Path) -> list[str]:
    """``Class(Base)`` pairs in ``folder`` where both are classes of that folder: features are
    composed (each built with what it needs), never assembled from mixins."""
    import ast

    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.py"))}
    ours = {n.name for tree in trees.values() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    return [f"{p.name}: {n.name}({b.id})" for p, tree in trees.items() for n in ast.walk(tree)
            if isinstance(n, ast.ClassDef) for b in n.bases if isinstance(b, ast.Name) and b.id in ours]


def test_ui_features_are_composed_not_mixed_in(tmp_path):
    assert mixins(UI_DIR) == []
    (tmp_path / "a.py").write_text("class Runs:\n    pass\n\n\nclass Handlers(Runs):\n    pass\n")
    assert mixins(tmp_path) == ["a.py: Handlers(Runs)"]  # the check sees one


def test_each_feature_is_its_own_object(make_ctx):
    f = features(make_ctx())
    parts = [f.runs, f.models, f.key, f.gallery, f.search, f.actions, f.png, f.rewrite]
    assert len({type(p) for p in parts}) == len(parts)
    # variations start runs through the run handlers (one registry: Stop finds them); the
    # rewrite offer reads the same registry and memo the runs fill
    assert f.actions.runs is f.runs and f.rewrite.running is f.runs.live and f.rewrite.memo is f.runs.rewrites
