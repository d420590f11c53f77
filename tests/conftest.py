"""Shared fixtures: a clean environment per test, one emulator per session, fast settings."""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Each pytest-xdist worker ("gw0", "gw1", ...; "main" without xdist) gets its own Gradio upload folder.
# Set before any test module imports Gradio, which reads it at import time.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_GRADIO_TMP = tempfile.mkdtemp(prefix=f"aliyun-image-tests-gradio-{WORKER}-")
os.environ["GRADIO_TEMP_DIR"] = _GRADIO_TMP
atexit.register(shutil.rmtree, _GRADIO_TMP, ignore_errors=True)

TEST_KEY = "sk-test-0123456789abcdef"  # accepted by the emulator; not a real key
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# The ceiling of every wait in a browser test (ms): the wait ends when the page reaches the state it
# waits for, so a generous ceiling costs nothing when all is well, and a busy 2-core machine running
# four workers, Chromium and the apps can take far longer than a quiet one to get there.
WAIT_MS = 90_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test sees the developer's key or base URL; results go to a temp dir."""
    for var in list(os.environ):
        if var.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_")):
            monkeypatch.delenv(var)
    data = tmp_path / "data"
    monkeypatch.setenv("ALIYUN_IMAGE_DATA_DIR", str(data))
    # nor the developer's ~/.dashscope/api_key (read like the SDK when no key is given)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return data


@pytest.fixture(scope="session", autouse=True)
def _fork_server_stopped_at_the_end():
    """The app fork server (tests/appserver.py) is stopped and waited for before the process ends, so
    the apps it forked are stopped too and their CPU time counts in the suite's (``time`` sees it)."""
    yield
    appserver = sys.modules.get(f"{__package__}.appserver") if __package__ else None
    if appserver is not None:
        appserver.stop_fork_server()


@pytest.fixture(scope="session")
def emulator_server():
    """One emulator for the whole session (tests clear it between uses)."""
    from aliyun_image.emulator import Emulator

    with Emulator(task_delay=0.2) as emu:
        yield emu


@pytest.fixture
def emu(emulator_server):
    """The session emulator with no recorded requests and no pending faults."""
    emulator_server.clear()
    emulator_server.latency = 0.0
    yield emulator_server
    emulator_server.clear()
    emulator_server.latency = 0.0


@pytest.fixture
def settings(emu, clean_env):
    """Settings pointed at the emulator with quick retries, so fault tests stay fast."""
    from aliyun_image.config import Settings

    return Settings.from_env(base_url=emu.base_url, api_key=TEST_KEY, data_dir=clean_env,
                             backoff_base=0.02, backoff_max=0.1, retry_after_max=1.5,
                             poll_schedule=(0.05, 0.1), read_timeout=10, fsync=False)


@pytest.fixture
def service(settings):
    """An ImageService on the emulator with its own store in the test's temp dir."""
    from aliyun_image.generation.service import ImageService

    svc = ImageService(settings)
    yield svc
    svc.store.close()
    svc.client.close()


def gradio_client(url: str, **kwargs):
    """``gradio_client.Client`` for a launched app, with a generous HTTP timeout: httpx's default of
    5 s is less than a busy 2-core machine can take to answer an app's first requests."""
    from gradio_client import Client

    kwargs.setdefault("verbose", False)
    kwargs.setdefault("httpx_kwargs", {"timeout": 120})
    return Client(url, **kwargs)


class PatientBrowser:
    """A Playwright browser whose pages wait up to WAIT_MS by default (each page its own context).

    One per browser test module (tests/test_browser.py ``browser``), not one per session: Playwright's
    sync API keeps an asyncio loop marked running on the thread while it is started, and a later
    module's ``asyncio.run`` (tests/test_mcp.py) would then fail.
    """

    opened: list = []  # pages of the running test, closed after it (see _close_pages)

    def __init__(self, browser):
        self._browser = browser

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)
        page.set_default_timeout(WAIT_MS)
        PatientBrowser.opened.append(page)
        return page

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def _close_pages():
    """Close the pages a test left open: an open Gradio page keeps its renderer busy (its queue
    connection, animations), and a module's dozen of them took a core from the tests still running."""
    yield
    while PatientBrowser.opened:
        page = PatientBrowser.opened.pop()
        with contextlib.suppress(Exception):  # closed already, or its browser is gone
            page.close()


@dataclass
class CliResult:
    """What ``subprocess.run(..., capture_output=True, text=True)`` gives, from an in-process run."""
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_cli(args: list[str], env_extra: dict[str, str] | None = None, data_dir: Path | None = None,
            timeout: float | None = None) -> CliResult:
    """``python -m aliyun_image ARGS`` in this process: ``cli.main(argv)`` with the environment, working
    directory and captured streams a subprocess would have (no DASHSCOPE_/ALIYUN_IMAGE_ variables but
    those given, LANG=C.UTF-8, stdout and stderr not terminals). For tests where the subprocess is not
    the point; tests/test_cli.py keeps the real one. ``timeout`` is accepted for the subprocess's signature."""
    from aliyun_image.cli import main

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_"))}
    env["LANG"] = "C.UTF-8"
    if data_dir:
        env["ALIYUN_IMAGE_DATA_DIR"] = str(data_dir)
    env.update(env_extra or {})
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    try:
        if data_dir:
            os.chdir(data_dir.parent)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return CliResult(list(args), code, out.getvalue(), err.getvalue())


# --- the order of the modules (pytest.ini: --dist loadfile --no-loadscope-reorder) ------------------
# pytest-xdist deals each test module out whole, in collection order: the longest go first, so that no
# long one starts last and runs alone at the end, and browser modules alternate with the others, so that
# the first four workers do not all start a Chromium at once on two cores (see _browser_slot). Rough
# order from --durations; it decides the order only, never what runs. Modules not named follow in their
# usual order.
_LONG_BROWSER = ("test_browser_lang.py", "test_browser_keep.py", "test_browser_actions.py", "test_browser.py",
                 "test_browser_page16.py", "test_browser_cost.py", "test_browser_batch.py",
                 "test_browser_recent_runs.py", "test_browser_params.py", "test_browser_phone.py",
                 "test_browser_lineage.py")
_LONG_OTHER = ("test_bench_smoke.py", "test_hosted_safety.py", "test_mcp.py", "test_app_api.py", "test_cli.py",
               "test_batch_ui.py", "test_attack_new.py", "test_packaging.py", "test_load_smoke.py",
               "test_attack.py", "test_app_actions.py", "test_security.py", "test_batch.py", "test_recent_runs.py",
               "test_visitor.py", "test_keep_app.py", "test_bad_input.py", "test_cost.py", "test_cli_small.py",
               "test_keep.py", "test_scheduler.py", "test_result_actions.py", "test_faults.py", "test_compare.py")
LONGEST_FIRST = tuple(name for pair in itertools.zip_longest(_LONG_OTHER, _LONG_BROWSER) for name in pair if name)
BROWSER_SLOTS = 2  # Chromiums at once across the workers: more only queue for the same two cores


@pytest.fixture(scope="module", autouse=True)
def _browser_slot(request: pytest.FixtureRequest):
    """A browser module holds one of :data:`BROWSER_SLOTS` slots (a lock file shared by the workers)
    while it runs, so at most that many Chromiums and their apps compete for the CPU; the others wait
    their turn instead of timing out together."""
    if not request.path.name.startswith("test_browser"):
        yield
        return
    import fcntl

    slots = Path(tempfile.gettempdir()) / "aliyun-image-tests-browser-slots"
    slots.mkdir(exist_ok=True)
    give_up = time.monotonic() + 200  # a soft cap: never near pytest-timeout's 300 s for this setup
    while time.monotonic() < give_up:
        for i in range(BROWSER_SLOTS):
            fh = open(slots / f"slot-{i}", "w")  # noqa: SIM115 (held until the module ends)
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()
            return
        time.sleep(0.5)
    yield  # waited long enough: run beside the others


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module's own order kept
