"""The Gradio app: cold start and UI concurrency (need ``app.py`` at the repository root).

cold_start: ``python app.py --offline --port P`` until the first HTTP 200 on ``/``, against
``python -c "import gradio"`` (the floor any Gradio app pays). Goal: the app adds <= 0.7 s.

ui_concurrency: the app launched against an emulator with 2 s latency (``--base-url``, key in
``DASHSCOPE_API_KEY``); 16 simultaneous ``/generate`` calls (n=1 each) through ``gradio_client``
(one client each, created beforehand; results downloaded as the client does by default) against
one call. Goal: <= 1.3x. The CPU seconds the app and this harness (clients + emulator) spend per
16-call round are reported too: on a small machine they share the same cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from aliyun_image.emulator import Emulator

from .common import KEY, PROMPT, Row, free_port, interleaved, log, median, result_png, skipped, tmp_root

REPO = Path(__file__).resolve().parents[1]
HELLO_APP = Path(__file__).resolve().parent / "hello_app.py"
API_NAME = "/generate"
USERS = 16
UI_LATENCY = 2.0
NOT_PRESENT = "skipped: app.py not present"

def app_path() -> Path:
    """The app under test (``BENCH_APP`` overrides, e.g. to try the benchmark on a stub)."""
    return Path(os.environ.get("BENCH_APP") or REPO / "app.py")


def app_env(data_dir: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               ALIYUN_IMAGE_DATA_DIR=data_dir, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


class LaunchedApp:
    """``python app.py ARGS --port P`` in its own process group, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], logdir: Path, script: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.args = [sys.executable, str(script or app_path()), *args, "--port", str(self.port)]
        self.env = env
        self.log_path = logdir / f"app-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Launch; returns the perf_counter timestamp taken just before the launch."""
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - stays open for the process; closed in stop()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return t0

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Poll ``/`` until HTTP 200; returns the perf_counter timestamp of that reply."""
        assert self.proc is not None
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}: {self.tail()}")
            try:
                if requests.get(self.url, timeout=2).status_code == 200:
                    return time.perf_counter()
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"app not ready within {timeout:.0f} s: {self.tail()}")

    def tail(self, n: int = 600) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the app's own process group (we started it), SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if getattr(self, "_log", None):
            self._log.close()


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


# --- cold start ------------------------------------------------------------------------------------
def cold_start(quick: bool = False) -> list[Row]:
    what = "python app.py --offline until first HTTP 200 vs python -c 'import gradio'"
    if not app_path().exists():
        log(f"  cold_start {NOT_PRESENT}")
        return [skipped("cold_start", what, NOT_PRESENT)]
    reps, warmup = (1, 0) if quick else (5, 1)
    with tempfile.TemporaryDirectory(prefix="bench-cold-", dir=tmp_root()) as tmp:
        env = app_env(str(Path(tmp) / "data"))

        def app(script: Path | None = None) -> float:
            a = LaunchedApp(["--offline"], env, Path(tmp), script)
            try:
                t0 = a.start()
                return a.wait_ready() - t0
            finally:
                a.stop()

        exits: list[float] = []

        def import_gradio() -> float:
            """Until the import is done (a line on stdout), not including interpreter teardown
            (~0.5 s for gradio), since the app's figure stops at its first reply too."""
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", "import gradio; print('imported', flush=True)"],
                                    cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                line = proc.stdout.readline() if proc.stdout else b""
                t1 = time.perf_counter()
                if proc.wait(60) != 0 or not line.startswith(b"imported"):
                    raise RuntimeError(f"python -c 'import gradio' failed ({proc.returncode})")
                exits.append(time.perf_counter() - t0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if proc.stdout:
                    proc.stdout.close()
            return t1 - t0

        variants = {"app": app, "import": import_gradio}
        if not quick:
            variants["hello"] = lambda: app(HELLO_APP)
        t = interleaved(variants, reps, warmup=warmup, budget_s=100)
    m = {k: median(v) for k, v in t.items()}
    rows = [Row("cold_start", what, "s", m["app"], m["import"], goal="app adds <= 0.7 s",
                check=("max_diff", 0.7), reps=len(t["app"]), samples={"ours": t["app"], "baseline": t["import"]},
                extra={"added_s": m["app"] - m["import"], "import_and_exit_s": median(exits),
                       "hello_app_s": m.get("hello")})]
    if "hello" in m:
        rows.append(Row("cold_start_hello", "app.py vs the smallest Gradio app (bench/hello_app.py), both to first 200",
                        "s", m["app"], m["hello"], goal="(reference: Gradio's own launch)", reps=len(t["hello"]),
                        samples={"ours": t["app"], "baseline": t["hello"]}, extra={"added_s": m["app"] - m["hello"]}))
    return rows


# --- UI concurrency --------------------------------------------------------------------------------
def generate_kwargs(prompt: str = PROMPT) -> dict[str, Any]:
    """Keyword arguments for the app's ``/generate`` (one image; the host key configured in the app)."""
    return {"prompt": prompt, "n": 1, "size": "1664*928"}


def call_generate(client: Any, kwargs: dict[str, Any]) -> Any:
    """One UI generate call, as a visitor's browser would make it."""
    return client.predict(**kwargs, api_name=API_NAME)


def ui_concurrency(quick: bool = False) -> list[Row]:
    what = f"{USERS} simultaneous /generate via gradio_client vs one call (emulator latency {UI_LATENCY:.0f} s)"
    if not app_path().exists():
        log(f"  ui_concurrency {NOT_PRESENT}")
        return [skipped("ui_concurrency", what, NOT_PRESENT)]
    from gradio_client import Client

    reps = 1 if quick else 3
    with Emulator(latency=UI_LATENCY, fixed_image=result_png()) as emu, \
            tempfile.TemporaryDirectory(prefix="bench-ui-", dir=tmp_root()) as tmp:
        env = app_env(str(Path(tmp) / "data"), DASHSCOPE_API_KEY=KEY)
        app = LaunchedApp(["--base-url", emu.base_url], env, Path(tmp))
        pool = ThreadPoolExecutor(USERS, thread_name_prefix="bench-ui")
        try:
            app.start()
            app.wait_ready()
            # "dl": gradio_client as is (downloads each result, as a browser fetches it);
            # "nodl": download_files=False, a lighter harness that leaves the CPU to the app.
            clients = {"dl": list(pool.map(lambda _: Client(app.url, verbose=False), range(USERS)))}
            if not quick:
                clients["nodl"] = list(pool.map(lambda _: Client(app.url, verbose=False, download_files=False),
                                                range(USERS)))
            kwargs = generate_kwargs()
            log(f"  /generate called with {sorted(kwargs)}")
            cpu: dict[str, list[float]] = {"app": [], "harness": []}

            def one(kind: str) -> None:
                call_generate(clients[kind][0], kwargs)

            def many(kind: str) -> None:
                gate = threading.Barrier(USERS)

                def user(c: Any) -> Any:
                    gate.wait()
                    return call_generate(c, kwargs)

                pid = app.proc.pid if app.proc else 0
                a0, h0 = proc_cpu(pid), time.process_time()
                for f in [pool.submit(user, c) for c in clients[kind]]:
                    f.result()
                a1, h1 = proc_cpu(pid), time.process_time()
                if kind == "dl":
                    if a0 is not None and a1 is not None:
                        cpu["app"].append(a1 - a0)
                    cpu["harness"].append(h1 - h0)

            variants = {"many": lambda: many("dl"), "one": lambda: one("dl")}
            if not quick:
                variants.update(many_nodl=lambda: many("nodl"), one_nodl=lambda: one("nodl"))
            emu.latency = 0.0  # warm-up without the latency: the app's thread pools, lazy imports
            interleaved({"one": variants["one"]} if quick else variants, 0, warmup=1)
            emu.latency = UI_LATENCY
            before = len(emu.calls("generation"))
            cpu["app"].clear()
            cpu["harness"].clear()
            t = interleaved(variants, reps, warmup=0, budget_s=75)
            sent = len(emu.calls("generation")) - before
        except Exception as exc:
            raise RuntimeError(f"{exc} | app log: {app.tail(300)}") from exc
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            app.stop()
    m = {k: median(v) for k, v in t.items()}
    n = len(t["one"])
    rows = [
        Row("ui_concurrency", what, "s", m["many"], m["one"], goal="<= 1.3x", check=("max_ratio", 1.3),
            reps=n, samples={"ours": t["many"], "baseline": t["one"]},
            extra={"users": USERS, "emulator_latency_s": UI_LATENCY, "generation_requests": sent,
                   "expected_requests": len(variants) // 2 * n * (USERS + 1), "kwargs": sorted(kwargs),
                   "app_cpu_s_per_round": median(cpu["app"]) if cpu["app"] else None,
                   "harness_cpu_s_per_round": median(cpu["harness"]) if cpu["harness"] else None,
                   "cpus": os.cpu_count()}),
    ]
    if "many_nodl" in m:
        rows.append(Row("ui_concurrency_nodl", "same, gradio_client(download_files=False): lighter harness", "s",
                        m["many_nodl"], m["one_nodl"], goal="(reference: <= 1.3x)", reps=n,
                        samples={"ours": t["many_nodl"], "baseline": t["one_nodl"]}))
    return rows
