"""The 3.0 line's rewriting options in the page: the rewriting mode (``prompt_extend_mode``:
direct, or agent for text-to-image only) and the thinking switch (``enable_thinking``).

Both follow the chosen model like the other model-dependent controls: shown only where the
model takes them (``spec.accepts``), usable only with prompt rewriting on (neither acts without
it). What a run hands to the job (:func:`rewrite_values`) follows one rule: a value still at its
default (what a hidden control holds, what an API caller who never heard of these options
sends) goes out only where it acts; a value someone changed always reaches the job, which
refuses it for a model that does not take it (naming the models that do) or notes that it was
not sent with rewriting off.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..catalog import DEFAULT_NEGATIVE, ModelSpec
from ..errors import AliyunImageError
from ..jobs import resolve_model
from .endpoints import MODE_DEFAULT, THINKING_DEFAULT
from .widgets import PRIVATE, OptionWidgets

MODE, THINKING = "prompt_extend_mode", "enable_thinking"


def effective_spec(task: str, quality: str, model: str) -> ModelSpec | None:
    """The model a run of ``task`` (``t2i``, ``edit`` or ``fuse``) would use, as the job picks it;
    None when the named model cannot do the task (the job refuses that with its own message)."""
    try:
        return resolve_model(task, model, quality == "max")[1]
    except AliyunImageError:
        return None


def rewrite_values(task: str, quality: str, model: str, prompt_extend: bool, extend_mode: Any,
                   thinking: Any) -> dict[str, Any]:
    """The job options ``extend_mode`` and ``thinking`` of a run (see the module docstring)."""
    spec = effective_spec(task, quality, model)
    mode = (str(extend_mode).strip().lower() or None) if extend_mode is not None else None
    out: dict[str, Any] = {}
    for option, param, value, default in (("extend_mode", MODE, mode, MODE_DEFAULT),
                                          ("thinking", THINKING, thinking, THINKING_DEFAULT)):
        if value is None:
            continue
        acts = bool(prompt_extend) and (spec is None or spec.accepts(param))
        if acts or value != default:
            out[option] = value
    return out


def negative_value(task: str, quality: str, model: str, negative: str) -> str:
    """The negative prompt a run sends: for a model that takes none (2.1-pro, z-image-turbo) the
    page's box is disabled but still shows the product default, which is left out with no word
    (a note on every run would blame the visitor for text they could not change); anything else
    goes to the job as typed (a typed one is dropped there with a note)."""
    spec = effective_spec(task, quality, model)
    if spec is not None and not spec.accepts("negative_prompt") and (negative or "").strip() == DEFAULT_NEGATIVE:
        return ""
    return negative


def controls(task: str, quality: str, model: str, extend: bool, values: bool) -> tuple[Any, Any]:
    """Updates of the mode and thinking controls for the chosen model and rewriting switch.

    ``values``: the user picked the model, so the controls go back to their defaults. A model
    that does not take them gets them hidden and back at their defaults too, so a page never
    sends an option its model refuses.
    """
    spec = effective_spec(task, quality, model)
    takes_mode = spec is not None and spec.accepts(MODE)
    takes_thinking = spec is not None and spec.accepts(THINKING)
    # An update names only what changes: a value left out stays as the visitor set it.
    on = bool(extend)
    mode = (gr.Radio(visible=takes_mode, interactive=takes_mode and on, value=MODE_DEFAULT)
            if values or not takes_mode else gr.Radio(visible=True, interactive=on))
    thinking = (gr.Checkbox(visible=takes_thinking, interactive=takes_thinking and on, value=THINKING_DEFAULT)
                if values or not takes_thinking else gr.Checkbox(visible=True, interactive=on))
    return mode, thinking


def wire_rewrite_options(demo: gr.Blocks, task: str, o: OptionWidgets) -> None:
    """The mode and thinking controls of one panel (``task``: ``t2i``, ``edit`` or ``fuse``)
    follow the quality switch, the model picker and the rewriting switch, from page load on."""
    if o.extend_mode is None or o.thinking is None:
        return
    inputs, outputs = [o.quality, o.model, o.extend], [o.extend_mode, o.thinking]

    def picked(quality: str, model: str, extend: bool) -> tuple[Any, Any]:
        return controls(task, quality, model, extend, values=True)

    def changed(quality: str, model: str, extend: bool) -> tuple[Any, Any]:
        return controls(task, quality, model, extend, values=False)

    for w in (o.quality, o.model):
        w.input(picked, inputs, outputs, **PRIVATE)
        w.change(changed, inputs, outputs, **PRIVATE)
    o.extend.change(changed, inputs, outputs, **PRIVATE)
    demo.load(changed, inputs, outputs, **PRIVATE)

