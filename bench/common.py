"""Shared helpers: timing (interleaved medians), result rows, fixtures, the bare client."""

from __future__ import annotations

import functools
import io
import os
import random
import socket
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import requests

KEY = "sk-bench-123456"  # the emulator accepts any sk-... key; not a secret
PROMPT = "一只橘猫在阳光下打盹，窗台上，柔和的午后光线，细腻的毛发"
EDIT_INSTRUCTION = "把背景换成星空"
EDIT_INPUT_URL = "https://example.com/a.png"  # the emulator accepts it without fetching
GENERATION_PATH = "/services/aigc/multimodal-generation/generation"
RESULT_SIZE = (1664, 928)  # qwen-image-plus's default 16:9 size


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds just the table."""
    print(msg, file=sys.stderr, flush=True)


# --- timing ----------------------------------------------------------------------------------------
def interleaved(variants: dict[str, Callable[[], Any]], reps: int, warmup: int = 1,
                budget_s: float | None = None) -> dict[str, list[float]]:
    """Time each variant ``reps`` times, rotating their order every repetition (cancels drift).

    Returns seconds per call (``time.perf_counter``) for each variant, in run order. A variant
    that returns a float reports its own measurement instead (e.g. time to first HTTP 200,
    excluding its clean-up). ``warmup`` untimed calls of each variant come first (connections,
    caches, imports). With ``budget_s``, no new repetition starts once that much time has
    passed (at least one always runs), so a badly slow case cannot blow the run's time.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    out: dict[str, list[float]] = {n: [] for n in names}
    start = time.perf_counter()
    for r in range(reps):
        if r and budget_s is not None and time.perf_counter() - start > budget_s:
            log(f"  time budget of {budget_s:.0f} s reached after {r} repetitions")
            break
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            res = variants[name]()
            dt = time.perf_counter() - t0
            out[name].append(res if isinstance(res, float) else dt)
    return out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


# --- result rows -----------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table (and one object in the JSON).

    ``ratio`` is ``ours / baseline`` unless ``ratio_kind`` says ``baseline/ours`` (a speed-up).
    ``goal`` is a human sentence; ``check`` says how ``met`` is decided:
    ``("max_ratio", x)``, ``("min_ratio", x)``, ``("max_value", x)`` (ours, in ``unit``),
    ``("max_diff", x)`` (ours - baseline, in ``unit``) or None (reference figure, no goal).
    """

    name: str
    what: str
    unit: str  # "s" or "bytes"
    ours: float | None = None
    baseline: float | None = None
    ratio_kind: str = "ours/baseline"
    goal: str = ""
    check: tuple[str, float] | None = None
    reps: int = 0
    status: str = "ok"  # ok | skipped | error
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.baseline:
            return None
        if self.ratio_kind == "baseline/ours":
            return self.baseline / self.ours if self.ours else None
        return self.ours / self.baseline

    @property
    def met(self) -> bool | None:
        if self.check is None or self.status != "ok" or self.ours is None:
            return None
        kind, limit = self.check
        if kind == "max_value":
            return self.ours <= limit
        if kind == "max_diff":
            return self.baseline is not None and self.ours - self.baseline <= limit
        r = self.ratio
        if r is None:
            return None
        return r <= limit if kind == "max_ratio" else r >= limit

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["check"] = list(self.check) if self.check else None
        d["ratio"] = self.ratio
        d["met"] = self.met
        return d


def skipped(name: str, what: str, note: str) -> Row:
    return Row(name, what, "s", status="skipped", note=note)


def failed(name: str, what: str, exc: BaseException) -> Row:
    return Row(name, what, "s", status="error", note=f"{type(exc).__name__}: {exc}"[:500])


# --- fixtures --------------------------------------------------------------------------------------
def noise(size: tuple[int, int], seed: int = 1, block: int = 1):
    """Deterministic RGB noise; ``block`` > 1 smooths it (as in tests/test_images.py)."""
    from PIL import Image

    w, h = max(1, size[0] // block), max(1, size[1] // block)
    small = Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))
    return small if block == 1 else small.resize(size, Image.Resampling.BILINEAR)


@functools.lru_cache(maxsize=1)
def result_png() -> bytes:
    """A ready-made 1664x928 PNG of about 1.8 MB, like a real Qwen-Image result.

    Smoothed noise compresses about as badly as a photo-like render; the emulator's own
    stand-in pictures are flat (~85 KB) and would under-state download and write costs.
    """
    buf = io.BytesIO()
    noise(RESULT_SIZE, seed=3, block=16).save(buf, "PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the bare client of shared/aliyun-image-skill.md ----------------------------------------------
def skill_body(prompt: str, model: str = "qwen-image-plus") -> dict:
    """The request body exactly as the skill document sends it."""
    return {
        "model": model,
        "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
        "parameters": {"prompt_extend": True, "watermark": False},
    }


def bare_generate(base_url: str, out: Path, prompt: str = PROMPT, http: Any = requests) -> None:
    """requests.post, then requests.get, then write the file (``http`` may be a Session)."""
    resp = http.post(base_url + GENERATION_PATH, headers={"Authorization": f"Bearer {KEY}"},
                     json=skill_body(prompt))
    url = resp.json()["output"]["choices"][0]["message"]["content"][0]["image"]
    img = http.get(url)
    with open(out, "wb") as fh:
        fh.write(img.content)


class Counter:
    """Fresh file names for the bare client's outputs."""

    def __init__(self, folder: Path, suffix: str = ".png"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self.n = 0

    def next(self) -> Path:
        self.n += 1
        return self.folder / f"{self.n:05d}{self.suffix}"


def tmp_root() -> str | None:
    """Where temporary data goes (``BENCH_TMPDIR`` overrides the system default)."""
    return os.environ.get("BENCH_TMPDIR") or None
