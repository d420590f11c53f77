"""Load test: simulated visitors against the launched app and the emulator, on 127.0.0.1 only.

    python -m bench.load                       # 100 users for 60 s, latency 1-3 s, 2% faults
    python -m bench.load --users 5 --duration 5   # a quick look

Each user is a ``gradio_client`` session that keeps calling ``/generate`` (one image, a unique
prompt) until the time is up. The emulator adds 1-3 s to every successful generation and fails
2% of them (500, 503 or 429 with Retry-After), which the client retries. Bounded in count and
time; stops by itself.

Reported: calls, successes, failures by message, p50/p95 wall time, and p50/p95 *added* latency:
a call's wall time minus the latency the emulator applied to that call's requests (recorded per
request), i.e. what the app, the client and the retries cost on top of the model's own time.
Checked: no lost results (every image the emulator produced is stored, downloaded and indexed;
nothing left pending), no unhandled exception (no traceback in the app's log, no "unexpected"
status).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image

from aliyun_image.emulator import Emulator

from .app_bench import LaunchedApp, app_env
from .common import KEY, log

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(xs: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no data."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]


def _worker(url: str, uids: list[int], deadline: float, out) -> None:  # mp.Queue
    """One process of simulated users (threads); puts its list of calls on ``out``."""
    from gradio_client import Client

    calls: list[dict] = []
    lock = threading.Lock()

    def user(uid: int) -> None:
        try:
            client = Client(url, verbose=False, download_files=False)
        except Exception as exc:  # noqa: BLE001 - report, do not crash the run
            with lock:
                calls.append({"user": uid, "ok": False, "status": f"client failed: {exc!r}"})
            return
        i = 0
        while i == 0 or time.time() < deadline:  # at least one call, however slow the start-up
            prompt = f"load user {uid} call {i} 一只橘猫"
            t0 = time.perf_counter()
            try:
                gallery, status = client.predict(prompt, n=1, size="1664*928", api_name="/generate")
            except Exception as exc:  # noqa: BLE001 - every failure is a data point of the load test
                # str(), not repr(): the app's message is two lines (zh, then en) and the report keys
                # failures by their last line
                gallery, status = [], f"client error: {type(exc).__name__}: {exc}"
            with lock:
                calls.append({"user": uid, "prompt": prompt, "wall": time.perf_counter() - t0,
                              "ok": len(gallery) == 1, "status": status})
            i += 1

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in uids]
    for t in threads:
        t.start()
        time.sleep(0.02)  # stagger session set-up a little
    for t in threads:
        t.join(max(0.0, deadline - time.time()) + 120)
    out.put(calls)


def run(users: int, duration: float, latency: tuple[float, float], fault_rate: float, concurrency: int,
        workers: int = 4) -> dict:
    """Run the load and return the report (also printed)."""
    tmp = Path(tempfile.mkdtemp(prefix="aliyun-image-load-"))
    data = tmp / "outputs"
    # One ready-made result image (~100 KB, like a real PNG's order of size without the rendering
    # cost), so the emulator's CPU does not crowd out the app on a small machine.
    buf = io.BytesIO()
    Image.linear_gradient("L").resize((1664, 928)).convert("RGB").save(buf, "PNG", compress_level=1)
    with Emulator(latency=latency, fixed_image=buf.getvalue()) as emu:
        emu.random_faults(fault_rate, seed=7)
        app = LaunchedApp(["--base-url", emu.base_url, "--concurrency", str(concurrency)],
                          app_env(str(data), DASHSCOPE_API_KEY=KEY), tmp)
        app.start()
        app.wait_ready()
        deadline = time.time() + duration
        log(f"load: {users} users in {workers} processes for {duration:.0f} s against {app.url} (emulator "
            f"latency {latency}, faults {fault_rate:.0%}, app concurrency {concurrency})")
        # Users live in worker processes: one Python process running 100 clients is GIL-bound and
        # would itself add the latency we are trying to measure.
        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        groups = [list(range(w, users, workers)) for w in range(workers)]
        procs = [ctx.Process(target=_worker, args=(app.url, g, deadline, out), daemon=True) for g in groups]
        for pr in procs:
            pr.start()
        calls: list[dict] = []
        for _ in procs:
            calls += out.get(timeout=duration + 180)
        for pr in procs:
            pr.join(30)
        time.sleep(1.0)  # let the last downloads land
        app_log = app.tail(10_000_000)
        app.stop()

        applied = defaultdict(float)
        attempts = Counter()
        for rec in emu.calls("generation"):
            prompt = (rec.json or {}).get("input", {}).get("messages", [{}])[0].get("content", [{}])[-1].get("text", "")
            applied[prompt] += rec.latency
            attempts[prompt] += 1
        produced = len(emu.results)

    db = sqlite3.connect(data / "gallery.sqlite3")
    by_status = dict(db.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall())
    stored_done = by_status.get("done", 0)
    files_ok = sum(1 for (p,) in db.execute("SELECT path FROM results WHERE status='done'") if (data / p).is_file())
    ok = [c for c in calls if c.get("ok")]
    failed = Counter(c["status"].splitlines()[-1][:140] for c in calls if not c.get("ok"))
    walls = [c["wall"] for c in ok]
    added = [c["wall"] - applied.get(c["prompt"], 0.0) for c in ok]
    report = {
        "users": users, "workers": workers, "duration_s": duration, "latency_s": list(latency),
        "fault_rate": fault_rate,
        "concurrency": concurrency, "calls": len(calls), "succeeded": len(ok), "failed": sum(failed.values()),
        "failures": dict(failed), "retried_calls": sum(1 for n in attempts.values() if n > 1),
        "wall_p50_s": percentile(walls, 50), "wall_p95_s": percentile(walls, 95),
        "added_p50_s": percentile(added, 50), "added_p95_s": percentile(added, 95),
        "added_mean_s": statistics.fmean(added) if added else float("nan"),
        "stored_by_status": by_status, "stored_files_ok": files_ok, "emulator_images": produced,
        "lost_results": produced - stored_done,
        "tracebacks_in_app_log": app_log.count("Traceback"),
        "unexpected_statuses": sum(1 for c in calls if "unexpected" in c.get("status", "").lower()),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--latency", type=float, nargs=2, default=(1.0, 3.0), metavar=("LOW", "HIGH"))
    p.add_argument("--fault-rate", type=float, default=0.02)
    p.add_argument("--concurrency", type=int, default=None, help="app --concurrency (default: the app's own)")
    p.add_argument("--workers", type=int, default=4, help="processes the simulated users are spread over")
    p.add_argument("--json", type=Path, default=RESULTS / "load.json")
    a = p.parse_args(argv)
    if not (1 <= a.users <= 500 and 1 <= a.duration <= 600):
        p.error("keep it bounded: 1-500 users, 1-600 s")
    from aliyun_image.cli.webapp import parse_args as app_args

    concurrency = a.concurrency or app_args([]).concurrency
    r = run(a.users, a.duration, tuple(a.latency), a.fault_rate, concurrency, max(1, min(a.workers, a.users)))
    for k, v in r.items():
        print(f"{k:24} {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(r, ensure_ascii=False, indent=2))
    healthy = (r["lost_results"] == 0 and r["tracebacks_in_app_log"] == 0 and r["unexpected_statuses"] == 0
               and r["stored_by_status"].get("pending", 0) == 0)
    print("healthy" if healthy else "PROBLEMS FOUND")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
