"""Event handlers: turn widget values into service calls and service results into widget values.

:class:`Handlers` is every event function of the app, bound to one
:class:`~aliyun_image.ui.context.AppContext`: the runs and Stop (:mod:`.run_handlers`), the
gallery (:mod:`.gallery_handlers`) and the small form helpers below. The layout builds it once
the widgets exist, handing it the widgets "Reuse parameters" fills.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import catalog
from .present import request_lang
from .context import AppContext
from .gallery_handlers import GalleryHandlers, ReuseTargets
from .run_handlers import RunHandlers
from .strings import PRESET_LABELS, preset_instruction


class Handlers(RunHandlers, GalleryHandlers):
    """All event functions of the app (see the module docstring)."""

    def __init__(self, ctx: AppContext, reuse: ReuseTargets | None = None):
        RunHandlers.__init__(self, ctx)
        GalleryHandlers.__init__(self, ctx, reuse)

    # --- small form helpers (private events) -----------------------------------------------------
    def t2i_sizes(self, quality: str, model: str) -> gr.Dropdown:
        """Size presets for the effective text-to-image model."""
        name = model or catalog.default_model(catalog.T2I, quality == "max")
        opts = catalog.size_options(name, catalog.T2I)
        spec = catalog.get_model(name)
        default = spec.size.default if spec else None
        return gr.Dropdown(choices=[(o.label, o.value) for o in opts],
                           value=default or (opts[0].value if opts else None))

    def edit_sizes(self, quality: str, model: str) -> gr.Dropdown:
        """Size presets for the effective edit model."""
        name = model or catalog.default_model(catalog.EDIT, quality == "max")
        opts = catalog.size_options(name, catalog.EDIT)
        return gr.Dropdown(choices=[(o.label, o.value) for o in opts], value=opts[0].value if opts else None)

    def apply_preset(self, preset: str, style: str, obj: str, request: gr.Request) -> str:
        """Instruction text for an edit preset."""
        return preset_instruction(preset, style if preset == "style" else obj, request_lang(request))

    def swap(self, a: Any, b: Any) -> tuple[Any, Any]:
        """Swap two fusion slots."""
        return b, a

    def preset_labels(self, request: gr.Request) -> gr.Dropdown:
        """Preset names in the visitor's language (the dropdown values stay the same)."""
        return gr.Dropdown(choices=[(label, key) for key, label in PRESET_LABELS[request_lang(request)].items()])
