"""Actions on a run's results and the gallery's selection, called as Gradio calls them (no server),
on real results from the emulator: recent prompts, a run's zip, variations, matching zip, owners."""

from __future__ import annotations

import asyncio
import time
import zipfile
from types import SimpleNamespace

import pytest

from aliyun_image.storage import result_sets
from aliyun_image.enums import Relation
from aliyun_image.errors import ValidationError
from aliyun_image.jobs import Parent
from aliyun_image.storage.store import NewResult
from aliyun_image.ui.layout import features
from aliyun_image.ui.page_text import caption_id
from aliyun_image.recipes.variations import variation_request

from aliyun_image.ui import AppContext, AppOptions

from .conftest import TEST_KEY
from .test_ui_handlers import drain, generate, req


@pytest.fixture
def make_ctx(emu, clean_env):
    """App contexts on the test emulator, closed after the test."""
    made: list[AppContext] = []

    def make(**kw):
        made.append(AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env), **kw)))
        return made[-1]
    yield make
    for c in made:
        c.close()


def _ids(outs) -> list[int]:
    """Record ids of the last gallery a run handler yielded (from the #id captions)."""
    ids = [caption_id(c) for _, c in outs[-1][0]]
    assert None not in ids
    return [i for i in ids if i is not None]


def test_recent_prompts_are_distinct_newest_first_per_owner_and_task(service):
    store = service.store
    for prompt, owner in [("cat", "a"), ("dog", "a"), ("cat", "a"), ("bird", "b"), ("fox", "a")]:
        service.generate(prompt, owner=owner)
        time.sleep(0.01)  # distinct creation times (the order is by time, then id)
    service.edit(["https://example.com/x.png"], "make it blue", owner="a")
    assert result_sets.recent_prompts(store, "a", "t2i") == ["fox", "cat", "dog"]
    assert result_sets.recent_prompts(store, "b", "t2i") == ["bird"]
    assert result_sets.recent_prompts(store, "a", "edit") == ["make it blue"]
    assert result_sets.recent_prompts(store, None, "t2i", limit=2) == ["fox", "bird"]  # local: everyone's
    assert result_sets.recent_prompts(store, "nobody", "t2i") == []


def test_a_runs_records_are_its_batch_and_only_the_owners(service):
    first = service.generate("two cats", n=2, owner="a")
    service.generate("another run", owner="a")
    ids = [r.id for r in first.results]
    assert [r.id for r in result_sets.run_records(service.store, ids[1], "a")] == ids
    assert result_sets.run_records(service.store, ids[0], "b") == []
    assert result_sets.run_records(service.store, 10**9, "a") == []


def test_matching_is_capped_newest_first_with_the_total(service):
    for i in range(5):
        service.generate(f"lamp {i}", owner="a")
    service.generate("chair", owner="a")
    recs, total = result_sets.matching(service.store, "a", query="lamp", task=None, model=None, cap=3)
    assert total == 5 and [r.prompt for r in recs] == ["lamp 4", "lamp 3", "lamp 2"]
    assert result_sets.matching(service.store, "b", query="lamp", task=None, model=None)[1] == 0


def test_variation_request_keeps_the_recipe_with_a_random_seed(service, tmp_path):
    (rec,) = service.generate("a lighthouse", size="1664*928", seed=7, negative="blur", prompt_extend=False).results
    var = variation_request(rec)
    assert (var.task, var.prompt, var.images) == ("t2i", "a lighthouse", [])
    assert var.options == {"model": "qwen-image-plus", "n": 1, "seed": -1, "size": "1664*928", "negative": "blur",
                           "prompt_extend": False, "watermark": False,
                           "parents": [Parent(rec.id, Relation.VARIATION)]}  # its lineage: "variation of #1"
    (edited,) = service.edit(["https://example.com/in.png"], "make it blue").results
    assert variation_request(edited).images == ["https://example.com/in.png"]
    # An uploaded input is sent again from its kept copy (as bytes: hosted mode takes no paths) ...
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"\x89PNG fake")
    edited.inputs = [{"name": "in.png", "sha256": "x", "stored": "inputs/x.png"}]
    assert variation_request(edited, [kept]).images == [b"\x89PNG fake"]
    # ... and without a kept copy the recipe cannot be repeated, which the message says.
    edited.inputs = [{"name": "in.png", "sha256": "x"}]
    with pytest.raises(ValidationError, match="not kept"):
        variation_request(edited, [None])


def test_variations_rerun_the_recipe_with_new_seeds_through_the_run_path(make_ctx):
    h = features(make_ctx(hosted=True))
    first = _ids(generate(h, "a red fox", req("alice"), n=2, seed=100))
    outs = drain(h.actions.variations(first[1], req("alice"), "sk-test-0123456789abcdef"))
    new = _ids(outs)
    assert len(new) == 2 and not set(new) & set(first) and "Variations of #" in outs[-1][1]
    store = h.ctx.store
    assert {store.get(i).seed for i in new}.isdisjoint({100, 101})
    assert {store.get(i).prompt for i in new} == {"a red fox"}
    # Bob (another session), no session, garbage: refused, nothing run.
    for rid, who in [(first[0], "bob"), (first[0], None), ("x", "alice"), (-3, "alice"), (None, "alice")]:
        outs = drain(h.actions.variations(rid, req(who), "sk-test-0123456789abcdef"))
        assert outs.error is not None and "⚠️" in outs[-1][1]
    assert store.page(owner=h.ctx.owner("alice"))[1] == 4


def test_edit_this_use_as_and_run_zip_are_owner_checked(make_ctx):
    h = features(make_ctx(hosted=True))
    ids = _ids(generate(h, "a blue bird", req("alice"), n=2))
    image, tabs, note, edit_status = h.actions.edit_this(ids[1], req("alice"))
    assert image.endswith(".png") and tabs.selected == "edit" and f"#{ids[1]}" in edit_status
    slot, note = h.actions.use_as(ids[0], 3, req("alice"))
    assert slot.endswith(".png") and "图3" in note
    zpath, note = h.actions.download_run(ids[1], req("alice"))
    assert len(zipfile.ZipFile(zpath).namelist()) == 2 and "2 image" in note
    for who, rid in [("bob", ids[0]), ("alice", "garbage"), ("alice", 10**30)]:
        assert "not one of yours" in h.actions.edit_this(rid, req(who))[2]
        assert "not one of yours" in h.actions.use_as(rid, 1, req(who))[1]
        with pytest.raises(Exception, match="not one of yours"):
            h.actions.download_run(rid, req(who))
    assert "Run something first" in h.actions.edit_this(None, req("alice"))[2]


def test_recent_prompts_and_the_first_result_for_the_panel(make_ctx):
    h = features(make_ctx(hosted=True))
    generate(h, "一只橘猫", req("alice"))
    generate(h, "a lighthouse at dusk " * 5, req("alice"))
    ds = h.actions.recent_prompts("t2i", req("alice"))
    assert [s[0] for s in ds.raw_samples][1] == "一只橘猫" and ds.sample_labels[0].endswith("…")
    assert h.actions.recent_prompts("t2i", req("bob")).raw_samples == []
    assert h.actions.recent_pick(["一只橘猫"]) == "一只橘猫"
    assert h.actions.result_first([("/x.png", "#12 · cat · m · 1*1")]) == (12, "")
    assert h.actions.result_first(None) == (None, "")
    assert h.actions.result_picked(SimpleNamespace(value={"caption": "✓ #7 · dog"}), req(lang="zh-CN")) == (
        7, "上方按钮将作用于 #7。")


def test_select_on_thumbnails_all_none_and_matching_zip(make_ctx):
    h = features(make_ctx(hosted=True))
    generate(h, "tree one", req("alice"), n=3)
    _, _, ids, _, _, _ = h.gallery.gallery_page("", "", "", 1, req("alice"))
    items, picks, line = h.search.gallery_toggle(ids, True, [], SimpleNamespace(index=1), req("alice"))
    assert picks.value == [ids[1]] and items[1][1].startswith(f"✓ #{ids[1]}") and not items[0][1].startswith("✓")
    assert h.search.gallery_toggle(ids, False, [], SimpleNamespace(index=1), req("alice"))[1] is not None  # skip
    items, picks, line = h.search.gallery_pick_all(ids, req("alice"))
    assert picks.value == ids and all(c.startswith("✓") for _, c in items) and "3 selected" in line
    items, picks, line = h.search.gallery_pick_none(ids, req("alice"))
    assert picks.value == [] and "Nothing selected" in line
    # Bob's page of Alice's ids shows nothing and ticks nothing.
    items, picks, _ = h.search.gallery_pick_all(ids, req("bob"))
    assert items == [] and picks.value == []
    zpath, message = h.search.download_matching("tree", "", "", req("alice"))
    assert len(zipfile.ZipFile(zpath).namelist()) == 3 and "3 image" in message
    with pytest.raises(Exception, match="Nothing matches"):
        h.search.download_matching("tree", "", "", req("bob"))


def test_matching_zip_says_when_it_is_capped(make_ctx, monkeypatch):
    monkeypatch.setattr(result_sets, "MATCH_ZIP_CAP", 2)
    h = features(make_ctx())
    generate(h, "cup", req(), n=3)
    zpath, message = h.search.download_matching("cup", "t2i", "", req())
    assert len(zipfile.ZipFile(zpath).namelist()) == 2
    assert "3 results match: the zip holds the newest 2" in message
    assert "共有 3 张匹配" in h.search.download_matching("cup", "", "", req(lang="zh-CN"))[1]


def test_pending_results_are_not_in_recent_or_runs(service):
    store = service.store
    (rid,) = store.add_pending([NewResult(batch_id="b1", idx=0, task="t2i", model="m", prompt="never landed",
                                          negative="", params={}, seed=1, inputs=[], request_id="", usage={},
                                          actual_prompt=None, url="https://x", url_expires=None, owner="a")])
    assert result_sets.recent_prompts(store, "a", "t2i") == []
    assert result_sets.run_records(store, rid, "a") == []


def test_variations_of_an_edit_send_its_url_input_again(make_ctx, emu):
    h = features(make_ctx())
    outs = drain(h.runs.edit(None, "https://example.com/in.png", "make it blue", "plus", "", 1, "auto", "", 1024, 1024,
                        -1, "", True, False, request=req(), x_dashscope_api_key=TEST_KEY))
    (rid,) = _ids(outs)
    emu.clear()
    (new,) = _ids(drain(h.actions.variations(rid, req(), TEST_KEY)))
    rec = h.ctx.store.get(new)
    assert rec.task == "edit" and rec.prompt == "make it blue" and rec.inputs[0]["url"] == "https://example.com/in.png"
    (call,) = emu.calls("generation")
    assert call.json["input"]["messages"][0]["content"][0]["image"] == "https://example.com/in.png"


def test_variations_draw_on_the_hosted_quota(make_ctx, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    h = features(make_ctx(hosted=True, session_limit=2, total_limit=10))
    ids = _ids(generate(h, "two on the host", req("v"), n=2, api_key=""))
    outs = drain(h.actions.variations(ids[0], req("v"), ""))
    assert outs.error is not None and "per visitor per hour" in outs.error.message  # the status points to the cost line


def test_stop_stops_a_variations_run(clean_env):
    """Stop finds a variation like any run of its panel: no request after it, the paid ones kept.
    (Its own emulator: the slow replies must not linger into other tests' timing.)"""
    from aliyun_image.emulator import Emulator

    with Emulator() as own:
        ctx = AppContext(AppOptions(base_url=own.base_url, data_dir=str(clean_env)))
        try:
            h = features(ctx)
            ids = _ids(generate(h, "stop my variations", req(), n=6))
            own.clear()
            own.latency = 2.0  # the first requests are still out when Stop comes, even on a busy machine

            async def go():
                async def follow():
                    async for _ in h.actions.variations(ids[0], req(), TEST_KEY):
                        pass
                task = asyncio.create_task(follow())
                while not own.calls("generation"):
                    await asyncio.sleep(0.02)
                stopped = [out async for out in h.runs.stop_t2i(req())]
                await task
                return stopped
            stopped = asyncio.run(go())
            sent = len(own.calls("generation"))
        finally:
            ctx.close()
    assert sent < 6 and "Stopped" in stopped[-1][1] and f"{sent} of 6" in stopped[-1][1]


def test_order_is_newest_first_then_highest_id_for_equal_times(service):
    """Results recorded together share a creation time: the id breaks the tie, newest first."""
    from aliyun_image.enums import Status
    store = service.store
    item = dict(batch_id="b", task="t2i", model="m", prompt="same moment", negative="", params={}, seed=1,
                inputs=[], request_id="", usage={}, actual_prompt=None, url="https://x", url_expires=None)
    ids = store.add_pending([NewResult(idx=i, **item) for i in range(3)])  # one transaction: one time
    for rid in ids:
        store.mark(rid, Status.DONE)
    assert len({store.get(i).created for i in ids}) == 1
    assert [r.id for r in store.page(query="same moment")[0]] == sorted(ids, reverse=True)


def test_variations_of_an_uploaded_edit_send_the_kept_input_again(make_ctx, emu, tmp_path):
    from PIL import Image
    h = features(make_ctx())  # local: an upload may come from any folder (hosted: Gradio's only)
    img = tmp_path / "photo.png"
    Image.new("RGB", (640, 480), (10, 200, 30)).save(img)
    outs = drain(h.runs.edit(str(img), "", "make it blue", "plus", "", 1, "auto", "", 1024, 1024, -1, "", True, False,
                        request=req(), x_dashscope_api_key=TEST_KEY))
    (rid,) = _ids(outs)
    img.unlink()  # the upload is gone: only the kept copy remains
    emu.clear()
    (new,) = _ids(drain(h.actions.variations(rid, req(), TEST_KEY)))
    old_rec, new_rec = h.ctx.store.get(rid), h.ctx.store.get(new)
    assert new_rec.inputs[0]["sha256"] == old_rec.inputs[0]["sha256"]  # the same picture, sent again
    assert len(emu.calls("generation")) == 1
