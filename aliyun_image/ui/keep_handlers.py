"""Handlers of the "nothing is lost" features: Undo after a delete, and PNG info (a dropped PNG's
recipe into the panel of its task). Private events; mixed into :class:`~aliyun_image.ui.handlers.Handlers`.

Hosted mode: Undo goes through the caller's :class:`~aliyun_image.storage.gallery.Gallery`, so another
visitor's id restores nothing; a dropped file is read only from Gradio's upload folder.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..errors import AliyunImageError, ValidationError
from ..i18n import msg
from ..storage import Gallery
from ..recipes import read_png_recipe
from ..recipes import reuse_values
from ..runtime import AppContext, gradio_upload_dir
from .present import md, request_lang, request_session, ui_error
from .reuse_fill import ReuseTargets, fill_panel
from .strings import t


class KeepHandlers:
    """Undo and PNG info, bound to the app's context and the widgets a recipe fills."""

    ctx: AppContext
    reuse_targets: ReuseTargets | None

    def _owner_gallery(self, request: gr.Request | None) -> Gallery:
        return self.ctx.gallery(request_session(request))

    def gallery_undo(self, last: int | None, request: gr.Request):
        """Bring the last deleted result back from the trash (only the caller's own)."""
        lang = request_lang(request)
        rec = self._owner_gallery(request).restore(int(last)) if last else None
        if rec is None:
            return t(lang, "keep.undo_nothing"), None, gr.Button(visible=False)
        return t(lang, "keep.undone", id=rec.id), None, gr.Button(visible=False)

    def png_info(self, file: str | None, request: gr.Request) -> dict:
        """Read the recipe of a dropped PNG and fill the panel of its task (t2i, edit or fusion)."""
        lang = request_lang(request)
        targets = self.reuse_targets
        if targets is None:
            raise RuntimeError("Handlers built without reuse targets")  # a wiring bug, not a user's
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
        files = self._owner_gallery(request).kept_inputs([i.get("sha256") for i in recipe.inputs])
        plan = reuse_values(recipe, files)
        source = t(lang, "keep.png_source_ours" if recipe.source == "aliyun-image" else "keep.png_source_a1111")
        text = t(lang, "keep.png_loaded", name=md(path.name[:80]), source=source)  # for Markdown lines
        if plan.inputs:
            text += " " + t(lang, "keep.png_inputs", restored=plan.restored, inputs=plan.inputs)
        out = fill_panel(targets, plan, text)
        if here is not None:
            out[here] = "✓ " + text
        return out
