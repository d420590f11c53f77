"""Event handlers: turn widget values into service calls and service results into widget values.

:class:`Handlers` is every event function of the app, bound to one
:class:`~aliyun_image.runtime.context.AppContext`: the runs and Stop (:mod:`.run_handlers`), the
gallery (:mod:`.gallery_handlers`) and the small form helpers below. The layout builds it once
the widgets exist, handing it the widgets "Reuse parameters" fills.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

import asyncio

from ..catalog import spec as catalog, describe as model_info
from ..dashscope import keycheck
from ..errors import AliyunImageError
from ..i18n import Message, msg, render
from ..jobs import MAX_FANOUT
from .present import error_md, header_key, request_lang
from ..runtime import AppContext
from .gallery_handlers import GalleryHandlers, ReuseTargets
from .gallery_search import GallerySearch
from .result_actions import ResultActions
from .rewrite import RewriteHandlers, reuse_with_wording
from .run_handlers import RunHandlers
from .strings import preset_instruction, t


def key_report(result: keycheck.KeyCheck, where: keycheck.Places, lang: str, hint: Message | None = None,
               workspace: str | None = None) -> str:
    """The key check as Markdown: one line per place, then the verdict (platform and region)."""
    lines = []
    for r in result.results:
        ms = f"{r.latency_ms} ms" if r.latency_ms is not None else "-"
        lines.append(f"- {'✓' if r.valid else '✗'} {r.label(lang)} · {t(lang, 'key.' + r.status)} · {ms}")
    said = [render(lang, m) for m in keycheck.verdict(result, where.configured, workspace)]
    if not result.valid:
        said = [render(lang, msg("platform.none_accepts"))]
    if hint is not None:
        said.append(render(lang, hint))
    return "\n".join(lines) + "\n\n" + "\n\n".join(said)


class Handlers(ResultActions, GalleryHandlers, GallerySearch):
    """All event functions of the app (see the module docstring)."""

    def __init__(self, ctx: AppContext, reuse: ReuseTargets | None = None):
        RunHandlers.__init__(self, ctx)
        GalleryHandlers.__init__(self, ctx, reuse)
        self.rewrite = RewriteHandlers(self.rewrites, self.runs)

    # --- small form helpers (private events) -----------------------------------------------------
    def follow_t2i(self, quality: str, model: str, request: gr.Request) -> tuple[Any, ...]:
        """The user picked a model: every text-to-image control that depends on it (description,
        sizes, ``n`` range, rewriting switch, negative box) follows, values reset to its defaults."""
        return self._t2i(quality, model, request, values=True)

    def refresh_t2i(self, quality: str, model: str, request: gr.Request) -> tuple[Any, ...]:
        """The model changed by other means (page load, reuse): choices and limits follow, the
        values just filled in stay."""
        return self._t2i(quality, model, request, values=False)

    def _t2i(self, quality: str, model: str, request: gr.Request, values: bool) -> tuple[Any, ...]:
        spec, lang = self._effective(catalog.T2I, quality, model), request_lang(request)
        rule = spec.size_rule(catalog.T2I)
        choices: list[tuple[Any, str]] = [(o.label, o.value) for o in rule.presets]
        if not rule.default:
            choices.insert(0, (t(lang, "size_auto_model"), ""))
        default = rule.default or (choices[0][1] if choices else "")
        size = (gr.Dropdown(choices=choices, allow_custom_value=rule.free, value=default) if values
                else gr.Dropdown(choices=choices, allow_custom_value=rule.free))
        return (self._info(spec, catalog.T2I, lang), size, *self._switches(spec, lang, values))

    def prompt_limit(self, quality: str, model: str) -> int:
        """The effective text-to-image model's prompt limit (for the counter in the page)."""
        return self._effective(catalog.T2I, quality, model).prompt_max

    def follow_edit(self, quality: str, model: str, request: gr.Request) -> tuple[Any, ...]:
        """The edit and fusion controls that depend on the model the user picked (see follow_t2i)."""
        return self._edit(quality, model, request, values=True)

    def refresh_edit(self, quality: str, model: str, request: gr.Request) -> tuple[Any, ...]:
        """As refresh_t2i, for edit and fusion."""
        return self._edit(quality, model, request, values=False)

    def _edit(self, quality: str, model: str, request: gr.Request, values: bool) -> tuple[Any, ...]:
        spec, lang = self._effective(catalog.EDIT, quality, model), request_lang(request)
        opts = spec.size_rule(catalog.EDIT).presets
        choices = [(o.label, o.value) for o in opts]
        preset = (gr.Dropdown(choices=choices, value=choices[0][1] if choices else None) if values
                  else gr.Dropdown(choices=choices))
        return (self._info(spec, catalog.EDIT, lang), preset, *self._switches(spec, lang, values))

    @staticmethod
    def _effective(task: str, quality: str, model: str) -> catalog.ModelSpec:
        return catalog.choose_model(task, model, quality == "max")[1]

    def _info(self, spec: catalog.ModelSpec, task: str, lang: str) -> str:
        return model_info.summary(spec, task, self.ctx.settings.region, lang)

    @staticmethod
    def _switches(spec: catalog.ModelSpec, lang: str, values: bool) -> tuple[Any, Any, Any]:
        """n's range, the rewriting switch (its default, and z-image-turbo's doubled price next to
        it) and the negative prompt box (off for models that take none)."""
        top = spec.n_max if not spec.fixed_n else MAX_FANOUT
        doubles = spec.price_extend and spec.price_extend != spec.price
        info = t(lang, "extend_price") if doubles else None
        extend = (gr.Checkbox(value=spec.prompt_extend_default, interactive=spec.accepts("prompt_extend"), info=info)
                  if values else gr.Checkbox(interactive=spec.accepts("prompt_extend"), info=info))
        negative = gr.Textbox(interactive=spec.accepts("negative_prompt"))
        return gr.Slider(maximum=top), extend, negative

    async def check_key(self, request: gr.Request,
                        x_dashscope_api_key: gr.Header = None) -> str:  # type: ignore[assignment]
        """Which region the typed key (else the host's) belongs to: one free call per region."""
        lang = request_lang(request)
        key = (header_key(x_dashscope_api_key) or "").strip() or self.ctx.host_key
        if not key:
            return t(lang, "key.check_none")
        s = self.ctx.settings
        # An emulator or proxy base is asked alone (named by its URL unless a region was asked for);
        # otherwise the configured place first, then every other. The result stays this caller's.
        where = keycheck.places(s, others=not s.is_custom_base)
        try:
            result = await asyncio.to_thread(keycheck.probe_places, key, where.bases, workspace=s.workspace)
        except AliyunImageError as exc:
            return error_md(exc, lang)
        return key_report(result, where, lang, keycheck.key_hint(key), s.workspace)

    def apply_preset(self, preset: str, style: str, obj: str, request: gr.Request) -> str:
        """Instruction text for an edit preset."""
        return preset_instruction(preset, style if preset == "style" else obj, request_lang(request))

    def reuse_wording(self, selected: int | None, request: gr.Request) -> dict:
        """Reuse parameters with the rewritten prompt and rewriting off (see rewrite.py)."""
        return reuse_with_wording(self, selected, request)

    def swap(self, a: Any, b: Any) -> tuple[Any, Any]:
        """Swap two fusion slots."""
        return b, a
