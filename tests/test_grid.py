"""The X/Y grid (issue 18.3): axes run as one batch, one labelled grid image stored in the gallery with
its recipe in the PNG's text, labels in the reader's language. Against the emulator over real HTTP."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from aliyun_image.errors import ValidationError
from aliyun_image.generation import grid
from aliyun_image.generation.batch import Axis
from aliyun_image.images import grid as grid_image
from aliyun_image.recipes import read_png_recipe, reuse_values
from aliyun_image.storage import Gallery

from .conftest import TEST_KEY, run_cli


def _recipe(path) -> dict:
    with Image.open(path) as im:
        return json.loads(im.info[grid_image.RECIPE_KEY])


def _dark(im: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Pixels darker than mid-grey in ``box`` (drawn text)."""
    colours = im.crop(box).convert("L").getcolors(1 << 16) or []
    return sum(n for n, level in colours if level < 128)


def test_cli_grid_prints_members_then_the_grid_with_its_recipe(emu, clean_env):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    r = run_cli(["grid", "a cat", "--x", "model=qwen-image-plus,qwen-image-2.0", "--y", "seed=1,2"], env, clean_env)
    assert r.returncode == 0, r.stderr
    # Plus and 2.0 have different default sizes: told before sending (what is sent does not change)
    assert "Cells differ in size: qwen-image-plus 1664*928, qwen-image-2.0 2048*2048." in r.stderr
    paths = r.stdout.split()
    assert len(paths) == 5 and all(os.path.isfile(p) for p in paths)
    assert "grid" in os.path.basename(paths[-1]) and not any("grid" in os.path.basename(p) for p in paths[:-1])
    assert len(emu.calls("generation")) == 4
    sent = sorted((c.json["model"], c.json["parameters"]["seed"]) for c in emu.calls("generation"))
    assert sent == [("qwen-image-2.0", 1), ("qwen-image-2.0", 2), ("qwen-image-plus", 1), ("qwen-image-plus", 2)]
    recipe = _recipe(paths[-1])
    assert recipe["x"] == {"name": "model", "values": ["qwen-image-plus", "qwen-image-2.0"]}
    assert recipe["y"] == {"name": "seed", "values": ["1", "2"]} and recipe["prompt"] == "a cat"
    from aliyun_image.storage import ResultStore

    store = ResultStore.open(clean_env)
    members = [store.get(i) for row in recipe["members"] for i in row]
    assert [(m.model, m.seed) for m in members] == [("qwen-image-plus", 1), ("qwen-image-2.0", 1),
                                                    ("qwen-image-plus", 2), ("qwen-image-2.0", 2)]
    assert {str(m.file) for m in members} == set(paths[:-1])
    # In the gallery as a result of task "grid", with the batch's id; the readers keep working.
    recs, _ = Gallery(store, None).page()
    g = next(r for r in recs if r.task == "grid")
    assert g.batch_id == members[0].batch_id and g.price is None and str(g.file) == paths[-1]
    assert read_png_recipe(g.file).prompt == "a cat"  # its A1111-style text: a reader that knows no grid
    assert reuse_values(g).panel == "t2i" and reuse_values(g).values["prompt"] == "a cat"  # reused as text-to-image
    from aliyun_image.ui.gallery_handlers import details_md

    assert "X/Y" in details_md(g, "en") and "X/Y" in details_md(g, "zh")
    h = run_cli(["history", "--json"], env, clean_env)
    assert h.returncode == 0
    listed = next(row for row in map(json.loads, h.stdout.splitlines()) if row["task"] == "grid")
    # its cells are its parents, row by row, and each member's details link to the grid
    assert listed["parents"] == [{"id": m.id, "relation": "grid", "position": k} for k, m in enumerate(members, 1)]
    from aliyun_image.ui.lineage_view import chain_md

    gallery = Gallery(store, None)
    assert f"X/Y grid of #{members[0].id}, #{members[1].id}" in chain_md(gallery.parents(g.id), [], [], "en")
    below = gallery.descendants(members[0].id)
    assert [(link.id, str(link.relation)) for link in below] == [(g.id, "grid")]
    assert f"X/Y 网格：#{g.id}" in chain_md([], [], below, "zh")
    with store.records.charges() as book:  # the grid itself is not billed: four charges, its members'
        assert len([row for row in book.rows(0) if row["state"] == "billed"]) == 4
    store.close()
    # The same grid again: nothing sent, the same grid file.
    again = run_cli(["grid", "a cat", "--x", "model=qwen-image-plus,qwen-image-2.0", "--y", "seed=1,2"], env,
                    clean_env)
    assert again.returncode == 0 and again.stdout.split()[-1] == paths[-1] and len(emu.calls("generation")) == 4


def test_grid_image_has_a_cell_per_combination_and_labels(service, emu):
    out, path = grid.run_grid(service, "a {animal}", Axis.parse("animal=cat,dog,fox"), Axis.parse("seed=5,6"),
                              model="qwen-image-plus", lang="en")
    assert out.complete and path is not None
    with Image.open(path) as im:
        im.load()
    cell, pad = grid_image.CELL, grid_image.PAD
    # three columns and two rows of cells, plus the labels' room
    assert im.width > 3 * (cell + pad) and im.height > 2 * (cell + pad)
    assert im.width < 3 * (cell + pad) + cell + 2 * pad and im.height < 2 * (cell + pad) + 200
    top = im.height - 2 * (cell + pad) - pad  # where the cells start
    label_w = im.width - 3 * (cell + pad) - pad
    assert _dark(im, (label_w, 0, im.width, top)) > 50, "column labels are drawn above the cells"
    assert _dark(im, (0, top, label_w, im.height)) > 50, "row labels are drawn beside the cells"
    # a cell holds its member image (the emulator's images are not white)
    first = im.crop((label_w + pad, top, label_w + pad + cell, top + cell)).convert("RGB")
    assert len(first.getcolors(1 << 16) or []) > 10


@pytest.mark.skipif(not grid_image.can_draw("\u6a21\u578b"), reason="no CJK font on this machine")
def test_axis_titles_follow_the_readers_language():
    x = Axis.parse("model=a,b")
    assert grid.axis_title(x, "zh") == "\u6a21\u578b" and grid.axis_title(x, "en") == "Model"
    cells = [[None, None]]
    zh = grid_image.compose(cells, ["a", "b"], [""], x_title=grid.axis_title(x, "zh"), cell=64)
    en = grid_image.compose(cells, ["a", "b"], [""], x_title=grid.axis_title(x, "en"), cell=64)
    assert zh.size == en.size
    band = (0, 0, zh.width, 30)
    assert _dark(zh, band) > 10 and _dark(en, band) > 10
    assert zh.crop(band).tobytes() != en.crop(band).tobytes(), "the title is drawn in the reader's language"


def test_a_missing_cell_is_grey_not_a_crash(tmp_path):
    img = tmp_path / "one.png"
    Image.new("RGB", (80, 40), (200, 0, 0)).save(img)
    out = grid_image.compose([[img, None]], ["x1", "x2"], [""], x_title="X", cell=64)
    pad = grid_image.PAD  # the last cell ends PAD from the right and 2 x PAD from the bottom
    right = out.crop((out.width - pad - 64, out.height - 2 * pad - 64, out.width - pad, out.height - 2 * pad))
    assert right.getcolors() == [(64 * 64, grid_image.EMPTY)]
    left = out.crop((out.width - 2 * pad - 128, out.height - 2 * pad - 64, out.width - 2 * pad - 64,
                     out.height - 2 * pad))
    assert (255, 255, 255) in {c for _, c in left.getcolors()} and (200, 0, 0) in {c for _, c in left.getcolors()}


@pytest.mark.parametrize("axes,options,key", [
    (["seed=1,2", "size=1664*928,1328*1328", "model=qwen-image-plus"], {}, "batch.grid.axes"),
    (["seed=1,2"], {"n": 2}, "batch.grid.one_each"),
])
def test_grid_refusals(axes, options, key):
    with pytest.raises(ValidationError) as e:
        grid.grid_spec("a cat", [Axis.parse(a) for a in axes], options)
    assert e.value.msg.key == key


def test_grid_on_a_variable_the_prompt_lacks_is_refused_before_sending(emu, clean_env):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    r = run_cli(["grid", "a cat", "--x", "colour=red,blue"], env, clean_env)
    assert r.returncode == 2 and "{colour}" in r.stderr and not emu.calls("generation")
