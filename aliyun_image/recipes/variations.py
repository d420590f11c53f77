"""Variations: the same recipe as a stored result, with new seeds.

Plain data, no Gradio: :func:`variation_request` turns a :class:`~aliyun_image.storage.store.Record` into
what a run needs (task, prompt, input images, options) so the UI can send it through the same run
path as a click on Generate (quota, Stop, hosted rules). The seed is always random (-1: the
service picks it locally, so the seeds used are known and shown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..enums import Relation
from ..errors import ValidationError
from ..jobs import Parent
from ..i18n import msg
from ..storage import Record


@dataclass(frozen=True)
class VariationRequest:
    """A run that repeats ``source``'s recipe with fresh seeds."""

    source: int  # the record id it repeats
    task: str
    prompt: str
    images: list[Any]
    options: dict[str, Any]


def _input_image(inp: Any, kept: Path | None) -> Any:
    """An input of the recipe as a source the service accepts: its URL, or the bytes of the copy
    kept in the data dir (bytes, not a path: hosted mode takes no server paths); None if gone."""
    if isinstance(inp, dict) and inp.get("url"):
        return inp["url"]
    if kept is None:
        return None
    try:
        return kept.read_bytes()
    except OSError:
        return None


def _inputs_missing(rec: Record) -> ValidationError:
    return ValidationError(msg("run.inputs_gone", id=rec.id), code="Validation.InputsGone")


def variation_request(rec: Record, kept: Sequence[Path | None] = (), n: int | None = None) -> VariationRequest:
    """The run that makes ``n`` new images (default: as many as the run that made ``rec``) with
    ``rec``'s recipe and random seeds. ``kept`` is the kept copy of each input image, in order
    (:meth:`Gallery.input_files <aliyun_image.storage.gallery.Gallery.input_files>`). Raises
    ValidationError when an input image is no longer available (only URLs and kept copies can be
    sent again)."""
    files = list(kept) + [None] * (len(rec.inputs) - len(kept))
    images = [_input_image(inp, f) for inp, f in zip(rec.inputs, files, strict=False)]
    if any(im is None for im in images):
        raise _inputs_missing(rec)
    p = rec.params
    options: dict[str, Any] = {
        "model": rec.model, "n": int(n) if n else int(p.get("n") or 1), "seed": -1,
        "size": p.get("size") or None, "negative": rec.negative or "",
        "prompt_extend": bool(p.get("prompt_extend")), "watermark": bool(p.get("watermark")),
        "parents": [Parent(rec.id, Relation.VARIATION)],  # its lineage: "variation of #7"
    }
    # The rewriting's own options, where the run sent them (3.0 and 2.1 models).
    for option, param in (("extend_mode", "prompt_extend_mode"), ("thinking", "enable_thinking")):
        if p.get(param) is not None:
            options[option] = p[param]
    return VariationRequest(rec.id, rec.task, rec.prompt, images, options)
