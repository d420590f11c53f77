"""``pip install .`` gives working ``aliyun-image`` and ``aliyun-image-app`` commands (a fresh venv
that sees this machine's packages, so only our own package is installed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .appserver import ROOT, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    # A copy of the tree: an install must not leave build files in the checkout.
    src = tmp_path_factory.mktemp("src")
    subprocess.run(f"git -C {ROOT} ls-files -co --exclude-standard -z | xargs -0 cp --parents -t {src}",
                   shell=True, check=True)
    r = subprocess.run([str(env_dir / "bin" / "pip"), "install", "-q", "--no-deps", "--disable-pip-version-check",
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return env_dir


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_", "PYTHON"))}
    env.update(ALIYUN_IMAGE_DATA_DIR=str(tmp / "data"), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", GRADIO_TEMP_DIR=str(tmp / "gradio"))
    return env


def test_cli_command_generates_offline(venv, tmp_path):
    r = subprocess.run([str(venv / "bin" / "aliyun-image"), "--offline", "generate", "一只橘猫", "--size", "1:1"],
                       capture_output=True, text=True, env=_clean_env(tmp_path), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "data" / "images").rglob("*.png"))


def test_app_command_serves_the_page_with_its_styles(venv, tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(venv / "bin" / "aliyun-image-app"), "--offline", "--port", str(port)],
                            env=_clean_env(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                if page.status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail("the installed app did not start")
        assert "X-DashScope-API-Key" in page.text  # the head script shipped inside the package
        assert ".char-count" in requests.get(f"http://127.0.0.1:{port}/config", timeout=5).text  # its CSS
    finally:
        proc.terminate()
        proc.wait(10)
