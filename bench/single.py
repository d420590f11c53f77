"""Single call overhead: our generate (request, download, store; n=1) vs the skill's bare client.

Same in-process emulator, no latency, every result the same ready-made 1664x928 PNG, so the
clients' own costs are what differ. Reference figures in the same loop: ours without fsync
(what durability costs) and the bare client with a ``requests.Session`` (keep-alive).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import requests

from aliyun_image.config import Settings
from aliyun_image.emulator import Emulator
from aliyun_image.generation.service import ImageService

from .common import KEY, PROMPT, Counter, Row, bare_generate, interleaved, median, result_png, tmp_root

NAME = "single"


def make_service(base_url: str, data_dir: Path, **kw) -> ImageService:
    return ImageService(Settings.from_env(env={}, base_url=base_url, api_key=KEY, data_dir=data_dir, **kw))


def run(quick: bool = False) -> list[Row]:
    reps = 10 if quick else 60
    png = result_png()
    with Emulator(fixed_image=png) as emu, tempfile.TemporaryDirectory(prefix="bench-single-", dir=tmp_root()) as tmp:
        root = Path(tmp)
        ours = make_service(emu.base_url, root / "ours")
        ours_nofsync = make_service(emu.base_url, root / "ours-nofsync", fsync=False)
        bare_out, sess_out = Counter(root / "bare"), Counter(root / "bare-session")
        session = requests.Session()

        def run_ours(svc: ImageService = ours) -> None:
            batch = svc.generate(PROMPT, model="qwen-image-plus", n=1, seed=1)
            if len(batch.results) != 1:
                raise RuntimeError(f"generate failed: {batch.failures}")

        variants = {
            "ours": run_ours,
            "bare": lambda: bare_generate(emu.base_url, bare_out.next()),
            "ours_nofsync": lambda: run_ours(ours_nofsync),
            "bare_session": lambda: bare_generate(emu.base_url, sess_out.next(), http=session),
        }
        t = interleaved(variants, reps, warmup=3)
        session.close()
        for svc in (ours, ours_nofsync):
            svc.client.close()
            svc.store.close()
    m = {k: median(v) for k, v in t.items()}
    info = {"image_bytes": len(png), "image_size": "1664*928", "emulator_latency_s": 0.0}
    return [
        Row("single", "generate n=1 end to end vs bare requests.post+get+write", "s", m["ours"], m["bare"],
            goal="ours <= 1.15x bare", check=("max_ratio", 1.15), reps=reps,
            samples={"ours": t["ours"], "baseline": t["bare"]},
            extra={**info, "fsync_cost_s": m["ours"] - m["ours_nofsync"],
                   "ours_vs_bare_session": m["ours"] / m["bare_session"]}),
        Row("single_nofsync", "same, ours with Settings(fsync=False) vs bare", "s", m["ours_nofsync"], m["bare"],
            goal="(reference: fsync cost)", reps=reps,
            samples={"ours": t["ours_nofsync"], "baseline": t["bare"]},
            extra={"fsync_cost_s": m["ours"] - m["ours_nofsync"]}),
        Row("single_session", "bare client with requests.Session vs without", "s", m["bare_session"], m["bare"],
            goal="(reference: keep-alive)", reps=reps,
            samples={"ours": t["bare_session"], "baseline": t["bare"]},
            extra={"ours_vs_bare_session": m["ours"] / m["bare_session"]}),
    ]
