"""Batches (issue 18.1): expansion, plan and price, budget refusal before sending, Stop, resume after
kill -9 with nothing billed twice, hosted owners apart, and the CLI. Against the emulator over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from aliyun_image.enums import EventKind
from aliyun_image.errors import ValidationError
from aliyun_image.generation import batch as batches
from aliyun_image.generation.batch import Axis, BatchSpec, expand
from aliyun_image.generation.service import ImageService
from aliyun_image.storage import charges
from aliyun_image.storage.batches import DONE, MAYBE, QUEUED, BatchBook, UnitRow

from .conftest import TEST_KEY, run_cli
from .test_cli import ROOT

LIST = "a red {animal}\n# a comment\n\n  a blue {animal} at {time}  \n"


def sent(emu) -> int:
    """Generation requests and task creations the emulator received (each may be billed)."""
    return len(emu.calls("generation")) + len(emu.calls("task_create")) + len(emu.calls("image_task_create"))


# --- input ---------------------------------------------------------------------------------------------
def test_expansion_every_combination_in_a_stable_order():
    items = expand(LIST, [Axis.parse("animal=cat, dog"), Axis.parse("time=noon,night")])
    assert [i.prompt for i in items] == [
        "a red cat", "a red dog",  # the first line uses only {animal}: no repeats for {time}
        "a blue cat at noon", "a blue cat at night", "a blue dog at noon", "a blue dog at night"]
    assert items[3].labels == {"animal": "cat", "time": "night"} and items[3].options == {}
    plain = expand("one\n\n#skip\ntwo {{braces}} }} {{")
    assert [i.prompt for i in plain] == ["one", "two {braces} } {"]


def test_option_axes_set_the_request_and_work_with_variables():
    items = expand("a {thing}", [Axis.parse("thing=cat,dog"), Axis.parse("prompt_extend=on,off"),
                                 Axis.parse("model=qwen-image-plus,qwen-image-2.0")])
    assert len(items) == 8
    assert items[0].options == {"prompt_extend": True, "model": "qwen-image-plus"}
    assert items[1].options == {"prompt_extend": True, "model": "qwen-image-2.0"}


@pytest.mark.parametrize("text,axes,key", [
    ("a {animal} and a {colour}", ["animal=cat"], "batch.unknown_var"),
    ("a cat", ["animal=cat,dog"], "batch.unused_var"),
    ("", [], "batch.empty"),
    ("# only a comment\n\n", [], "batch.empty"),
    ("a {x}", ["x=1", "x=2"], "batch.repeated_var"),
    ("a {x}", ["x=1,1"], "batch.repeated_value"),
    ("a {x}", ["x="], "batch.bad_var"),
    ("a {x}", ["=1"], "batch.bad_var"),
    ("a cat", ["prompt_extend=maybe"], "batch.bad_switch"),
])
def test_bad_input_is_refused_with_a_clear_message(text, axes, key):
    with pytest.raises(ValidationError) as e:
        expand(text, [Axis.parse(a) for a in axes])
    assert e.value.msg.key == key and e.value.exit_code == 2
    for lang in ("en", "zh", "ja"):
        assert e.value.text(lang).strip()


def test_unknown_variable_message_names_it_and_says_what_to_do():
    with pytest.raises(ValidationError) as e:
        expand("a {animal} and a {colour}", [Axis.parse("animal=cat")])
    assert "{colour}" in e.value.en and "--var colour=" in e.value.en and "{{" in e.value.en


# --- plan and price ---------------------------------------------------------------------------------------
def test_plan_counts_requests_images_and_price_per_currency(service):
    spec = BatchSpec(LIST, (Axis.parse("animal=cat,dog"), Axis.parse("time=noon,night")),
                     {"model": "qwen-image-plus", "n": 2, "seed": 7})
    p = batches.plan(service, spec)
    assert len(p.items) == 6 and p.requests == 12 and p.images == 12  # Plus is fixed at n=1: fan-out
    (cost,) = p.costs()
    assert cost.currency == "CNY" and cost.total == Decimal("0.20") * 12
    assert [u.options["seed"] for u in p.units[:4]] == [7, 8, 7, 8]  # each item: its n seeds
    assert [u.idx for u in p.units] == list(range(12))
    mixed = batches.plan(service, BatchSpec("a cat", (Axis.parse("model=qwen-image-plus,qwen-image-max"),)))
    (both,) = mixed.costs()
    assert both.total == Decimal("0.20") + Decimal("0.50") and "qwen-image-max" in both.model


def test_plan_refuses_an_item_the_service_would_refuse(service):
    with pytest.raises(ValidationError) as e:
        batches.plan(service, BatchSpec("a cat", (Axis.parse("size=1664*928,12*12"),), {"model": "qwen-image-plus"}))
    assert e.value.msg.key == "batch.item_refused" and "2" in e.value.en


# --- run ---------------------------------------------------------------------------------------------------
def test_batch_runs_every_unit_once_and_results_carry_the_batch_id(service, emu):
    got: list = []
    prepared = batches.prepare(service, BatchSpec("a cat\na dog\na fox", (), {"n": 2}))
    out = batches.run(service, prepared.batch_id, on_event=got.append)
    assert out.complete and len(out.results) == 6 and sent(emu) == 6
    assert {r.batch_id for r in out.results} == {prepared.batch_id}
    assert sorted(r.idx for r in out.results) == list(range(6))
    landed = [e for e in got if e.kind == EventKind.RESULT]
    assert len(landed) == 6 and landed[-1].done == 6 and landed[-1].total == 6 and got[-1].kind == EventKind.DONE
    # The gallery's "this run" is the whole batch (its zip too).
    from aliyun_image.storage import Gallery
    assert len(Gallery(service.store, None).run_of(out.results[0].id)) == 6
    # The same input again is the same batch: nothing missing, nothing sent.
    again = batches.prepare(service, BatchSpec("a cat\na dog\na fox", (), {"n": 2}))
    assert again.existing and again.batch_id == prepared.batch_id
    assert batches.run(service, again.batch_id).complete and sent(emu) == 6


def test_budget_refuses_the_batch_before_anything_is_sent(settings, emu):
    svc = ImageService(settings.with_(daily_budget=Decimal("0.5")))
    prepared = batches.prepare(svc, BatchSpec("a {x}", (Axis.parse("x=1,2,3"),), {"model": "qwen-image-plus"}))
    with pytest.raises(ValidationError) as e:
        batches.run(svc, prepared.batch_id)
    assert e.value.code == "Budget.Daily" and "¥0.60" in e.value.en
    assert sent(emu) == 0
    assert all(u.state == QUEUED for u in batches.find(svc, prepared.batch_id)[1])


def test_hosted_quota_refuses_before_sending(service, emu):
    from aliyun_image.money import HourlyQuota

    quota = HourlyQuota(2, 100)
    prepared = batches.prepare(service, BatchSpec("a {x}", (Axis.parse("x=1,2,3"),)), owner="visitor-a")
    with pytest.raises(ValidationError) as e:
        batches.run(service, prepared.batch_id, owner="visitor-a", quota=quota, payer="visitor-a")
    assert e.value.code == "Quota.Exceeded" and sent(emu) == 0


def test_stop_clears_what_is_queued_and_keeps_what_was_sent(settings, emu):
    svc = ImageService(settings.with_(task_limit=1))
    emu.latency = 1.0
    flag = threading.Event()
    prepared = batches.prepare(svc, BatchSpec("\n".join(f"prompt {i}" for i in range(6))))

    def stop_after_first(ev):
        if ev.kind == EventKind.RESULT:
            flag.set()

    out = batches.run(svc, prepared.batch_id, on_event=stop_after_first, cancel=flag, inflight=3)
    done, queued = out.by_state(DONE), out.by_state(QUEUED)
    assert out.stopped and 1 <= len(done) < 6 and len(done) + len(queued) == 6
    assert sent(emu) == len(done), "what was sent was kept; nothing queued was sent"
    assert any(m.key == "batch.not_sent_stopped" for m in out.summary())
    emu.latency = 0.0
    rest = batches.run(svc, prepared.batch_id)  # running it again makes only the rest
    assert rest.complete and sent(emu) == 6


# --- resume after kill -9 --------------------------------------------------------------------------------------
KILL_SCRIPT = """
import sys
from aliyun_image.config import Settings
from aliyun_image.generation import ImageService, batch
from aliyun_image.generation.batch import BatchSpec
svc = ImageService(Settings.from_env(base_url=sys.argv[1], api_key=sys.argv[2], data_dir=sys.argv[3], task_limit=2,
                                     poll_schedule=(0.05, 0.1)))
spec = BatchSpec("\\n".join(f"killed {i}" for i in range(6)), (), {"use_async": sys.argv[4] == "async"})
batch.run(svc, batch.prepare(svc, spec).batch_id, inflight=2)
"""


def _kill_mid_batch(emu, data, mode: str, ready) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, emu.base_url, TEST_KEY, str(data), mode], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the batch never got going")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_resume_after_kill_9_never_resends_a_sync_request(settings, emu, clean_env):
    emu.latency = 30.0  # the emulator holds the first two requests until the process is killed
    _kill_mid_batch(emu, clean_env, "sync", lambda: emu.state.in_flight >= 2)
    assert sent(emu) == 2
    emu.latency = 0.0
    svc = ImageService(settings)
    spec = BatchSpec("\n".join(f"killed {i}" for i in range(6)), (), {"use_async": False})
    again = batches.prepare(svc, spec)
    assert again.existing
    out = batches.run(svc, again.batch_id)
    assert sent(emu) == 6, "the two requests in flight at the kill were not sent again"
    assert len(out.by_state(DONE)) == 4 and len(out.by_state(MAYBE)) == 2 and not out.complete
    assert all(u.error == "Batch.SentNoAnswer" for u in out.by_state(MAYBE))
    lines = [m.render("en") for m in out.summary()]
    assert sum("may have been billed" in line for line in lines) == 2
    with svc.store.records.charges() as book:  # counted as maybe billed, once
        maybe = [r for r in book.rows(0) if r["state"] == charges.MAYBE]
    assert len(maybe) == 2
    out2 = batches.run(svc, again.batch_id)  # and again: still never resent, nor counted twice
    assert sent(emu) == 6 and len(out2.by_state(MAYBE)) == 2
    with svc.store.records.charges() as book:
        assert len([r for r in book.rows(0) if r["state"] == charges.MAYBE]) == 2


def test_resume_after_kill_9_collects_async_tasks_by_id(settings, emu, clean_env):
    emu.state.task_delay = 4.0  # tasks run a while: the process dies while polling them
    try:
        def two_tasks_recorded() -> bool:
            if not (clean_env / "gallery.sqlite3").exists():
                return False
            book = BatchBook(clean_env)
            try:
                return sum(len(book.result_rows(b.id, 0, 6)) for b in book.recent(None)) >= 2
            finally:
                book.close()

        _kill_mid_batch(emu, clean_env, "async", two_tasks_recorded)
    finally:
        emu.state.task_delay = 0.2
    created = sent(emu)
    assert created >= 2
    svc = ImageService(settings)
    spec = BatchSpec("\n".join(f"killed {i}" for i in range(6)), (), {"use_async": True})
    batch_id = batches.prepare(svc, spec).batch_id
    out = batches.run(svc, batch_id)
    deadline = time.monotonic() + 30
    while not out.complete and time.monotonic() < deadline:  # tasks still running: collected by a later resume
        assert {u.state for u in out.units} <= {DONE, "sent"}
        assert any(m.key == "batch.unit_running" for m in out.summary())
        time.sleep(0.5)
        out = batches.run(svc, batch_id)
    assert sent(emu) == 6, "no task was created twice"
    assert out.complete and len(out.results) == 6
    assert len(emu.calls("task_get")) >= 2  # the killed process's tasks were polled by their ids


# --- owners ------------------------------------------------------------------------------------------------
def test_hosted_owners_never_see_each_others_batches(clean_env):
    from aliyun_image.storage import ResultStore

    ResultStore.open(clean_env).close()
    book = BatchBook(clean_env)
    unit = UnitRow("", 0, 0, "a cat", {"n": 1}, {}, 0, 1)
    book.create("b-a", "owner-a", "fp", "batch", {"text": "a cat"}, [unit])
    book.create("b-b", "owner-b", "fp", "batch", {"text": "a cat"}, [unit])
    assert book.get("b-a", "owner-a") is not None and book.get("b-a", "owner-b") is None
    assert book.find("fp", "owner-b").id == "b-b" and book.find("fp", None) is None
    assert [b.id for b in book.recent("owner-a")] == ["b-a"]
    assert {b.id for b in book.recent(None)} == {"b-a", "b-b"}  # local: one person sees all
    book.close()


def test_run_refuses_another_owners_batch(service, emu):
    prepared = batches.prepare(service, BatchSpec("a cat"), owner="owner-a")
    with pytest.raises(ValidationError) as e:
        batches.run(service, prepared.batch_id, owner="owner-b")
    assert e.value.code == "Batch.NotFound" and sent(emu) == 0


# --- expiry (issue 18 leftovers, 2) ---------------------------------------------------------------------------
def test_batches_untouched_for_the_retention_are_deleted_with_their_units_unless_running(clean_env):
    from aliyun_image.storage import ResultStore, expire_batches

    ResultStore.open(clean_env).close()
    assert expire_batches(clean_env, 3600) == 0  # no batch tables yet: none are made for this
    book = BatchBook(clean_env)
    unit = UnitRow("", 0, 0, "a cat", {"n": 1}, {}, 0, 1)
    for bid in ("b-old", "b-running", "b-touched"):
        book.create(bid, "call-" + bid, "fp-" + bid, "batch", {"text": "a cat"}, [unit])
    assert book.claim("b-running")  # this live process runs it
    week, now = 7 * 86400.0, time.time()
    later = now + week + 60
    book.set_state("b-touched", 0, DONE)  # a unit that changed "later" keeps its batch
    with book._tx() as db:
        db.execute("UPDATE batch_units SET updated=? WHERE batch_id='b-touched'", (later - 10,))
    assert expire_batches(clean_env, week, now=now + 60) == 0  # nothing is a week old yet
    assert expire_batches(clean_env, week, now=later) == 1
    assert book.get("b-old") is None and not book.units("b-old")
    assert book.get("b-running") is not None and book.get("b-touched") is not None
    book.release("b-running")
    assert expire_batches(clean_env, week, now=later) == 1 and book.get("b-running") is None
    book.close()


def test_the_hosted_housekeeping_forgets_a_session_less_callers_old_batch_and_keeps_its_results(
        emu, clean_env, monkeypatch):
    """A hosted API caller without cookie or session gets an owner nobody can name again: its batch rows
    go after the visitor retention (ALIYUN_IMAGE_VISITOR_DAYS), in the housekeeping round; locally they stay."""
    import sqlite3

    from aliyun_image.runtime import AppContext, AppOptions, Visitor

    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    monkeypatch.setenv("ALIYUN_IMAGE_VISITOR_DAYS", "2")
    for hosted, kept in ((False, 1), (True, 0)):
        ctx = AppContext(AppOptions(hosted=hosted, base_url=emu.base_url, data_dir=str(clean_env)))
        try:
            owner = ctx.owner_of(Visitor())  # hosted: "call-..." (a fresh owner); locally None
            out = batches.submit(ctx.live_service, BatchSpec(f"forgotten {hosted}"), owner=owner, api_key=TEST_KEY)
            assert out.complete
            with sqlite3.connect(clean_env / "gallery.sqlite3") as db:  # untouched for three days
                three_days_ago = time.time() - 3 * 86400
                db.execute("UPDATE batches SET updated=? WHERE id=?", (three_days_ago, out.batch_id))
                db.execute("UPDATE batch_units SET updated=? WHERE batch_id=?", (three_days_ago, out.batch_id))
            ctx.housekeeping()
            assert (batches.find(ctx.live_service, out.batch_id) is not None) == bool(kept)
            assert ctx.store.get(out.results[0].id) is not None  # the result stays (it keeps its batch_id)
        finally:
            ctx.close()


# --- CLI --------------------------------------------------------------------------------------------------------
def test_cli_batch_dry_run_then_run_then_resume(emu, clean_env, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("一只{animal}\n# skip\n\na {animal} at night\n", encoding="utf-8")
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    dry = run_cli(["batch", str(prompts), "--var", "animal=cat,dog", "--dry-run", "--daily-budget", "0.5"],
                  env, clean_env)
    assert dry.returncode == 2 and "¥0.80" in dry.stderr and sent(emu) == 0
    dry = run_cli(["batch", str(prompts), "--var", "animal=cat,dog", "--dry-run", "--json"], env, clean_env)
    assert dry.returncode == 0 and json.loads(dry.stdout)["requests"] == 4 and sent(emu) == 0
    r = run_cli(["batch", str(prompts), "--var", "animal=cat,dog", "--zip", str(tmp_path / "b.zip")], env, clean_env)
    assert r.returncode == 0, r.stderr
    paths = r.stdout.split()
    assert len(paths) == 4 and all(os.path.isfile(p) for p in paths) and (tmp_path / "b.zip").is_file()
    assert "4 of 4 images stored" in r.stderr and sent(emu) == 4
    batch_id = r.stderr.split("Batch ", 2)[2].split(":")[0]
    again = run_cli(["resume", batch_id, "--json"], env, clean_env)
    assert again.returncode == 0 and json.loads(again.stdout)["done"] == 4 and sent(emu) == 4
    # every result says which batch and which item of it it is (history's batch_id, its lineage)
    hist = [json.loads(line) for line in run_cli(["history", "--json"], env, clean_env).stdout.splitlines()]
    assert {h["batch_id"] for h in hist} == {batch_id}
    items = sorted(p["position"] for h in hist for p in h["parents"] if p["relation"] == "batch")
    assert items == [1, 2, 3, 4] and all(p["batch"] == batch_id for h in hist for p in h["parents"])
    bad = run_cli(["batch", str(prompts)], env, clean_env)
    assert bad.returncode == 2 and "--var animal=" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_batch_exit_code_when_an_item_fails(emu, clean_env):
    emu.fail("generation", status=400, code="DataInspectionFailed",
             message="Input data may contain inappropriate content.", times=1)
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    prompts = clean_env.parent / "p.txt"
    prompts.write_text("one\ntwo\n", encoding="utf-8")
    r = run_cli(["batch", str(prompts), "--task-limit", "1", "--inflight", "1"], env, clean_env)
    assert r.returncode == 1 and len(r.stdout.split()) == 1
    assert "failed, not billed" in r.stderr


def test_two_threads_cannot_run_one_batch_at_once(service, emu):
    emu.latency = 0.5
    prepared = batches.prepare(service, BatchSpec("a cat\na dog"))
    first = threading.Thread(target=batches.run, args=(service, prepared.batch_id))
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not sent(emu) and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(ValidationError) as e:
            batches.run(service, prepared.batch_id)
        assert e.value.code == "Batch.Busy"
    finally:
        first.join(20)
    assert sent(emu) == 2
    assert batches.run(service, prepared.batch_id).complete and sent(emu) == 2  # free again once it ended


def test_plain_resume_keeps_its_behaviour_and_lists_unfinished_batches(service, emu, clean_env):
    prepared = batches.prepare(service, BatchSpec("a cat\na dog"))  # stored, never run: two requests missing
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    r = run_cli(["resume"], env, clean_env)
    assert r.returncode == 0 and "Nothing to resume" in r.stderr
    assert f"Unfinished batch {prepared.batch_id}" in r.stderr and f"resume {prepared.batch_id}" in r.stderr
    assert sent(emu) == 0, "a plain resume never sends a batch's requests by itself"
    r = run_cli(["resume", prepared.batch_id], env, clean_env)
    assert r.returncode == 0 and len(r.stdout.split()) == 2 and sent(emu) == 2
    missing = run_cli(["resume", "nope"], env, clean_env)
    assert missing.returncode == 2 and "No batch nope" in missing.stderr
