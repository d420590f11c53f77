"""Fan-out: four images on a model fixed at n=1 (qwen-image-plus), 1 s emulator latency.

Ours: one ``generate(n=4)`` (four concurrent requests, downloads as each lands). Baseline: the
skill's bare client four times in a row.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aliyun_image.emulator import Emulator

from .common import PROMPT, Counter, Row, bare_generate, interleaved, median, result_png, tmp_root
from .single import make_service

NAME = "fanout"
LATENCY = 1.0


def run(quick: bool = False) -> list[Row]:
    reps = 1 if quick else 8
    with Emulator(fixed_image=result_png()) as emu, \
            tempfile.TemporaryDirectory(prefix="bench-fanout-", dir=tmp_root()) as tmp:
        svc = make_service(emu.base_url, Path(tmp) / "ours")
        bare_out = Counter(Path(tmp) / "bare")

        def ours() -> None:
            batch = svc.generate(PROMPT, model="qwen-image-plus", n=4, seed=1)
            if len(batch.results) != 4:
                raise RuntimeError(f"generate n=4 failed: {batch.failures}")

        def bare() -> None:
            for _ in range(4):
                bare_generate(emu.base_url, bare_out.next())

        variants = {"ours": ours, "bare": bare}
        emu.latency = 0.0  # warm up connections and caches without paying the latency
        interleaved(variants, 0, warmup=1)
        emu.latency = LATENCY
        t = interleaved(variants, reps, warmup=0)
        svc.client.close()
        svc.store.close()
    m = {k: median(v) for k, v in t.items()}
    return [Row("fanout", "4 images, n=1 model, 1 s latency: generate(n=4) vs bare x4 in a row", "s",
                m["ours"], m["bare"], ratio_kind="baseline/ours", goal=">= 3.2x faster",
                check=("min_ratio", 3.2), reps=reps, samples={"ours": t["ours"], "baseline": t["bare"]},
                extra={"emulator_latency_s": LATENCY, "ideal_s": LATENCY,
                       "overhead_over_latency_s": m["ours"] - LATENCY})]
