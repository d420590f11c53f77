"""Platforms and regions a key really belongs to (issue 17.3 and 17.6): workspace hosts in every
documented region, the Qianwen AI platform and QwenCloud with keys of their own, ``check`` asking
the configured base URL first (emulators playing a workspace host and the Qianwen AI platform,
real HTTP on 127.0.0.1), key prefixes as hints, and the download allow-list for accelerated
result hosts."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from aliyun_image.cli import commands as cli
from aliyun_image.config import Settings, place_name, region_from_url
from aliyun_image.dashscope import keycheck
from aliyun_image.dashscope.client import DashScopeClient
from aliyun_image.emulator import Emulator
from aliyun_image.errors import DownloadError
from aliyun_image.generation.service import ImageService
from aliyun_image.i18n import render

from .conftest import TEST_KEY

QIANWEN = "https://maas.qianwenaiapi.com/api/v1"
QWENCLOUD = "https://maas.qwencloudapi.com/api/v1"
EU_HOST = "https://ws1.eu-central-1.maas.aliyuncs.com/api/v1"
EU_KEY = "sk-eu-0123456789abcdef"  # emulator test keys: the prefix names the place (emulator/regions.py)
QW_KEY = "sk-ws-0123456789abcdef"  # the form keys of the Qianwen AI platform usually have
DEAD = "http://127.0.0.1:9/api/v1"  # nothing listens there: "unreachable", at once


# --- hosts, places and their names ---------------------------------------------------------------
@pytest.mark.parametrize("url,region", [
    ("https://ws-1.us-east-1.maas.aliyuncs.com/api/v1", "us"),
    ("https://ws-1.eu-central-1.maas.aliyuncs.com/api/v1", "eu-central-1"),
    ("https://ws-1.ap-northeast-1.maas.aliyuncs.com/api/v1", "ap-northeast-1"),
    ("https://ws-1.cn-hongkong.maas.aliyuncs.com/api/v1", "cn-hongkong"),
    ("https://ws-1.cn-beijing.maas.aliyuncs.com/api/v1", "beijing"),
    ("https://ws-1.ap-southeast-1.maas.aliyuncs.com/api/v1", "singapore"),
    (QIANWEN, "qianwen"),
    ("https://MAAS.QwenCloudAPI.com/api/v1/", "qwencloud"),
    ("https://maas.qianwenaiapi.com.example.com/api/v1", None),  # look-alikes tell nothing
    ("https://evil-maas.qwencloudapi.com/api/v1", None),
    ("https://ws-1.eu-central-1.maas.aliyuncs.com.example.com/api/v1", None),
])
def test_workspace_hosts_and_platforms_are_recognised(url, region):
    assert region_from_url(url) == region


def test_platform_and_region_are_named_from_the_catalogue():
    eu = Settings.from_env({}, base_url=EU_HOST)
    assert (eu.region, eu.platform, eu.is_custom_base) == ("eu-central-1", "bailian", False)
    assert [render(lang, place_name("eu-central-1")) for lang in ("en", "zh", "ja")] == [
        "Alibaba Cloud Model Studio (Bailian), Germany (Frankfurt)", "阿里云百炼 · 德国（法兰克福）",
        "Alibaba Cloud Model Studio（百炼）・ドイツ（フランクフルト）"]
    for url, region, zh in ((QIANWEN, "qianwen", "千问AI平台"), (QWENCLOUD, "qwencloud", "QwenCloud")):
        s = Settings.from_env({}, base_url=url)
        assert (s.region, s.platform) == (region, region)
        assert s.region_label("zh") == f"{zh} ({s.host})" and render("zh", place_name(region)) == zh
        assert not s.supports_temp_upload  # Beijing only (and reportedly missing on the Qianwen AI platform)
    assert render("ja", place_name("ap-northeast-1")).endswith("日本（東京）")
    assert render("en", place_name("cn-hongkong")).endswith("China (Hong Kong)")
    # An emulator or gateway tells no platform unless a region was asked for.
    assert Settings.from_env({}, base_url=DEAD).platform == ""
    assert Settings.from_env({"ALIYUN_IMAGE_REGION": "sg"}, base_url=DEAD).platform == "bailian"


def test_3_0_is_offered_in_the_workspace_regions_at_an_unknown_price(settings):
    """3.0 is documented in the new regions: planned there without a note, the estimate says "price
    unknown"; a model the catalogue says nothing about there gets the "not known" note, by name."""
    from aliyun_image.money import estimate

    for region in ("eu-central-1", "ap-northeast-1", "cn-hongkong", "us"):
        url = f"https://ws1.{'us-east-1' if region == 'us' else region}.maas.aliyuncs.com/api/v1"
        svc = ImageService(settings.with_(base_url=url))
        job = svc.plan("t2i", "a cat", model="qwen-image-3.0-pro")
        assert job.notes == [] or all("3.0" not in n.render("en") for n in job.notes)
        cost = estimate(job, svc.settings.region)
        assert cost.as_dict()["total"] is None and cost.text("en").startswith("price unknown")
        svc.store.close()
    eu = ImageService(settings.with_(base_url=EU_HOST))
    notes = [n.render("zh") for n in eu.plan("t2i", "a cat", model="qwen-image-plus").notes]
    assert any("德国（法兰克福）" in n and "qwen-image-plus" in n for n in notes)
    eu.store.close()


def test_models_lists_the_new_regions_with_price_unknown(capsys):
    assert cli.main(["models"]) == 0
    block = capsys.readouterr().out.split("qwen-image-3.0 ", 1)[1].split("\n\n", 1)[0]
    assert "eu-central-1, ap-northeast-1, cn-hongkong" in block
    assert "Germany (Frankfurt) price unknown" in block and "China (Hong Kong) price unknown" in block


# --- where a check asks ---------------------------------------------------------------------------
def test_places_put_the_configured_base_first():
    custom = keycheck.places(Settings.from_env({}, base_url=DEAD))
    assert custom.configured == keycheck.CONFIGURED
    assert list(custom.bases)[:2] == [keycheck.CONFIGURED, "beijing"] and custom.bases["configured"] == DEAD
    assert {"qianwen", "qwencloud", "singapore", "us"} <= set(custom.bases)
    asked = keycheck.places(Settings.from_env({"ALIYUN_IMAGE_REGION": "sg"}, base_url=DEAD))
    assert asked.configured == "singapore" and asked.bases["singapore"] == DEAD  # the asked region, at its URL
    ws = keycheck.places(Settings.from_env({"DASHSCOPE_WORKSPACE_ID": "ws1"}, base_url=EU_HOST))
    assert ws.configured == "eu-central-1" and list(ws.bases)[0] == "eu-central-1"
    assert ws.bases["eu-central-1"] == EU_HOST and ws.bases["cn-hongkong"].startswith("https://ws1.cn-hongkong.")
    # --region-base replaces the others, and the configured public URL too: nothing goes to the real service.
    over = keycheck.places(Settings.from_env({}, base_url=QIANWEN), {"qianwen": DEAD, "us": DEAD})
    assert over.bases == {"qianwen": DEAD, "us": DEAD} and over.configured == "qianwen"
    alone = keycheck.places(Settings.from_env({}, base_url=DEAD), others=False)
    assert alone.bases == {keycheck.CONFIGURED: DEAD}


def test_key_prefixes_give_a_hint():
    assert keycheck.key_hint("sk-sp-abc123").key == "platform.hint_token_plan"
    assert "native /api/v1" in render("en", keycheck.key_hint("sk-sp-abc123"))
    assert keycheck.key_hint("SK-WS-abc").key == "platform.hint_workspace"
    assert "千问AI平台" in render("zh", keycheck.key_hint("sk-ws-abc"))
    assert keycheck.key_hint(TEST_KEY) is None


# --- the emulator plays a workspace host and the Qianwen AI platform --------------------------------
@pytest.fixture(scope="module")
def places():
    """Two emulators: a workspace host in eu-central-1 and the Qianwen AI platform."""
    # Both know QW_KEY as the platform's; other sk-ws- keys would pass for workspace keys on the Bailian side too.
    bound = {QW_KEY: "qianwen"}
    with Emulator(region="eu-central-1", region_keys=bound) as eu, Emulator(region="qianwen", region_keys=bound) as qw:
        yield eu, qw


def _status(emu, key, path="/api/v1/tasks/00000000-0000-0000-0000-000000000000"):
    return requests.get(emu.origin + path, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code


def test_the_emulator_decides_which_keys_each_place_takes(places):
    eu, qw = places
    assert _status(eu, EU_KEY) == 200 and _status(eu, TEST_KEY) == 200  # a Bailian key of no known region
    assert _status(eu, "sk-sg-0123456789") == 401 and _status(eu, "sk-qianwen-0123456789") == 401
    assert _status(qw, QW_KEY) == 200 and _status(qw, "sk-qianwen-0123456789") == 200
    assert _status(qw, TEST_KEY) == 401 and _status(qw, EU_KEY) == 401  # Bailian keys do not work there
    # The workspace region serves the 3.0 line only; the platform's offer is unknown: it serves every model.
    body = {"model": "qwen-image-plus", "input": {"messages": [{"role": "user", "content": [{"text": "a cat"}]}]},
            "parameters": {}}
    gen = "/api/v1/services/aigc/multimodal-generation/generation"
    r = requests.post(eu.origin + gen, json=body, headers={"Authorization": f"Bearer {EU_KEY}"}, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "ModelNotFound"
    r = requests.post(qw.origin + gen, json=body, headers={"Authorization": f"Bearer {QW_KEY}"}, timeout=10)
    assert r.status_code == 200
    r = requests.post(eu.origin + gen, json={**body, "model": "qwen-image-3.0"},
                      headers={"Authorization": f"Bearer {EU_KEY}"}, timeout=10)
    assert r.status_code == 200


def test_the_emulator_changes_place_through_its_control_surface(places):
    _, qw = places
    try:
        r = requests.post(qw.origin + "/_emulator/control", json={"action": "set", "region": "qwencloud"}, timeout=5)
        assert r.status_code == 200
        assert requests.get(qw.origin + "/_emulator/health", timeout=5).json()["region"] == "qwencloud"
        assert _status(qw, QW_KEY) == 401 and _status(qw, "sk-qwencloud-0123456789") == 200
        bad = requests.post(qw.origin + "/_emulator/control", json={"action": "set", "region": "mars-1"}, timeout=5)
        assert bad.status_code == 400 and "qianwen" in bad.text
    finally:
        qw.region = "qianwen"


def _check(argv, capsys):
    code = cli.main(["check", "--retries", "0", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_names_the_workspace_host_and_the_platform(places, capsys, monkeypatch):
    eu, qw = places
    bases = ["--region-base", f"eu-central-1={eu.base_url}", "--region-base", f"qianwen={qw.base_url}"]
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", EU_HOST)  # the settings: a workspace host in Frankfurt
    monkeypatch.setenv("DASHSCOPE_API_KEY", EU_KEY)
    code, out, err = _check(bases, capsys)
    rows = [line.split()[:2] for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0 and rows == [["eu-central-1", "valid"], ["qianwen", "invalid"]]  # the configured place first
    assert "qwen-image-3.0-pro" in out and "Germany (Frankfurt)" in out
    assert err.strip() == "The key belongs to Alibaba Cloud Model Studio (Bailian), Germany (Frankfurt)."
    # A Qianwen AI platform key used on the workspace host: the message names the right platform.
    monkeypatch.setenv("DASHSCOPE_API_KEY", QW_KEY)
    code, out, err = _check([*bases, "--lang", "zh"], capsys)
    assert code == 0 and "这个 Key 属于千问AI平台。" in err
    assert "这是千问AI平台的 Key，不是阿里云百炼的" in err and f"地址 {QIANWEN}" in err
    assert "以 sk-ws- 开头" in err and QW_KEY not in out + err
    # As JSON: the configured place, the platform, the hint; never the key.
    code, out, err = _check([*bases, "--json"], capsys)
    data = json.loads(out)
    assert (data["region"], data["platform"], data["configured"], data["valid"]) == (
        "qianwen", "qianwen", "eu-central-1", True)
    assert [r["platform"] for r in data["results"]] == ["bailian", "qianwen"] and "sk-ws-" in data["hint"]
    assert QW_KEY not in out


def test_check_with_a_custom_base_url_asks_it_first(places, capsys, monkeypatch):
    """Today's bug: a workspace host, gateway or emulator in DASHSCOPE_HTTP_BASE_URL / --base-url was
    never asked, so the check said "no region answered" (exit 1)."""
    eu, qw = places
    monkeypatch.setenv("DASHSCOPE_API_KEY", EU_KEY)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", eu.base_url)
    code, out, err = _check(["--region-base", f"us={DEAD}"], capsys)
    first = out.splitlines()[0].split()
    assert code == 0 and first[:2] == ["configured", "valid"] and eu.base_url in out.splitlines()[0]
    assert f"works at the configured base URL {eu.base_url}" in err and "Beijing" not in out + err
    assert "cannot be told from here" in err
    # --base-url wins over the environment; another place that takes the key names platform and region.
    code, out, err = _check(["--base-url", qw.base_url, "--region-base", f"eu-central-1={eu.base_url}",
                             "--region-base", f"qianwen={qw.base_url}"], capsys)
    rows = [line.split()[:2] for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0 and rows == [["configured", "invalid"], ["eu-central-1", "valid"], ["qianwen", "invalid"]]
    assert f"{qw.base_url} does not accept the key (InvalidApiKey)" in out
    assert "The key belongs to Alibaba Cloud Model Studio (Bailian), Germany (Frankfurt)." in err
    assert f"the configured base URL {qw.base_url} does not accept it; use the base URL {eu.base_url}" in err
    # A key nobody takes: the old exit 1, with the platforms named.
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-nobody-invalid-0123")
    code, out, err = _check(["--region-base", f"qianwen={qw.base_url}"], capsys)
    assert code == 1 and "No platform or region that answered accepts the key" in err


def test_check_offline_asks_the_emulator_alone(capsys, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)
    code, out, err = _check(["--offline"], capsys)
    assert code == 0 and len([line for line in out.splitlines() if not line.startswith(" ")]) == 1
    assert out.startswith("configured") and "works at the configured base URL http://127.0.0.1:" in err
    code, out, err = _check(["--offline", "--region-base", f"us={DEAD}"], capsys)  # as before: named places too
    rows = [line.split()[:2] for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0 and rows == [["configured", "valid"], ["us", "unreachable"]]


def test_a_token_plan_key_gets_its_hint(places, capsys, monkeypatch):
    eu, _ = places
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-sp-0123456789abcdef")
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", eu.base_url)
    code, _, err = _check(["--region-base", f"us={DEAD}", "--lang", "ja"], capsys)
    assert code == 0 and "sk-sp- で始まるキーは Token Plan のキーです" in err


def test_the_region_found_stays_with_its_caller(places):
    """Two checks at once, with keys of two platforms: each gets its own answer; nothing is kept."""
    eu, qw = places
    settings = Settings.from_env({}, base_url=DEAD)
    where = keycheck.places(settings, {"eu-central-1": eu.base_url, "qianwen": qw.base_url})
    results: dict[str, keycheck.KeyCheck] = {}
    start = threading.Barrier(2)

    def ask(key: str) -> None:
        start.wait()
        results[key] = keycheck.probe_places(key, where.bases, timeout=3, retries=0)

    threads = [threading.Thread(target=ask, args=(k,)) for k in (EU_KEY, QW_KEY)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert (results[EU_KEY].region, results[QW_KEY].region) == ("eu-central-1", "qianwen")
    assert (results[EU_KEY].platform, results[QW_KEY].platform) == ("bailian", "qianwen")
    assert settings.region == "beijing" and settings.base_url == DEAD  # the caller's settings are untouched
    again = keycheck.probe_places(TEST_KEY, {"qianwen": qw.base_url}, timeout=3, retries=0)
    assert again.region is None and not again.valid  # no memory of earlier answers


def test_the_page_names_a_custom_base_by_its_url(places):
    """The page's key check with the app on an emulator: its URL, never "Beijing"."""
    from aliyun_image.ui.key_check import key_report

    eu, qw = places
    settings = Settings.from_env({}, base_url=eu.base_url)
    where = keycheck.places(settings, others=False)
    report = key_report(keycheck.probe_places(EU_KEY, where.bases, timeout=3), where, "zh")
    assert eu.base_url in report and "北京" not in report and f"这个 Key 在所配置的地址 {eu.base_url} 有效" in report
    # The app on the workspace host, a key of the Qianwen AI platform: the right platform is named.
    ws = keycheck.places(Settings.from_env({}, base_url=EU_HOST), {"eu-central-1": eu.base_url,
                                                                    "qianwen": qw.base_url})
    report = key_report(keycheck.probe_places(QW_KEY, ws.bases, timeout=3), ws, "en", keycheck.key_hint(QW_KEY))
    assert "✓ Qianwen AI platform (千问AI平台)" in report and "✗ Germany (Frankfurt)" in report
    assert "This is a key of Qianwen AI platform (千问AI平台), not of Alibaba Cloud Model Studio" in report
    assert "sk-ws-" in report and QW_KEY not in report
    nowhere = key_report(keycheck.probe_places("sk-nobody-invalid-1", ws.bases, timeout=3), ws, "ja")
    assert "応答したどのプラットフォーム・リージョンもこのキーを受け付けません" in nowhere


# --- the download allow-list -----------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "https://dashscope-a1.oss-accelerate.aliyuncs.com/1d/ab/20261201/x.png?Expires=1&Signature=a%2Bb",
    "https://dashscope-a12.oss-accelerate.aliyuncs.com/x.png",
    "https://DASHSCOPE-A3.OSS-ACCELERATE.ALIYUNCS.COM/x.png",
    "https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/x.png",
])
def test_accelerated_result_hosts_are_allowed(url):
    assert DashScopeClient(Settings()).allows(url)


@pytest.mark.parametrize("url", [
    "https://dashscope-a1.oss-accelerate.aliyuncs.com.example.com/x.png",
    "https://dashscope-a1.oss-accelerate-aliyuncs.com/x.png",
    "https://dashscope-a1.oss-accelerate.aliyuncs.co/x.png",
    "https://dashscope-a1oss-accelerate.aliyuncs.com.cn/x.png",
    "https://dashscope-a1.oss-accelerate.aliyuncs.com@example.com/x.png",
    "https://user:pw@dashscope-a1.oss-accelerate.aliyuncs.com/x.png",
    "https://example.com\\@dashscope-a1.oss-accelerate.aliyuncs.com/x.png",
    "https://dashscope-a1.oss-accelerate.aliyuncs.com%2eexample.com/x.png",
    "ftp://dashscope-a1.oss-accelerate.aliyuncs.com/x.png",
])
def test_look_alikes_of_result_hosts_are_refused(url):
    client = DashScopeClient(Settings())
    assert not client.allows(url)
    with pytest.raises(DownloadError) as ei:
        client.check_host(url)
    assert ei.value.code == "Download.HostNotAllowed"


def test_a_backslash_cannot_smuggle_a_download_to_another_host(settings, emu, tmp_path):
    """``http://127.0.0.1:P\\@dashscope-a1.oss-accelerate.aliyuncs.com/...`` reads as an Alibaba host to
    urlsplit but connects to 127.0.0.1:P for requests: refused before any byte is fetched there."""
    with Emulator() as other:
        url = f"http://127.0.0.1:{other.port}\\@dashscope-a1.oss-accelerate.aliyuncs.com/results/x.png"
        client = DashScopeClient(settings)
        with pytest.raises(DownloadError) as ei, (tmp_path / "x.png").open("wb+") as out:
            client.download(url, out)
        assert ei.value.code == "Download.HostNotAllowed" and other.requests == []
        client.close()


def test_the_emulator_command_plays_a_platform(tmp_path):
    """``python -m aliyun_image emulator --plays qianwen``: a real server that takes the platform's keys only."""
    import os
    import subprocess
    import sys

    from .test_cli import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_"))}
    env.update(PYTHONPATH=str(ROOT), LANG="C.UTF-8")
    proc = subprocess.Popen([sys.executable, "-m", "aliyun_image", "emulator", "--plays", "qianwen", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stderr.readline()
        base = next(word for word in line.split() if word.startswith("http://"))
        health = requests.get(base.replace("/api/v1", "/_emulator/health"), timeout=5).json()
        assert health["region"] == "qianwen"
        probe = base + "/tasks/00000000-0000-0000-0000-000000000000"
        assert requests.get(probe, headers={"Authorization": "Bearer sk-ws-abcdef123"}, timeout=5).status_code == 200
        assert requests.get(probe, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()
    bad = subprocess.run([sys.executable, "-m", "aliyun_image", "emulator", "--plays", "mars"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "qwencloud" in bad.stderr
