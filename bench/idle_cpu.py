"""What an app costs while nobody uses it: CPU seconds per minute of an idle ``python app.py
--offline``, ours vs the same app with Gradio's own queue polling (1 ms), both running at once and
measured over the same windows (so load from elsewhere hits both alike). Every app a test module
starts, and a hosted demo between visitors, spends this all the time."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .app_bench import NOT_PRESENT, LaunchedApp, app_env, app_path, proc_cpu
from .common import Row, log, median, skipped, tmp_root

BASELINE_APP = Path(__file__).resolve().parent / "gradio_default_polling_app.py"


def run(quick: bool = False) -> list[Row]:
    what = "idle app.py --offline, CPU s per minute: ours vs Gradio's default queue polling"
    if not app_path().exists():
        return [skipped("idle_cpu", what, NOT_PRESENT)]
    windows, window_s = (2, 5.0) if quick else (5, 10.0)
    with tempfile.TemporaryDirectory(prefix="bench-idle-", dir=tmp_root()) as tmp:
        apps = {"ours": LaunchedApp(["--offline"], app_env(str(Path(tmp) / "ours")), Path(tmp)),
                "baseline": LaunchedApp(["--offline"], app_env(str(Path(tmp) / "base")), Path(tmp), BASELINE_APP)}
        try:
            for a in apps.values():
                a.start()
            for a in apps.values():
                a.wait_ready()
            time.sleep(2.0)  # start-up work (first page build, housekeeping's first round) is done
            per_min: dict[str, list[float]] = {k: [] for k in apps}
            for w in range(windows):
                before = {k: proc_cpu(a.proc.pid) for k, a in apps.items() if a.proc is not None}
                t0 = time.perf_counter()
                time.sleep(window_s)
                spent = time.perf_counter() - t0
                for k, a in apps.items():
                    now = proc_cpu(a.proc.pid) if a.proc is not None else None
                    if now is None or before.get(k) is None:
                        return [skipped("idle_cpu", what, "needs Linux /proc to read a process's CPU time")]
                    per_min[k].append((now - before[k]) * 60.0 / spent)
                log(f"  idle_cpu window {w + 1}/{windows}: ours {per_min['ours'][-1]:.2f} s/min, "
                    f"Gradio's polling {per_min['baseline'][-1]:.2f} s/min")
        finally:
            for a in apps.values():
                a.stop()
    ours, base = median(per_min["ours"]), median(per_min["baseline"])
    return [Row("idle_cpu", what, "s", ours, base, goal="idle app uses < 1/2 of Gradio's default",
                check=("max_ratio", 0.5), reps=windows,
                samples={"ours": per_min["ours"], "baseline": per_min["baseline"]},
                extra={"unit_note": "CPU seconds per minute of wall time"})]
