"""The PNG info drop (a closed accordion under the tabs, there on every tab) and the wiring of the
"nothing is lost" events: Undo after a delete, PNG info (handlers in :mod:`.keep_handlers`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from .widgets import I18N, PRIVATE

if TYPE_CHECKING:
    from .handlers import Handlers
    from .panels import GalleryPanel


@dataclass
class PngInfo:
    """The drop area for a PNG and the line that says what was read from it."""

    file: gr.File
    status: gr.Markdown


def build_png_info() -> PngInfo:
    """A file drop for PNGs (this app's, or A1111's) and its status line."""
    with gr.Accordion(I18N("keep.png_info"), open=False, elem_id="png-info"):
        file = gr.File(label=I18N("keep.png_drop"), file_types=[".png"], type="filepath", file_count="single",
                       height=120, elem_id="png-info-file")
        status = gr.Markdown(elem_id="png-info-status")
    return PngInfo(file, status)


def wire_keep(h: Handlers, g: GalleryPanel, png: PngInfo) -> None:
    """Undo brings the last deleted result back and refreshes the page of thumbnails; a dropped
    PNG fills the panel of its task (the same widgets "Reuse parameters" fills)."""
    g.undo.click(h.gallery_undo, g.last_deleted, [g.status, g.last_deleted, g.undo], **PRIVATE).then(
        h.gallery_page, [*g.filters(), g.page_no], g.page_outputs(), **PRIVATE)
    assert h.reuse_targets is not None  # built with the panels, just before the wiring
    png.file.upload(h.png_info, png.file, h.reuse_targets.outputs(), **PRIVATE)
