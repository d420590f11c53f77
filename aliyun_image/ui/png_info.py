"""PNG info: a dropped PNG's recipe (this app's, or A1111's) fills the panel of its task, as
"Reuse parameters" does. The drop area is a closed accordion under the tabs, there on every tab;
its event is private.

Hosted mode: a dropped file is read only from Gradio's upload folder, and input images come back
from the caller's own kept copies (by digest), never from paths the file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..errors import AliyunImageError, ValidationError
from ..i18n import msg
from ..recipes import read_png_recipe, reuse_values
from ..runtime import AppContext, gradio_upload_dir
from .page_text import md, ui_error
from .request_info import caller_gallery, request_lang
from .reuse_fill import ReuseTargets, fill_panel
from .strings import t
from .widgets import I18N, PRIVATE


@dataclass
class PngDrop:
    """The drop area for a PNG and the line that says what was read from it."""

    file: gr.File
    status: gr.Markdown


def build_png_drop() -> PngDrop:
    """A file drop for PNGs (this app's, or A1111's) and its status line."""
    with gr.Accordion(I18N("keep.png_info"), open=False, elem_id="png-info"):
        file = gr.File(label=I18N("keep.png_drop"), file_types=[".png"], type="filepath", file_count="single",
                       height=120, elem_id="png-info-file")
        status = gr.Markdown(elem_id="png-info-status")
    return PngDrop(file, status)


class PngInfo:
    """The drop's event, bound to the app's context and the widgets a recipe fills."""

    def __init__(self, ctx: AppContext, reuse: ReuseTargets | None = None):
        self.ctx = ctx
        self.reuse_targets = reuse

    def png_info(self, file: str | None, request: gr.Request) -> dict:
        """Read the recipe of a dropped PNG and fill the panel of its task (t2i, edit or fusion)."""
        lang = request_lang(request)
        targets = self.reuse_targets
        if targets is None:
            raise RuntimeError("PngInfo built without reuse targets")  # a wiring bug, not a user's
        here = targets.statuses.get("png")  # the line under the drop area
        if not file:
            return {here: ""} if here is not None else {}
        path = Path(str(file))
        try:
            if self.ctx.opts.hosted and not path.resolve().is_relative_to(gradio_upload_dir()):
                # a crafted path: read nothing
                raise ValidationError(msg("ui.keep.png_not_dropped"), code="Validation.Recipe")
            recipe = read_png_recipe(path)
        except AliyunImageError as exc:
            if here is None:
                raise ui_error(lang, exc.text(lang, details=False)) from None
            return {here: "✗ " + md(exc.text(lang, details=False))}
        # Inputs come back from the visitor's own kept copies (by digest), never from the file's paths.
        files = caller_gallery(self.ctx, request).kept_inputs([i.get("sha256") for i in recipe.inputs])
        plan = reuse_values(recipe, files)
        source = t(lang, "keep.png_source_ours" if recipe.source == "aliyun-image" else "keep.png_source_a1111")
        text = t(lang, "keep.png_loaded", name=md(path.name[:80]), source=source)  # for Markdown lines
        if plan.inputs:
            text += " " + t(lang, "keep.png_inputs", restored=plan.restored, inputs=plan.inputs)
        out = fill_panel(targets, plan, text)
        if here is not None:
            out[here] = "✓ " + text
        return out

    def wire(self, drop: PngDrop) -> None:
        """A dropped PNG fills the panel of its task (the same widgets "Reuse parameters" fills)."""
        assert self.reuse_targets is not None  # built with the panels, just before the wiring
        drop.file.upload(self.png_info, drop.file, self.reuse_targets.outputs(), **PRIVATE)
        # Cleared (to drop another file): the line about the previous file goes with it, so a next
        # file the page refuses (not a .png) leaves no stale "✓ Loaded" behind.
        drop.file.clear(png_cleared, None, drop.status, **PRIVATE)


def png_cleared() -> str:
    """The drop area was cleared: its line says nothing any more."""
    return ""
