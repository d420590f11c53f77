"""Batches under the account's limit: an emulator that allows C tasks at a time per key, 1 s per image.

Side by side in one run, on qwen-image-plus (one image per request), each repetition with a fresh
scheduler (as a process starts: it learns the limit again):

* ``batch_6``: a batch of 6 prompts (:func:`aliyun_image.generation.batch.run`) against today's
  fan-out, ``service.run`` of one job with ``n=6`` (the most one run fans out). Goal: within
  1.1 x ceil(k/C) x the latency (C = 2: 3.3 s), at most 2 throttled requests, no image lost.
* ``batch_12``: 12 prompts against today's way to ask for 12: two ``n=6`` runs started together.
* Throttled requests (the emulator's 429s) and images lost, worst repetition, for both.
"""

from __future__ import annotations

import math
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from aliyun_image.dashscope.scheduler import Scheduler
from aliyun_image.emulator import Emulator
from aliyun_image.generation import ImageService
from aliyun_image.generation import batch as batches
from aliyun_image.generation.batch import BatchSpec

from .common import PROMPT, Row, interleaved, median, result_png, tmp_root
from .single import make_service

NAME = "batch"
LATENCY = 1.0
LIMIT = 2  # C: the account's tasks at a time (the scheduler's default start is 2 too)
MODEL = "qwen-image-plus"


def ideal(k: int, limit: int = LIMIT, latency: float = LATENCY) -> float:
    """ceil(k/C) x latency: the least time k images can take under the limit."""
    return math.ceil(k / limit) * latency


class Tally:
    """Worst figures of one variant: 429s and images lost per repetition."""

    def __init__(self) -> None:
        self.throttled: list[float] = []
        self.lost: list[float] = []


def batch_variant(emu: Emulator, svc: ImageService, k: int, tally: Tally) -> Callable[[], None]:
    def go() -> None:
        svc.scheduler = Scheduler(svc.settings)  # a process that starts: no limit learned yet
        emu.clear()
        spec = BatchSpec("\n".join(f"{PROMPT} #{i}" for i in range(k)), (), {"model": MODEL})
        out = batches.run(svc, batches.prepare(svc, spec, new=True).batch_id)
        tally.throttled.append(emu.throttled)
        tally.lost.append(k - len(out.results))
    return go


def fanout_variant(emu: Emulator, svc: ImageService, k: int, tally: Tally) -> Callable[[], None]:
    """Today's way: runs of n <= 6 (the fan-out's cap), started together."""
    def go() -> None:
        svc.scheduler = Scheduler(svc.settings)
        emu.clear()
        sizes = [min(6, k - i) for i in range(0, k, 6)]
        stored = [0] * len(sizes)

        def one(i: int, n: int) -> None:
            stored[i] = len(svc.run(svc.plan("t2i", PROMPT, model=MODEL, n=n)).results)

        threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(sizes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tally.throttled.append(emu.throttled)
        tally.lost.append(k - sum(stored))
    return go


def run(quick: bool = False, sizes: tuple[int, ...] = (6, 12), latency: float = LATENCY) -> list[Row]:
    """The rows of every size in ``sizes`` (the smoke test runs it tiny: small sizes, short latency)."""
    reps = 1 if quick else 5
    rows: list[Row] = []
    with Emulator(fixed_image=result_png(), task_limit=LIMIT) as emu, \
            tempfile.TemporaryDirectory(prefix="bench-batch-", dir=tmp_root()) as tmp:
        ours = make_service(emu.base_url, Path(tmp) / "ours")
        base = make_service(emu.base_url, Path(tmp) / "fanout")
        emu.latency = 0.0  # warm up connections without paying the latency
        warm = {"ours": batch_variant(emu, ours, 2, Tally()), "base": fanout_variant(emu, base, 2, Tally())}
        interleaved(warm, 0, warmup=1)
        emu.latency = latency
        for k in sizes:
            tallies = {"ours": Tally(), "base": Tally()}
            t = interleaved({"ours": batch_variant(emu, ours, k, tallies["ours"]),
                             "base": fanout_variant(emu, base, k, tallies["base"])}, reps, warmup=0)
            rows += _rows(k, t, tallies, reps, latency)
        for svc in (ours, base):
            svc.client.close()
            svc.store.close()
    return rows


def _rows(k: int, t: dict[str, list[float]], tally: dict[str, Tally], reps: int, latency: float) -> list[Row]:
    best = ideal(k, LIMIT, latency)
    m = {name: median(v) for name, v in t.items()}
    worst = {name: {v: max(getattr(tally[v], name)) for v in tally} for name in ("throttled", "lost")}
    fan = "one n=6 run" if k <= 6 else f"{math.ceil(k / 6)} n<=6 runs at once"
    return [
        Row(f"batch_{k}", f"a batch of {k} prompts, limit {LIMIT} at a time, {latency:g} s each, vs today's fan-out "
            f"({fan}); ideal ceil(k/C) x latency = {best:g} s", "s", m["ours"], m["base"],
            goal=f"<= {1.1 * best:.2f} s (1.1x ideal)", check=("max_value", 1.1 * best), reps=reps,
            samples={"ours": t["ours"], "baseline": t["base"]},
            extra={"ideal_s": best, "ours_over_ideal": m["ours"] / best, "baseline_over_ideal": m["base"] / best,
                   "emulator_limit": LIMIT, "emulator_latency_s": latency}),
        Row(f"batch_{k}_429s", f"429s received in the worst repetition ({k} images)", "429s",
            worst["throttled"]["ours"], worst["throttled"]["base"], goal="<= 2", check=("max_value", 2), reps=reps),
        Row(f"batch_{k}_lost", f"images lost in the worst repetition ({k} images)", "images",
            worst["lost"]["ours"], worst["lost"]["base"], goal="0", check=("max_value", 0), reps=reps),
    ]
