"""The Batch tab: many text-to-image requests at once, from a prompt list, a template with
variables, or an X/Y grid; planned and priced before the run, run on the server (closing the page
stops nothing), every image shown in its place as it lands, a summary and one zip at the end, and
the visitor's recent batches with Resume.

:func:`build_batch` makes the widgets; :meth:`BatchTab.wire` their events (endpoints in
:mod:`.batch_handlers`, what the page shows in :mod:`.batch_view`). The model, size and option
controls are text-to-image's (:func:`.widgets.options`), made to follow the model by
:class:`.model_controls.ModelControls`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import catalog
from ..catalog import T2I
from ..runtime import AppContext
from .batch_handlers import BatchHandlers
from .model_controls import ModelControls
from .request_info import request_owner
from .rewrite_options import wire_rewrite_options
from .widgets import I18N, PRIVATE, STOP, OptionWidgets, label, options, progress_on, results, run_buttons

AXES = ("model", "seed", "size", "prompt_extend")  # the option axes of a grid (a variable is typed in)


@dataclass
class BatchPanel:
    """The Batch tab's widgets (``prompt``, ``count``, ``limit``, ``options`` and ``size`` are named as
    text-to-image's, so :meth:`ModelControls.wire_t2i` drives them the same way)."""

    tab: gr.Tab
    mode: gr.Radio
    prompt: gr.Textbox  # the prompt list, a template, or a grid's one prompt
    count: gr.HTML  # the model controls' character count (hidden: a list is many prompts)
    limit: gr.Number
    variables: gr.Textbox
    x_axis: gr.Dropdown
    x_values: gr.Textbox
    y_axis: gr.Dropdown
    y_values: gr.Textbox
    list_box: gr.Column
    grid_box: gr.Column
    options: OptionWidgets
    size: gr.Dropdown
    plan: gr.Markdown
    run: gr.Button
    stop: gr.Button
    picker: gr.Dropdown
    resume: gr.Button
    refresh: gr.Button
    results: gr.Gallery
    status: gr.Markdown
    zip: gr.DownloadButton
    grid: gr.Image

    def inputs(self) -> list[Any]:
        """The widgets in the order of :meth:`BatchEvents.batch_run`'s parameters."""
        o = self.options
        return [self.mode, self.prompt, self.variables, self.x_axis, self.x_values, self.y_axis, self.y_values,
                o.quality, o.model, self.size, o.n, o.seed, o.negative, o.extend, o.watermark, o.extend_mode,
                o.thinking]

    def outputs(self) -> list[Any]:
        """What following a batch writes: gallery, status, grid image, zip, the list of batches."""
        return [self.results, self.status, self.grid, self.zip, self.picker]


def _axis_picker(name: str, value: str, none: bool) -> gr.Dropdown:
    choices = [(I18N(f"batch.axis_{a}"), a) for a in AXES]
    if none:
        choices.insert(0, (I18N("batch.axis_none"), ""))
    # A custom value is a template variable's name: the prompt's {name}.
    return gr.Dropdown(choices=choices, value=value, allow_custom_value=True, label=I18N(f"batch.{name}"),
                       info=I18N("batch.axis_info"), elem_id=f"batch-{name}", scale=2, min_width=160)


def _inputs() -> dict[str, Any]:
    """The left column's input widgets: mode, prompts, variables or axes."""
    mode = gr.Radio(choices=[(I18N("batch.mode_list"), "list"), (I18N("batch.mode_grid"), "grid")], value="list",
                    label=I18N("batch.mode"), elem_id="batch-mode")
    prompt = gr.Textbox(label=I18N("batch.prompts"), placeholder=I18N("batch.prompts_ph"), lines=6, max_lines=16,
                        elem_id="batch-prompts")
    count = gr.HTML("", visible=False)
    limit = gr.Number(value=catalog.PROMPT_MAX, visible=False)
    with gr.Column(visible=True) as list_box:
        variables = gr.Textbox(label=I18N("batch.variables"), placeholder=I18N("batch.variables_ph"), lines=3,
                               max_lines=10, elem_id="batch-variables")
    with gr.Column(visible=False) as grid_box:
        with gr.Row():
            x_axis = _axis_picker("x_axis", "seed", none=False)
            x_values = gr.Textbox(label=I18N("batch.values"), placeholder=I18N("batch.values_ph"), max_lines=1,
                                  elem_id="batch-x-values", scale=3)
        with gr.Row():
            y_axis = _axis_picker("y_axis", "", none=True)
            y_values = gr.Textbox(label=I18N("batch.values"), placeholder=I18N("batch.values_ph"), max_lines=1,
                                  elem_id="batch-y-values", scale=3)
    return dict(mode=mode, prompt=prompt, count=count, limit=limit, variables=variables, x_axis=x_axis,
                x_values=x_values, y_axis=y_axis, y_values=y_values, list_box=list_box, grid_box=grid_box)


def build_batch() -> BatchPanel:
    """The Batch tab (events wired by :meth:`BatchTab.wire`)."""
    with gr.Tab(I18N("batch.tab"), id="batch", elem_id="tab-batch") as tab, gr.Row():
        with gr.Column(scale=5):
            fields = _inputs()
            opts = options(T2I, "batch")
            sizes = catalog.size_options(catalog.default_model(T2I), T2I)
            size = gr.Dropdown(choices=[(s.label, s.value) for s in sizes], value=sizes[0].value,
                               label=I18N("size"), elem_id="batch-size")
            plan = gr.Markdown(elem_id="batch-plan", elem_classes=["cost-line"])
            run, stop = run_buttons("batch.run", "batch")
        with gr.Column(scale=6):
            out = results("batch")  # the run panels' gallery: it grows with the batch, then scrolls
            status = gr.Markdown(elem_id="batch-status")
            zipped = gr.DownloadButton(label("batch.zip"), visible=False, elem_id="batch-zip", variant="secondary")
            grid = gr.Image(label=I18N("batch.grid"), show_label=False, type="filepath", format="png", visible=False,
                            interactive=False, elem_id="batch-grid", buttons=["download", "fullscreen"])
            with gr.Accordion(I18N("batch.mine"), open=True, elem_id="batch-mine"):
                # Any id is taken (a script knows its batch's id; a new page has no choices yet): the
                # handlers look it up among the caller's own batches.
                picker = gr.Dropdown(choices=[], value=None, label=I18N("batch.pick"), elem_id="batch-picker",
                                     allow_custom_value=True)
                with gr.Row():
                    resume = gr.Button(I18N("batch.resume"), size="sm", elem_id="batch-resume")
                    refresh = gr.Button(I18N("refresh"), size="sm", elem_id="batch-refresh")
    return BatchPanel(tab=tab, options=opts, size=size, plan=plan, run=run, stop=stop, picker=picker, resume=resume,
                      refresh=refresh, results=out, status=status, zip=zipped, grid=grid, **fields)


class BatchTab:
    """The Batch tab's handlers (:attr:`handlers`) and their wiring."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.handlers = BatchHandlers(ctx)
        self._follows: list[Any] = []  # the events that follow a batch in the page (set by wire)
        self._follow: dict[str, Any] = {}  # and their queue and progress settings

    def stop_state(self, request: gr.Request) -> gr.Button:
        """Stop is enabled while the caller has a batch running."""
        return gr.Button(interactive=self.handlers.live.of(request_owner(self.ctx, request)) is not None)

    @staticmethod
    def show_mode(mode: str) -> tuple[Any, Any, Any]:
        """List mode shows the variables, grid mode the axes (and no ``n``: a grid makes one image a cell)."""
        grid = mode == "grid"
        return gr.Column(visible=not grid), gr.Column(visible=grid), gr.Slider(visible=not grid)

    def wire(self, demo: gr.Blocks, p: BatchPanel, models: ModelControls) -> None:
        """Every event of the tab; the endpoints are undocumented (see :mod:`.batch_handlers`)."""
        h = self.handlers
        hidden: dict[str, Any] = {"api_visibility": "undocumented"}
        p.mode.change(self.show_mode, p.mode, [p.list_box, p.grid_box, p.options.n], **PRIVATE)
        for axis, values in ((p.x_axis, p.x_values), (p.y_axis, p.y_values)):  # the model ids, "on,off"
            axis.change(h.axis_values, [axis, values], values, **PRIVATE)
        models.wire_t2i(demo, p)
        wire_rewrite_options(demo, T2I, p.options)
        # Queued (the key header comes with queued calls only: it decides free or paid), the last
        # change wins while one is being planned.
        gr.on([demo.load, *(w.change for w in p.inputs() if w is not None)], h.batch_plan, p.inputs(), p.plan,
              api_name="batch_plan", trigger_mode="always_last", show_progress="hidden",
              concurrency_id="batch_plan", concurrency_limit=4, **hidden)
        follow = {"concurrency_id": "batches", "concurrency_limit": self.ctx.opts.concurrency,
                  **progress_on(p.status), **hidden}
        run = p.run.click(h.batch_run, p.inputs(), p.outputs(), api_name="batch_run", **follow)
        resume = p.resume.click(h.batch_resume, p.picker, p.outputs(), api_name="batch_resume", cancels=[run],
                                **follow)
        show = p.picker.input(h.batch_show, p.picker, p.outputs(), api_name="batch_show", cancels=[run, resume],
                              **follow)
        self._follows, self._follow = [run, resume, show], follow
        p.picker.input(h.batch_form, p.picker, p.inputs(), **PRIVATE)  # the form says what the batch runs
        # A new run replaces what the page follows (the batch followed before goes on, on the server).
        p.run.click(None, None, None, cancels=[resume, show], api_visibility="private", queue=False)
        p.stop.click(h.batch_stop, None, p.status, api_name="batch_stop", **{**STOP, **hidden})
        p.refresh.click(h.batch_list, None, p.picker, api_name="batch_list", **hidden)
        for trigger in (demo.load, p.tab.select):
            trigger(h.batch_list, None, p.picker, **PRIVATE)
        for trigger in (p.status.change, demo.load):
            trigger(self.stop_state, None, p.stop, **PRIVATE, show_progress="hidden")

    def wire_open(self, opened: Any, p: BatchPanel) -> None:
        """Show in the tab the batch another part of the page (the strip of recent runs) has just put
        in the picker: the picker's own handler, with its cancels, queue and progress; private. Call
        after :meth:`wire`."""
        if not self._follows:
            raise RuntimeError("BatchTab.wire_open before wire")
        opened.then(self.handlers.batch_show, p.picker, p.outputs(), cancels=self._follows,
                    **{**self._follow, "api_visibility": "private"})
        opened.then(self.handlers.batch_form, p.picker, p.inputs(), **PRIVATE)
