"""Controls that follow the effective model: when the quality switch or the model picker changes,
the model's description, its sizes, the ``n`` range, the rewriting switch and the negative box
follow (private events), the quality switch shows when a chosen model overrides it, and the
text-to-image prompt counter learns the model's limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from ..catalog import describe as model_info
from ..catalog import spec as catalog
from ..jobs import MAX_FANOUT
from .request_info import request_lang
from .strings import t
from .widgets import COUNT_JS, PRIVATE, OptionWidgets


class ModelControls:
    """The events that make a panel's controls follow its effective model, for one region (whose
    prices the model's description shows)."""

    def __init__(self, region: str):
        self.region = region

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
        return (self._info(spec, catalog.T2I, lang), size, *self._switches(spec, lang, values),
                self._quality(model, lang))

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
        return (self._info(spec, catalog.EDIT, lang), preset, *self._switches(spec, lang, values),
                self._quality(model, lang))

    @staticmethod
    def _effective(task: str, quality: str, model: str) -> catalog.ModelSpec:
        return catalog.choose_model(task, model, quality == "max")[1]

    def _info(self, spec: catalog.ModelSpec, task: str, lang: str) -> str:
        return model_info.summary(spec, task, self.region, lang)

    @staticmethod
    def _quality(model: str, lang: str) -> gr.Radio:
        """The quality switch: it picks the model only while no model is chosen under "Advanced";
        with one chosen it is disabled and says which model decides (its value stays, for later)."""
        chosen = (model or "").strip()
        return gr.Radio(interactive=not chosen,
                        info=t(lang, "overridden.quality", model=chosen) if chosen else None)

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

    # --- wiring ----------------------------------------------------------------------------------
    @staticmethod
    def _follow(demo: gr.Blocks, follow: Callable[..., Any], refresh: Callable[..., Any], o: OptionWidgets,
                targets: list[Any]) -> None:
        """Controls follow the effective model (quality switch or explicit model), from page load on.

        A user's pick (``input``) resets the model-dependent values to the model's defaults; any
        other change (a reuse filling the form) updates only choices and limits, keeping what was
        filled in.
        """
        outputs = [o.info, *targets, o.n, o.extend, o.negative, o.quality]
        for w in (o.quality, o.model):
            w.input(follow, [o.quality, o.model], outputs, **PRIVATE)
            w.change(refresh, [o.quality, o.model], outputs, **PRIVATE)
        demo.load(refresh, [o.quality, o.model], outputs, **PRIVATE)

    def wire_t2i(self, demo: gr.Blocks, panel: Any) -> None:
        """The text-to-image panel (a :class:`~.panels.T2IPanel`): its live character count (in the
        browser), its model-dependent controls and the count's limit."""
        for source in (panel.prompt, panel.limit):
            source.change(None, [panel.prompt, panel.limit], panel.count, js=COUNT_JS, **PRIVATE)
        self._follow(demo, self.follow_t2i, self.refresh_t2i, panel.options, [panel.size])
        o = panel.options
        for w in (o.quality, o.model):
            w.change(self.prompt_limit, [o.quality, o.model], panel.limit, **PRIVATE)
        demo.load(self.prompt_limit, [o.quality, o.model], panel.limit, **PRIVATE)

    def wire_edit(self, demo: gr.Blocks, panel: Any) -> None:
        """An edit or fusion panel's model-dependent controls (the size preset among them)."""
        self._follow(demo, self.follow_edit, self.refresh_edit, panel.options, [panel.sizes.preset])
