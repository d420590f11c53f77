"""Gallery at scale: 5,000 stored results in a ResultStore.

Rows go in through ``add_pending`` in batches, each then gets a tiny file through
``partial``/``commit_file`` (no HTTP). Measured on the reopened store: the first page
(``list(limit=24)``) against loading the whole history (``list(limit=5000)``, what an
unpaginated gallery would do), a search, and peak Python memory (tracemalloc) of a page fetch
against a whole-history fetch. tracemalloc sees Python objects only, not SQLite's own cache.
"""

from __future__ import annotations

import io
import random
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from PIL import Image

from aliyun_image.storage.store import NewResult, ResultStore

from .common import Row, interleaved, median, tmp_root

NAME = "gallery"
TOTAL = 5000
PAGE = 24
QUERY = "橘猫"  # in ~5% of the prompts
NO_MATCH = "zzz-no-such-prompt"

_SUBJECTS = ["一只橘猫", "a red fox", "古老的石桥", "a lighthouse", "穿汉服的少女", "a robot barista",
             "雪山下的湖泊", "a steam locomotive", "竹林里的熊猫", "a neon city street", "海边的灯塔", "an astronaut"]
_STYLES = ["水彩画风格", "cinematic lighting", "赛博朋克", "studio photo, 85mm", "宫崎骏风格", "oil painting",
           "极简主义海报", "ukiyo-e woodblock print", "低多边形", "isometric 3D render"]
_EXTRAS = ["黄昏的金色光线", "soft morning fog", "画面中有书法文字“春眠不觉晓”", "high detail, 8k",
           "rain reflections on the ground", "温暖的色调", "wide angle", "浅景深，背景虚化"]


def _prompt(rng: random.Random, i: int) -> str:
    subject = "一只橘猫" if i % 20 == 0 else rng.choice([s for s in _SUBJECTS if s != "一只橘猫"])
    return "，".join([subject, rng.choice(_STYLES), *rng.sample(_EXTRAS, 3)])


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 9), (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


def build(root: Path, total: int = TOTAL, batch: int = 500) -> float:
    """Fill a store with ``total`` done results; returns seconds taken."""
    t0 = time.perf_counter()
    rng = random.Random(42)
    tiny = _tiny_png()
    store = ResultStore.open(root, fsync=False)
    try:
        for start in range(0, total, batch):
            bid = uuid.uuid4().hex[:12]
            news = []
            for i in range(start, min(total, start + batch)):
                p = _prompt(rng, i)
                news.append(NewResult(
                    batch_id=bid, idx=i % 4, task="t2i", model="qwen-image-plus", prompt=p,
                    negative="低分辨率，低画质，肢体畸形，手指畸形，画面过饱和，蜡像感",
                    params={"size": "1664*928", "n": 4, "prompt_extend": True, "watermark": False},
                    seed=rng.randint(0, 2**31 - 1), inputs=[], request_id=str(uuid.uuid4()),
                    usage={"image_count": 1, "width": 1664, "height": 928},
                    actual_prompt=p + "。画面构图均衡，主体清晰，光影自然，细节丰富，色彩和谐，" * 3,
                    url=f"https://dashscope-result.oss-cn-beijing.aliyuncs.com/{uuid.uuid4().hex}.png"
                        f"?Expires={int(time.time()) + 86400}&OSSAccessKeyId=LTAI&Signature=x",
                    url_expires=time.time() + 86400))
            for rid in store.add_pending(news):
                with store.files.partial(rid) as fh:
                    fh.write(tiny)
                    store.commit_file(rid, fh, width=16, height=9)
    finally:
        store.close()
    return time.perf_counter() - t0


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run(quick: bool = False) -> list[Row]:
    reps = 10 if quick else 30
    with tempfile.TemporaryDirectory(prefix="bench-gallery-", dir=tmp_root()) as tmp:
        root = Path(tmp)
        build_s = build(root)
        t0 = time.perf_counter()
        store = ResultStore.open(root, fsync=False)
        open_s = time.perf_counter() - t0
        try:
            assert store.records.count() == TOTAL, store.records.count()
            got = {}

            def page() -> None:
                got["page"] = store.page(limit=PAGE)

            def whole() -> None:
                got["whole"] = store.page(limit=TOTAL)

            def search() -> None:
                got["search"] = store.page(limit=PAGE, query=QUERY)

            def no_match() -> None:
                got["none"] = store.page(limit=PAGE, query=NO_MATCH)

            def deep() -> None:
                got["deep"] = store.page(offset=TOTAL - PAGE, limit=PAGE)

            t = interleaved({"page": page, "whole": whole, "search": search, "no_match": no_match, "deep": deep},
                            reps, warmup=1)
            assert len(got["page"][0]) == PAGE and got["page"][1] == TOTAL
            assert len(got["whole"][0]) == TOTAL
            assert 0 < got["search"][1] < TOTAL and got["none"][1] == 0
            mem = {"page": max(_peak(page) for _ in range(3)), "deep": max(_peak(deep) for _ in range(3)),
                   "search": max(_peak(search) for _ in range(3)), "whole": max(_peak(whole) for _ in range(2))}
            db_bytes = sum(p.stat().st_size for p in root.glob("gallery.sqlite3*"))
            matches = got["search"][1]
        finally:
            store.close()
    m = {k: median(v) for k, v in t.items()}
    info = {"rows": TOTAL, "page": PAGE, "build_s": build_s, "store_open_s": open_s, "db_bytes": db_bytes}
    page_peak = max(mem["page"], mem["deep"], mem["search"])
    return [
        Row("gallery_page", f"first page list(limit={PAGE}) of {TOTAL} vs loading all {TOTAL}", "s",
            m["page"], m["whole"], goal="ours < 300 ms", check=("max_value", 0.300), reps=reps,
            samples={"ours": t["page"], "baseline": t["whole"]},
            extra={**info, "deep_page_s": m["deep"], "deep_offset": TOTAL - PAGE}),
        Row("gallery_search", f"search list(query='{QUERY}', limit={PAGE}) vs first page", "s",
            m["search"], m["page"], goal="ours < 300 ms", check=("max_value", 0.300), reps=reps,
            samples={"ours": t["search"], "baseline": t["page"]},
            extra={**info, "query": QUERY, "matches": matches, "no_match_s": m["no_match"]}),
        Row("gallery_memory", f"peak Python memory of a page fetch vs the whole history ({TOTAL} rows)", "bytes",
            float(page_peak), float(mem["whole"]), goal="bounded by page (< 5% of history)",
            check=("max_ratio", 0.05), reps=3,
            extra={"peak_first_page": mem["page"], "peak_deep_page": mem["deep"], "peak_search_page": mem["search"],
                   "peak_whole_history": mem["whole"], "page_share": PAGE / TOTAL, "db_bytes": db_bytes}),
    ]
