""""Reuse parameters": which recorded values of a stored result go back into which controls.

Plain data, no Gradio: :func:`reuse_values` maps a :class:`~aliyun_image.storage.store.Record` to the
panel it came from and a value per control name. The UI owns the widgets behind those names
(``ui.panels``); the names are the keys of :data:`FIELDS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import catalog
from ..enums import Task
from ..jobs import MAX_FANOUT

# The controls "Reuse parameters" may fill, per panel (= the task a result came from).
_COMMON = ("prompt", "negative", "quality", "model", "seed", "n", "extend", "watermark", "extend_mode", "thinking")
FUSE_SLOTS = 10  # the fusion panel's slots: slot 1-slot 3, and slot 4-slot 10 for models that take more (2.1-pro)
FIELDS: dict[str, tuple[str, ...]] = {
    "t2i": (*_COMMON, "size"),
    "edit": (*_COMMON, "image", "url", "size_mode", "width", "height"),
    "fuse": (*_COMMON, *(f"image{k}" for k in range(1, FUSE_SLOTS + 1)), "size_mode", "width", "height"),
}


class Reusable(Protocol):
    """What reuse reads: a stored :class:`~aliyun_image.storage.store.Record`, or a recipe read from a PNG
    (:class:`aliyun_image.recipes.read.PngRecipe`)."""

    task: str
    model: str
    prompt: str
    negative: str
    seed: int | None
    params: dict
    inputs: list


@dataclass(frozen=True)
class ReusePlan:
    """Where a result's parameters go: the panel (its task) and a value per control name."""

    panel: str
    values: dict[str, Any]
    inputs: int = 0  # input images the result had
    restored: int = 0  # of which came back (kept copies, or URLs for the edit's URL box)


def _default_models() -> set[str]:
    """Models the quality switch picks by itself: reused as "automatic", not pinned by name."""
    return {catalog.default_model(task, best) for task in (catalog.T2I, catalog.EDIT) for best in (False, True)}


def _size_values(rec: Reusable) -> dict[str, Any]:
    """Text-to-image keeps its size preset; edit and fusion get custom width and height (or auto)."""
    size = rec.params.get("size")
    if rec.task == "t2i":
        return {"size": size} if size else {}
    out: dict[str, Any] = {"size_mode": "custom" if size else "auto"}
    if size:
        out["width"], out["height"] = (int(v) for v in str(size).split("*"))
    return out


def _image_values(rec: Reusable, files: Sequence[Path | None]) -> tuple[dict[str, Any], int]:
    """The input images back into the panel's slots, in order: a kept copy as a file, a URL input
    into the edit's URL box. Every slot is written (emptied when nothing comes back), so nothing
    of an earlier form stays behind. Returns the values and how many inputs came back."""
    files = list(files) + [None] * (len(rec.inputs) - len(files))
    urls = [i.get("url") if isinstance(i, dict) else None for i in rec.inputs]
    if rec.task == "edit":
        first = next((str(f) for f in files if f is not None), None)
        url = next((u for u in urls if u), None) if first is None else None
        return {"image": first, "url": url or ""}, int(bool(first or url))
    if rec.task == "fuse":
        slots = [str(f) if f is not None else None for f in files[:FUSE_SLOTS]] + [None] * FUSE_SLOTS
        return {f"image{k + 1}": slots[k] for k in range(FUSE_SLOTS)}, sum(1 for v in slots[:FUSE_SLOTS] if v)
    return {}, 0


def reuse_values(rec: Reusable, files: Sequence[Path | None] = ()) -> ReusePlan:
    """The control values that reproduce ``rec`` in the panel of its task; ``files`` are the kept
    copies of its input images, in order (see :meth:`aliyun_image.storage.gallery.Gallery.input_files`)."""
    spec = catalog.get_model(rec.model)
    p = rec.params
    values: dict[str, Any] = {
        "prompt": rec.prompt,
        "negative": rec.negative,
        "quality": "max" if spec is not None and spec.name.endswith("-max") else "plus",
        "model": "" if rec.model in _default_models() else rec.model,
        "seed": rec.seed if rec.seed is not None else -1,
        # The run's n, for every task alike: reusing brings the whole recipe back (a fan-out run's
        # seeds follow from the first, so n=4 from its first image gives the same four again).
        "n": _n_value(spec, p.get("n")),
        "extend": bool(p.get("prompt_extend")),
        "watermark": bool(p.get("watermark")),
        # The 3.0 line's rewriting options as sent; a run that sent none had the service's documented
        # defaults (direct, thinking on), which are written too, so no earlier choice stays behind.
        "extend_mode": p.get("prompt_extend_mode") or catalog.PROMPT_EXTEND_MODES[0],
        "thinking": p["enable_thinking"] if isinstance(p.get("enable_thinking"), bool) else True,
        **_size_values(rec),
    }
    images, restored = _image_values(rec, files)
    values.update(images)
    # A result of another task (an X/Y grid) is reused in text-to-image, the panel of its prompt.
    panel = rec.task if rec.task in {t.value for t in Task} else Task.T2I
    return ReusePlan(panel, values, inputs=len(rec.inputs), restored=restored)


def _n_value(spec: catalog.ModelSpec | None, n: Any) -> int:
    """``n`` as recorded, within what the jobs accept (1-6; a fan-out model fans out to it)."""
    try:
        value = int(n or 1)
    except (TypeError, ValueError):
        value = 1
    high = spec.n_max if spec is not None and not spec.fixed_n else MAX_FANOUT
    return max(1, min(value, high))
