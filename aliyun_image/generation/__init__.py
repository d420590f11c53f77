"""The use cases: generate, edit and fuse a validated job into downloaded, stored results
(:class:`ImageService`), the downloads, and what a finished run says (:mod:`.outcome`); batches of
many requests, planned, priced and resumable (:mod:`.batch`), and the X/Y grid (:mod:`.grid`).
"""

from __future__ import annotations

from .downloads import verify_image
from .outcome import Outcome, escape_md, note_text, page_summary, rewrite_table, terminal_summary
from .service import Batch, Event, ImageService
from . import batch, grid
from .batch import Axis, BatchOutcome, BatchSpec, Plan

__all__ = [
    "Axis",
    "Batch",
    "BatchOutcome",
    "BatchSpec",
    "Plan",
    "batch",
    "grid",
    "Event",
    "ImageService",
    "Outcome",
    "escape_md",
    "note_text",
    "page_summary",
    "rewrite_table",
    "terminal_summary",
    "verify_image",
]
