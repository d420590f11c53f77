"""Nothing is lost: kept input images, the trash, reuse that brings everything back, PNG info.

Service and handlers against the emulator (real HTTP), the CLI in-process (``cli.main(argv)``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from aliyun_image.storage.inputs import InputStore
from aliyun_image.recipes.read import read_png_recipe
from aliyun_image.recipes.reuse import FIELDS
from aliyun_image.storage.trash import Trash
from aliyun_image.errors import ValidationError
from aliyun_image.ui.gallery_handlers import ReuseTargets
from aliyun_image.ui.layout import Features, features

from .conftest import run_cli as cli  # in-process: the subprocess is not the point here
from . import test_ui_handlers
from .test_ui_handlers import EDIT_DEFAULTS, drain, req

make_ctx = test_ui_handlers.make_ctx  # the fixture: an AppContext on the emulator, closed afterwards


def _png(path: Path, color: str = "navy", size=(640, 480)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def _a1111_png(path: Path) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a castle on a hill, sunset\nNegative prompt: blurry, low quality\n"
                                "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 12345, Size: 1328x1328, "
                                "Model hash: abc123, Model: sd_xl_base_1.0")
    Image.new("RGB", (64, 64), "green").save(path, pnginfo=info)
    return path


# --- kept inputs ---------------------------------------------------------------------------------
def test_inputs_are_kept_once_and_history_points_at_them(service, settings, tmp_path):
    a, b = _png(tmp_path / "a.png", "red"), _png(tmp_path / "b.png", "blue", (480, 640))
    first = service.fuse([str(a), str(b)], "图1 的猫放进 图2 的房间").raise_if_empty().results[0]
    second = service.edit([str(a)], "make it blue").raise_if_empty().results[0]
    kept = sorted((settings.data_dir / "inputs").iterdir())
    assert len(kept) == 2  # a.png used twice, stored once
    stored = [i["stored"] for i in first.inputs]
    assert second.inputs[0]["stored"] == stored[0] and len(set(stored)) == 2
    for entry in first.inputs:  # the file is the bytes sent, named by their digest
        data = (settings.data_dir / entry["stored"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] == Path(entry["stored"]).stem
    h = cli(["history", "--json"], data_dir=settings.data_dir)
    rows = [json.loads(line) for line in h.stdout.splitlines()]
    assert h.returncode == 0 and [r["task"] for r in rows] == ["edit", "fuse"]
    for row, rec in zip(rows, (second, first), strict=True):
        assert [Path(i["stored"]).read_bytes() for i in row["inputs"]] == \
               [(settings.data_dir / i["stored"]).read_bytes() for i in rec.inputs]
        assert all(Path(i["stored"]).is_absolute() for i in row["inputs"])


def test_url_inputs_are_recorded_as_urls(service, settings):
    url = service.generate("a source image").raise_if_empty().results[0].url  # a URL the emulator serves
    rec = service.edit([url], "make it blue").raise_if_empty().results[0]
    assert rec.inputs[0]["url"] == url and "stored" not in rec.inputs[0]
    assert not (settings.data_dir / "inputs").exists()  # sent as a URL: nothing of it to keep


def test_hosted_inputs_live_per_owner_and_only_the_owner_reads_them(tmp_path):
    store = InputStore(tmp_path)
    mine = store.put(b"\x89PNG same bytes", "image/png", "owner-a")
    theirs = store.put(b"\x89PNG same bytes", "image/png", "owner-b")
    assert mine != theirs and mine.startswith("inputs/owner-a/")
    assert store.path(mine, "owner-a") is not None and store.path(mine, "owner-b") is None
    assert store.path(mine, None) is not None  # the local view
    for crafted in ("inputs/../gallery.sqlite3", "/etc/passwd", "inputs/owner-a/x.png", ""):
        assert store.path(crafted, None) is None


def test_unreferenced_inputs_are_collected_after_the_grace(service, settings, tmp_path):
    service.edit([str(_png(tmp_path / "a.png"))], "make it blue").raise_if_empty()
    (rec,), _ = service.store.page()
    trash = Trash(service.store)
    assert trash.put(rec.id)
    kept = settings.data_dir / rec.inputs[0]["stored"]
    assert trash.inputs.collect(service.store, grace=0) == 0  # a trashed row still needs it
    assert trash.empty() == 1 and kept.is_file()  # within the grace (a run may be about to use it)
    os.utime(kept, (time.time() - 7200, time.time() - 7200))
    assert trash.inputs.collect(service.store) == 1 and not kept.exists()


# --- trash -----------------------------------------------------------------------------------------
def test_trash_put_restore_empty_and_expiry(service, settings):
    recs = service.generate("three cats", n=3).raise_if_empty().results
    trash = Trash(service.store)
    original = recs[0].file.read_bytes()
    assert trash.put(recs[0].id) and not trash.put(recs[0].id)  # twice: nothing more to trash
    assert not recs[0].file.exists() and trash.trashed_file(recs[0]).read_bytes() == original
    assert {r.id for r in service.store.page()[0]} == {recs[2].id, recs[1].id}
    back = trash.restore(recs[0].id)
    assert back is not None and back.status == "done" and back.file.read_bytes() == original
    assert trash.restore(recs[0].id) is None
    for r in recs[:2]:
        trash.put(r.id)
    service.store.records._update(recs[0].id, updated=time.time() - 31 * 86400)  # trashed 31 days ago
    assert trash.expire() == 1 and [r.id for r in trash.items()] == [recs[1].id]
    assert service.store.get(recs[0].id) is None and not trash.trashed_file(recs[0]).exists()
    assert trash.empty() == 1 and trash.items() == [] and service.store.records.count() == 1


def test_cli_trash_list_restore_empty(service, settings):
    recs = service.generate("a dog", n=2).raise_if_empty().results
    Trash(service.store).put(recs[0].id)
    data = settings.data_dir
    r = cli(["trash"], data_dir=data)
    assert r.returncode == 0 and r.stdout.split("\t")[0] == str(recs[0].id) and "1 in the trash" in r.stderr
    r = cli(["trash", "--json"], data_dir=data)
    row = json.loads(r.stdout)
    assert row["id"] == recs[0].id and row["days_left"] in (29, 30) and Path(row["file"]).is_file()
    r = cli(["--lang", "zh", "trash", "--restore", str(recs[1].id)], data_dir=data)
    assert r.returncode == 2 and "回收站中没有" in r.stderr
    r = cli(["trash", "--restore", str(recs[0].id)], data_dir=data)
    assert r.returncode == 0 and Path(r.stdout.strip()) == recs[0].file and recs[0].file.is_file()
    assert "Restored" in r.stderr
    Trash(service.store).put(recs[1].id)
    r = cli(["trash", "--empty"], data_dir=data)
    assert r.returncode == 0 and "Deleted 1" in r.stderr and service.store.get(recs[1].id) is None
    assert cli(["trash"], data_dir=data).stdout == ""


# --- PNG info --------------------------------------------------------------------------------------
def test_recipe_of_our_png_a1111_png_and_corrupt_files(service, tmp_path):
    rec = service.generate("一只橘猫", seed=42, size="1664*928").raise_if_empty().results[0]
    ours = read_png_recipe(rec.file)
    assert (ours.source, ours.task, ours.prompt, ours.seed, ours.params["size"]) == \
           ("aliyun-image", "t2i", "一只橘猫", 42, "1664*928")
    theirs = read_png_recipe(_a1111_png(tmp_path / "a1111.png"))
    assert (theirs.source, theirs.prompt, theirs.negative, theirs.seed, theirs.model) == \
           ("a1111", "a castle on a hill, sunset", "blurry, low quality", 12345, "")
    assert theirs.params["size"] == "1328*1328" and theirs.extra["Sampler"] == "Euler a"
    cut = tmp_path / "cut.png"
    cut.write_bytes(rec.file.read_bytes()[:300])
    for bad in (cut, _png(tmp_path / "plain.png"), tmp_path / "missing.png", b"GIF89a not a png"):
        with pytest.raises(ValidationError) as ei:
            read_png_recipe(bad)
        assert ei.value.zh and ei.value.en and ei.value.code == "Validation.Recipe"


def test_cli_recipe(service, tmp_path):
    rec = service.generate("a red fox", seed=7).raise_if_empty().results[0]
    r = cli(["recipe", str(rec.file)])
    assert r.returncode == 0 and "Prompt: a red fox" in r.stdout and "Seed: 7" in r.stdout
    r = cli(["recipe", str(rec.file), "--json"])
    assert json.loads(r.stdout)["seed"] == 7
    r = cli(["--lang", "zh", "recipe", str(_a1111_png(tmp_path / "a.png"))])
    assert r.returncode == 0 and "提示词: a castle on a hill, sunset" in r.stdout and "种子: 12345" in r.stdout
    bad = tmp_path / "bad.png"
    bad.write_bytes(rec.file.read_bytes()[:200])
    for lang, needle in (("en", "not a complete PNG"), ("zh", "不是完整的 PNG")):
        r = cli(["--lang", lang, "recipe", str(bad)])
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


# --- reuse through the handlers -----------------------------------------------------------------
def _targets() -> ReuseTargets:
    panels = {p: {k: f"{p}.{k}" for k in FIELDS[p]} for p in FIELDS}
    return ReuseTargets("tabs", "status", panels, {p: f"{p}.status" for p in (*FIELDS, "png")})


def _edit(h: Features, session: str, image: str | None, **kw) -> None:
    out = drain(h.runs.edit(**{**EDIT_DEFAULTS, "image": image, **kw}, request=req(session)))
    assert out.error is None, out[-1]


def test_reuse_of_an_edit_and_a_fusion_brings_their_images_back(make_ctx, tmp_path):
    h = features(make_ctx(), reuse=_targets())
    src = _png(tmp_path / "cat.png", "orange")
    _edit(h, "s1", str(src), instruction="make it blue", n=2)
    edited = h.ctx.store.page()[0][0]
    out = h.gallery.reuse(edited.id, req())
    kept = Path(out["edit.image"])
    assert out["tabs"].selected == "edit" and out["edit.prompt"] == "make it blue" and out["edit.n"] == 2
    assert kept.read_bytes() == (h.ctx.store.root / edited.inputs[0]["stored"]).read_bytes()
    assert out["edit.status"] == out["status"] and "1 input image" in out["edit.status"]
    fused = drain(h.runs.fuse(str(_png(tmp_path / "a.png", "red")), str(src), None, "图1 和 图2", **{
        k: v for k, v in EDIT_DEFAULTS.items() if k not in ("image", "image_url", "instruction")}, request=req()))
    assert fused.error is None
    rec = h.ctx.store.page(task="fuse")[0][0]
    out = h.gallery.reuse(rec.id, req(lang="zh-CN"))
    assert out["fuse.image1"] and out["fuse.image2"] == str(kept) and out["fuse.image3"] is None
    assert "2 张输入图片" in out["fuse.status"] and out["fuse.prompt"] == "图1 和 图2"


def test_hosted_reuse_restores_only_the_owners_inputs(make_ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # hosted: inputs come from Gradio's upload folder
    h = features(make_ctx(hosted=True), reuse=_targets())
    _edit(h, "alice", str(_png(tmp_path / "secret.png", "purple")), instruction="alice edits")
    (rec,), _ = h.ctx.store.page()
    assert rec.inputs[0]["stored"].startswith(f"inputs/{h.ctx.owner('alice')}/")
    assert h.gallery.reuse(rec.id, req("bob")) == {"status": "Select an image in the gallery first."}
    assert Path(h.gallery.reuse(rec.id, req("alice"))["edit.image"]).is_file()


def test_png_info_fills_the_panel_of_its_task(make_ctx, tmp_path, monkeypatch):
    h = features(make_ctx(), reuse=_targets())
    _edit(h, "s1", str(_png(tmp_path / "in.png")), instruction="add a hat", seed=99)
    (rec,), _ = h.ctx.store.page()
    out = h.png.png_info(str(rec.file), req())
    assert out["tabs"].selected == "edit" and out["edit.prompt"] == "add a hat" and out["edit.seed"] == 99
    assert out["png.status"].startswith("✓") and "1 of 1" in out["png.status"]
    assert Path(out["edit.image"]).read_bytes() == (h.ctx.store.root / rec.inputs[0]["stored"]).read_bytes()
    # A hosted visitor dropping the same PNG finds no kept copy of someone else's input.
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    dropped = tmp_path / "dropped.png"
    dropped.write_bytes(rec.file.read_bytes())
    out = features(make_ctx(hosted=True), reuse=_targets()).png.png_info(str(dropped), req("visitor"))
    assert "0 of 1" in out["png.status"] and out["edit.image"] is None and out["edit.prompt"] == "add a hat"
    out = h.png.png_info(str(_a1111_png(tmp_path / "a.png")), req(lang="zh-CN"))
    assert out["tabs"].selected == "t2i" and out["t2i.seed"] == 12345 and "A1111" in out["t2i.status"]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    zh = h.png.png_info(str(bad), req(lang="zh-CN"))["png.status"]
    en = h.png.png_info(str(bad), req())["png.status"]
    assert zh.startswith("✗") and "PNG" in zh and "不是完整" in zh and "not a complete PNG" in en


def test_hosted_png_info_reads_only_uploads(make_ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    h = features(make_ctx(hosted=True), reuse=_targets())
    out = h.png.png_info(str(_a1111_png(tmp_path / "outside.png")), req())
    assert list(out) == ["png.status"] and "dropped onto this page" in out["png.status"]
    (tmp_path / "uploads").mkdir()
    out = h.png.png_info(str(_a1111_png(tmp_path / "uploads" / "dropped.png")), req())
    assert out["t2i.prompt"] == "a castle on a hill, sunset"


def test_the_app_empties_old_trash_at_housekeeping(make_ctx, tmp_path):
    ctx = make_ctx()
    h = features(ctx, reuse=_targets())
    _edit(h, "s1", str(_png(tmp_path / "old.png")), instruction="old one")
    _edit(h, "s1", str(_png(tmp_path / "new.png", "white")), instruction="new one")
    old, new = sorted(ctx.store.page()[0], key=lambda r: r.id)
    assert ctx.gallery(None).delete(old.id) and ctx.gallery(None).delete(new.id)
    ctx.store.records._update(old.id, updated=time.time() - 31 * 86400)
    ctx.housekeeping()
    assert ctx.store.get(old.id) is None and ctx.store.get(new.id).status == "trashed"
