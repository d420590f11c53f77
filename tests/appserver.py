"""Launch ``python app.py`` in a subprocess on a free port, for gradio_client and browser tests."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
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


class ForkedApp:
    """The part of ``subprocess.Popen`` the tests use, for an app forked by tests/appzygote.py.

    The zygote, not this process, is the parent and reaps the child: "exited" is "the pid is gone",
    and the exit status is not known here (``returncode`` -1 once gone).
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"app pid {self.pid}", timeout or 0)
            time.sleep(0.05)
        return -1

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Zygote:
    """One tests/appzygote.py per test process, started on first use, stopped at exit."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def fork(self, req: dict) -> ForkedApp:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError(f"the app fork server did not answer: {line!r}")
            return ForkedApp(int(line))

    def _start(self) -> None:
        env = _base_env()
        env["GRADIO_TEMP_DIR"] = os.environ.get("GRADIO_TEMP_DIR") or str(Path(os.environ.get("TMPDIR", "/tmp")))
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "appzygote.py")], env=env, cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the app fork server did not start")
        atexit.register(self.stop)

    def stop(self) -> None:
        """Close its stdin: it stops the apps still running, waits for them and exits."""
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


_ZYGOTE = _Zygote()


def stop_fork_server() -> None:
    """Stop the fork server (and any app it still runs); the next launch starts a new one."""
    _ZYGOTE.stop()


def _base_env() -> dict[str, str]:
    """The environment every app starts from: the shell's, minus what the test decides."""
    ours = ("DASHSCOPE_", "ALIYUN_IMAGE_", "GRADIO_", "SPACE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update({"PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_OFFLINE": "1"})
    return env


@dataclass
class RunningApp:
    url: str
    proc: subprocess.Popen | ForkedApp
    data_dir: Path
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


PORT_TAKEN = ("address already in use", "Cannot find empty port", "Errno 98")
# Gradio's launch() asks its own URL with a 3 s timeout and gives up ("localhost is not accessible")
# when a busy machine answers later: a start the load defeated, not the app, so it is started again.
START_AGAIN = (*PORT_TAKEN, "When localhost is not accessible")


class _PortTaken(RuntimeError):
    pass


def launch(args: list[str], data_dir: Path, env_extra: dict[str, str] | None = None, cwd: Path | None = None,
           timeout: float = 120, python: str | None = None, fresh_process: bool = False) -> RunningApp:
    """Start the app and wait until it answers HTTP 200 on ``/``; ``python``: the interpreter
    (another virtualenv's, always a fresh process), this one by default.

    By default the app is forked from tests/appzygote.py, which has the imports done already (the same
    ``main()`` with the same argv, environment and working directory; about 3 s of CPU less per app).
    ``fresh_process=True`` runs ``python app.py`` itself, for the tests of that start (and so does every
    launch when the environment has ``TESTS_FRESH_APPS=1``, to compare or to rule the fork server out).
    The port is picked free just before the start; should another process (a parallel worker) take it
    in between, the app exits saying so and is started again on another port (so too when Gradio's
    own start-up check of its URL timed out on a busy machine).
    """
    for attempt in range(3):
        try:
            return _launch_once(args, data_dir, env_extra, cwd, timeout, python, fresh_process)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _launch_once(args: list[str], data_dir: Path, env_extra: dict[str, str] | None, cwd: Path | None,
                 timeout: float, python: str | None = None, fresh_process: bool = False) -> RunningApp:
    port = free_port()
    env = _base_env()  # the test decides DASHSCOPE_*, ALIYUN_IMAGE_*, GRADIO_*, SPACE_*, not the shell
    env.update({"ALIYUN_IMAGE_DATA_DIR": str(data_dir), "GRADIO_TEMP_DIR": str(data_dir.parent / "gradio-tmp")})
    env.update(env_extra or {})
    log = data_dir.parent / f"app-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(ROOT / "app.py"), "--port", str(port), *args]
    workdir = cwd or data_dir.parent
    proc: subprocess.Popen | ForkedApp
    if python or fresh_process or os.environ.get("TESTS_FRESH_APPS") == "1":  # the switch: every app a fresh process
        with open(log, "wb") as fh:  # the app writes to its own copy of the descriptor
            proc = subprocess.Popen([python or sys.executable, *argv], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    cwd=workdir)
    else:
        log.write_bytes(b"")  # before the fork: the log exists as soon as there is a pid to watch
        proc = _ZYGOTE.fork({"app": argv[0], "args": argv[1:], "env": env, "cwd": str(workdir), "log": str(log)})
    try:
        wait_until_serving(proc, port, log, timeout)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return RunningApp(f"http://127.0.0.1:{port}/", proc, data_dir, log)


def wait_until_serving(proc: subprocess.Popen | ForkedApp, port: int, log: Path, timeout: float = 120) -> None:
    """Wait until the app started as ``proc`` (writing to ``log``) answers HTTP 200 on ``/``.

    Its own start-up line names the port: a 200 from another process that took the port is not it.
    Raises _PortTaken when the app exits because the port is in use.
    """
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            if any(s in text for s in START_AGAIN):
                raise _PortTaken(text)
            raise RuntimeError(f"app exited early:\n{text}")
        if f":{port}" in log.read_text(errors="replace"):
            try:
                if requests.get(url, timeout=30).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or slow to answer
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
