""""Reuse parameters": which recorded values of a stored result go back into which controls.

Plain data, no Gradio: :func:`reuse_values` maps a :class:`~aliyun_image.store.Record` to the
panel it came from and a value per control name. The UI owns the widgets behind those names
(``ui.panels``); the names are the keys of :data:`FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import catalog
from .store import Record

# The controls "Reuse parameters" may fill, per panel (= the task a result came from).
_COMMON = ("prompt", "negative", "quality", "model", "seed", "n", "extend", "watermark")
FIELDS: dict[str, tuple[str, ...]] = {
    "t2i": (*_COMMON, "size"),
    "edit": (*_COMMON, "url", "size_mode", "width", "height"),
    "fuse": (*_COMMON, "size_mode", "width", "height"),
}


@dataclass(frozen=True)
class ReusePlan:
    """Where a result's parameters go: the panel (its task) and a value per control name."""

    panel: str
    values: dict[str, Any]


def _default_models() -> set[str]:
    """Models the quality switch picks by itself: reused as "automatic", not pinned by name."""
    return {catalog.default_model(task, best) for task in (catalog.T2I, catalog.EDIT) for best in (False, True)}


def _size_values(rec: Record) -> dict[str, Any]:
    """Text-to-image keeps its size preset; edit and fusion get custom width and height (or auto)."""
    size = rec.params.get("size")
    if rec.task == "t2i":
        return {"size": size} if size else {}
    out: dict[str, Any] = {"size_mode": "custom" if size else "auto"}
    if size:
        out["width"], out["height"] = (int(v) for v in str(size).split("*"))
    url = next((i.get("url") for i in rec.inputs if i.get("url")), None)
    if rec.task == "edit" and url:
        out["url"] = url  # an uploaded input is not kept: only a URL input can be given back
    return out


def reuse_values(rec: Record) -> ReusePlan:
    """The control values that reproduce ``rec`` in the panel of its task."""
    spec = catalog.get_model(rec.model)
    p = rec.params
    values: dict[str, Any] = {
        "prompt": rec.prompt,
        "negative": rec.negative,
        "quality": "max" if spec is not None and spec.name.endswith("-max") else "plus",
        "model": "" if rec.model in _default_models() else rec.model,
        "seed": rec.seed if rec.seed is not None else -1,
        # A fan-out image was its own request (its own seed): reusing it means one image. An edit's
        # n images share one request and seed, so n is part of reproducing it.
        "n": 1 if spec is None or spec.fixed_n else int(p.get("n") or 1),
        "extend": bool(p.get("prompt_extend")),
        "watermark": bool(p.get("watermark")),
        **_size_values(rec),
    }
    return ReusePlan(rec.task, values)
