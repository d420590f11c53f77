"""Batches and compare as a new user reads them (the findings of a new user's evening with batches):

1. ``batch --dry-run`` shows the seeds the real run sends (a seed copied from the plan makes that image
   again), for a prompt list and a template, through the CLI and the emulator's record of the wire;
2. after Stop, places never sent read "not sent" (a still placeholder, not the waiting one), failed ones
   "failed: <why>", through the Batch tab's handlers with the emulator holding its replies;
3. a batch that took under a second says so, never "Took 0:00.";
4. *Compare with…*: the first pick says what to do next on the gallery's status line, identical prompts get
   no "only in A / only in B" legend, the second pick brings the compare view into sight;
5. opening a stored batch fills the Batch tab's form with what it ran.

In process (the handlers the page's events call, ``request=None``: the local owner, English), over the
session's emulator; no app launch.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from aliyun_image.generation import BatchSpec, batch as batches

from .conftest import TEST_KEY, run_cli


def sent(emu) -> list:
    """Generation requests the emulator carried out (each may be billed)."""
    return [r for r in emu.calls("generation") + emu.calls("task_create") if not r.throttled]


def seeds_sent(emu) -> dict[str, list[int]]:
    """The seeds that went out on the wire, by prompt (in the order sent)."""
    out: dict[str, list[int]] = {}
    for call in sent(emu):
        prompt = call.json["input"]["messages"][0]["content"][-1]["text"]
        out.setdefault(prompt, []).append(call.json["parameters"]["seed"])
    return {k: sorted(v) for k, v in out.items()}


def dry_lines(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines() if line.strip()]


def seeds_planned(stdout: str) -> dict[str, list[str]]:
    """The dry run's seed column, by prompt (the last column)."""
    out: dict[str, list[str]] = {}
    for cols in dry_lines(stdout):
        assert len(cols) == 7, cols  # number, model, size, seed, images, values, prompt (batch --help)
        out.setdefault(cols[6], []).append(cols[3])
    return out


# --- 1. the dry run's seeds are the seeds sent --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["list", "template"])
def test_dry_run_seeds_are_the_seeds_the_real_run_sends(kind, emu, clean_env, tmp_path):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    prompts = tmp_path / "p.txt"
    if kind == "list":
        prompts.write_text("a lighthouse at dusk\n# skip\na red bicycle\n", encoding="utf-8")
        extra: list[str] = ["-n", "2"]
    else:
        prompts.write_text("a {animal} in a {place}, watercolor\n", encoding="utf-8")
        extra = ["--var", "animal=cat,fox", "--var", "place=forest,city"]
    dry = run_cli(["batch", str(prompts), *extra, "--dry-run"], env, clean_env)
    assert dry.returncode == 0 and not sent(emu), dry.stderr
    planned = seeds_planned(dry.stdout)
    assert all(s.isdigit() for v in planned.values() for s in v), planned  # seeds, not "random"
    again = run_cli(["batch", str(prompts), *extra, "--dry-run", "--json"], env, clean_env)
    units = json.loads(again.stdout)["units"]
    assert sorted(str(u["seed"]) for u in units) == sorted(s for v in planned.values() for s in v)  # stable
    real = run_cli(["batch", str(prompts), *extra], env, clean_env)
    assert real.returncode == 0, real.stderr
    assert seeds_sent(emu) == {p: sorted(int(s) for s in v) for p, v in planned.items()}
    # the batch is stored now: a dry run of the same input shows its stored seeds (what resume would send)
    after = run_cli(["batch", str(prompts), *extra, "--dry-run"], env, clean_env)
    assert seeds_planned(after.stdout) == planned


def test_dry_run_with_new_says_random_for_seeds_not_fixed_and_keeps_fixed_ones(emu, clean_env, tmp_path):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    prompts = tmp_path / "p.txt"
    prompts.write_text("a {animal}\n", encoding="utf-8")
    dry = run_cli(["batch", str(prompts), "--var", "animal=cat,fox", "--new", "--dry-run"], env, clean_env)
    assert [c[3] for c in dry_lines(dry.stdout)] == ["random", "random"], dry.stdout
    js = run_cli(["batch", str(prompts), "--var", "animal=cat,fox", "--new", "--dry-run", "--json"], env, clean_env)
    assert [u["seed"] for u in json.loads(js.stdout)["units"]] == [None, None]
    fixed = run_cli(["batch", str(prompts), "--var", "animal=cat,fox", "--new", "--seed", "42", "--dry-run"],
                    env, clean_env)
    assert [c[3] for c in dry_lines(fixed.stdout)] == ["42", "42"], fixed.stdout
    grid = run_cli(["grid", "a fox", "--x", "seed=5,6", "--new", "--dry-run"], env, clean_env)
    assert [c[3] for c in dry_lines(grid.stdout)] == ["5", "6"]
    assert not sent(emu)


def test_the_same_spec_draws_the_same_seeds_another_owner_or_new_does_not(service):
    spec = BatchSpec("a cat\na dog\na fox")
    mine = [u.options["seed"] for u in batches.preview(service, spec, owner="a").units]
    assert mine == [u.options["seed"] for u in batches.preview(service, spec, owner="a").units]
    assert mine != [u.options["seed"] for u in batches.preview(service, spec, owner="b").units]
    prepared = batches.prepare(service, spec, owner="a")
    stored = batches.find(service, prepared.batch_id, "a")
    assert stored is not None and [u.options["seed"] for u in stored[1]] == mine
    fresh = batches.prepare(service, spec, owner="a", new=True)
    other = batches.find(service, fresh.batch_id, "a")
    assert other is not None and [u.options["seed"] for u in other[1]] != mine  # --new: new random seeds


def test_batch_help_documents_the_dry_run_columns(clean_env):
    for lang, word in (("en", "tab separated"), ("zh_CN", "制表符"), ("ja_JP", "タブ区切り")):
        r = run_cli(["batch", "--help"], {"LANG": f"{lang}.UTF-8"}, clean_env)
        assert r.returncode == 0 and word in r.stdout, (lang, r.stdout[-400:])


# --- 2, 3. a stopped batch's places; short durations ---------------------------------------------------------
def _tab(emu, clean_env, monkeypatch):
    """The Batch tab's handlers of a local app over the test emulator, one request at a time (the account's
    limit: so Stop finds requests not sent yet)."""
    from aliyun_image.runtime import AppContext, AppOptions
    from aliyun_image.ui.batch_handlers import BatchHandlers

    monkeypatch.setenv("ALIYUN_IMAGE_TASK_LIMIT", "1")
    ctx = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env)))
    return ctx, BatchHandlers(ctx)


def page_args(prompts: str, variables: str = "", mode: str = "list", x: tuple[str, str] = ("seed", ""),
              y: tuple[str, str] = ("", ""), n: int = 1, seed: int = -1) -> list:
    """The Batch tab's inputs in the page's order (see tests/test_batch_ui.py)."""
    return [mode, prompts, variables, x[0], x[1], y[0], y[1], "plus", "", "1328*1328", n, seed, "", False, False,
            "direct", True]


def wait_for(check, what: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _drain(loop, gen) -> list:
    async def all_of() -> list:
        return [out async for out in gen]
    return loop.run_until_complete(all_of())


def captions(gallery) -> list[str]:
    return [c for _, c in gallery]


def test_after_stop_places_never_sent_say_not_sent_and_failed_ones_say_why(emu, clean_env, monkeypatch):
    ctx, h = _tab(emu, clean_env, monkeypatch)
    loop = asyncio.new_event_loop()
    emu.fail("generation", status=400, code="DataInspectionFailed",
             message="Input data may contain inappropriate content.", times=1)  # the first request fails
    emu.hold()
    try:
        gen = h.batch_run(*page_args("a {animal} in a {place}", "animal=cat,fox,owl\nplace=forest,city"),
                          request=None, x_dashscope_api_key=TEST_KEY)
        first = loop.run_until_complete(gen.__anext__())
        # while it runs: waiting, or already on its way (the first request may go out before this is drawn)
        assert captions(first[0])[0].startswith(("1 · waiting · ", "1 · sent, on its way · "))
        # the first request fails at once (a fault is not held); the second is held at the emulator
        wait_for(lambda: len(emu.calls("generation")) >= 2, "the second request, held")
        # the held one's place says it is on its way, the failed one says so at once, and the four not
        # sent yet are still waiting their turn
        states: list[str] = []
        deadline = time.monotonic() + 60
        while states.count("sent, on its way") != 1 or "failed" not in states:
            assert time.monotonic() < deadline, states
            shown_now = loop.run_until_complete(gen.__anext__())[0]
            if isinstance(shown_now, list):  # else unchanged (gr.skip()): only the status line moved on
                states = [c.split(" · ")[1] for c in captions(shown_now)]
        assert states.count("waiting") == 4 and states.count("failed") == 1, states
        assert "Stopping batch" in h.batch_stop(None)
        emu.release()
        outs = _drain(loop, gen)
    finally:
        emu.release()
    gallery, status = outs[-1][0], outs[-1][1]
    shown = captions(gallery)
    assert len(shown) == 6 and len(sent(emu)) == 2, (shown, len(sent(emu)))
    # the scheduler takes the batch's requests in any order: the first sent failed, the second is kept
    states = [c.split(" · ")[1] for c in shown]
    failed = [k for k, st in enumerate(states) if st.startswith("failed: The input or output was flagged")]
    kept = [k for k, st in enumerate(states) if st.startswith("#")]
    unsent = [k for k, st in enumerate(states) if st == "not sent"]
    assert len(failed) == len(kept) == 1 and len(unsent) == 4, shown
    assert not any("waiting" in c or "on its way" in c for c in shown)
    pictures = [p for p, _ in gallery]
    assert {pictures[k] for k in unsent} == {str(h.view.not_sent_png)} and pictures[failed[0]] == str(h.view.failed_png)
    assert "4 request(s) were not sent" in status and "Took " in status and "0:00." not in status
    # opened again later (not running): the same words
    batch_id = status.split("Batch ", 1)[1].split(":")[0]
    again = _drain(loop, h.batch_show(batch_id, None))[-1]
    reopened = captions(again[0])
    assert [reopened[k] for k in unsent + kept] == [shown[k] for k in unsent + kept]
    assert reopened[failed[0]] == shown[failed[0]]  # an earlier run's: what its stored code means
    loop.close()
    ctx.close()


def test_durations_under_a_second_are_said_so(clean_env):
    from aliyun_image.ui.batch_live import duration

    assert duration(0.43, "en") == "0.4 s" and duration(0.01, "en") == "under 0.1 s"
    assert duration(0.43, "en", running=True) == "under 1 s" and duration(0.2, "zh") == "0.2 秒"
    assert duration(0.5, "ja", running=True) == "1 秒未満"
    assert duration(14.2, "en") == "0:14" and duration(3725, "en") == "1:02:05"


# --- 4. compare ------------------------------------------------------------------------------------------------
def test_compare_with_says_what_next_on_the_gallery_status_and_legend_only_when_prompts_differ(emu, clean_env):
    from aliyun_image.runtime import AppContext, AppOptions
    from aliyun_image.ui.compare import SCROLL_WHEN_PAIRED, CompareView

    ctx = AppContext(AppOptions(base_url=emu.base_url, data_dir=str(clean_env)))
    try:
        svc = ctx.route(TEST_KEY).service
        same = [svc.generate("a lighthouse at dusk", seed=s, api_key=TEST_KEY).results[0].id for s in (1, 2)]
        other = svc.generate("a lighthouse at dawn", seed=1, api_key=TEST_KEY).results[0].id
        view = CompareView(ctx)
        first = view.pick(same[0], None, None, None)
        a, b, note, status = first[0], first[1], first[6], first[-1]
        assert (a, b) == (same[0], None) and status == note == (
            f"#{same[0]} is A. Select another result and press “Compare with…” again.")
        second = view.pick(same[1], a, b, None)
        note, status = second[6], second[-1]
        assert second[:2] == (same[0], same[1]) and status.startswith(f"Comparing #{same[0]} (A) with #{same[1]}")
        assert "1 of 10 differ" in note and "only in A" not in note  # one prompt: nothing marked, no legend
        words = view.pick(other, None, None, None), view.pick(same[0], other, None, None)
        assert "only in A" in words[1][6] and "<del" in words[1][5]  # two prompts: word-diffed, with the legend
        nothing = view.pick(None, None, None, None)
        assert nothing[-1] == nothing[6] and nothing[0] is not None  # no selection: said, nothing picked
        # the second pick brings the compare view into sight (browser-side: checked in the browser test)
        assert "#compare-b input" in SCROLL_WHEN_PAIRED and "scrollIntoView" in SCROLL_WHEN_PAIRED
    finally:
        ctx.close()


# --- 5. opening a batch fills the form ------------------------------------------------------------------------
def _skipped(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_opening_a_batch_fills_the_form_with_what_it_ran(emu, clean_env, monkeypatch):
    from aliyun_image.generation import Axis
    from aliyun_image.generation.grid import grid_spec

    ctx, h = _tab(emu, clean_env, monkeypatch)
    try:
        svc = ctx.route(TEST_KEY).service
        # as the page stores them (BatchView.options), and as the CLI does (options left None: defaults)
        listed = h.view.options("max", "", "1328*1328", 2, 7, "blurry", True, True, None, None)
        template = BatchSpec("a {animal} in a {place}, watercolor", (Axis("animal", ("cat", "fox")),
                                                                     Axis("place", ("forest", "city"))), listed)
        tid = batches.prepare(svc, template, new=True).batch_id
        form = h.batch_form(tid, None)
        assert len(form) == 17
        mode, prompts, variables = form[:3]
        assert (mode, prompts, variables) == ("list", template.text, "animal=cat,fox\nplace=forest,city")
        assert all(_skipped(v) for v in form[3:7])  # the grid's axes stay as they are
        quality, model, size, n, seed, negative, extend, watermark = form[7:15]
        assert (quality, model, size, n, seed, negative, extend, watermark) == (
            "max", "", "1328*1328", 2, 7, "blurry", True, True)
        grid = grid_spec("a lighthouse at dusk", [Axis("model", ("qwen-image-plus", "qwen-image-max")),
                                                  Axis("seed", ("1", "2"))], {"n": 1, "seed": None, "negative": None})
        gid = batches.prepare(svc, grid, new=True).batch_id
        form = h.batch_form(gid, None)
        assert form[0] == "grid" and form[1] == "a lighthouse at dusk" and _skipped(form[2])
        assert form[3:7] == ["model", "qwen-image-plus,qwen-image-max", "seed", "1,2"]
        assert form[7:9] == ["plus", ""] and form[10:12] == [1, -1] and _skipped(form[12])  # defaults left alone
        assert all(_skipped(v) for v in h.batch_form("no-such-batch", None))
        assert all(_skipped(v) for v in h.batch_form("", None))
    finally:
        ctx.close()


def test_another_visitors_batch_fills_nothing(emu, clean_env):
    """Hosted: a batch id that is not the caller's (sent by hand) reads as unknown: nothing of it is shown."""
    from aliyun_image.runtime import AppContext, AppOptions
    from aliyun_image.ui.batch_handlers import BatchHandlers

    ctx = AppContext(AppOptions(hosted=True, base_url=emu.base_url, data_dir=str(clean_env)))
    try:
        spec = BatchSpec("a secret {thing}", (batches.Axis("thing", ("plan", "map")),), {"n": 1})
        theirs = batches.prepare(ctx.route(TEST_KEY).service, spec, owner="visitor-a", new=True).batch_id
        h = BatchHandlers(ctx)
        assert all(_skipped(v) for v in h.batch_form(theirs, None))  # no cookie, no session: nobody's
        assert h.view.form(theirs, "visitor-a")[1] == "a secret {thing}"  # its owner's page gets it
    finally:
        ctx.close()
