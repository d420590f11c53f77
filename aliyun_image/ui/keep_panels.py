"""The PNG info drop: a closed accordion under the tabs, there on every tab (see :mod:`.keep_handlers`)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .widgets import I18N


@dataclass
class PngInfo:
    """The drop area for a PNG and the line that says what was read from it."""

    file: gr.File
    status: gr.Markdown


def build_png_info() -> PngInfo:
    """A file drop for PNGs (this app's, or A1111's) and its status line."""
    with gr.Accordion(I18N("png_info"), open=False, elem_id="png-info"):
        file = gr.File(label=I18N("png_drop"), file_types=[".png"], type="filepath", file_count="single",
                       height=120, elem_id="png-info-file")
        status = gr.Markdown(elem_id="png-info-status")
    return PngInfo(file, status)
