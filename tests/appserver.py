"""Launch ``python app.py`` in a subprocess on a free port, for gradio_client and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@dataclass
class RunningApp:
    url: str
    proc: subprocess.Popen
    data_dir: Path
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


PORT_TAKEN = ("address already in use", "Cannot find empty port", "Errno 98")


class _PortTaken(RuntimeError):
    pass


def launch(args: list[str], data_dir: Path, env_extra: dict[str, str] | None = None, cwd: Path | None = None,
           timeout: float = 120, python: str | None = None) -> RunningApp:
    """Start the app and wait until it answers HTTP 200 on ``/``; ``python``: the interpreter
    (another virtualenv's), this one by default.

    The port is picked free just before the start; should another process (a parallel worker) take it
    in between, the app exits saying so and is started again on another port.
    """
    for attempt in range(3):
        try:
            return _launch_once(args, data_dir, env_extra, cwd, timeout, python)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _launch_once(args: list[str], data_dir: Path, env_extra: dict[str, str] | None, cwd: Path | None,
                 timeout: float, python: str | None = None) -> RunningApp:
    port = free_port()
    ours = ("DASHSCOPE_", "ALIYUN_IMAGE_", "GRADIO_", "SPACE_")  # the test decides these, not the shell
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update({"PYTHONPATH": str(ROOT), "ALIYUN_IMAGE_DATA_DIR": str(data_dir), "GRADIO_ANALYTICS_ENABLED": "False",
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
                "GRADIO_TEMP_DIR": str(data_dir.parent / "gradio-tmp")})
    env.update(env_extra or {})
    log = data_dir.parent / f"app-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:  # the app writes to its own copy of the descriptor
        proc = subprocess.Popen([python or sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], env=env,
                                stdout=fh, stderr=subprocess.STDOUT, cwd=cwd or data_dir.parent)
    try:
        wait_until_serving(proc, port, log, timeout)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return RunningApp(f"http://127.0.0.1:{port}/", proc, data_dir, log)


def wait_until_serving(proc: subprocess.Popen, port: int, log: Path, timeout: float = 120) -> None:
    """Wait until the app started as ``proc`` (writing to ``log``) answers HTTP 200 on ``/``.

    Its own start-up line names the port: a 200 from another process that took the port is not it.
    Raises _PortTaken when the app exits because the port is in use.
    """
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            if any(s in text for s in PORT_TAKEN):
                raise _PortTaken(text)
            raise RuntimeError(f"app exited early:\n{text}")
        if f":{port}" in log.read_text(errors="replace"):
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"app did not start in {timeout}s:\n{log.read_text(errors='replace')}")


def running(tmp_path_factory, name: str, args: list[str], *, hosted: bool = False,
            env_extra: dict[str, str] | None = None, python: str | None = None) -> Iterator[RunningApp]:
    """Body of a module-scoped fixture: the app in its own temp dir, stopped afterwards.

    Hosted mode needs the results folder inside the working directory, so it runs from ``root``
    with ``root/outputs``; local mode keeps results in ``root/data``.
    """
    root = tmp_path_factory.mktemp(name)
    app = launch(args, root / ("outputs" if hosted else "data"), env_extra=env_extra, cwd=root if hosted else None,
                 python=python)
    try:
        yield app
    finally:
        app.stop()
