"""The account's limit: an emulator that allows 2 tasks at a time per key, 1 s per image.

Side by side in one run, on qwen-image-plus (one image per request):

* 6 images: ``generate(n=6)`` through the scheduler (a fresh one each repetition, as a process
  starts: limit 2) against today's plain fan-out (``task_limit=0``: ``max_parallel`` = 4 requests
  at once, 429s retried by the client after its backoff). Wall time against the ideal 3 s
  (6 images, 2 at a time, 1 s each), 429s received, images lost.
* 3 runs x 4 images started at once by three visitors sharing the key (one service, as in the
  hosted app): wall time, images lost, and fairness: the number of runs whose first image
  landed only after some other run had finished (0 = every run started before any finished).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from aliyun_image.emulator import Emulator
from aliyun_image.enums import EventKind
from aliyun_image.dashscope.scheduler import Scheduler
from aliyun_image.generation.service import ImageService

from .common import PROMPT, Row, interleaved, median, result_png, tmp_root
from .single import make_service

NAME = "account_limit"
LATENCY = 1.0
LIMIT = 2
IDEAL_6 = 6 / LIMIT * LATENCY  # 3 s
IDEAL_12 = 12 / LIMIT * LATENCY  # 6 s
MODEL = "qwen-image-plus"


class Tally:
    """What each repetition of one variant saw: 429s, images lost, runs that waited for others."""

    def __init__(self) -> None:
        self.throttled: list[float] = []
        self.lost: list[float] = []
        self.waited: list[float] = []

    def reset(self) -> None:
        """Forget what the warm-up saw."""
        self.throttled.clear()
        self.lost.clear()
        self.waited.clear()


def six(emu: Emulator, svc: ImageService, tally: Tally, fresh: bool) -> Callable[[], None]:
    def go() -> None:
        if fresh:
            svc.scheduler = Scheduler(svc.settings)  # a process that starts: no limit learned yet
        emu.clear()
        batch = svc.generate(PROMPT, model=MODEL, n=6)
        tally.throttled.append(emu.throttled)
        tally.lost.append(6 - len(batch.results))
    return go


def three_runs(emu: Emulator, svc: ImageService, tally: Tally, fresh: bool) -> Callable[[], None]:
    def go() -> None:
        if fresh:
            svc.scheduler = Scheduler(svc.settings)
        emu.clear()
        landed: list[int] = []  # run number of each stored image, in the order they landed
        stored = [0, 0, 0]
        start = threading.Barrier(3)

        def visitor(k: int) -> None:
            start.wait()
            batch = svc.generate(f"{PROMPT} #{k}", model=MODEL, n=4,
                                 on_event=lambda ev: landed.append(k) if ev.kind == EventKind.RESULT else None)
            stored[k] = len(batch.results)

        threads = [threading.Thread(target=visitor, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tally.throttled.append(emu.throttled)
        tally.lost.append(12 - sum(stored))
        tally.waited.append(waited_runs(landed, 3))
    return go


def waited_runs(landed: list[int], runs: int) -> int:
    """Runs whose first image landed after some run's last image (0: fair interleaving)."""
    firsts = [landed.index(k) if k in landed else len(landed) for k in range(runs)]
    lasts = [len(landed) - 1 - landed[::-1].index(k) for k in range(runs) if k in landed]
    earliest_end = min(lasts) if lasts else len(landed)
    return sum(1 for f in firsts if f > earliest_end)


def run(quick: bool = False) -> list[Row]:
    reps = 1 if quick else 3
    with Emulator(fixed_image=result_png(), task_limit=LIMIT) as emu, \
            tempfile.TemporaryDirectory(prefix="bench-limit-", dir=tmp_root()) as tmp:
        ours = make_service(emu.base_url, Path(tmp) / "ours")  # task_limit: the default (2)
        plain = make_service(emu.base_url, Path(tmp) / "plain", task_limit=0)  # today's fan-out
        t6 = {"ours": Tally(), "plain": Tally()}
        t12 = {"ours": Tally(), "plain": Tally()}
        variants = {"ours6": six(emu, ours, t6["ours"], True), "plain6": six(emu, plain, t6["plain"], False),
                    "ours12": three_runs(emu, ours, t12["ours"], True),
                    "plain12": three_runs(emu, plain, t12["plain"], False)}
        emu.latency = 0.0  # warm up connections without paying the latency
        interleaved({"ours6": variants["ours6"], "plain6": variants["plain6"]}, 0, warmup=1)
        for tally in (*t6.values(), *t12.values()):
            tally.reset()
        emu.latency = LATENCY
        t = interleaved(variants, reps, warmup=0)
        for svc in (ours, plain):
            svc.client.close()
            svc.store.close()
    return rows(t, t6, t12, reps)


def rows(t: dict[str, list[float]], t6: dict[str, Tally], t12: dict[str, Tally], reps: int) -> list[Row]:
    m = {k: median(v) for k, v in t.items()}
    worst = {name: {k: max(getattr(v, name)) for k, v in t6.items()} for name in ("throttled", "lost")}
    worst12 = {name: {k: max(getattr(v, name)) for k, v in t12.items()} for name in ("throttled", "lost", "waited")}
    extra = {"emulator_latency_s": LATENCY, "emulator_limit": LIMIT, "ideal_s": IDEAL_6,
             "ours_over_ideal": m["ours6"] / IDEAL_6, "plain_over_ideal": m["plain6"] / IDEAL_6,
             "throttled": {k: v.throttled for k, v in t6.items()}, "lost": {k: v.lost for k, v in t6.items()}}
    return [
        Row("limit_6", f"6 images, limit {LIMIT} at a time, {LATENCY:g} s each: scheduler vs plain fan-out (ideal "
            f"{IDEAL_6:g} s)", "s", m["ours6"], m["plain6"], goal=f"<= {1.15 * IDEAL_6:.2f} s (1.15x ideal)",
            check=("max_value", 1.15 * IDEAL_6), reps=reps,
            samples={"ours": t["ours6"], "baseline": t["plain6"]}, extra=extra),
        Row("limit_6_429s", "429s received in the worst repetition (6 images)", "429s",
            worst["throttled"]["ours"], worst["throttled"]["plain"], goal="<= 2", check=("max_value", 2), reps=reps),
        Row("limit_6_lost", "images lost in the worst repetition (6 images)", "images",
            worst["lost"]["ours"], worst["lost"]["plain"], goal="0", check=("max_value", 0), reps=reps),
        Row("limit_3x4", f"3 runs x 4 images at once, one key (ideal {IDEAL_12:g} s)", "s", m["ours12"],
            m["plain12"], reps=reps, samples={"ours": t["ours12"], "baseline": t["plain12"]},
            extra={"ideal_s": IDEAL_12, "ours_over_ideal": m["ours12"] / IDEAL_12,
                   "throttled": {k: v.throttled for k, v in t12.items()}}),
        Row("limit_3x4_lost", "images lost in the worst repetition (3 runs x 4)", "images",
            worst12["lost"]["ours"], worst12["lost"]["plain"], goal="0", check=("max_value", 0), reps=reps,
            extra={"throttled_worst": worst12["throttled"]}),
        Row("limit_3x4_waited", "runs that started only after another run had finished (worst)", "runs",
            worst12["waited"]["ours"], worst12["waited"]["plain"], goal="0", check=("max_value", 0), reps=reps),
    ]

