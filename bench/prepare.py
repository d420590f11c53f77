"""Input preparation: a 6000x4000 camera JPEG of about 10 MB.

Ours: ``prepare_image(path)`` (decode with JPEG draft scaling, resize to 2048 px, re-encode).
Baseline: what a bare client sends, the raw file read and base64-encoded.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from aliyun_image.images import prepare_image

from .common import Row, interleaved, median, noise, tmp_root

NAME = "prepare"


def make_camera_jpeg(path: Path) -> bytes:
    """Smoothed noise at quality 90: ~10.7 MB, about what a 24 MP camera writes."""
    noise((6000, 4000), seed=7, block=4).save(path, "JPEG", quality=90)
    return path.read_bytes()


def run(quick: bool = False) -> list[Row]:
    reps = 4 if quick else 15
    with tempfile.TemporaryDirectory(prefix="bench-prepare-", dir=tmp_root()) as tmp:
        path = Path(tmp) / "camera.jpg"
        raw = make_camera_jpeg(path)
        box: dict = {}

        def ours() -> None:
            box["prep"] = prepare_image(path)

        def bare() -> None:
            box["b64"] = base64.b64encode(path.read_bytes())

        t = interleaved({"ours": ours, "bare": bare}, reps, warmup=1)
    prep, b64 = box["prep"], box["b64"]
    m = {k: median(v) for k, v in t.items()}
    info = {"input": "6000x4000 JPEG q90", "input_bytes": len(raw), "output_size": f"{prep.width}x{prep.height}",
            "output_mime": prep.mime, "notes": [note.render("en") for note in prep.notes]}
    return [
        Row("prepare_time", "prepare_image(10 MB 6000x4000 JPEG) vs read+base64 of the raw file", "s",
            m["ours"], m["bare"], goal="ours < 0.5 s", check=("max_value", 0.5), reps=reps,
            samples={"ours": t["ours"], "baseline": t["bare"]}, extra=info),
        Row("prepare_bytes", "bytes sent: prepared .data vs base64(raw)", "bytes",
            float(len(prep.data)), float(len(b64)), goal="<= 40% of the bytes", check=("max_ratio", 0.40),
            reps=1, extra={**info, "data_uri_bytes": len(prep.data_uri())}),
    ]
