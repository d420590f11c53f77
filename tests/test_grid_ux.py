"""The X/Y grid as a user reads it (new-user findings): the grid's own record tells its axes and cells
(never a raw None, no "rewritten wording" for it), a cell's chain names its axis values, a model axis
that mixes picture sizes says so before sending (terminal and page), the values box of a model axis
lists the models, and the Batch tab's captions name the axes in the reader's language. Handlers are
called as Gradio calls them, against the emulator over real HTTP."""

from __future__ import annotations

import re

import gradio as gr
import pytest

from aliyun_image.generation import batch as batches, grid
from aliyun_image.generation.batch import Axis
from aliyun_image.i18n import render
from aliyun_image.storage import Gallery
from aliyun_image.ui.batch_handlers import BatchHandlers
from aliyun_image.ui.gallery_handlers import GalleryHandlers, details_md, wording_button
from aliyun_image.ui.lineage_view import LineageView
from aliyun_image.ui.page_text import caption

from .conftest import TEST_KEY, run_cli
from .test_ui_handlers import make_ctx, req  # noqa: F401 - make_ctx is a fixture

SIZES_EN = ("Cells differ in size: qwen-image-plus 1664*928, qwen-image-2.0 2048*2048. "
            "Set a size to compare at one size.")


def _grid(ctx, **options):
    """A 2 x 2 grid (Plus and Max by seeds 1 and 2), rewriting on, in the context's store; its record."""
    x = Axis.parse("model=qwen-image-plus,qwen-image-max")
    out, path = grid.run_grid(ctx.live_service, "a lighthouse at dusk", x, Axis.parse("seed=1,2"), api_key=TEST_KEY,
                              prompt_extend=True, **options)
    assert out.complete and path is not None
    gallery = Gallery(ctx.store, None)
    rec = next(r for r in gallery.page(limit=10)[0] if r.task == grid.TASK)
    return out, rec, gallery


def _select(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None})


def test_the_grids_record_tells_axes_cells_and_what_varies(make_ctx, emu):  # noqa: F811
    ctx = make_ctx()
    out, rec, gallery = _grid(ctx)
    h = GalleryHandlers(ctx)
    items, *_ = h.gallery_page("", "", "", 1, req(lang="en-US"))
    ids = [r.id for r in gallery.page(limit=24)[0]]
    assert items[0][1] == f"#{rec.id} · X/Y grid · a lighthouse at dusk"  # not one model and size
    _, text, *_ = h.gallery_select(ids, _select(ids.index(rec.id)), req(lang="en-US"))
    assert "| Axes | Model: qwen-image-plus, qwen-image-max × Seed: 1, 2 |" in text, text
    assert "| Cells | 4 |" in text
    assert "| Model | varies (Model) |" in text and "| Seed | varies (Seed) |" in text
    assert "| Prompt rewriting | yes |" in text and "| Watermark | no |" in text  # read from its cells
    assert r"| Size | 1664\*928 |" in text  # the cells' size; the grid image's own is in the File row
    assert re.search(r"\| File \| \S*grid\S* \(\d+\\\*\d+, \d+ KB\) \|", text), text
    assert "None" not in text and "Request id" not in text
    _, zh, *_ = h.gallery_select(ids, _select(ids.index(rec.id)), req(lang="zh-CN"))
    assert "模型: qwen-image-plus、qwen-image-max × 种子: 1、2" in zh and "随模型变化" in zh and "随种子变化" in zh, zh
    assert "None" not in zh and caption(rec, "zh").startswith(f"#{rec.id} · X/Y 网格 · ")
    # "Reuse with the rewritten wording" is hidden for the grid, shown for a cell
    assert h.wording_shown(ids, _select(ids.index(rec.id)), req()).visible is False
    cell = next(i for i in ids if i != rec.id)
    assert h.wording_shown(ids, _select(ids.index(cell)), req()).visible is True
    # a grid without an axis on seed: one fixed seed reads as that seed; random seeds differ between cells
    fixed = grid.grid_facts(rec, [gallery.get(i) for i in grid.member_ids(rec)])
    assert fixed.cells == fixed.made == 4 and fixed.facts["seed"].axis == "seed"


def test_a_grid_without_a_seed_axis_says_its_cells_differ(service, emu):
    out, path = grid.run_grid(service, "a cat", Axis.parse("model=qwen-image-plus,qwen-image-max"))
    gallery = Gallery(service.store, None)
    rec = next(r for r in gallery.page(limit=10)[0] if r.task == grid.TASK)
    text = details_md(rec, "en", gallery)
    assert "| Seed | differs between cells |" in text and "| Cells | 2 |" in text and "None" not in text
    assert "Model: qwen-image-plus, qwen-image-max |" in text
    # without the gallery (no cells read) it still prints no None
    assert "None" not in details_md(rec, "ja") and wording_button(rec).visible is False


def test_a_cells_chain_names_its_axis_values_in_the_readers_language(make_ctx, emu):  # noqa: F811
    ctx = make_ctx()
    out, rec, gallery = _grid(ctx)
    view = LineageView(ctx)
    first = out.results[0]  # row 1, column 1: Plus, seed 1
    en, _ = view._chain(first.id, req(lang="en-US"))
    assert f"item 1 of batch {out.batch_id} (Model=qwen-image-plus, Seed=1)" in en, en
    zh, _ = view._chain(out.results[3].id, req(lang="zh-CN"))
    assert f"批次 {out.batch_id} 的第 4 项（模型=qwen-image-max, 种子=2）" in zh, zh
    # the owner rule: someone else's batch names no labels
    parents = gallery.parents(first.id)
    assert view.batch_labels(parents, None) and view.batch_labels(parents, "someone-else") == {}


def test_a_template_batch_item_names_its_variables(make_ctx, emu):  # noqa: F811
    ctx = make_ctx()
    spec = batches.BatchSpec("a {animal} in the snow", (Axis.parse("animal=cat,fox"),), {"n": 1})
    out = batches.run(ctx.live_service, batches.prepare(ctx.live_service, spec).batch_id, api_key=TEST_KEY)
    fox = next(r for r in out.results if "fox" in r.prompt)
    text, _ = LineageView(ctx)._chain(fox.id, req(lang="en-US"))
    assert f"item 2 of batch {out.batch_id} (animal=fox)" in text, text


def test_a_model_axis_of_different_sizes_says_so_before_sending(service, emu, clean_env):
    p = batches.plan(service, grid.grid_spec("a cat", [Axis.parse("model=qwen-image-plus,qwen-image-2.0")], {}))
    assert [render("en", n) for n in p.notes] == [SIZES_EN]
    assert "单元格尺寸不一：qwen-image-plus 1664*928、qwen-image-2.0 2048*2048" in render("zh", p.notes[0])
    assert {u.options["size"] for u in p.units} == {"1664*928", "2048*2048"}  # what is sent does not change
    for options, axes in (({"size": "1328*1328"}, ["model=qwen-image-plus,qwen-image-2.0"]),
                          ({}, ["model=qwen-image-plus,qwen-image-max"]),
                          ({}, ["model=qwen-image-plus,qwen-image-2.0", "size=1328*1328,1664*928"])):
        q = batches.plan(service, grid.grid_spec("a cat", [Axis.parse(a) for a in axes], options))
        assert not q.notes, (options, axes)
    # the terminal: a line on stderr before anything is sent
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    r = run_cli(["grid", "a cat", "--x", "model=qwen-image-plus,qwen-image-2.0", "--dry-run"], env, clean_env)
    assert r.returncode == 0 and SIZES_EN in r.stderr and not emu.calls("generation"), r.stderr


def test_the_batch_tabs_plan_line_and_axis_values_box(make_ctx, emu):  # noqa: F811
    h = BatchHandlers(make_ctx())
    args = ["grid", "a cat", "", "model", "qwen-image-plus,qwen-image-2.0", "", "", "plus", "", "", 1, -1, "",
            False, False, None, None]
    en = h.batch_plan(*args, request=req(lang="en-US"), x_dashscope_api_key=TEST_KEY)
    assert SIZES_EN.replace("*", r"\*") in en and "2 item(s)" in en, en
    zh = h.batch_plan(*args, request=req(lang="zh-CN"), x_dashscope_api_key=TEST_KEY)
    assert "单元格尺寸不一" in zh
    fixed = h.batch_plan(*args[:9], "1328*1328", *args[10:], request=req(), x_dashscope_api_key=TEST_KEY)
    assert "differ in size" not in fixed and not emu.calls("generation")
    # choosing the Model axis lists the text-to-image models; rewriting fills in on,off
    box = h.axis_values("model", "", req())
    assert "qwen-image-plus" in box.info and "qwen-image-max" in box.info and not box.value
    assert h.axis_values("prompt_extend", "", req()).value == "on,off"
    assert h.axis_values("prompt_extend", "on", req()).value == "on"
    assert "模型" in h.axis_values("model", "", req(lang="zh-CN")).info


@pytest.mark.parametrize("lang,expected", [("en", "Model=qwen-image-plus · Seed=1"),
                                           ("zh", "模型=qwen-image-plus · 种子=1")])
def test_the_batch_tabs_grid_captions_name_the_axes_in_the_readers_language(make_ctx, emu, lang, expected):  # noqa: F811
    ctx = make_ctx()
    out, rec, _ = _grid(ctx)
    view = BatchHandlers(ctx).view
    tiles, *_ = view.snapshot(out.batch_id, None, lang)
    assert tiles[0][1].endswith(expected), tiles[0][1]
    assert not any("model=" in c or "seed=" in c for _, c in tiles)
