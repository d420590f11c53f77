"""Regions: told from the base URL, models refused where they are not offered, the SDK's
settings (workspace, key file), and the key check across regions."""

from __future__ import annotations

import dataclasses
import os
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from aliyun_image.dashscope.client import DashScopeClient
from aliyun_image.config import Hosting, Settings, region_from_url, region_name
from aliyun_image.errors import ValidationError
from aliyun_image.i18n import render
from aliyun_image.generation.service import ImageService

from .conftest import TEST_KEY

SINGAPORE = "https://dashscope-intl.aliyuncs.com/api/v1"
US = "https://dashscope-us.aliyuncs.com/api/v1"


@pytest.mark.parametrize("url,region", [
    ("https://dashscope.aliyuncs.com/api/v1", "beijing"),
    (SINGAPORE, "singapore"),
    (US, "us"),
    ("https://DashScope-Intl.aliyuncs.com/api/v1/", "singapore"),
    ("https://ws-123.cn-beijing.maas.aliyuncs.com/api/v1", "beijing"),
    ("https://ws-123.ap-southeast-1.maas.aliyuncs.com/api/v1", "singapore"),
    ("https://ws-123.us-east-1.maas.aliyuncs.com/api/v1", "us"),
    ("https://ws-123.eu-central-1.maas.aliyuncs.com/api/v1", "eu-central-1"),
    ("http://127.0.0.1:8765/api/v1", None),
    ("https://proxy.example.com/dashscope/api/v1", None),
    ("https://evil-dashscope.aliyuncs.com.example.com/api/v1", None),
])
def test_region_from_url(url, region):
    assert region_from_url(url) == region


def test_base_url_decides_the_region_and_its_messages():
    s = Settings.from_env({"DASHSCOPE_HTTP_BASE_URL": SINGAPORE})
    assert s.region == "singapore" and s.region_known and not s.is_custom_base
    assert [s.region_label(lang) for lang in ("zh", "en", "ja")] == [
        "新加坡 (dashscope-intl.aliyuncs.com)", "Singapore (dashscope-intl.aliyuncs.com)",
        "シンガポール (dashscope-intl.aliyuncs.com)"]
    assert render("ja", region_name("us")) == "米国（バージニア）" and render("zh", region_name("xx-1")) == "xx-1"
    # The host wins over a region asked for: it is where the calls go.
    assert Settings.from_env({}, region="beijing", base_url=US).region == "us"
    eu = Settings.from_env({}, base_url="https://ws1.eu-central-1.maas.aliyuncs.com/api/v1")
    assert eu.region == "eu-central-1"
    assert eu.region_label() == "Germany (Frankfurt) (ws1.eu-central-1.maas.aliyuncs.com)"
    # A copy pointed elsewhere follows its new host.
    assert Settings().with_(base_url=SINGAPORE).region == "singapore"


def test_custom_base_takes_the_region_asked_for_or_beijing(emu):
    plain = Settings.from_env({}, base_url=emu.base_url)
    assert plain.region == "beijing" and plain.is_custom_base and not plain.region_known
    asked = Settings.from_env({"ALIYUN_IMAGE_REGION": "sg"}, base_url=emu.base_url)
    assert asked.region == "singapore" and asked.region_known
    assert Settings.from_env({}, region="singapore").base_url == SINGAPORE


def test_temp_upload_only_in_beijing_or_on_a_custom_base(emu):
    assert not Settings.from_env({}, base_url=SINGAPORE).supports_temp_upload
    assert not Settings.from_env({}, base_url="https://w.ap-southeast-1.maas.aliyuncs.com/api/v1").supports_temp_upload
    assert Settings.from_env({}).supports_temp_upload
    assert Settings.from_env({}, base_url=emu.base_url).supports_temp_upload  # the emulator plays Beijing


def test_qwen_image_refused_in_us_before_sending(settings, emu):
    svc = ImageService(settings.with_(base_url=US), client=DashScopeClient(settings))
    with pytest.raises(ValidationError) as ei:
        svc.generate("a cat", model="qwen-image-plus", api_key=TEST_KEY)
    err = ei.value
    assert err.code == "Validation.Region" and err.exit_code == 2
    assert "US (Virginia)" in err.en and "Beijing, Singapore" in err.en and "北京、新加坡" in err.zh
    assert emu.calls("generation") == []
    svc.store.close()


def test_region_check_lets_unknowns_through(settings, emu):
    us = ImageService(settings.with_(base_url=US), client=DashScopeClient(settings))
    assert us.plan("t2i", "a cat", model="brand-new-model").model == "brand-new-model"  # generic: no facts
    us.store.close()
    # The emulator with no region asked for: nothing known, nothing refused.
    assert ImageService(settings).plan("t2i", "a cat", model="qwen-image-plus").model == "qwen-image-plus"
    # A region asked for on a custom base is believed.
    asked = ImageService(Settings.from_env({"ALIYUN_IMAGE_REGION": "us"}, base_url=emu.base_url,
                                           data_dir=settings.data_dir))
    with pytest.raises(ValidationError, match="not offered"):
        asked.plan("t2i", "a cat", model="qwen-image-plus")
    asked.store.close()
    # A region the catalogue has no column for: a note, not a refusal.
    eu = ImageService(settings.with_(base_url="https://w.eu-central-1.maas.aliyuncs.com/api/v1"))
    job = eu.plan("t2i", "a cat", model="qwen-image-plus")
    assert any("ドイツ（フランクフルト）" in note.render("ja") for note in job.notes)
    eu.store.close()


def test_no_temp_upload_against_singapore(settings, emu, tmp_path):
    """A large local image goes inline to Singapore: the Beijing-only upload is never tried."""
    src = tmp_path / "big.png"
    Image.new("RGB", (640, 480), "teal").save(src)
    sg = settings.with_(base_url=SINGAPORE, inline_max_bytes=1000)  # "large" = above 1000 bytes
    svc = ImageService(sg, client=DashScopeClient(settings))  # the emulator plays Singapore
    batch = svc.edit([str(src)], "make it night", api_key=TEST_KEY)
    assert not batch.failures
    assert emu.calls("policy") == [] and emu.calls("oss") == []
    (call,) = emu.calls("generation")
    assert call.json["input"]["messages"][0]["content"][0]["image"].startswith("data:image/png;base64,")
    with pytest.raises(ValidationError) as ei:  # asked for explicitly: refused, with the reason
        ImageService(sg.with_(upload="always"), store=svc.store,
                     client=DashScopeClient(settings)).edit([str(src)], "x", api_key=TEST_KEY)
    assert ei.value.code == "Validation.Upload" and len(emu.calls("generation")) == 1
    svc.store.close()


# --- the SDK's settings ---------------------------------------------------------------------------
def _snapshot(path):
    return (path.read_bytes(), os.stat(path).st_mtime_ns) if path.exists() else None


def test_key_file_in_home_is_read_never_written(tmp_path):
    home = tmp_path / "home"
    key_file = home / ".dashscope" / "api_key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("sk-from-home-file\n")
    before = _snapshot(key_file)
    s = Settings.from_env({"HOME": str(home)})
    assert s.api_key == "sk-from-home-file" and "sk-from" not in repr(s)
    assert _snapshot(key_file) == before and sorted(p.name for p in home.rglob("*")) == [".dashscope", "api_key"]
    # The environment variable wins over the file; a given key wins over both.
    assert Settings.from_env({"HOME": str(home), "DASHSCOPE_API_KEY": "sk-env-key"}).api_key == "sk-env-key"
    assert Settings.from_env({"HOME": str(home)}, api_key="sk-given").api_key == "sk-given"


def test_key_file_path_variable(tmp_path):
    home = tmp_path / "home"
    (home / ".dashscope").mkdir(parents=True)
    (home / ".dashscope" / "api_key").write_text("sk-home-one")
    named = tmp_path / "keys" / "dashscope.txt"
    named.parent.mkdir()
    named.write_text("  sk-named-file  \n")
    env = {"HOME": str(home), "DASHSCOPE_API_KEY_FILE_PATH": str(named)}
    assert Settings.from_env(env).api_key == "sk-named-file"
    # A path that does not exist falls back to the home file, as the SDK does.
    env["DASHSCOPE_API_KEY_FILE_PATH"] = str(tmp_path / "missing")
    assert Settings.from_env(env).api_key == "sk-home-one"
    assert Settings.from_env({"HOME": str(tmp_path / "empty")}).api_key is None
    assert not (tmp_path / "missing").exists() and not (tmp_path / "empty").exists()


def test_workspace_header_sent(settings, emu):
    ws = Settings.from_env({"DASHSCOPE_WORKSPACE_ID": "ws-abc123"}, base_url=emu.base_url,
                           data_dir=settings.data_dir, poll_schedule=(0.05,))
    assert ws.workspace == "ws-abc123"
    svc = ImageService(ws)
    svc.generate("a cat", api_key=TEST_KEY, use_async=True)
    for endpoint in ("task_create", "task_get"):
        assert {c.headers.get("x-dashscope-workspace") for c in emu.calls(endpoint)} == {"ws-abc123"}
    svc.store.close()
    ImageService(settings).generate("a cat", api_key=TEST_KEY)
    assert "x-dashscope-workspace" not in emu.calls("generation")[-1].headers  # none set: none sent


def test_workspace_with_spaces_refused():
    with pytest.raises(ValidationError) as ei:
        Settings.from_env({"DASHSCOPE_WORKSPACE_ID": "ws 1"})
    assert ei.value.code == "Config.Workspace"


# --- which region is this key for? ------------------------------------------------------------------
SG_KEY = "sk-singapore-0123456789"  # not a real key: accepted only by the emulator playing Singapore
BJ_KEY = "sk-beijing-0123456789"


@pytest.fixture(scope="module")
def two_regions():
    """Two emulators playing Beijing and Singapore, each accepting only its own key."""
    from aliyun_image.emulator import Emulator

    with Emulator(api_keys={BJ_KEY}) as bj, Emulator(api_keys={SG_KEY}) as sg:
        yield bj, sg


def test_check_key_finds_the_region(two_regions):
    from aliyun_image.dashscope import keycheck

    bj, sg = two_regions
    bj.clear()
    sg.clear()
    result = keycheck.probe_places(SG_KEY, {"beijing": bj.base_url, "singapore": sg.base_url}, timeout=3)
    assert result.region == "singapore" and result.valid
    by = {r.region: r for r in result.results}
    assert by["beijing"].status == keycheck.INVALID and by["beijing"].code == "InvalidApiKey"
    assert by["singapore"].status == keycheck.VALID and by["singapore"].latency_ms is not None
    assert "qwen-image-plus" in by["singapore"].models and "qwen-image-edit-plus" in by["singapore"].models
    assert not any(m.endswith("-2025-12-30") for m in by["singapore"].models)  # no snapshots
    # One free request per region: GET /tasks/{random uuid}, no body.
    for emu in (bj, sg):
        (call,) = emu.calls("task_get")
        assert call.method == "GET" and call.body == b"" and len(call.path.rsplit("/", 1)[1]) == 36
    assert SG_KEY not in repr(result) and SG_KEY not in str(result.to_dict())
    # The JSON of `check --json` keeps its fields; the page and the CLI render in the reader's language.
    row = result.to_dict()["results"][0]
    assert set(row) == {"region", "platform", "base_url", "status", "latency_ms", "models", "code", "detail_zh",
                        "detail_en"}
    assert row["platform"] == "bailian" and result.to_dict()["platform"] == "bailian"
    assert row["detail_en"] == "Beijing does not accept the key (InvalidApiKey)." and "北京" in row["detail_zh"]
    assert by["beijing"].detail("ja").startswith("北京リージョン") and by["singapore"].label("ja") == "シンガポール"
    assert by["singapore"].detail("en") == ""


def test_check_key_unreachable_and_us_offers_the_3_0_line_only(two_regions):
    from aliyun_image.dashscope import keycheck

    bj, _ = two_regions
    result = keycheck.probe_places(BJ_KEY, {"beijing": bj.base_url, "us": "http://127.0.0.1:9/api/v1"},
                                timeout=2, retries=0)
    us = result.results[1]
    assert result.region == "beijing" and us.status == keycheck.UNREACHABLE and us.latency_ms is None
    assert us.models == ("qwen-image-3.0-pro", "qwen-image-3.0") and us.code == "Network.refused"
    assert "127.0.0.1:9" in us.detail("en") and us.detail("zh") != us.detail("en") != us.detail("ja")
    nowhere = keycheck.probe_places("sk-nobody-0123456789", {"beijing": bj.base_url}, timeout=2)
    assert nowhere.region is None and not nowhere.valid


def test_check_key_defaults_to_every_region():
    from aliyun_image.dashscope import keycheck

    assert keycheck.default_bases() == {"beijing": "https://dashscope.aliyuncs.com/api/v1",
                                        "singapore": SINGAPORE, "us": US,
                                        "qianwen": "https://maas.qianwenaiapi.com/api/v1",
                                        "qwencloud": "https://maas.qwencloudapi.com/api/v1"}
    # With a workspace id, the regions only a workspace host reaches are asked too.
    assert list(keycheck.default_bases("ws9"))[-3:] == ["eu-central-1", "ap-northeast-1", "cn-hongkong"]
    assert keycheck.default_bases("ws9")["cn-hongkong"] == "https://ws9.cn-hongkong.maas.aliyuncs.com/api/v1"
    assert keycheck.region_models("us") == ("qwen-image-3.0-pro", "qwen-image-3.0")


def test_settings_groups_take_flat_names_and_keep_each_field_once():
    # Settings are grouped (transport, uploads...), but from_env and with_ still take the flat names
    # that CLI flags and app settings pass, each routed to its one group.
    env = {"ALIYUN_IMAGE_TIMEOUT": "7", "ALIYUN_IMAGE_UPLOAD": "never", "ALIYUN_IMAGE_TASK_LIMIT": "3",
           "ALIYUN_IMAGE_MONTHLY_BUDGET": "9", "DASHSCOPE_API_KEY": "sk-grouped-secret"}
    s = Settings.from_env(env, backoff_base=0.02, fsync=False, hosted=True, daily_budget="0", max_parallel=2)
    assert (s.transport.read_timeout, s.transport.backoff_base, s.transport.max_retries) == (7.0, 0.02, 3)
    assert (s.uploads.upload, s.concurrency.task_limit, s.concurrency.max_parallel) == ("never", 3, 2)
    assert (s.budgets.daily_budget, s.budgets.monthly_budget) == (Decimal("0"), Decimal("9"))
    assert s.hosting.hosted and not s.fsync
    changed = s.with_(daily_budget=Decimal("4"), retry_after_max=1.0, input_dirs=(Path("up"),), max_parallel=None)
    assert (changed.budgets.daily_budget, changed.budgets.monthly_budget) == (Decimal("4"), Decimal("9"))
    assert changed.transport.retry_after_max == 1.0 and changed.transport.read_timeout == 7.0
    assert changed.hosting == Hosting(hosted=True, input_dirs=(Path("up"),)) and changed.concurrency.max_parallel == 2
    assert s.budgets.daily_budget == 0  # the original is untouched
    with pytest.raises(TypeError):
        s.with_(no_such_setting=1)
    # Each field lives in exactly one place: the top level or one group.
    top = [f.name for f in dataclasses.fields(Settings)]
    groups = [getattr(s, name) for name in top if dataclasses.is_dataclass(getattr(s, name))]
    assert len(groups) == 5
    names = [n for n in top if not dataclasses.is_dataclass(getattr(s, n))]
    names += [f.name for g in groups for f in dataclasses.fields(g)]
    assert len(names) == len(set(names)) and "api_key" in names
    # The key is in no repr: not the settings', nor any group's.
    assert "sk-grouped" not in repr(s) and all("sk-grouped" not in repr(g) for g in groups)
