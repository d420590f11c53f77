"""What one new browser session costs the server: ours next to a bare Gradio app with the same components.

```bash
python -m bench.session_memory                       # 300 refused + 60 visiting sessions per variant
python -m bench.session_memory --sessions 200 --scenario refused
python -m bench.session_memory --variants ours ours-stock bare bare-lean   # also the "before" and the floor
```

Each variant runs in its own server process on 127.0.0.1 (hosted, offline demo, no key): the same
launch settings as ``python app.py --hosted --offline`` (:func:`aliyun_image.ui.launch_kwargs`). This
process drives new sessions at it over HTTP and asks the server, through its stdin, for a
measurement before and after: ``tracemalloc`` (per session: total, by file, by traceback),
``gc`` object counts by type, and RSS (minus tracemalloc's own bookkeeping).

Variants:

- ``ours``: the app as it launches (``build_demo`` + ``launch_kwargs``).
- ``ours-stock``: the same with Gradio's own session state (:mod:`aliyun_image.ui.sessions` not
  installed): the "before" of the lean sessions, measured in the same run.
- ``bare``: a bare Gradio app with the same components (each block re-created from its class and
  constructor arguments, in the same layout) and as many events on the same inputs and outputs,
  whose handlers return ``gr.skip()``; Gradio's own session state. Gradio's floor for this page.
- ``bare-lean``: ``bare`` with the lean session state.

Scenarios, each on fresh session hashes:

- ``refused``: one ``POST /gradio_api/component_server`` naming a function that does not exist:
  404, yet Gradio has created the session's state by then (``routes.py``, ``component_server``);
- ``visit``: what a page load does: every ``load`` event of the app, with the page's default values
  (``/gradio_api/run/predict`` for unqueued events, as the browser sends them).

The figures are printed as a table (KiB per session) with the biggest holders; ``--json`` writes all.
Loops are bounded; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("ours", "ours-stock", "bare", "bare-lean")
SCENARIOS = ("refused", "visit")
FRAMES = 8  # tracemalloc frames kept per allocation (enough to reach Gradio's route from the allocation)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the server side (a child process) -------------------------------------------------------------
def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _clone_bare(demo: Any) -> Any:
    """A Blocks with the same components as ``demo`` (same classes and constructor arguments, same
    layout; Gradio adds the Forms itself) and one event per event of ``demo`` on the same inputs and
    outputs, doing nothing. No handler of ours, no middleware, no lifespan."""
    import gradio as gr
    from gradio.blocks import BlockContext
    from gradio.layouts import Form

    mapping: dict[int, Any] = {}

    def clone(block: Any) -> None:
        if isinstance(block, Form):  # re-created by Gradio around form components
            for child in block.children:
                clone(child)
            return
        args = dict(getattr(block, "constructor_args", {}) or {})
        args.pop("render", None)
        new = type(block)(**args)
        mapping[block._id] = new
        if isinstance(block, BlockContext):
            with new:
                for child in block.children:
                    clone(child)

    with gr.Blocks(title="bare", analytics_enabled=False) as bare:
        for child in demo.children:
            clone(child)
        spare = gr.Button("spare", visible=False)  # trigger for chained events (.then/.success)
        for fn in demo.fns.values():
            inputs = [mapping[b._id] for b in fn.inputs if b._id in mapping]
            outputs = [mapping[b._id] for b in fn.outputs if b._id in mapping]
            triggers = []
            for bid, event in fn.targets:
                target = bare if bid == demo._id else mapping.get(bid)
                if target is not None and event not in ("then", "success") and hasattr(target, event):
                    triggers.append(getattr(target, event))
            n_out = len(outputs)

            def skip(*_args: Any, _n: int = n_out) -> Any:
                if _n == 0:
                    return None
                return gr.skip() if _n == 1 else tuple(gr.skip() for _ in range(_n))

            gr.on(triggers or [spare.click], skip if fn.fn is not None else None, inputs, outputs,
                  queue=fn.queue, js=fn.js, api_visibility="private", show_progress="hidden")
    return bare


def _load_calls(demo: Any) -> list[dict[str, Any]]:
    """The page-load events and the data the browser sends with them (the components' defaults)."""
    import gradio as gr

    calls = []
    for index, fn in demo.fns.items():
        if fn.fn is None or not any(event == "load" for _bid, event in fn.targets):
            continue
        data = []
        for block in fn.inputs:
            if isinstance(block, gr.State):
                data.append(None)
            else:
                config = demo.default_config.config_for_block(block._id, [], block)
                data.append(config.get("props", {}).get("value"))
        calls.append({"fn_index": index, "data": data, "queue": bool(fn.queue)})
    return calls


def serve(variant: str, port: int, frames: int) -> None:
    """Build and launch ``variant``, print one JSON line when ready, then answer stdin commands:
    ``mark`` (gc, then a snapshot) and ``report N`` (the difference between the last two marks, per
    session over ``N`` sessions), ``quit``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.pop("DASHSCOPE_API_KEY", None)
    sys.path.insert(0, str(ROOT))
    from aliyun_image.ui import AppContext, AppOptions, build_demo, launch_kwargs

    tmp = Path(tempfile.mkdtemp(prefix="session-memory-"))
    ctx = AppContext.start(AppOptions(hosted=True, offline=True, data_dir=str(tmp / "outputs"), max_sessions=100_000))
    demo = build_demo(ctx)
    kwargs = launch_kwargs(ctx)
    lean = variant in ("ours", "bare-lean")
    if variant.startswith("bare"):
        demo = _clone_bare(demo)
        kwargs = {"state_session_capacity": kwargs["state_session_capacity"]}
        if lean:
            from aliyun_image.ui.sessions import lean_sessions_lifespan
            kwargs["app_kwargs"] = {"lifespan": lean_sessions_lifespan}
    elif not lean:  # ours-stock: Gradio's own session state
        app_kwargs = dict(kwargs.get("app_kwargs", {}))
        app_kwargs.pop("lifespan", None)
        kwargs["app_kwargs"] = app_kwargs
    calls = _load_calls(demo)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **kwargs)
    app = demo.server_app
    print(json.dumps({"ready": True, "blocks": len(demo.blocks), "fns": len(demo.fns), "load_calls": calls,
                      "a_component": next(iter(demo.blocks)),
                      "holder": type(app.state_holder).__name__}), flush=True)

    if frames > 0:  # 0: RSS and object counts only (RSS is then not inflated by tracemalloc's traces)
        tracemalloc.start(frames)
    marks: list[dict[str, Any]] = []
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "mark":
            gc.collect()
            marks.append({"snap": tracemalloc.take_snapshot() if frames > 0 else None, "rss": _rss_kib(),
                          "tm_overhead": tracemalloc.get_tracemalloc_memory(),
                          "types": collections.Counter(type(o).__name__ for o in gc.get_objects()),
                          "sessions": len(app.state_holder.session_data)})
            print(json.dumps({"marked": len(marks)}), flush=True)
        elif cmd[0] == "report":
            print(json.dumps(_report(marks[-2], marks[-1], int(cmd[1]), app)), flush=True)
        elif cmd[0] == "quit":
            break
    tracemalloc.stop()
    demo.close()
    ctx.close()


def _short(tb: tracemalloc.Traceback, keep: int = 4) -> str:
    """The kept frames of a traceback that are in Gradio or this project, caller first
    (``file:line > file:line``: the outermost of the kept frames calls the next)."""
    out = []
    for frame in tb:  # oldest kept frame first
        name = frame.filename
        for marker in ("site-packages/", str(ROOT) + "/"):
            if marker in name:
                name = name.split(marker, 1)[1]
        if name.startswith(("gradio", "aliyun_image")):
            out.append(f"{name}:{frame.lineno}")
        if len(out) >= keep:
            break
    return " > ".join(out) or f"{tb[0].filename}:{tb[0].lineno}"


def _report(before: dict[str, Any], after: dict[str, Any], n: int, app: Any) -> dict[str, Any]:
    kib = 1024.0 * n
    if after["snap"] is None:
        types = after["types"] - before["types"]
        return {"sessions_created": after["sessions"] - before["sessions"], "sessions_held": after["sessions"],
                "tracemalloc_kib": float("nan"), "rss_kib": round((after["rss"] - before["rss"]) / n, 1),
                "by_file": [], "by_traceback": [], "objects": [(t, round(c / n, 1)) for t, c in types.most_common(12)],
                "holder": type(app.state_holder).__name__}
    stats = after["snap"].compare_to(before["snap"], "traceback")
    total = sum(s.size_diff for s in stats)
    by_holder: collections.Counter[str] = collections.Counter()
    for s in stats:
        by_holder[_short(s.traceback)] += s.size_diff
    by_file = after["snap"].compare_to(before["snap"], "filename")
    types = after["types"] - before["types"]
    rss = after["rss"] - before["rss"]
    overhead = (after["tm_overhead"] - before["tm_overhead"]) / 1024.0
    return {
        "sessions_created": after["sessions"] - before["sessions"],
        "sessions_held": after["sessions"],
        "tracemalloc_kib": round(total / kib, 1),
        "rss_kib": round((rss - overhead) / n, 1),
        "rss_raw_kib": round(rss / n, 1),
        "by_file": [(s.traceback[0].filename.split("site-packages/")[-1].replace(str(ROOT) + "/", ""),
                     round(s.size_diff / kib, 1)) for s in by_file[:8]],
        "by_traceback": [(k, round(v / kib, 1)) for k, v in by_holder.most_common(10)],
        "objects": [(t, round(c / n, 1)) for t, c in types.most_common(12)],
        "holder": type(app.state_holder).__name__,
    }


# --- the driver ------------------------------------------------------------------------------------
class Server:
    """One variant in a child process: launch, mark, report."""

    def __init__(self, variant: str, frames: int):
        from bench.common import free_port

        self.variant = variant
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
               "GRADIO_TEMP_DIR": tempfile.mkdtemp(prefix="session-memory-gradio-")}
        env.pop("DASHSCOPE_API_KEY", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.session_memory", "--serve", variant, "--port", str(self.port),
             "--frames", str(frames)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.info = self._read(timeout=120)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-200]

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        box: list[str] = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        t.start()
        t.join(timeout)
        if not box or not box[0]:
            raise RuntimeError(f"{self.variant}: no answer from the server\n" + "".join(self._stderr[-40:]))
        return json.loads(box[0])

    def ask(self, command: str, timeout: float = 300) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)


def new_session(http: Any, server: Server, scenario: str) -> None:
    """One visitor with a fresh session hash."""
    session = secrets.token_hex(6)
    if scenario == "refused":
        r = http.post(server.url + "/gradio_api/component_server",
                      json={"component_id": server.info["a_component"], "fn_name": "no_such_function",
                            "data": None, "session_hash": session}, timeout=30)
        if r.status_code != 404:
            raise RuntimeError(f"{server.variant}: a call of no function answered {r.status_code}")
        return
    for call in server.info["load_calls"]:
        if call["queue"]:
            raise RuntimeError("queued load events are not driven by this benchmark")
        r = http.post(server.url + "/gradio_api/run/predict",
                      json={"fn_index": call["fn_index"], "data": call["data"], "session_hash": session,
                            "event_data": None, "trigger_id": None}, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"{server.variant}: load event {call['fn_index']} answered {r.status_code}: "
                               f"{r.text[:300]}")


def measure(servers: list[Server], scenario: str, sessions: int, warmup: int) -> dict[str, dict[str, Any]]:
    """Warm up, mark, ``sessions`` new sessions on each server (interleaved in chunks), mark, report."""
    import requests

    http = requests.Session()
    for s in servers:
        for _ in range(warmup):
            new_session(http, s, scenario)
        s.ask("mark")
    chunk = 25
    for start in range(0, sessions, chunk):
        for s in servers:
            for _ in range(min(chunk, sessions - start)):
                new_session(http, s, scenario)
        log(f"  {scenario}: {min(sessions, start + chunk)}/{sessions} sessions")
    out = {}
    for s in servers:
        s.ask("mark")
        # Comparing snapshots by traceback takes minutes on a busy machine: wait up to 20.
        out[s.variant] = {**s.ask(f"report {sessions}", timeout=1200), "sessions": sessions}
    return out


def print_table(results: dict[str, dict[str, dict[str, Any]]], infos: dict[str, dict[str, Any]]) -> None:
    print("scenario  variant      KiB/session (tracemalloc)  KiB/session (RSS)  sessions held  blocks  events")
    for scenario, per in results.items():
        for variant, r in per.items():
            traced = "-" if r["tracemalloc_kib"] != r["tracemalloc_kib"] else f"{r['tracemalloc_kib']:.1f}"  # nan: off
            print(f"{scenario:9} {variant:12} {traced:>25}  {r['rss_kib']:>17.1f}  "
                  f"{r['sessions_held']:>13}  {infos[variant]['blocks']:>6}  {infos[variant]['fns']:>6}")
    for scenario, per in results.items():
        for variant, r in per.items():
            if not r["by_traceback"]:
                continue
            print(f"\n[{scenario} / {variant}] holder={r['holder']}, KiB per session by traceback "
                  "(Gradio/project frames, caller > callee):")
            for where, k in r["by_traceback"][:6]:
                print(f"  {k:8.1f}  {where}")
            print("  objects per session: " + ", ".join(f"{t} {c:g}" for t, c in r["objects"][:8]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--frames", type=int, default=FRAMES,
                    help="tracemalloc frames per allocation; 0 = no tracemalloc (plain RSS, faster)")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=["ours", "ours-stock", "bare"])
    ap.add_argument("--scenario", choices=[*SCENARIOS, "both"], default="both")
    ap.add_argument("--sessions", type=int, default=300, help="new sessions measured per variant (refused)")
    ap.add_argument("--visit-sessions", type=int, default=60,
                    help="new sessions measured per variant (visit: 11 events each, much slower)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.frames)
        return 0
    sessions = max(1, min(args.sessions, 2000))  # bounded: 2,000 sessions at most
    scenarios = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    infos: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for scenario in scenarios:  # fresh servers per scenario: one scenario's sessions do not blur the other's
        servers = []
        try:
            for v in args.variants:
                log(f"starting {v} ...")
                servers.append(Server(v, args.frames))
                infos[v] = servers[-1].info
            n = sessions if scenario == "refused" else max(1, min(args.visit_sessions, 2000))
            results[scenario] = measure(servers, scenario, n, max(0, args.warmup))
        finally:
            for s in servers:
                s.stop()
        print_table({scenario: results[scenario]}, infos)
        print(flush=True)
    log(f"done in {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"sessions": sessions, "results": results,
                                               "servers": infos}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
