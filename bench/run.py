"""``python -m bench.run [--quick] [--only NAME ...] [--json PATH]``: all benchmarks, one run.

Each figure compares ours with a baseline measured side by side in this run, against the
local emulator (127.0.0.1 only), as the median of interleaved repetitions. Prints a table
(progress goes to stderr) and writes JSON (default ``bench/results/latest.json``).
Timings are reported, never asserted: the exit status is 0 even when a goal is missed
(1 only if a benchmark crashed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from collections.abc import Callable

# Before anything imports gradio / gradio_client / huggingface_hub: no telemetry, no network.
for _k, _v in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1")):
    os.environ.setdefault(_k, _v)

from . import (account_limit, app_bench, batch, fanout, gallery, gallery_100k, idle_cpu, multi_download,  # noqa: E402
               prepare, single)
from .common import Row, failed, log  # noqa: E402

BENCHMARKS: dict[str, tuple[Callable[[bool], list[Row]], str]] = {
    "single": (single.run, "single call overhead vs the skill's bare client"),
    "fanout": (fanout.run, "four images on an n=1 model, 1 s latency"),
    "account_limit": (account_limit.run, "an account allowing 2 tasks at a time: scheduler vs plain fan-out"),
    "batch": (batch.run, "a batch of k prompts under an account limit of 2: batch vs today's fan-out"),
    "multi_download": (multi_download.run, "edit n=6: six concurrent downloads"),
    "prepare": (prepare.run, "10 MB 6000x4000 JPEG input preparation"),
    "gallery": (gallery.run, "5,000 stored results: page, search, memory"),
    "gallery_100k": (gallery_100k.run, "100,000 stored results: search and pages on the index vs LIKE, opening"),
    "ui_concurrency": (app_bench.ui_concurrency, "16 simultaneous UI generate calls"),
    "cold_start": (app_bench.cold_start, "app start until first HTTP 200"),
    "idle_cpu": (idle_cpu.run, "an idle app's CPU: ours vs Gradio's default queue polling"),
}
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.3f} s"
    if unit == "bytes":
        return f"{v / 1e6:.2f} MB" if v >= 1e6 else f"{v / 1e3:.1f} kB"
    return f"{v:g} {unit}"


def fmt_ratio(r: Row) -> str:
    ratio = r.ratio
    if ratio is None:
        return "-"
    if r.ratio_kind == "baseline/ours":
        return f"{ratio:.2f}x faster"
    if r.check and r.check[0] == "max_diff":
        return f"{ratio:.2f}x ({(r.ours or 0) - (r.baseline or 0):+.2f} s)"
    return f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"


def table(rows: list[Row]) -> str:
    head = ("name", "ours", "baseline", "ratio", "goal", "met")
    lines = []
    for r in rows:
        if r.status != "ok":
            lines.append((r.name, r.note if r.status == "skipped" else f"ERROR {r.note}"[:100], "", "", "", "-"))
            continue
        met = {True: "yes", False: "NO", None: "-"}[r.met]
        lines.append((r.name, fmt_value(r.ours, r.unit), fmt_value(r.baseline, r.unit), fmt_ratio(r), r.goal, met))
    widths = [max(len(str(x[i])) for x in [head, *lines]) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test; figures are noisier)")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=list(BENCHMARKS),
                    help=f"run only these: {', '.join(BENCHMARKS)}")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results (default {DEFAULT_JSON})")
    args = ap.parse_args(argv)

    names = args.only or list(BENCHMARKS)
    started = time.time()
    t0 = time.perf_counter()
    rows: list[Row] = []
    crashed = False
    for name in names:
        fn, desc = BENCHMARKS[name]
        log(f"[bench] {name}: {desc} ...")
        b0 = time.perf_counter()
        try:
            got = fn(args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc(file=sys.stderr)
            got = [failed(name, desc, exc)]
            crashed = True
        rows += got
        log(f"[bench] {name}: {time.perf_counter() - b0:.1f} s")
    duration = time.perf_counter() - t0

    text = table(rows)
    print(text)
    print(f"\n{len(rows)} figures in {duration:.0f} s ({'quick' if args.quick else 'full'} run); "
          f"medians of interleaved repetitions; JSON: {args.json}")
    doc = {
        "meta": {
            "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
            "quick": args.quick, "only": names,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "duration_s": duration, "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "statistic": "median",
        },
        "results": [r.to_dict() for r in rows],
        "table": text,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
