"""A fork server for the app under test: ``python app.py`` without paying for its imports each time.

Importing Gradio (and FastAPI, pandas, IPython that it pulls in) is about 3 s of CPU, most of what an
app start costs; the suite starts about thirty apps. This process imports the app's modules once, then
for each request forks a child that becomes ``python app.py ARGS`` exactly as a fresh process would:
its own environment, working directory and argv, stdout and stderr into its own log file, stdin from
/dev/null, and the same ``aliyun_image.cli.webapp.main()`` as app.py. Nothing in the app is changed
or mocked; only the import work is shared (copy-on-write).

Protocol (one per pytest worker, see tests/appserver.py): a JSON line on stdin
``{"args": [...], "env": {...}, "cwd": "...", "log": "..."}``; the reply on stdout is the child's pid.
Children are reaped here as they exit (so their CPU time counts in this process's children, and
in the suite's), and the caller watches the pid itself. When stdin closes, children still running
are stopped and waited for.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import tempfile
import traceback


def _become_app(req: dict, reply_fd: int) -> int:
    """In the forked child: set up the process the way ``Popen`` would have, then run the app."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the app's own subprocesses must be waitable
    os.close(reply_fd)
    log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    tempfile.tempdir = None  # TMPDIR is read again on first use, as in a fresh process
    # The few Gradio constants taken from GRADIO_TEMP_DIR at import time follow this app's value.
    temp = os.environ.get("GRADIO_TEMP_DIR")
    if temp:
        for name, mod in list(sys.modules.items()):
            if name.startswith("gradio") and isinstance(getattr(mod, "DEFAULT_TEMP_DIR", None), str):
                mod.DEFAULT_TEMP_DIR = temp  # type: ignore[attr-defined]
    sys.argv = [req["app"], *req["args"]]
    from aliyun_image.cli.webapp import main

    return main()


#: imported by every app on its way to serving, after its module imports (measured with sys.modules):
#: the offline backend's emulator, the HTTP server, the pydantic v1 shim FastAPI looks for, fonts.
PRELOAD = ("aliyun_image.emulator", "gradio.http_server", "uvicorn.main", "uvicorn.lifespan.on", "uvicorn.loops.auto",
           "uvicorn.protocols.http.auto", "uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.httptools_impl",
           "uvicorn.protocols.websockets.auto", "uvicorn.protocols.websockets.websockets_impl",
           "uvicorn.protocols.websockets.wsproto_impl", "uvicorn.supervisors", "pydantic.v1", "PIL.ImageDraw",
           "PIL.ImageFont", "starlette.middleware.cors", "http.server", "multiprocessing.connection", "xml.sax",
           "anyio.streams.memory", "anyio.streams.stapled")

_LIVE: set[int] = set()


def _reap(_signum: int = 0, _frame: object = None) -> None:
    """Wait for every child that has exited (a SIGCHLD handler; the read of stdin resumes after it)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _LIVE.discard(pid)


def serve() -> None:
    """Import the app once, then fork one child per request line until stdin closes."""
    from aliyun_image.cli import webapp  # noqa: F401 - the imports every child shares
    from aliyun_image import ui  # noqa: F401 - Gradio and the page's modules

    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # an optional one (httptools, wsproto...): the app does without
            importlib.import_module(name)

    signal.signal(signal.SIGCHLD, _reap)
    reply_fd = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing stray on the reply channel
    os.write(reply_fd, b"ready\n")
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # reaped only once it is in _LIVE
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            code = 1
            try:
                code = _become_app(req, reply_fd)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - the child must never return into the fork loop
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        _LIVE.add(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        os.write(reply_fd, f"{pid}\n".encode())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in list(_LIVE):  # apps a test left running
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break


if __name__ == "__main__":
    serve()
