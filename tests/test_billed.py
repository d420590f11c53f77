"""Prices as billed (issue 17.1, 17.5, 17.6): size classes, input image fees and currencies in the
estimate and the ledger, content moderation free, and the CLI's rewriting default; against the
emulator over real HTTP (it answers with the 3.0 reference's ``usage``)."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal

import pytest

from aliyun_image.catalog import spec as catalog
from aliyun_image.errors import TaskFailedError, ValidationError, may_be_billed
from aliyun_image.generation.service import ImageService
from aliyun_image.money import billing, ledger
from aliyun_image.money.estimate import estimate, estimate_for
from aliyun_image.storage.store import ResultStore

from .conftest import TEST_KEY
from .test_cli import run
from .test_emulator import data_uri, png

PRO = "qwen-image-3.0-pro"


def spec(name):
    return catalog.get_model(name)


def charge_rows(store):
    with store.records.charges() as book:
        return sorted((dict(r) for r in book.rows() if r["state"] == "billed"), key=lambda r: r["id"])


@pytest.fixture
def svc(settings):
    s = ImageService(settings)
    yield s
    s.store.close()
    s.client.close()


@pytest.fixture
def sg(settings):
    s = ImageService(settings.with_(region="singapore"))
    yield s
    s.store.close()
    s.client.close()


# --- the catalogue -----------------------------------------------------------------------------------
def test_the_catalogue_carries_currencies_classes_and_input_fees():
    pro, std, p21 = spec(PRO), spec("qwen-image-3.0"), spec("qwen-image-2.1-pro")
    assert (pro.price_in("beijing"), pro.price_in("beijing", tier="2k")) == (0.25, 0.50)
    assert (pro.price_in("singapore"), pro.price_in("singapore", tier="2k")) == (0.04, 0.075)
    assert (pro.currency_in("beijing"), pro.currency_in("singapore")) == ("CNY", "USD")
    assert (pro.input_price_in("beijing"), pro.input_price_in("singapore")) == (0.02, 0.003)
    assert std.price_in("beijing", tier="2k") == std.price_in("beijing") == 0.18 and not std.tiered_in("beijing")
    assert std.price_in("singapore") == 0.03 and std.input_price_in("singapore") == 0.003
    assert p21.price_in("singapore") == 0.04 and p21.currency_in("singapore") == "USD"
    assert p21.price_in("beijing") is None and not p21.verified  # not found there: never guessed
    # the older Singapore figures stay CNY conversions, and say so
    assert spec("qwen-image-max").price_in("singapore") == 0.550443 and spec("qwen-image-max").currency_in(
        "singapore") == "CNY"
    assert "price" in pro.unverified and "price" in std.unverified  # [2]: two third parties agree
    assert catalog.tier_of(1500, 1500) == "1k" and catalog.tier_of(1504, 1504) == "2k"
    assert catalog.billed_tier("qima_output_2k") == "2k" and catalog.billed_tier("") is None


def use_user_file(monkeypatch, path, text):
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(catalog.ENV_MODELS, str(path))


def test_an_old_user_file_still_loads_and_a_bad_currency_is_named(monkeypatch, tmp_path):
    use_user_file(monkeypatch, tmp_path / "old.toml", '''
[[model]]
id = "my-model"
base = "qwen-image-plus"
price = { beijing = 0.3 }
note_en = "an old file: no currency, no classes"
''')
    mine = catalog.get_model("my-model")
    assert mine is not None and mine.price_in("beijing") == 0.3 and mine.currency_in("beijing") == "CNY"
    assert estimate_for(mine, 2, True, "beijing").total == Decimal("0.6")
    use_user_file(monkeypatch, tmp_path / "bad.toml", '''
[[model]]
id = "qwen-image-3.0"
currency = { singapore = "SGD" }
''')
    with pytest.raises(ValidationError) as e:
        catalog.catalog()
    assert "currency" in e.value.en and "USD" in e.value.en and "qwen-image-3.0" in e.value.en


def test_models_lists_classes_fees_and_currencies(clean_env):
    out = run(["models"], None, clean_env).stdout
    block = out[out.index(PRO + "  "):].split("\n\n")[0]
    assert "Beijing 0.25 CNY (1K) / 0.5 (2K), +0.02 per input image" in block
    assert "Singapore 0.04 USD (1K) / 0.075 (2K), +0.003 per input image" in block
    assert "Singapore 0.04 USD" in out[out.index("qwen-image-2.1-pro  "):]
    assert "Beijing price unknown" in out[out.index("qwen-image-2.1-pro  "):]
    import json
    info = {m["id"]: m for m in json.loads(run(["models", "--json"], None, clean_env).stdout)}
    assert info[PRO]["currency"] is None and info[PRO]["currencies"] == {"beijing": "CNY", "singapore": "USD"}
    assert info[PRO]["price_2k"] == {"beijing": 0.5, "singapore": 0.075}
    assert info["qwen-image-max"]["currency"] == "CNY"


# --- the estimate ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,region,size,n,inputs,total,currency,tier,up_to", [
    (PRO, "beijing", None, 2, 0, "1.00", "CNY", "2k", True),  # left to the model: 2K, "up to"
    (PRO, "beijing", "1024*1024", 2, 0, "0.50", "CNY", "1k", False),
    (PRO, "beijing", "2048*1152", 1, 0, "0.50", "CNY", "2k", False),
    (PRO, "singapore", None, 2, 0, "0.15", "USD", "2k", True),
    (PRO, "singapore", "1328*1328", 3, 0, "0.12", "USD", "1k", False),
    (PRO, "beijing", "1024*1024", 1, 2, "0.29", "CNY", "1k", False),  # + 2 input images × ¥0.02
    (PRO, "singapore", None, 2, 3, "0.159", "USD", "2k", True),  # + 3 × $0.003
    ("qwen-image-3.0", "beijing", None, 2, 0, "0.36", "CNY", "", False),  # one price: no class, no "up to"
    ("qwen-image-3.0", "singapore", "1024*1024", 1, 1, "0.033", "USD", "", False),
    ("qwen-image-2.1-pro", "singapore", None, 2, 0, "0.08", "USD", "", False),
])
def test_estimate_by_class_input_images_and_currency(model, region, size, n, inputs, total, currency, tier, up_to):
    est = estimate_for(spec(model), n, True, region, size=size, inputs=inputs)
    assert (est.total, est.currency, est.tier, est.up_to) == (Decimal(total), currency, tier, up_to)
    d = est.as_dict()
    assert Decimal(d["total"]) == Decimal(total) and d["up_to"] is up_to and d["input_images"] == inputs


def test_estimate_texts_say_up_to_the_class_and_the_inputs():
    est = estimate_for(spec(PRO), 2, True, "beijing")
    assert est.text("en") == "up to ¥1.00 · 2 × qwen-image-3.0-pro (2K) · Beijing"
    assert est.text("zh") == "最多 ¥1.00 · 2 × qwen-image-3.0-pro（2K） · 北京"
    assert est.text("ja").startswith("最大 ¥1.00")
    edit = estimate_for(spec(PRO), 1, True, "singapore", size="1024*1024", inputs=2)
    assert edit.text("en") == "about $0.046 · 1 × qwen-image-3.0-pro (1K) · Singapore · incl. 2 input images × $0.003"


def test_a_job_estimate_reads_its_size_and_images(svc):
    imgs = [data_uri(png(64, 64)), data_uri(png(64, 48))]
    job = svc.plan("fuse", "put 图1 into 图2", imgs, model=PRO, size="1024*1024", n=2)
    est = estimate(job, "beijing")
    assert (est.tier, est.inputs, est.requests, est.total) == ("1k", 2, 1, Decimal("0.54"))
    assert estimate(svc.plan("t2i", "a cat", model=PRO), "beijing").up_to


# --- the ledger, as the replies' usage billed it --------------------------------------------------------
def test_no_size_is_billed_2k_as_the_reply_says(svc, emu):
    batch = svc.generate("a cat", model=PRO, n=2)
    assert [(r.width, r.height, r.price, r.currency) for r in batch.results] == [(2048, 2048, "0.5", "CNY")] * 2
    rows = charge_rows(svc.store)
    assert [(r["price"], r["billed_as"], r["inputs"]) for r in rows] == [("0.5", "qima_output_2k", 0)] * 2
    assert ledger.spend(svc.store).billed.amounts == {"CNY": Decimal("1.0")}
    line = billing.run_cost_text(estimate(batch.job, "beijing"), 2, [], "en", prices=[r.price for r in batch.results])
    assert line == "This run cost: ¥1.00 (2 × ¥0.50)"  # the "up to" was what it cost: no difference to tell


def test_a_1k_size_is_billed_1k(svc, emu):
    batch = svc.generate("a cat", model=PRO, n=2, size="1024*1024")
    assert [r.price for r in batch.results] == ["0.25"] * 2
    assert [r["billed_as"] for r in charge_rows(svc.store)] == ["qima_output_1k"] * 2
    assert ledger.spend(svc.store).billed.amount("CNY") == Decimal("0.5")


def test_singapore_is_billed_in_usd_and_never_added_to_cny(sg, emu):
    usd = sg.generate("a cat", model=PRO, n=2)
    cny = sg.generate("a dog", model="qwen-image-max")  # an older Singapore figure: CNY
    assert [(r.price, r.currency) for r in usd.results] == [("0.075", "USD")] * 2
    assert (cny.results[0].price, cny.results[0].currency) == ("0.550443", "CNY")
    spent = ledger.spend(sg.store)
    assert spent.billed.amounts == {"CNY": Decimal("0.550443"), "USD": Decimal("0.15")}
    assert spent.billed.text("en") == "¥0.55 + $0.15 (3 images)"
    assert spent.total("USD") == Decimal("0.15") and spent.total("CNY") == Decimal("0.550443")
    by_model = ledger.spend_by(sg.store, "model")
    assert by_model[PRO].billed.amounts == {"USD": Decimal("0.15")}


def test_edits_and_fusion_bill_their_input_images_once_per_request(svc, emu):
    imgs = [data_uri(png(64, 64)), data_uri(png(80, 60))]
    batch = svc.fuse(imgs, "put 图1 into 图2", model=PRO, size="1024*1024", n=2)
    assert [r.price for r in sorted(batch.results, key=lambda r: r.idx)] == ["0.29", "0.25"]  # 0.25 + 2 × 0.02
    rows = charge_rows(svc.store)
    assert sorted((r["inputs"], r["price"]) for r in rows) == [(0, "0.25"), (2, "0.29")]
    assert ledger.spend(svc.store).billed.amount() == Decimal("0.54")
    line = billing.run_cost_text(estimate(batch.job, "beijing"), 2, [], "en", prices=[r.price for r in batch.results])
    assert line == "This run cost: ¥0.54 (2 images, as billed by the service)"


def test_where_the_bill_differs_from_the_estimate_the_cost_line_says_so(sg, emu):
    # An edit left to the model follows its input (about 1024*1024 here): billed 1K, estimated "up to" 2K.
    batch = sg.edit([data_uri(png(64, 64))], "make it blue", model=PRO)
    est = estimate(batch.job, "singapore")
    assert est.up_to and est.total == Decimal("0.078")
    assert batch.results[0].price == "0.043" and batch.results[0].currency == "USD"
    line = billing.run_cost_text(est, 1, [], "en", prices=[r.price for r in batch.results])
    assert line == "This run cost: $0.043 (1 image, as billed by the service); estimated $0.078"
    assert "预估为 $0.078" in billing.run_cost_text(est, 1, [], "zh", prices=["0.043"])


def test_a_version_2_store_gets_the_usage_columns(tmp_path, settings, emu):
    data = tmp_path / "v2"
    store = ResultStore.open(data, fsync=False)
    store.close()
    db = sqlite3.connect(data / "gallery.sqlite3")  # undo v3: the charges table as version 2 made it
    db.executescript("""
        DROP TABLE charges;
        CREATE TABLE charges (id INTEGER PRIMARY KEY AUTOINCREMENT, result_id INTEGER UNIQUE, owner TEXT,
            model TEXT NOT NULL, region TEXT NOT NULL DEFAULT '', price TEXT, currency TEXT NOT NULL DEFAULT 'CNY',
            state TEXT NOT NULL, paid_by TEXT NOT NULL DEFAULT '', code TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL);
        PRAGMA user_version=2;
    """)
    db.execute("INSERT INTO charges (model, region, price, state, created) VALUES ('qwen-image-max', 'beijing',"
               " '0.5', 'billed', ?)", (time.time(),))
    db.commit()
    db.close()
    store = ResultStore.open(data, fsync=False)
    assert store.records.schema_version() == 3
    old = charge_rows(store)[0]
    assert (old["billed_as"], old["inputs"], old["price"]) == ("", 0, "0.5")
    svc = ImageService(settings.with_(data_dir=data), store=store)
    svc.generate("a cat", model=PRO, size="1024*1024")
    assert [r["billed_as"] for r in charge_rows(store)] == ["", "qima_output_1k"]
    assert ledger.spend(store).billed.amount() == Decimal("0.75")
    store.close()


# --- budgets count one currency at a time ---------------------------------------------------------------
def test_a_budget_counts_the_runs_currency_only(settings, emu):
    svc = ImageService(settings.with_(region="singapore", daily_budget=Decimal("0.6")))
    svc.generate("dear in CNY", model="qwen-image-max")  # ¥0.550443 of CNY
    assert len(svc.generate("a cat", model=PRO, n=6).results) == 6  # $0.45 of USD: never added to the CNY
    emu.clear()
    with pytest.raises(ValidationError) as e:
        svc.generate("a dog", model=PRO, n=3)  # $0.45 + up to $0.225 > 0.6
    assert e.value.code == "Budget.Daily" and "$0.60" in e.value.en and "up to $0.225" in e.value.en
    assert "$0.45 (6 images)" in e.value.en and not list(emu.state.requests)
    with pytest.raises(ValidationError) as e:
        svc.generate("more CNY", model="qwen-image-plus")  # ¥0.550443 + ¥0.220177 > 0.6 in CNY
    assert "¥0.60" in e.value.en
    svc.store.close()


def test_spend_shows_what_a_budget_leaves_per_currency(emu, clean_env):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url, "DASHSCOPE_REGION": "singapore"}
    r = run(["--region", "singapore", "generate", "a cat", "--model", PRO, "--size", "1024*1024"], env, clean_env)
    assert r.returncode == 0, r.stderr
    assert "This run cost: $0.04 (1 × $0.04)" in r.stderr
    s = run(["spend", "--daily-budget", "1"], env, clean_env).stdout
    assert "daily budget ¥1.00, ¥1.00 left" in s and "daily budget $1.00, $0.96 left" in s


# --- content moderation: nothing billed -----------------------------------------------------------------
def test_moderation_is_free_sync_and_says_so(svc, emu):
    batch = svc.generate("违禁内容 a cat", model=PRO, n=2)
    assert not batch.results and [f.code for f in batch.failures] == ["DataInspectionFailed"] * 2
    assert "Nothing was billed" in batch.failures[0].text("en") and "未计费" in batch.failures[0].text("zh")
    assert "課金されていません" in batch.failures[0].text("ja")
    spent = ledger.spend(svc.store)
    assert (spent.billed.images, spent.maybe.images) == (0, 0)
    line = billing.run_cost_text(estimate(batch.job, "beijing"), 0, batch.failures, "en", prices=[])
    assert line == "This run cost: ¥0.00 (2 refused by content moderation: not billed)"
    assert billing.run_cost_text(estimate(batch.job, "beijing"), 1, batch.failures[:1], "en", prices=["0.5"]) == (
        "This run cost: ¥0.50 (1 × ¥0.50); 1 refused by content moderation: not billed")


@pytest.mark.parametrize("code", ["DataInspectionFailed", "data_inspection_failed", "DataInspection.Failed"])
def test_every_spelling_of_moderation_is_free(svc, emu, code):
    emu.fail(status=400, code=code, message="Output data may contain inappropriate content.")
    batch = svc.generate("a cat", model="qwen-image-max")
    err = batch.failures[0]
    assert err.code == code and not may_be_billed(err) and "Nothing was billed" in err.text("en")
    assert ledger.spend(svc.store).maybe.images == 0 and not charge_rows(svc.store)


def test_moderation_in_an_async_task_is_free(svc, emu):
    batch = svc.generate("moderation-refuse a lighthouse", model="qwen-image-plus", use_async=True)
    err = batch.failures[0]
    assert isinstance(err, TaskFailedError) and err.code == "DataInspectionFailed" and not may_be_billed(err)
    spent = ledger.spend(svc.store)
    assert (spent.billed.images, spent.maybe.images) == (0, 0)
    assert "Nothing was billed" in err.text("en")


def test_the_cli_cost_line_counts_moderation_as_free(emu, clean_env):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    r = run(["generate", "违禁内容", "--model", PRO], env, clean_env)
    assert r.returncode == 1 and "Nothing was billed" in r.stderr
    assert r.stderr.splitlines()[-1] == "This run cost: ¥0.00 (1 refused by content moderation: not billed)"
    s = run(["spend", "--json"], env, clean_env).stdout
    assert '"billed": {"images": 0' in s and '"maybe_billed": {"images": 0' in s


# --- the CLI follows the model's rewriting default ---------------------------------------------------------
def test_z_image_turbo_from_the_cli_does_not_rewrite_unless_asked(emu, clean_env):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    dry = run(["generate", "a cat", "--model", "z-image-turbo", "--dry-run"], env, clean_env)
    assert "estimated cost: about ¥0.10 · 1 × z-image-turbo" in dry.stdout
    on = run(["generate", "a cat", "--model", "z-image-turbo", "--extend", "--dry-run"], env, clean_env)
    assert "estimated cost: about ¥0.20" in on.stdout
    r = run(["generate", "a cat", "--model", "z-image-turbo"], env, clean_env)
    assert r.returncode == 0 and "This run cost: ¥0.10 (1 × ¥0.10)" in r.stderr
    sent = [rec for rec in emu.state.requests if rec.endpoint == "generation"]
    assert sent[-1].json["parameters"]["prompt_extend"] is False
    r = run(["generate", "a cat", "--model", "z-image-turbo", "--extend"], env, clean_env)
    assert "This run cost: ¥0.20 (1 × ¥0.20)" in r.stderr
    assert [rec for rec in emu.state.requests if rec.endpoint == "generation"][-1].json["parameters"][
        "prompt_extend"] is True
    # other models keep theirs: qwen-image-plus rewrites unless --no-extend
    run(["generate", "a cat", "--model", "qwen-image-plus"], env, clean_env)
    assert [rec for rec in emu.state.requests if rec.endpoint == "generation"][-1].json["parameters"][
        "prompt_extend"] is True
    run(["generate", "a cat", "--model", "qwen-image-plus", "--no-extend"], env, clean_env)
    assert [rec for rec in emu.state.requests if rec.endpoint == "generation"][-1].json["parameters"][
        "prompt_extend"] is False
    both = run(["generate", "a cat", "--extend", "--no-extend", "--dry-run"], env, clean_env)
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_a_3_0_task_is_priced_as_its_finished_poll_billed_it(svc, emu):
    """The 3.0 async path: the row is priced by the estimate when the task is created ("up to" 2K for
    an edit left to the model), then as the finished task's usage says (1K here, plus the input)."""
    batch = svc.edit([data_uri(png(64, 64))], "make it blue", model=PRO, use_async=True)
    assert len(batch.results) == 1, batch.failures
    rec = batch.results[0]
    assert (rec.price, rec.currency) == ("0.27", "CNY")
    assert [(r["price"], r["billed_as"], r["inputs"]) for r in charge_rows(svc.store)] == [
        ("0.27", "qima_output_1k", 1)]
    t2i = svc.generate("a cat", model=PRO, use_async=True)
    assert t2i.results[0].price == "0.5" and charge_rows(svc.store)[-1]["billed_as"] == "qima_output_2k"
    assert ledger.spend(svc.store).billed.amount() == Decimal("0.77")
