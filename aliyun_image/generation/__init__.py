"""The use cases: generate, edit and fuse a validated job into downloaded, stored results
(:class:`ImageService`), the downloads, and what a finished run says (:mod:`.outcome`).
"""

from __future__ import annotations

from .downloads import verify_image
from .outcome import Outcome, escape_md, note_text, page_summary, rewrite_table, terminal_summary
from .service import Batch, Event, ImageService

__all__ = [
    "Batch",
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
