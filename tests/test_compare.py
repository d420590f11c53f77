"""Compare (issue 18.4) and the gallery's lineage view (18.5) through a launched hosted app, by the raw queue API
as a hostile visitor would send them: another visitor's ids compare nothing, open nothing and show no chain;
the visitor's own do. Also the recipe diff itself (no app)."""

from __future__ import annotations

import random
import sqlite3
import uuid

import pytest
import requests

from aliyun_image.recipes import recipe_diff, word_diff
from aliyun_image.storage import Record
from aliyun_image.ui.page_text import caption_id

from .appserver import running
from .conftest import TEST_KEY
from .test_attack import _direct
from .test_hosted_safety import _fn_index, _gen_data, _join, _listen

KEYED = {"X-DashScope-API-Key": TEST_KEY}


def _rec(**kw) -> Record:
    base = dict(id=1, batch_id="b", idx=0, task="t2i", model="qwen-image-plus", prompt="a red fox in the snow",
                negative="", params={"size": "1328*1328", "prompt_extend": True, "watermark": False}, seed=7,
                inputs=[], request_id="", usage={}, actual_prompt=None, url="", url_expires=None, status="done",
                error="", path="", bytes=0, width=1328, height=1328, owner=None, created=0.0, updated=0.0)
    return Record(**{**base, **kw})


def test_recipe_diff_names_what_differs_and_word_diffs_prompts():
    a = _rec()
    b = _rec(id=2, model="qwen-image-max", seed=8, prompt="a grey fox in the snow",
             params={"size": "1328*1328", "prompt_extend": False, "watermark": False})
    differs = {f.name for f in recipe_diff(a, b) if not f.same}
    assert differs == {"model", "seed", "prompt", "prompt_extend"}
    assert word_diff(a.prompt, b.prompt) == [("same", "a "), ("a", "red"), ("b", "grey"), ("same", " fox in the snow")]
    # Chinese has no spaces: each character is a word, so one changed character is one change.
    assert word_diff("一只红色的狐狸", "一只灰色的狐狸") == [("same", "一只"), ("a", "红"), ("b", "灰"),
                                                           ("same", "色的狐狸")]
    assert "".join(x for k, x in word_diff("x y", "y z") if k != "b") == "x y"  # the pieces rebuild A
    # Long texts (a rewritten prompt, or a visitor's worst case) take the bounded path and still rebuild both.
    rng = random.Random(1)
    long_a, long_b = ("".join(rng.choice("一二三四五六") for _ in range(3000)) for _ in range(2))
    pieces = word_diff(long_a, long_b)
    assert "".join(x for k, x in pieces if k != "b") == long_a and "".join(x for k, x in pieces if k != "a") == long_b


@pytest.fixture(scope="module")
def hosted(tmp_path_factory, emulator_server):
    yield from running(tmp_path_factory, "compare-hosted", ["--hosted", "--base-url", emulator_server.base_url],
                       hosted=True)


def _make(app, session: str, prompt: str, seed: int) -> int:
    """One image made in ``session`` through the raw queue (/generate); its id."""
    data = _gen_data(prompt)
    data[6] = seed  # seed, in the API's order
    event = _join(app, session, _fn_index(app, "generate"), data, headers=KEYED)
    done = _listen(app, session, {event})[event]
    assert done["success"], done
    return caption_id(done["output"]["data"][0][0]["caption"])


def _select(app, session: str, rid: int) -> tuple[list, list]:
    """Click result ``rid``'s thumbnail as the page does: a page of the session's gallery (which fills its list
    of ids, a State), then the select events at its index. Returns the details' and the chain's outputs."""
    page = _direct(app, session, "gallery_page", ["", "", "", 1])["data"]
    captions = [caption_id(item["caption"]) for item in page[0]]
    index = captions.index(rid)
    return (_direct(app, session, "gallery_select", [None], index=index)["data"],
            _direct(app, session, "chain_select", [None], index=index)["data"])


def test_compare_and_lineage_of_another_visitor_show_nothing(hosted):
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    a1 = _make(hosted, alice, "alice's fox in the snow", 11)
    a2 = _make(hosted, alice, "alice's grey fox in the snow", 12)
    # Her own: both images, the slider's pair and the table (seed, prompt and rewritten prompt rows marked).
    imgs_a, imgs_b, pair, table, note = _direct(hosted, alice, "compare", [a1, a2])["data"]
    assert imgs_a["value"]["path"].endswith(".png") and len(pair) == 2 and "3 of 10 differ" in note
    assert table.count('data-differs="1"') == 3 and " grey</ins>" in table
    # Bob, with her ids (and garbage): the same words as a result that does not exist, and none of her files.
    for ids in ([a1, a2], [a1, 10**30], [a2, 10**6]):
        out = _direct(hosted, bob, "compare", ids)
        assert ".png" not in str(out) and "alice" not in str(out), out
    garbage = requests.post(f"{hosted.url}gradio_api/run/predict", timeout=30, json={
        "data": ["'; DROP TABLE results; --", a2], "fn_index": _fn_index(hosted, "compare"), "session_hash": bob,
        "trigger_id": None, "event_data": None})  # refused by Gradio before the handler: nothing of hers
    assert garbage.status_code != 200 and ".png" not in garbage.text and "alice" not in garbage.text
    assert f"no result #{a1}" in _direct(hosted, bob, "compare", [a1, a2])["data"][4]
    picked = _direct(hosted, bob, "pick", [a1, None, None])["data"]
    assert ".png" not in str(picked) and "alice" not in str(picked)
    # Lineage: a variation of a1 (her own) is in her chain, and in nobody else's.
    event = _join(hosted, alice, _fn_index(hosted, "variations"), [a1], headers=KEYED)
    done = _listen(hosted, alice, {event})[event]
    assert done["success"], done
    child = caption_id(done["output"]["data"][0][0]["caption"])
    # The chain follows the session's selected result and its buttons the session's own list of links (both kept
    # on the server: what a call sends for them is not believed), set only by handlers that checked the owner.
    details, (text, links) = _select(hosted, alice, a1)
    assert f"| #{a1} |" in details[1]  # its details (the id itself stays on the server)
    assert f"variations: #{child}" in text and [[child]] == links["samples"]
    opened = _direct(hosted, alice, "open_linked", [0, None])["data"]  # its first button (the page ids: state)
    assert f"| #{child} |" in opened[1] and opened[2]["path"].endswith(".png")
    assert f"variation of #{a1}" in opened[5] and opened[6]["samples"] == [[a1]]
    # Bob cannot select her results (his page lists his own only), so his chain and buttons stay empty.
    assert "alice" not in str(_direct(hosted, bob, "gallery_page", ["", "", "", 1])["data"][0])
    for index in (0, 1, 5):  # his page lists nothing of hers: any index names none of her results
        text, links = _direct(hosted, bob, "chain_select", [None], index=index)["data"]
        assert text == "" and not links.get("samples")
    for index in (0, 1, 999):  # his list of links is empty: Gradio refuses any index before the handler
        r = requests.post(f"{hosted.url}gradio_api/run/predict", timeout=30, json={
            "data": [index, None], "fn_index": _fn_index(hosted, "open_linked"), "session_hash": bob,
            "trigger_id": None, "event_data": None})
        assert r.status_code != 200 and ".png" not in r.text and "alice" not in r.text


def test_reuse_then_run_records_reuse_of(hosted):
    """"Reuse parameters" (the gallery's button) then a run that kept the prompt: "reuse of #N". Another
    visitor reusing her id fills nothing and records nothing."""
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    src = _make(hosted, alice, "alice's lighthouse at dusk", 21)
    assert f"| #{src} |" in _select(hosted, alice, src)[0][1]
    assert f"#{src}" in str(_direct(hosted, alice, "reuse", [src])["data"])
    again = _make(hosted, alice, "alice's lighthouse at dusk", 99)
    _direct(hosted, bob, "reuse", [src])
    theirs = _make(hosted, bob, "alice's lighthouse at dusk", 21)
    db = sqlite3.connect(hosted.data_dir / "gallery.sqlite3")
    rows = db.execute("SELECT child, parent, relation FROM lineage WHERE child IN (?, ?)", (again, theirs)).fetchall()
    assert rows == [(again, src, "reuse")]
