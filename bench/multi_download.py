"""Multi-result download: an edit with n=6 (six results from one request, downloaded
concurrently and stored) vs one request plus one download with our own client.

The goal row runs with no latency, so every download is a loopback copy that costs CPU, and six
of them share this machine's cores. A reference row repeats the comparison with every download
spread over SLOW_S seconds (emulator ``download_fault("slow")``), as a bandwidth-bound internet
download would be: there, concurrency is what decides the wall time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aliyun_image.emulator import Emulator

from .common import EDIT_INPUT_URL, EDIT_INSTRUCTION, KEY, Counter, Row, interleaved, median, result_png, tmp_root
from .single import make_service

NAME = "multi_download"
MODEL = "qwen-image-edit-plus"
SLOW_S = 0.3  # one 1.8 MB result at ~50 Mbit/s


def run(quick: bool = False) -> list[Row]:
    reps = 5 if quick else 15
    with Emulator(fixed_image=result_png()) as emu, \
            tempfile.TemporaryDirectory(prefix="bench-multi-", dir=tmp_root()) as tmp:
        svc = make_service(emu.base_url, Path(tmp) / "ours")
        svc_nofsync = make_service(emu.base_url, Path(tmp) / "ours-nofsync", fsync=False)
        one_out = Counter(Path(tmp) / "one")
        job = svc.plan("edit", EDIT_INSTRUCTION, [EDIT_INPUT_URL], model=MODEL, n=1, seed=1)
        body = job.sync_body(job.seeds[0], [EDIT_INPUT_URL])

        def ours(s=svc) -> None:
            batch = s.edit([EDIT_INPUT_URL], EDIT_INSTRUCTION, model=MODEL, n=6, seed=1)
            if len(batch.results) != 6:
                raise RuntimeError(f"edit n=6 failed: {batch.failures}")

        def one() -> None:
            reply = svc.client.generate(KEY, body)
            url = reply.data["output"]["choices"][0]["message"]["content"][0]["image"]
            with open(one_out.next(), "wb+") as fh:
                svc.client.download(url, fh)

        t = interleaved({"ours": ours, "one": one, "ours_nofsync": lambda: ours(svc_nofsync)}, reps, warmup=1)
        emu.download_fault("slow", times=10**9, seconds=SLOW_S)  # every download from now on
        slow = interleaved({"ours": ours, "one": one}, 2 if quick else 6, warmup=0)
        emu.clear()
        for s in (svc, svc_nofsync):
            s.client.close()
            s.store.close()
    m = {k: median(v) for k, v in t.items()}
    return [Row("multi_download", "edit n=6 (6 downloads, stored) vs 1 request + 1 download", "s",
                m["ours"], m["one"], goal="<= 1.3x", check=("max_ratio", 1.3), reps=reps,
                samples={"ours": t["ours"], "baseline": t["one"]},
                extra={"image_bytes": len(result_png()), "emulator_latency_s": 0.0,
                       "ours_nofsync_s": m["ours_nofsync"], "ratio_nofsync": m["ours_nofsync"] / m["one"]}),
            Row("multi_download_slow", f"same, every download spread over {SLOW_S} s (bandwidth-bound)", "s",
                median(slow["ours"]), median(slow["one"]), goal="(reference: <= 1.3x)", reps=len(slow["ours"]),
                samples={"ours": slow["ours"], "baseline": slow["one"]}, extra={"download_s": SLOW_S})]
