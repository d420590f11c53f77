"""Price before the run, the spend ledger and the budget cap, against the emulator over real HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from decimal import Decimal

import pytest
from PIL import Image

from aliyun_image.catalog import spec as catalog
from aliyun_image.storage import charges
from aliyun_image.money import ledger
from aliyun_image.money.estimate import estimate, estimate_for
from aliyun_image.errors import ValidationError
from aliyun_image.generation.service import ImageService
from aliyun_image.storage.store import SCHEMA_VERSION, ResultStore

from .conftest import TEST_KEY
from .conftest import run_cli as run  # in-process: the subprocess is not the point here
from .test_cli import ROOT

# The results table as version 1 of the store created it (before prices were recorded).
V1_SCHEMA = """
CREATE TABLE results (
    id INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL, idx INTEGER NOT NULL DEFAULT 0,
    task TEXT NOT NULL, model TEXT NOT NULL, prompt TEXT NOT NULL, negative TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}', seed INTEGER, inputs TEXT NOT NULL DEFAULT '[]',
    request_id TEXT NOT NULL DEFAULT '', usage TEXT NOT NULL DEFAULT '{}', actual_prompt TEXT,
    url TEXT NOT NULL DEFAULT '', url_expires REAL, status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '', bytes INTEGER NOT NULL DEFAULT 0, width INTEGER, height INTEGER,
    owner TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX results_status_created ON results(status, created);
CREATE INDEX results_owner_created ON results(owner, created);
PRAGMA user_version=1;
"""


def spec(name):
    return catalog.get_model(name)


# --- the estimate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model,region,n,extend,total", [
    ("qwen-image-max", "beijing", 2, True, "1.00"),
    ("qwen-image-max", "singapore", 2, True, "1.100886"),
    ("qwen-image-plus", "beijing", 6, True, "1.20"),
    ("qwen-image-edit", "singapore", 3, False, "0.990798"),
    ("qwen-image-2.0", "singapore", 1, True, "0.256873"),
    ("z-image-turbo", "beijing", 3, False, "0.30"),
    ("z-image-turbo", "beijing", 3, True, "0.60"),  # rewriting doubles its price
    ("z-image-turbo", "singapore", 2, True, "0.440354"),
])
def test_estimate_per_model_and_region_is_exact(model, region, n, extend, total):
    est = estimate_for(spec(model), n, extend, region)
    assert est.total == Decimal(total) and est.currency == "CNY"
    assert Decimal(est.as_dict()["total"]) == Decimal(total)


def test_every_catalogued_price_is_n_times_the_data():
    for m in catalog.models().values():
        for region in ("beijing", "singapore", "us"):
            for extend in (False, True):
                est = estimate_for(m, 4, extend, region)  # no size: a tiered model's dearer class ("up to")
                tier = catalog.TIER_2K if m.tiered_in(region) else catalog.TIER_1K
                want = m.price_in(region, extend if m.accepts("prompt_extend") else m.prompt_extend_default, tier)
                assert est.total == (None if want is None else Decimal(str(want)) * 4), (m.name, region)
                assert est.currency == m.currency_in(region) and est.up_to == m.tiered_in(region)


def test_unknown_price_is_said_never_guessed():
    est = estimate_for(spec("qwen-image-2.1-pro"), 2, True, "beijing")  # priced in Singapore only
    assert est.unit is None and est.total is None
    assert est.text("zh") == "价格未知 · 2 × qwen-image-2.1-pro · 北京"
    assert est.text("en") == "price unknown · 2 × qwen-image-2.1-pro · Beijing"
    assert est.text("ja") == "価格不明 · 2 × qwen-image-2.1-pro · 北京"
    assert estimate_for(spec("qwen-image-max"), 1, True, "us").total is None  # not priced in the US


def test_estimate_text_in_every_language(service):
    job = service.plan("t2i", "a cat", model="qwen-image-max", n=2)
    est = estimate(job, "beijing")
    assert est.text("zh") == "约 ¥1.00 · 2 × qwen-image-max · 北京"
    assert est.text("en") == "about ¥1.00 · 2 × qwen-image-max · Beijing"
    assert est.message().render("ja") == "約 ¥1.00 · 2 × qwen-image-max · 北京"
    assert est.requests == 2  # Max makes one image per request: two requests
    sg = estimate(job, "singapore")
    assert sg.text("en") == "about ¥1.10 · 2 × qwen-image-max · Singapore"


# --- --dry-run -------------------------------------------------------------------------------------
def test_dry_run_prints_the_plan_and_sends_nothing(emu, clean_env):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    for args in (["generate", "a cat", "-n", "2", "--max"],
                 ["edit", "https://example.com/a.png", "make it blue", "--dry-run"],
                 ["fuse", "https://example.com/a.png,https://example.com/b.png", "put 图1 into 图2"]):
        r = run([*args, "--dry-run"] if "--dry-run" not in args else args, env, clean_env)
        assert r.returncode == 0, r.stderr
        assert "dry run: nothing was sent" in r.stderr and "Traceback" not in r.stderr
        assert "estimated cost: about ¥" in r.stdout and "requests:" in r.stdout and "region:" in r.stdout
    r = run(["generate", "a cat", "-n", "2", "--max", "--dry-run", "--lang", "zh"], env, clean_env)
    assert "预计花费: 约 ¥1.00 · 2 × qwen-image-max · 北京" in r.stdout and "请求数: 2" in r.stdout
    assert emu.state.requests == type(emu.state.requests)()  # the emulator saw no request at all
    assert not (clean_env / "images").exists() or not any((clean_env / "images").iterdir())


def test_dry_run_needs_no_key_and_says_when_the_budget_would_refuse(emu, clean_env):
    r = run(["generate", "a cat", "-n", "3", "--dry-run", "--daily-budget", "0.5"],
            {"DASHSCOPE_HTTP_BASE_URL": emu.base_url}, clean_env)
    assert r.returncode == 2 and "Budget.Daily" in r.stderr and "about ¥0.60" in r.stderr
    assert not list(emu.state.requests)


# --- the ledger ------------------------------------------------------------------------------------
def test_results_record_their_price_and_the_sums_match_them(service, emu):
    batch = service.generate("a cat", model="qwen-image-plus", n=3)
    batch2 = service.generate("a dog", model="qwen-image-max", n=1)
    recs = [*batch.results, *batch2.results]
    assert [(r.region, r.price, r.currency) for r in recs] == [("beijing", "0.2", "CNY")] * 3 + [
        ("beijing", "0.5", "CNY")]
    spent = ledger.spend(service.store, ledger.day_start())
    assert spent.billed.amount() == sum(Decimal(r.price) for r in recs) == Decimal("1.1")
    assert spent.billed.images == 4 and spent.maybe.images == 0
    by_model = ledger.spend_by(service.store, "model")
    assert by_model["qwen-image-plus"].billed.amount() == Decimal("0.6")
    assert by_model["qwen-image-max"].billed.amount() == Decimal("0.5")
    assert list(ledger.spend_by(service.store, "day")) == [time.strftime("%Y-%m-%d")]
    # the PNG's recipe carries model, region and price
    with Image.open(recs[-1].file) as im:
        recipe = json.loads(im.text["aliyun-image"])
        assert "Region: beijing" in im.text["parameters"] and "Price: 0.5 CNY/image" in im.text["parameters"]
    assert (recipe["model"], recipe["region"], recipe["unit_price"], recipe["currency"]) == (
        "qwen-image-max", "beijing", "0.5", "CNY")
    # deleting a result does not make its money unspent
    service.store.delete(recs[0].id)
    assert ledger.spend(service.store).billed.amount() == Decimal("1.1")


def test_failed_calls_cost_nothing_and_unanswered_ones_are_maybe_billed(settings, emu):
    svc = ImageService(settings.with_(read_timeout=0.4))
    emu.fail(status=400, code="DataInspectionFailed", message="Input data may contain inappropriate content.")
    refused = svc.generate("a cat", model="qwen-image-max", n=1)
    assert not refused.results and ledger.spend(svc.store).billed.images == 0
    assert ledger.spend(svc.store).maybe.images == 0
    emu.fault("hang", seconds=1.0, times=1)
    batch = svc.generate("a cat", model="qwen-image-max", n=2)  # one answer, one read timeout
    assert len(batch.results) == 1 and len(batch.failures) == 1
    spent = ledger.spend(svc.store)
    assert (spent.billed.images, spent.billed.amount()) == (1, Decimal("0.5"))
    assert (spent.maybe.images, spent.maybe.amount()) == (1, Decimal("0.5"))
    assert spent.total() == Decimal("1.0")
    assert "maybe billed ¥0.50 (1 image)" in spent.text("en") and "可能计费 ¥0.50（1 张）" in spent.text("zh")
    svc.store.close()


def v1_data_dir(data: Path, rows: list[tuple[str, str, str, str, str, str]]) -> Path:
    """A data folder as version 1 of the store left it, with ``(batch_id, task, model, prompt, url, status)``
    result rows."""
    data.mkdir()
    db = sqlite3.connect(data / "gallery.sqlite3")
    db.executescript(V1_SCHEMA)
    now = time.time()
    db.executemany("INSERT INTO results (batch_id, task, model, prompt, url, status, created, updated) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(*row, now, now) for row in rows])
    db.commit()
    db.close()
    return data


def test_a_version_1_store_opens_migrates_and_keeps_working(tmp_path, settings, emu):
    data = v1_data_dir(tmp_path / "old", [
        ("b1", "t2i", "qwen-image-plus", "old cat", "https://x.aliyuncs.com/1.png", "expired"),
        ("b2", "t2i", "qwen-image", "failed task", "", "failed")])
    store = ResultStore.open(data, fsync=False)
    assert store.records.schema_version() == SCHEMA_VERSION == 4
    old = store.get(1)
    assert old is not None and old.prompt == "old cat" and old.price is None and old.region is None
    spent = ledger.spend(store)  # the old image was billed, at a price nobody recorded: counted, not priced
    assert (spent.billed.images, spent.billed.unknown, spent.billed.amount()) == (1, 1, Decimal(0))
    assert "1 of unknown price" in spent.text("en")
    svc = ImageService(settings.with_(data_dir=data), store=store)
    batch = svc.generate("a new cat", model="qwen-image-plus")
    assert batch.results[0].price == "0.2" and store.page()[1] == 1
    assert ledger.spend(store).billed.amount() == Decimal("0.2")
    store.close()
    again = ResultStore.open(data, fsync=False)  # opening a v3 store again changes nothing
    assert ledger.spend(again).billed.images == 2
    again.close()


def test_history_json_and_spend_command(emu, clean_env):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    r = run(["generate", "a cat", "-n", "2", "--model", "qwen-image-plus"], env, clean_env)
    assert r.returncode == 0 and "This run cost: ¥0.40 (2 × ¥0.20)" in r.stderr.splitlines()[-1]
    h = run(["history", "--json"], env, clean_env)
    costs = [json.loads(line)["cost"] for line in h.stdout.splitlines()]
    assert costs == [{"model": "qwen-image-plus", "region": "beijing", "unit_price": "0.2", "currency": "CNY",
                      "billed": True}] * 2
    s = json.loads(run(["spend", "--json", "--by", "model", "--daily-budget", "1"], env, clean_env).stdout)
    assert s["today"]["billed"] == {"images": 2, "unknown_price": 0, "amounts": {"CNY": "0.4"}}
    assert s["by_model"]["qwen-image-plus"]["billed"]["amounts"] == {"CNY": "0.4"} and s["budgets"]["daily"] == "1"
    t = run(["spend", "--by", "day", "--daily-budget", "1", "--lang", "zh"], env, clean_env)
    assert "今天: ¥0.40（2 张）" in t.stdout and "每日预算 ¥1.00，剩余 ¥0.60" in t.stdout


# --- the budget cap ----------------------------------------------------------------------------------
def test_budget_refuses_before_any_request(settings, emu):
    svc = ImageService(settings.with_(daily_budget=Decimal("0.5")))
    svc.generate("a cat", model="qwen-image-plus")  # ¥0.20 spent
    emu.clear()
    with pytest.raises(ValidationError) as e:
        svc.generate("two more", model="qwen-image-plus", n=2)  # 0.20 + 0.40 > 0.50
    assert e.value.code == "Budget.Daily" and not list(emu.state.requests)
    assert "¥0.20 (1 image)" in e.value.en and "about ¥0.40" in e.value.en and "--daily-budget" in e.value.en
    assert "已花费 ¥0.20（1 张）" in e.value.zh and "未发送任何请求" in e.value.zh
    ja = e.value.text("ja")  # one language per reader: no Chinese or English sentence in the Japanese one
    assert "1 日の予算（¥0.50）" in ja and "今日の支出 ¥0.20（1 枚）" in ja and "明日から再試行" in ja
    assert "已花费" not in ja and "Nothing was sent" not in ja and "--daily-budget" in ja
    assert len(svc.generate("one more", model="qwen-image-plus").results) == 1  # 0.40 fits
    monthly = ImageService(settings.with_(monthly_budget=Decimal("0.5")), store=svc.store)
    with pytest.raises(ValidationError) as e:
        monthly.generate("over the month", model="qwen-image-plus")
    assert e.value.code == "Budget.Monthly" and "this month" in e.value.en
    svc.store.close()


def test_maybe_billed_counts_against_the_budget(settings, emu):
    svc = ImageService(settings.with_(read_timeout=0.4, daily_budget=Decimal("1.0")))
    emu.fault("hang", seconds=1.0, times=1)
    svc.generate("a cat", model="qwen-image-max")  # no answer: maybe billed ¥0.50
    with pytest.raises(ValidationError) as e:
        svc.generate("a cat", model="qwen-image-max", n=2)
    assert e.value.code == "Budget.Daily" and "maybe billed ¥0.50" in e.value.en
    svc.store.close()


def test_unknown_price_under_a_budget_is_refused_unless_allowed(settings, emu):
    svc = ImageService(settings.with_(daily_budget=Decimal("10")))
    with pytest.raises(ValidationError) as e:
        svc.generate("a cat", model="qwen-image-2.1-pro")
    assert e.value.code == "Budget.UnknownPrice" and "--allow-unpriced" in e.value.en and not list(emu.state.requests)
    allowed = ImageService(settings.with_(daily_budget=Decimal("10"), allow_unpriced=True), store=svc.store)
    assert len(allowed.generate("a cat", model="qwen-image-2.1-pro").results) == 1
    assert ledger.spend(svc.store).billed.unknown == 1
    assert len(ImageService(settings, store=svc.store).generate("no budget", model="qwen-image-2.1-pro").results) == 1
    svc.store.close()


def test_concurrent_runs_cannot_overshoot_the_budget_together(settings, emu):
    emu.latency = 0.3  # runs overlap; the outcome does not depend on how much
    svc = ImageService(settings.with_(daily_budget=Decimal("1.0")))
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def one() -> None:
        start.wait()
        try:
            outcomes.append(f"ok {len(svc.generate('a cat', model='qwen-image-plus', n=2).results)}")
        except ValidationError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # ¥0.40 each against ¥1.00: two fit, the others are refused whatever the timing
    assert sorted(outcomes) == ["Budget.Daily", "Budget.Daily", "ok 2", "ok 2"]
    assert ledger.spend(svc.store).total() == Decimal("0.8") <= Decimal("1.0")
    assert len(emu.calls("generation")) == 4  # two runs of two one-image requests; none from the refused
    svc.store.close()


def test_budget_settings_from_env_and_their_errors():
    from aliyun_image.config import Settings

    s = Settings.from_env({"ALIYUN_IMAGE_DAILY_BUDGET": "5", "ALIYUN_IMAGE_MONTHLY_BUDGET": "100.50"})
    b = s.budgets
    assert (b.daily_budget, b.monthly_budget, b.allow_unpriced) == (Decimal("5"), Decimal("100.50"), False)
    assert Settings.from_env({"ALIYUN_IMAGE_DAILY_BUDGET": "5"}, daily_budget="0").budgets.daily_budget == 0
    for bad in ("-1", "abc", "nan", "inf"):
        with pytest.raises(ValidationError) as e:
            Settings.from_env({"ALIYUN_IMAGE_DAILY_BUDGET": bad})
        assert e.value.code == "Config.Budget" and bad in e.value.zh


def test_hosted_budget_covers_the_host_key_only(settings, emu):
    svc = ImageService(settings.with_(hosted=True, daily_budget=Decimal("0.3")))
    with pytest.raises(ValidationError) as e:
        svc.generate("a cat", model="qwen-image-plus", n=2, owner="v1")
    assert e.value.code == "Budget.Daily" and "your own API key" in e.value.en and "--daily" not in e.value.en
    own = svc.generate("a cat", model="qwen-image-plus", n=2, owner="v2", api_key="sk-visitor-own-key-1234")
    assert len(own.results) == 2  # a visitor's own key: their bill, not the host's budget
    assert ledger.spend(svc.store, owner="v2").billed.amount() == Decimal("0.4")
    assert ledger.spend(svc.store, paid_by="").billed.images == 0
    svc.store.close()
    # who paid is stored as the plain words it always was (enums.Payer is a StrEnum): old stores still read
    db = sqlite3.connect(settings.data_dir / "gallery.sqlite3")
    assert set(db.execute("SELECT paid_by, typeof(paid_by) FROM results")) == {("own", "text")}
    assert set(db.execute("SELECT paid_by, typeof(paid_by) FROM charges WHERE state='billed'")) == {("own", "text")}
    db.close()


# --- async tasks, holds across processes ------------------------------------------------------------
def test_async_task_left_running_is_maybe_billed_until_resume_settles_it(settings, emu):
    svc = ImageService(settings.with_(task_timeout=0.05))
    batch = svc.generate("a cat", model="qwen-image-plus", use_async=True)
    assert not batch.results and batch.failures[0].code == "Task.Timeout"
    spent = ledger.spend(svc.store)
    assert (spent.billed.images, spent.maybe.images, spent.maybe.amount()) == (0, 1, Decimal("0.2"))
    time.sleep(0.3)  # the emulator's task finishes (task_delay 0.2 s); not a timing assertion
    patient = ImageService(settings, store=svc.store)
    assert len(patient.resume_pending()) == 1
    spent = ledger.spend(svc.store)
    assert (spent.billed.images, spent.billed.amount(), spent.maybe.images) == (1, Decimal("0.2"), 0)
    emu.task_outcome("FAILED")
    failed = patient.generate("a dog", model="qwen-image-plus", use_async=True)
    assert not failed.results and ledger.spend(svc.store).billed.images == 1  # a failed task costs nothing
    svc.store.close()


def test_a_crashed_process_hold_is_ignored(settings, emu):
    svc = ImageService(settings.with_(daily_budget=Decimal("0.5")))
    dead = subprocess_pid_that_exited()
    with svc.store.records.charges() as book:
        book.add(model="qwen-image-max", region="beijing", price="0.5", currency="CNY", state=charges.HOLD,
                 code=f"pid:{dead}")
    assert len(svc.generate("a cat", model="qwen-image-plus").results) == 1  # the stale ¥0.50 hold is gone
    with svc.store.records.charges() as book:
        assert not book.holds()
    svc.store.close()


def subprocess_pid_that_exited() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_concurrent_cli_processes_cannot_overshoot_together(emu, clean_env):
    emu.latency = 0.5
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_"))}
    env.update({"PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", "DASHSCOPE_API_KEY": TEST_KEY,
                "DASHSCOPE_HTTP_BASE_URL": emu.base_url, "ALIYUN_IMAGE_DATA_DIR": str(clean_env),
                "ALIYUN_IMAGE_DAILY_BUDGET": "1"})
    procs = [subprocess.Popen([sys.executable, "-m", "aliyun_image", "generate", f"cat {i}", "-n", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    codes = sorted(p.wait(60) for p in procs)
    errs = [p.stderr.read() for p in procs]
    # ¥0.40 each against ¥1.00: two runs fit, two are refused (exit 2) whatever the timing
    assert codes == [0, 0, 2, 2], errs
    assert sum("Budget.Daily" in e for e in errs) == 2
    store = ResultStore.open(clean_env, fsync=False)
    assert ledger.spend(store).total() == Decimal("0.8")
    with store.records.charges() as book:
        assert not book.holds()
    store.close()


def test_hosted_hourly_caps_as_amounts(settings, emu):
    s = settings.with_(hosted=True, host_hourly_budget=Decimal("1.0"), session_hourly_budget=Decimal("0.6"))
    svc = ImageService(s)
    assert len(svc.generate("a cat", model="qwen-image-plus", n=2, owner="a").results) == 2  # ¥0.40
    with pytest.raises(ValidationError) as e:
        svc.generate("more", model="qwen-image-plus", n=2, owner="a")  # a: 0.40 + 0.40 > 0.60
    assert e.value.code == "Budget.SessionHourly" and "per visitor" in e.value.en and "your own API key" in e.value.en
    assert len(svc.generate("b's", model="qwen-image-plus", n=2, owner="b").results) == 2  # b: 0.40; all: 0.80
    emu.clear()
    with pytest.raises(ValidationError) as e:
        svc.generate("c's", model="qwen-image-plus", n=2, owner="c")  # all: 0.80 + 0.40 > 1.00
    assert e.value.code == "Budget.Hourly" and "last hour ¥0.80 (4 images)" in e.value.en
    assert "本演示每小时的花费上限 ¥1.00" in e.value.zh and not list(emu.state.requests)
    local = ImageService(settings.with_(host_hourly_budget=Decimal("0.1")), store=svc.store)
    assert len(local.generate("local mode has no hourly cap", model="qwen-image-plus").results) == 1
    svc.store.close()


def test_cost_lines_and_quota_refusals_read_in_the_readers_language():
    from aliyun_image.money import billing
    from aliyun_image.money.quota import HourlyQuota

    est = estimate_for(spec("qwen-image-plus"), 2, True, "singapore")
    assert billing.run_cost_text(est, 2, [], "ja") == "今回の費用：¥0.44（2 枚 × ¥0.22）"
    assert billing.run_cost_text(est, 2, [], "en") == "This run cost: ¥0.44 (2 × ¥0.22)"
    tally = ledger.Tally()
    tally.add("0.2", "CNY")
    tally.add(None, "CNY")
    assert tally.text("ja") == "¥0.20（2 枚、うち 1 枚は価格不明）"
    assert tally.text("en") == "¥0.20 (2 images, 1 of unknown price)"
    quota = HourlyQuota(2, 10, clock=lambda: 0.0, kind="offline")
    quota.take("a", 2)
    with pytest.raises(ValidationError) as e:
        quota.take("a", 1)
    assert e.value.code == "Quota.Exceeded" and "per visitor per hour" in e.value.en
    assert "最大 2 枚" in e.value.text("ja") and "per visitor" not in e.value.text("ja")
    assert "离线演示" in e.value.zh and "オフライン" not in e.value.zh
