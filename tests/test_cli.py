"""The CLI as a user runs it: a subprocess, real exit codes, stdout paths, stderr messages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from .conftest import TEST_KEY

ROOT = Path(__file__).resolve().parent.parent


def run(args, env_extra=None, data_dir=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_"))}
    env.update({"PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"})
    if data_dir:
        env["ALIYUN_IMAGE_DATA_DIR"] = str(data_dir)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "aliyun_image", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=data_dir.parent if data_dir else None)


@pytest.fixture
def cli_env(emu):
    return {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}


def test_generate_prints_paths_and_seed(cli_env, clean_env):
    r = run(["generate", "一只橘猫在阳光下打盹", "--size", "1:1", "--seed", "7", "-n", "2"], cli_env, clean_env)
    assert r.returncode == 0, r.stderr
    paths = r.stdout.split()
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)
    assert "seed 7, 8" in r.stderr and "Traceback" not in r.stderr
    with Image.open(paths[0]) as im:
        assert im.size == (1328, 1328) and "Seed: 7" in im.text["parameters"]


def test_offline_mode_needs_no_key(clean_env):
    r = run(["--offline", "generate", "a lighthouse at dusk", "--max"], data_dir=clean_env)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).is_file() and "qwen-image-max" in r.stderr


def test_edit_with_local_path_and_history(cli_env, clean_env, tmp_path):
    src = tmp_path / "in.png"
    Image.new("RGB", (640, 480), "navy").save(src)
    r = run(["edit", str(src), "把背景换成星空", "-n", "2"], cli_env, clean_env)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 2
    h = run(["history", "--json"], cli_env, clean_env)
    rows = [json.loads(line) for line in h.stdout.splitlines()]
    assert h.returncode == 0 and len(rows) == 2 and rows[0]["task"] == "edit"


@pytest.mark.parametrize("args,needle", [
    (["generate", ""], "empty"),
    (["generate", "x" * 801], "801"),
    (["generate", "cat", "--size", "1024x1024"], "1664*928"),
    (["generate", "cat", "-n", "7"], "1-6"),
    (["generate", "cat", "--seed", "-5"], "Seed"),
    (["generate", "cat", "--seed", "2147483648"], "Seed"),
    (["edit", "a.png,b.png,c.png,d.png", "merge"], "1-3"),
    (["edit", "/no/such/file.png", "fix"], "file.png"),
])
def test_validation_errors_exit_2_without_calling_the_api(cli_env, clean_env, emu, args, needle):
    r = run(args, cli_env, clean_env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not emu.calls("generation")


def test_api_error_exit_1_one_line(clean_env, emu):
    r = run(["generate", "cat"], {"DASHSCOPE_API_KEY": "sk-invalid-0000000",
                                  "DASHSCOPE_HTTP_BASE_URL": emu.base_url}, clean_env)
    assert r.returncode == 1 and "InvalidApiKey" in r.stderr and "sk-invalid" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_chinese_messages(clean_env, emu):
    r = run(["--lang", "zh", "generate", ""], {"DASHSCOPE_API_KEY": TEST_KEY,
                                                "DASHSCOPE_HTTP_BASE_URL": emu.base_url}, clean_env)
    assert r.returncode == 2 and "提示词为空" in r.stderr


def test_no_key_message(clean_env, emu):
    r = run(["generate", "cat"], {"DASHSCOPE_HTTP_BASE_URL": emu.base_url}, clean_env)
    assert r.returncode == 2 and "DASHSCOPE_API_KEY" in r.stderr


def test_network_down_exit_1(clean_env):
    r = run(["--retries", "0", "generate", "cat"], {"DASHSCOPE_API_KEY": TEST_KEY,
                                                   "DASHSCOPE_HTTP_BASE_URL": "http://127.0.0.1:9/api/v1"}, clean_env)
    assert r.returncode == 1 and "connect" in r.stderr.lower() and "Traceback" not in r.stderr


def test_download_and_models(cli_env, clean_env, tmp_path):
    gen = run(["generate", "cat", "-q"], cli_env, clean_env)
    from aliyun_image.storage.store import ResultStore
    url = ResultStore.open(clean_env).page()[0][0].url
    r = run(["download", url, str(tmp_path / "dl.png")], cli_env, clean_env)
    assert gen.returncode == 0 and r.returncode == 0 and (tmp_path / "dl.png").is_file()
    m = run(["models"])
    assert m.returncode == 0 and "qwen-image-edit-max" in m.stdout and "1472*1104" in m.stdout


def test_usage_error_exit_2():
    r = run(["generate"])
    assert r.returncode == 2


def test_emulator_command_serves(tmp_path):
    import socket
    import time

    import requests
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "aliyun_image", "emulator", "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        for _ in range(600):  # up to a minute for the process to listen (a busy machine)
            try:
                r = requests.post(f"http://127.0.0.1:{port}/api/v1/services/aigc/multimodal-generation/generation",
                                  json={}, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.status_code == 400 and r.json()["code"]
    finally:
        p.terminate()
        p.wait(10)


def test_split_images_keeps_data_uris_and_commas_in_urls(tmp_path):
    from aliyun_image.cli.commands import split_images
    uri = "data:image/png;base64,iVBORw0KGgo="
    assert split_images(uri) == [uri]
    assert split_images("a.png,b.jpg") == ["a.png", "b.jpg"]
    assert split_images("https://x.com/a.png?sig=1,2,https://x.com/b.png") == [
        "https://x.com/a.png?sig=1,2", "https://x.com/b.png"]
    assert split_images(f"{uri},https://x.com/b.png") == [uri, "https://x.com/b.png"]


@pytest.mark.parametrize("args", [["--timeout", "0"], ["--retries", "-1"], ["--base-url", "http:///api/v1"]])
def test_bad_settings_exit_2_with_a_message(clean_env, args):
    r = run([*args, "generate", "cat"], {"DASHSCOPE_API_KEY": TEST_KEY}, clean_env)
    assert r.returncode == 2 and "unexpected" not in r.stderr.lower() and "Traceback" not in r.stderr


def test_next_run_completes_an_interrupted_download(cli_env, clean_env, emu):
    from aliyun_image.config import Settings
    from aliyun_image.generation.service import ImageService
    from aliyun_image.storage.store import NewResult
    svc = ImageService(Settings.from_env(base_url=emu.base_url, api_key=TEST_KEY, data_dir=clean_env))
    reply = svc.client.generate(TEST_KEY, {"model": "qwen-image-plus", "input": {"messages": [
        {"role": "user", "content": [{"text": "left behind"}]}]}, "parameters": {}})
    url = reply.data["output"]["choices"][0]["message"]["content"][0]["image"]
    svc.store.add_pending([NewResult("b", 0, "t2i", "qwen-image-plus", "left behind", "", {}, 1, [], "", {}, None,
                                     url, None)])
    svc.store.close()
    r = run(["generate", "new one"], cli_env, clean_env)
    assert r.returncode == 0 and "interrupted download" in r.stderr


def test_progress_on_a_terminal_only(cli_env, clean_env):
    """stderr shows a live counter when it is a terminal (a real pty here), nothing when piped."""
    import pty
    import select

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_"))}
    env.update(cli_env, PYTHONPATH=str(ROOT), ALIYUN_IMAGE_DATA_DIR=str(clean_env), LANG="C.UTF-8")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "aliyun_image", "generate", "cat", "-n", "2"],
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=30)
    os.close(master)
    assert proc.returncode == 0 and len(out.split()) == 2
    text = seen.decode(errors="replace")
    assert "Working 0/2" in text and "2/2 done" in text
    piped = run(["generate", "cat", "-n", "2"], cli_env, clean_env)
    assert "Working" not in piped.stderr and "done" not in piped.stderr.split("\n")[0]


def test_download_of_a_non_url_is_a_usage_error(cli_env, clean_env):
    r = run(["download", "notaurl"], cli_env, clean_env)
    assert r.returncode == 2 and "not a valid image URL" in r.stderr


def test_tampered_result_url_message(cli_env, clean_env, emu):
    assert run(["generate", "cat", "-q"], cli_env, clean_env).returncode == 0
    from aliyun_image.storage.store import ResultStore
    url = ResultStore.open(clean_env).page()[0][0].url
    bad = url.rsplit("Signature=", 1)[0] + "Signature=" + "0" * 64
    r = run(["download", bad], cli_env, clean_env)
    assert r.returncode == 1 and "signature" in r.stderr.lower() and "Copy the complete" in r.stderr


def test_no_key_suggests_offline(clean_env, emu):
    r = run(["generate", "cat"], {"DASHSCOPE_HTTP_BASE_URL": emu.base_url}, clean_env)
    assert r.returncode == 2 and "--offline" in r.stderr


# --- models and check -------------------------------------------------------------------------------
def test_models_shows_status_regions_limits_and_prices():
    r = run(["models"])
    assert r.returncode == 0, r.stderr
    blocks = {b.split()[0]: b for b in _blocks(r.stdout)}
    assert "[legacy; t2i; sync/async]" in blocks["qwen-image-plus"]
    assert "Beijing 0.2 CNY; Singapore 0.220177 CNY" in blocks["qwen-image-plus"]
    assert "Beijing 0.1 CNY (rewriting off) / 0.2 (rewriting on)" in blocks["z-image-turbo"]
    assert "no negative prompt" in blocks["z-image-turbo"]
    assert "Beijing 0.18 CNY, +0.02 per input image; Singapore 0.03 USD, +0.003 per input image" in blocks[
        "qwen-image-3.0"]
    assert "Beijing price unknown; Singapore 0.04 USD" in blocks["qwen-image-2.1-pro"]
    assert "unverified" in blocks["qwen-image-2.1-pro"].splitlines()[0]
    assert "input images 1-10" in blocks["qwen-image-2.1-pro"]
    assert "width and height each 512-2048 px" in blocks["qwen-image-edit-plus"]


def _blocks(text):
    """``models`` output split into one block per model (a block starts at an unindented line)."""
    out, cur = [], []
    for line in text.splitlines():
        if not line.startswith(" ") and cur:
            out.append("\n".join(cur))
            cur = []
        cur.append(line)
    return out + (["\n".join(cur)] if cur else [])


def test_models_json_has_everything():
    r = run(["models", "--json"])
    assert r.returncode == 0, r.stderr
    models = {m["id"]: m for m in json.loads(r.stdout)}
    from aliyun_image.catalog import spec as catalog
    assert set(models) == set(catalog.all_model_names())
    z = models["z-image-turbo"]
    assert z["price"] == {"beijing": 0.10, "singapore": 0.110089}
    assert z["price_extend"] == {"beijing": 0.20, "singapore": 0.220177} and z["prompt_extend_default"] is False
    plus = models["qwen-image-plus"]
    assert plus["status"] == "legacy" and plus["regions"] == ["beijing", "singapore"] and plus["n"] == [1, 1]
    t2i = plus["sizes"]["t2i"]
    assert t2i["kind"] == "fixed" and {"ratio": "4:3", "size": "1472*1104"} in t2i["presets"]
    assert plus["prompt_max"] == 800 and plus["images"] is None
    edit = models["qwen-image-edit-plus"]
    assert edit["images"] == [1, 3] and edit["sizes"]["edit"]["min_side"] == 512
    assert models["qwen-image-3.0"]["price"] == {"beijing": 0.18, "singapore": 0.03}
    p21 = models["qwen-image-2.1-pro"]
    assert p21["price"] == {"singapore": 0.04} and p21["currencies"] == {"singapore": "USD"}
    assert p21["verified"] is False


SG_KEY = "sk-singapore-0123456789"  # not a real key: accepted only by the emulator playing Singapore


@pytest.fixture(scope="module")
def two_regions():
    """Two emulators playing Beijing and Singapore, each accepting only its own key."""
    from aliyun_image.emulator import Emulator

    with Emulator(api_keys={"sk-beijing-0123456789"}) as bj, Emulator(api_keys={SG_KEY}) as sg:
        yield bj, sg


def _check_args(bj, sg, *extra):
    return ["check", "--region-base", f"beijing={bj.base_url}", "--region-base", f"singapore={sg.base_url}",
            "--region-base", "us=http://127.0.0.1:9/api/v1", "--retries", "0", *extra]


def test_check_tells_the_region_of_the_key(two_regions, clean_env):
    bj, sg = two_regions
    r = run(_check_args(bj, sg), {"DASHSCOPE_API_KEY": SG_KEY}, clean_env)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if not line.startswith(" ")}
    assert rows["beijing"].split()[1] == "invalid" and rows["singapore"].split()[1] == "valid"
    assert rows["us"].split()[1] == "unreachable" and " ms " in rows["singapore"]
    assert "qwen-image-plus" in r.stdout and "belongs to Alibaba Cloud Model Studio (Bailian), Singapore" in r.stderr
    assert "--region singapore" in r.stderr  # the settings (default: Beijing) point elsewhere
    assert SG_KEY not in r.stdout + r.stderr and "Traceback" not in r.stderr


def test_check_json_and_key_file(two_regions, clean_env, tmp_path):
    bj, sg = two_regions
    key_file = tmp_path / "key.txt"
    key_file.write_text(SG_KEY + "\n")
    r = run(_check_args(bj, sg, "--json"), {"DASHSCOPE_API_KEY_FILE_PATH": str(key_file)}, clean_env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["region"] == "singapore" and data["valid"] is True
    by = {x["region"]: x for x in data["results"]}
    assert by["beijing"]["status"] == "invalid" and by["us"]["status"] == "unreachable"
    assert isinstance(by["singapore"]["latency_ms"], int) and "qwen-image-edit-plus" in by["singapore"]["models"]
    assert SG_KEY not in r.stdout + r.stderr and key_file.read_text() == SG_KEY + "\n"


def test_check_with_a_key_valid_nowhere_or_no_key(two_regions, clean_env, tmp_path):
    bj, sg = two_regions
    bad = run(_check_args(bj, sg, "--lang", "zh"), {"DASHSCOPE_API_KEY": "sk-nowhere-0123456789"}, clean_env)
    assert bad.returncode == 1 and "无效" in bad.stdout and "都不接受这个 Key" in bad.stderr
    assert "sk-nowhere" not in bad.stdout + bad.stderr
    bj.clear()
    none = run(_check_args(bj, sg), {"HOME": str(tmp_path)}, clean_env)
    assert none.returncode == 2 and "No API key" in none.stderr and bj.calls("task_get") == []
    usage = run(["check", "--region-base", "beijing"], {"DASHSCOPE_API_KEY": SG_KEY}, clean_env)
    assert usage.returncode == 2 and "REGION=URL" in usage.stderr and "Traceback" not in usage.stderr
