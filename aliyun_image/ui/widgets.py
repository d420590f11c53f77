"""Widget makers the panels share: options, sizes, run buttons, result galleries, and the event
settings every wiring uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import gradio as gr
from gradio.i18n import I18nData

from .. import catalog
from ..catalog import EDIT
from ..catalog import picker_label
from .endpoints import MODE_DEFAULT, THINKING_DEFAULT
from .strings import key

PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": False}
# Stop handlers stream the images that were already paid for: queued, and never waiting behind runs.
STOP: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None}

# Live character count, computed in the browser (no server round trip per keystroke); the limit
# comes from a hidden number that follows the chosen model.
COUNT_JS = """(p, max) => { const n = [...(p || '')].length; const m = max || MAX;
  return `<span class="char-count${n > m ? ' over' : ''}">${n} / ${m}</span>`; }""".replace(
    "MAX", str(catalog.PROMPT_MAX))


def scroll_to(selector: str, unless: str = "") -> str:
    """Browser-only code for an event (``js=``, no server round trip): bring ``selector`` to the top
    of the screen when it is out of sight or low on it, as on a phone where the columns stack and
    what a tap changed lies far below (issue 16 §7); nothing moves when it is already in view.
    ``unless``: a checkbox's selector; while it is ticked, nothing moves."""
    skip = f"if (document.querySelector({json.dumps(unless)})?.checked) return;" if unless else ""
    return f"""() => {{ {skip} const el = document.querySelector({json.dumps(selector)}); if (!el) return;
  const top = el.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.5) el.scrollIntoView({{behavior: 'smooth', block: 'start'}}); }}"""


def scroll_to_when_shown(selector: str) -> str:
    """As :func:`scroll_to`, for an element of a tab the same event has just selected: the browser
    draws that tab after the event's outputs, so wait (up to about 3 s) until ``selector`` has a
    size, then bring it to the top of the screen if it is out of sight or low on it."""
    return f"""() => {{ let tries = 0; const go = () => {{
  const el = document.querySelector({json.dumps(selector)});
  if (!el || !el.getBoundingClientRect().height) {{ if (tries++ < 60) setTimeout(go, 50); return; }}
  const top = el.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.5) el.scrollIntoView({{block: 'start'}}); }}; go(); }}"""


def progress_on(status: gr.Markdown) -> dict[str, Any]:
    """Progress shows on the status line only: Gradio's default overlay would cover the results
    (streamed images included) until the run ends, with a second, English-only progress text."""
    return {"show_progress": "minimal", "show_progress_on": [status]}


def I18N(name: str) -> I18nData:  # named like the gr.I18n instance it stands for
    """A text the browser shows in the page's language: the catalogue text ``ui.<name>``.

    Only the key goes into the page's config; the texts themselves are handed to Gradio once, as
    the ``gr.I18n`` of :func:`.layout.page_i18n`, and the browser picks its locale's.
    """
    return I18nData(key(name))


# Texts rendered when the page is built (values Gradio cannot fill in): their keys, under "ui.built."
BUILT = "built."


def model_labels(lang: str) -> dict[str, str]:
    """One picker label per catalogue model (family, id, badge) in ``lang``, by its I18N key:
    gr.I18n translates whole strings only, so each model gets its own key."""
    return {key(f"{BUILT}model:{spec.name}"): picker_label(spec, lang) for spec in catalog.models().values()}


def label(name: str) -> str:
    """A translated label for components whose ``label`` is annotated ``str`` only.

    Gradio translates an ``I18nData`` in any component's label when it renders the page (most
    components annotate ``str | I18nData``; ImageSlider and DownloadButton do not), so the cast
    only corrects their annotation.
    """
    return cast(str, I18N(name))


@dataclass
class OptionWidgets:
    """The widgets every run panel has (negative, quality, model, n, seed, switches)."""

    negative: gr.Textbox
    quality: gr.Radio
    model: gr.Dropdown
    n: gr.Slider
    seed: gr.Number
    extend: gr.Checkbox
    watermark: gr.Checkbox
    info: gr.Markdown  # what the effective model is and accepts (follows quality and model)
    # The 3.0 line's rewriting mode and thinking switch, shown where the model takes them
    # (rewrite_options.py).
    extend_mode: gr.Radio | None = None
    thinking: gr.Checkbox | None = None

    def by_name(self) -> dict[str, Any]:
        """The widgets by control name (the names of :data:`aliyun_image.recipes.reuse.FIELDS`)."""
        return {k: v for k, v in vars(self).items() if k != "info"}


@dataclass
class SizeWidgets:
    """Edit/fusion size: automatic, a preset, or custom width and height."""

    mode: gr.Radio
    preset: gr.Dropdown
    width: gr.Number
    height: gr.Number


def model_choices(task: str) -> list[tuple[Any, str]]:
    """The picker's choices: auto (the quality switch decides), then the catalogue's models grouped
    by family, newest family first, legacy last; each label carries its badge."""
    specs = sorted(catalog.models_for(task), key=lambda m: (m.status != "current", m.status == "legacy"))
    return [(I18N("model_auto"), "")] + [(I18N(f"{BUILT}model:{m.name}"), m.name) for m in specs]


def options(task: str, prefix: str, n_max: int = 6) -> OptionWidgets:
    """Quality switch, the "advanced" accordion (model, negative, seed, switches) and n."""
    quality = gr.Radio(choices=[(I18N("q_plus"), "plus"), (I18N("q_max"), "max")], value="plus",
                       label=I18N("quality"))
    info = gr.Markdown(elem_id=f"{prefix}-model-info", elem_classes=["model-info"])
    with gr.Accordion(I18N("advanced"), open=False):
        # allow_custom_value: a model released after this catalogue can be typed in and is sent
        # with generic rules (the service has the last word).
        model = gr.Dropdown(choices=model_choices(task), value="", label=I18N("model"), elem_id=f"{prefix}-model",
                            allow_custom_value=True)
        # The default is Chinese: the info line says what it means on every page (issue 16 §10).
        negative = gr.Textbox(value=catalog.DEFAULT_NEGATIVE, label=I18N("negative"), lines=2,
                              max_lines=4, elem_id=f"{prefix}-negative", info=I18N("negative_hint.default"))
        with gr.Row():
            # No minimum/maximum: Gradio would refuse out-of-range values with an English-only error;
            # the service checks them and answers in the visitor's language.
            seed = gr.Number(value=-1, precision=0, label=I18N("seed"), elem_id=f"{prefix}-seed")
            extend = gr.Checkbox(value=catalog.DEFAULT_PROMPT_EXTEND, label=I18N("extend"))
            watermark = gr.Checkbox(value=catalog.DEFAULT_WATERMARK, label=I18N("watermark"))
        extend_mode, thinking = rewrite_controls(task, prefix)
    n = gr.Slider(1, n_max, value=1, step=1, label=I18N("n"), elem_id=f"{prefix}-n")
    return OptionWidgets(negative, quality, model, n, seed, extend, watermark, info, extend_mode, thinking)


def rewrite_controls(task: str, prefix: str) -> tuple[gr.Radio, gr.Checkbox]:
    """The rewriting mode (agent for text-to-image only) and the thinking switch, hidden until
    the model takes them (:mod:`.rewrite_options` shows them); their values are the API's defaults."""
    modes = ("direct", "agent") if task == catalog.T2I else ("direct",)
    with gr.Row():
        mode = gr.Radio(choices=[(I18N(f"params.mode_{m}"), m) for m in modes], value=MODE_DEFAULT,
                        label=I18N("params.mode"), visible=False, elem_id=f"{prefix}-extend-mode",
                        elem_classes=["rewrite-option"],
                        info=None if task == catalog.T2I else I18N("params.mode_edit_info"))
        thinking = gr.Checkbox(value=THINKING_DEFAULT, label=I18N("params.thinking"), info=I18N("params.thinking_info"),
                               visible=False, elem_id=f"{prefix}-thinking", elem_classes=["rewrite-option"])
    return mode, thinking


def tolerant(image: gr.Image) -> gr.Image:
    """Let uploads that Gradio cannot decode reach the service, which names the file and says what
    is wrong in the visitor's language, instead of Gradio's English traceback with a temp path."""
    strict = image.preprocess

    def preprocess(payload):  # Gradio's FileData
        try:
            return strict(payload)
        except Exception:  # noqa: BLE001 - Pillow raises many kinds on bad files; the service explains each
            return getattr(payload, "path", None)

    # Replacing the bound method of this one instance: a subclass would change the component's
    # name, which the page uses to pick its front-end code.
    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def upload(label_key: str, elem_id: str, height: int, visible: bool = True) -> gr.Image:
    """An image input that hands over the uploaded file untouched (alpha kept, see ``tolerant``)."""
    return tolerant(gr.Image(type="filepath", label=I18N(label_key), sources=["upload", "clipboard"],
                             image_mode=None, height=height, elem_id=elem_id, visible=visible))


def size_widgets(prefix: str) -> SizeWidgets:
    """Edit/fusion size controls; the preset or width/height show only in their mode."""
    opts = catalog.size_options(catalog.default_model(EDIT), EDIT)
    with gr.Row():
        mode = gr.Radio(choices=[(I18N("size_auto"), "auto"), (I18N("size_preset_mode"), "preset"),
                                 (I18N("size_custom"), "custom")], value="auto", label=I18N("size_mode"),
                        elem_id=f"{prefix}-size-mode")
    with gr.Row():
        preset = gr.Dropdown(choices=[(o.label, o.value) for o in opts], value=opts[0].value,
                             label=I18N("size_preset_mode"), visible=False)
        width = gr.Number(value=1024, precision=0, label=I18N("width"), visible=False, elem_id=f"{prefix}-width")
        height = gr.Number(value=1024, precision=0, label=I18N("height"), visible=False, elem_id=f"{prefix}-height")
    mode.change(lambda m: (gr.update(visible=m == "preset"), gr.update(visible=m == "custom"),
                           gr.update(visible=m == "custom")), mode, [preset, width, height], **PRIVATE)
    return SizeWidgets(mode, preset, width, height)


def run_buttons(label_key: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    """The panel's run and Stop buttons."""
    with gr.Row():
        run = gr.Button(I18N(label_key), variant="primary", elem_id=f"{prefix}-run", elem_classes=["run-btn"])
        # Disabled while nothing runs (RunHandlers.wire_stop_state enables it during a run).
        stop = gr.Button(I18N("stop"), variant="stop", interactive=False, elem_id=f"{prefix}-stop")
    return run, stop


def results(prefix: str) -> gr.Gallery:
    """The panel's result gallery (PNG: Gradio's default webp would re-encode the originals).

    Its height follows the run (``height="auto"``); style.css (``.results-gallery``) picks the columns
    from the number of results and sizes each tile to its image, so a whole run shows at once."""
    return gr.Gallery(label=I18N("results"), columns=2, height="auto", format="png", object_fit="contain",
                      elem_id=f"{prefix}-results", elem_classes=["results-gallery"],
                      buttons=["download", "fullscreen"], interactive=False)
