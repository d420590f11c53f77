"""``pip install .`` gives working ``aliyun-image`` and ``aliyun-image-app`` commands.

The package is installed (``--no-deps``) into a fresh venv of its own. Its dependencies come from the
environment running the tests, whatever that is (the system Python, a virtualenv, a venv with or
without system site-packages): the new venv is given that environment's site-packages *after* its
own, so what runs is the installed package (checked), with the dependencies the suite already has.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .appserver import ROOT, free_port, wait_until_serving

pytestmark = pytest.mark.slow


def _running_site_dirs() -> list[str]:
    """The site-packages of the interpreter running the tests (a venv's own, and those it sees)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    # Not --system-site-packages: from inside a virtualenv that would be the base interpreter's
    # packages, not the ones the suite runs with.
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    # A .pth line starting with "import" runs at start-up: add the running environment's site dirs
    # (their own .pth files included) after the venv's own site-packages.
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in _running_site_dirs())
    Path(own, "_aliyun_image_tests_deps.pth").write_text(lines)
    # A copy of the tree: an install must not leave build files in the checkout.
    src = tmp_path_factory.mktemp("src")
    subprocess.run(f"git -C {ROOT} ls-files -co --exclude-standard -z | xargs -0 cp --parents -t {src}",
                   shell=True, check=True)
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return env_dir


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_", "PYTHON"))}
    env.update(ALIYUN_IMAGE_DATA_DIR=str(tmp / "data"), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", GRADIO_TEMP_DIR=str(tmp / "gradio"))
    return env


def test_the_installed_package_is_the_one_that_runs(venv, tmp_path):
    r = subprocess.run([str(venv / "bin" / "python"), "-c", "import aliyun_image; print(aliyun_image.__file__)"],
                       capture_output=True, text=True, env=_clean_env(tmp_path), cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).resolve().is_relative_to(venv.resolve()), r.stdout


def test_cli_command_generates_offline(venv, tmp_path):
    r = subprocess.run([str(venv / "bin" / "aliyun-image"), "--offline", "generate", "一只橘猫", "--size", "1:1"],
                       capture_output=True, text=True, env=_clean_env(tmp_path), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "data" / "images").rglob("*.png"))


def test_app_command_serves_the_page_with_its_styles(venv, tmp_path):
    port = free_port()
    log = tmp_path / "app.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(venv / "bin" / "aliyun-image-app"), "--offline", "--port", str(port)],
                                env=_clean_env(tmp_path), cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(proc, port, log)
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert "X-DashScope-API-Key" in page.text  # the head script shipped inside the package
        assert ".char-count" in requests.get(f"http://127.0.0.1:{port}/config", timeout=5).text  # its CSS
    finally:
        proc.terminate()
        proc.wait(10)
