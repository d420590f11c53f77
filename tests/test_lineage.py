"""Lineage (issue 18.5): every result records where it came from, through the real service and the emulator
over HTTP, the CLI (``#12`` inputs, ``history --json``'s ``parents``), and the owner rule at every step."""

from __future__ import annotations

import json
import shutil

import pytest

from aliyun_image.enums import Relation
from aliyun_image.errors import ValidationError
from aliyun_image.jobs import Parent
from aliyun_image.recipes import variation_request
from aliyun_image.storage import Gallery, NewResult

from .conftest import TEST_KEY, run_cli


def _one(batch):
    assert batch.results, batch.failures
    return batch.results[0]


def _parents(service, rid, owner=None):
    return [(link.id, str(link.relation), link.position) for link in Gallery(service.store, owner).parents(rid)]


def test_edit_fusion_variation_chain(service, tmp_path):
    """An edit of a stored result's file (as the page sends it: a copy of the file) is "edit of"; a fusion of
    two is "fusion of" in slot order; a variation is "variation of"; the chain walks both ways."""
    a = _one(service.generate("a red fox", seed=1))
    b = _one(service.generate("a snowy forest", seed=2))
    copy = tmp_path / "upload.png"  # Gradio hands the handler a copy in its temp folder: same bytes
    shutil.copy(a.file, copy)
    e = _one(service.edit([str(copy)], "make it night", seed=3))
    assert _parents(service, e.id) == [(a.id, "edit", 1)]
    f = _one(service.fuse([b.file.read_bytes(), str(e.file)], "the fox of 图2 in the forest of 图1", seed=4))
    assert _parents(service, f.id) == [(b.id, "fuse", 1), (e.id, "fuse", 2)]
    var = variation_request(f, Gallery(service.store, None).input_files(f), n=2)
    batch = service.fuse(var.images, var.prompt, **var.options)
    assert len(batch.results) == 2
    for v in batch.results:  # the variation of #f, and (its inputs are stored results) a fusion of them too
        assert _parents(service, v.id)[0] == (f.id, "variation", 0)
    gallery = Gallery(service.store, None)
    up = {(link.id, str(link.relation), link.via) for link in gallery.ancestors(batch.results[0].id)}
    assert (f.id, "variation", batch.results[0].id) in up
    assert (e.id, "fuse", f.id) in up and (a.id, "edit", e.id) in up
    down = {(link.id, str(link.relation), link.depth) for link in gallery.descendants(a.id)}
    assert (e.id, "edit", 1) in down and (f.id, "fuse", 2) in down
    assert {r.id for r in batch.results} <= {i for i, _, d in down if d == 3}


def test_a_fresh_upload_or_a_forged_recipe_is_no_parent(service, tmp_path):
    """An image that is not a stored result's file, or a copy of one altered by a byte, links to nothing."""
    a = _one(service.generate("a cat", seed=1))
    data = bytearray(a.file.read_bytes())
    idx = data.rfind(b"IEND")
    altered = bytes(data[: idx + 8]) + b"\0"  # trailing garbage after IEND: the recipe still says #a
    e = _one(service.edit([altered], "add a hat", seed=2))
    assert _parents(service, e.id) == []


def test_hosted_owner_never_links_to_another_owners_result(service):
    """Visitor B editing visitor A's downloaded file gets no link to it; A's walk never shows B's result."""
    a = _one(service.generate("a lighthouse", owner="visitor-a", seed=1))
    b = _one(service.edit([a.file.read_bytes()], "paint it red", owner="visitor-b", seed=2))
    assert _parents(service, b.id, "visitor-b") == []
    assert Gallery(service.store, "visitor-a").descendants(a.id) == []
    mine = _one(service.edit([a.file.read_bytes()], "paint it blue", owner="visitor-a", seed=3))
    assert _parents(service, mine.id, "visitor-a") == [(a.id, "edit", 1)]
    assert Gallery(service.store, "visitor-b").ancestors(mine.id) == []  # not theirs: nothing at all
    assert Gallery(service.store, "visitor-b").parents(mine.id) == []
    # A forged claim at the storage layer (a parent of someone else) is not written either.
    (forged,) = service.store.add_pending([NewResult(
        batch_id="x", idx=0, task="edit", model="qwen-image-edit", prompt="p", negative="", params={}, seed=1,
        inputs=[], request_id="", usage={}, actual_prompt=None, url="", url_expires=None, owner="visitor-b",
        parents=[Parent(a.id, Relation.EDIT, 1).as_dict()])])
    assert service.store.records.parents_of([forged], None)[forged] == []


def test_named_result_inputs(service):
    """``#12`` is stored result 12 as an input (recorded), refused clearly when missing, trashed or not the
    caller's; in hosted mode a call without an owner sees none."""
    a = _one(service.generate("a boat", seed=1))
    e = _one(service.edit([f"#{a.id}"], "a bigger boat", seed=2))
    assert _parents(service, e.id) == [(a.id, "edit", 1)]
    with pytest.raises(ValidationError) as missing:
        service.plan("edit", "x", ["#99999"])
    assert "#99999" in missing.value.text("en") and missing.value.code == "Validation.ResultRef"
    with pytest.raises(ValidationError):
        service.plan("edit", "x", [f"#{a.id}"], owner="someone-else")
    assert Gallery(service.store, None).delete(a.id)
    with pytest.raises(ValidationError) as trashed:
        service.plan("edit", "x", [f"#{a.id}"])
    assert "trash" in trashed.value.text("en")


def test_batch_item_relation_is_recorded(service):
    """A batch item (no parent result) keeps its batch and number: the batch helper's way in."""
    (rid,) = service.store.add_pending([NewResult(
        batch_id="b1", idx=3, task="t2i", model="qwen-image-plus", prompt="p", negative="", params={}, seed=1,
        inputs=[], request_id="", usage={}, actual_prompt=None, url="", url_expires=None,
        parents=[Parent(None, Relation.BATCH, 4, "B").as_dict()])])
    (link,) = service.store.records.parents_of([rid])[rid]
    assert link.as_json() == {"id": None, "relation": "batch", "position": 4, "batch": "B"}


def test_cli_edit_named_result_and_history_parents(emu, clean_env):
    """``edit '#N'`` and ``fuse '#N,#M'`` record their parents; ``history --json`` lists them (every other
    field kept); a missing id is refused with exit code 2 and nothing is sent."""
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    first = run_cli(["generate", "a kite", "--seed", "1"], env, clean_env)
    assert first.returncode == 0, first.stderr
    second = run_cli(["generate", "a beach", "--seed", "2"], env, clean_env)
    hist = [json.loads(line) for line in run_cli(["history", "--json"], env, clean_env).stdout.splitlines()]
    beach, kite = hist[0]["id"], hist[1]["id"]
    assert second.returncode == 0 and hist[0]["parents"] == [] and {"inputs", "cost", "file"} <= set(hist[0])
    edit = run_cli(["edit", f"#{kite}", "make it yellow", "--seed", "3"], env, clean_env)
    assert edit.returncode == 0, edit.stderr
    fuse = run_cli(["fuse", f"#{beach},#{kite}", "the kite of 图2 over the beach of 图1", "--seed", "4"], env,
                   clean_env)
    assert fuse.returncode == 0, fuse.stderr
    hist = [json.loads(line) for line in run_cli(["history", "--json"], env, clean_env).stdout.splitlines()]
    assert hist[0]["parents"] == [{"id": beach, "relation": "fuse", "position": 1},
                                  {"id": kite, "relation": "fuse", "position": 2}]
    assert hist[1]["parents"] == [{"id": kite, "relation": "edit", "position": 1}]
    sent = len(emu.requests)
    bad = run_cli(["edit", "#4242", "x", "--lang", "en"], env, clean_env)
    assert bad.returncode == 2 and "#4242" in bad.stderr and "history" in bad.stderr
    assert len(emu.requests) == sent


def _stored(store, parents, owner=None):
    (rid,) = store.add_pending([NewResult(
        batch_id="g", idx=0, task="fuse", model="qwen-image-edit", prompt="p", negative="", params={}, seed=1,
        inputs=[], request_id="", usage={}, actual_prompt=None, url="", url_expires=None, owner=owner,
        parents=[Parent(p, Relation.FUSE, k).as_dict() for k, p in enumerate(parents, 1)])])
    return rid


def test_walks_are_bounded_in_depth_and_rows(service):
    """A chain longer than MAX_DEPTH shows its nearest generations; a dense graph (every result a fusion of the
    three before it: paths without number) still answers with at most MAX_ROWS links, nearest first."""
    from aliyun_image.storage.lineage import MAX_DEPTH, MAX_ROWS

    store = service.store
    chain = [_stored(store, [])]
    for _ in range(MAX_DEPTH + 4):
        chain.append(_stored(store, [chain[-1]]))
    up = store.records.ancestors(chain[-1])
    assert [link.depth for link in up] == list(range(1, MAX_DEPTH + 1))
    assert [link.id for link in up] == chain[-2:-MAX_DEPTH - 2:-1]
    dense = [_stored(store, []) for _ in range(3)]
    for _ in range(40):
        dense.append(_stored(store, dense[-3:]))
    links = store.records.ancestors(dense[-1])
    assert 0 < len(links) <= MAX_ROWS and links[0].depth == 1
    assert [link.depth for link in links] == sorted(link.depth for link in links)
