"""One builder per part of the page: header (title, banner, key box), text-to-image, edit,
fusion and gallery. Each creates its widgets inside the current Blocks and returns them; the
events are wired in :mod:`.layout`, once the handlers exist.

A run panel names its widgets twice over: :meth:`api_inputs` by the public API's parameter
names (:mod:`.endpoints`), :meth:`reuse_fields` by the control names "Reuse parameters" fills
(:data:`aliyun_image.recipes.reuse.FIELDS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from .. import catalog
from ..catalog import EDIT, T2I
from ..runtime import AppContext
from .cost_lines import cost_line, spend_line
from .banner import BannerRow, build_title_and_banner
from .fusion_slots import FIRST_EXTRA, build_extra_slots
from .gallery_search import SelectWidgets, select_row
from .compare import CompareWidgets, build_compare, build_pick
from .lineage_view import ChainWidgets, build_chain
from .result_actions import ActionWidgets, action_row, recent_box
from .rewrite import RewriteRow, build_rewrite_row
from .strings import STYLES, TEMPLATES
from .widgets import (I18N, OptionWidgets, SizeWidgets, label, options, results, run_buttons, size_widgets,
                      upload)


def _run_options(o: OptionWidgets, s: SizeWidgets) -> dict[str, Any]:
    """The edit and fusion API parameters that come from the options and size widgets."""
    return {"quality": o.quality, "model": o.model, "n": o.n, "size_mode": s.mode, "size_preset": s.preset,
            "width": s.width, "height": s.height, "seed": o.seed, "negative": o.negative,
            "prompt_extend": o.extend, "watermark": o.watermark, "extend_mode": o.extend_mode, "thinking": o.thinking}


# --- header ---------------------------------------------------------------------------------------
@dataclass
class Header:
    """The header's live widgets: the key check button and its report."""

    check: gr.Button
    report: gr.Markdown
    banner: BannerRow | None = None  # hosted: "download all" (banner.py)


def build_header(ctx: AppContext) -> Header:
    """Title, the mode's banner, and the key box with its check button."""
    banner = build_title_and_banner(ctx)
    # With --offline every call goes to the emulator, so a key box would only mislead.
    with gr.Accordion(I18N("key.box"), open=ctx.opts.hosted and not ctx.host_key, elem_id="key-box",
                      visible=not ctx.opts.offline):
        # Never an input of any event: the page sends its value as a request header
        # (static/key_header.html), so Gradio never holds it in session state.
        gr.Textbox(label=I18N("key.label"), placeholder=I18N("key.placeholder"), type="password",
                   value="", elem_id="api-key", max_lines=1)
        check = gr.Button(I18N("key.check"), size="sm", elem_id="key-check")
        report = gr.Markdown(elem_id="key-report")
    return Header(check, report, banner)


# --- text to image --------------------------------------------------------------------------------
@dataclass
class T2IPanel:
    """The text-to-image tab's widgets."""

    prompt: gr.Textbox
    count: gr.HTML
    limit: gr.Number  # the effective model's prompt limit, read by the counter in the browser
    options: OptionWidgets
    size: gr.Dropdown
    run: gr.Button
    stop: gr.Button
    results: gr.Gallery
    status: gr.Markdown
    actions: ActionWidgets  # edit this, use as slot n, variations, zip (result_actions.py)
    recent: gr.Dataset  # recent prompts under the prompt box (result_actions.py)
    rewrite: RewriteRow | None = None  # "keep this wording" (rewrite.py)
    cost: gr.Markdown | None = None  # the run's estimated cost (see cost_lines)

    def api_inputs(self) -> dict[str, Any]:
        """Widgets by ``/generate`` parameter name."""
        o = self.options
        return {"prompt": self.prompt, "negative": o.negative, "quality": o.quality, "model": o.model,
                "size": self.size, "n": o.n, "seed": o.seed, "prompt_extend": o.extend, "watermark": o.watermark,
                "extend_mode": o.extend_mode, "thinking": o.thinking}

    def reuse_fields(self) -> dict[str, Any]:
        """Widgets by reuse control name."""
        return {"prompt": self.prompt, "size": self.size, **self.options.by_name()}


def build_t2i() -> T2IPanel:
    """The text-to-image tab."""
    with gr.Tab(I18N("tab_t2i"), id="t2i", elem_id="tab-t2i"), gr.Row():
        with gr.Column(scale=5):
            prompt = gr.Textbox(label=I18N("prompt"), placeholder=I18N("prompt_ph"), lines=4, max_lines=12,
                                elem_id="t2i-prompt")
            count = gr.HTML(f'<span class="char-count">0 / {catalog.PROMPT_MAX}</span>', elem_id="t2i-count")
            recent = recent_box("t2i", prompt)
            limit = gr.Number(value=catalog.PROMPT_MAX, visible=False)
            opts = options(T2I, "t2i")
            sizes = catalog.size_options(catalog.default_model(T2I), T2I)
            size = gr.Dropdown(choices=[(s.label, s.value) for s in sizes], value=sizes[0].value,
                               label=I18N("size"), elem_id="t2i-size")
            run, stop = run_buttons("generate", "t2i")
            cost = cost_line("t2i")
        with gr.Column(scale=6):
            out = results("t2i")
            actions = action_row("t2i")
            status = gr.Markdown(elem_id="t2i-status")
            rewrite = build_rewrite_row("t2i")
    return T2IPanel(prompt, count, limit, opts, size, run, stop, out, status, actions, recent, rewrite=rewrite,
                    cost=cost)


# --- edit -----------------------------------------------------------------------------------------
@dataclass
class EditPanel:
    """The edit tab's widgets."""

    image: gr.Image
    url: gr.Textbox
    instruction: gr.Textbox
    preset: gr.Dropdown
    style: gr.Dropdown
    obj: gr.Textbox
    fill: gr.Button
    options: OptionWidgets
    sizes: SizeWidgets
    run: gr.Button
    stop: gr.Button
    results: gr.Gallery
    compare: gr.ImageSlider
    status: gr.Markdown
    actions: ActionWidgets  # (result_actions.py)
    recent: gr.Dataset
    rewrite: RewriteRow | None = None  # "keep this wording" (rewrite.py)
    template_note: gr.Markdown | None = None  # "your instruction was kept" (form_assist.py)
    cost: gr.Markdown | None = None
    image_note: gr.Markdown | None = None  # the upload's check as it arrives (form_assist.py)

    def api_inputs(self) -> dict[str, Any]:
        """Widgets by ``/edit`` parameter name."""
        return {"image": self.image, "image_url": self.url, "instruction": self.instruction,
                **_run_options(self.options, self.sizes)}

    def reuse_fields(self) -> dict[str, Any]:
        """Widgets by reuse control name."""
        s = self.sizes
        return {"prompt": self.instruction, "image": self.image, "url": self.url, "size_mode": s.mode,
                "width": s.width, "height": s.height, **self.options.by_name()}


def _edit_presets() -> tuple[gr.Dropdown, gr.Dropdown, gr.Textbox, gr.Button]:
    """Preset, style and object, and the button that writes the instruction from them."""
    with gr.Accordion(I18N("presets"), open=True):
        with gr.Row():
            preset = gr.Dropdown(choices=[(I18N(f"templates.{k}"), k) for k in TEMPLATES], value="background",
                                 label=I18N("preset"), elem_id="edit-preset", min_width=200)
            style = gr.Dropdown(choices=[(I18N(f"styles.{v}"), v) for v in STYLES], value=STYLES[0],
                                label=I18N("style"), min_width=200)
        with gr.Row(equal_height=True):
            obj = gr.Textbox(label=I18N("object"), max_lines=1, scale=3)
            fill = gr.Button(I18N("apply_preset"), elem_id="edit-fill", scale=1)
    return preset, style, obj, fill



def build_edit() -> EditPanel:
    """The single-image edit tab."""
    with gr.Tab(I18N("tab_edit"), id="edit", elem_id="tab-edit"), gr.Row():
        with gr.Column(scale=5):
            image = upload("edit_image", "edit-image", 300)
            image_note = gr.Markdown(elem_id="edit-image-note")  # the upload's check (form_assist.py)
            url = gr.Textbox(label=I18N("edit_url"), placeholder=I18N("edit_url_ph"), max_lines=1,
                             elem_id="edit-url")
            instruction = gr.Textbox(label=I18N("instruction"), placeholder=I18N("instruction_ph"), lines=3,
                                     elem_id="edit-instruction")
            recent = recent_box("edit", instruction)
            preset, style, obj, fill = _edit_presets()
            template_note = gr.Markdown(elem_id="edit-template-note")
            opts = options(EDIT, "edit")
            sizes = size_widgets("edit")
            run, stop = run_buttons("run_edit", "edit")
            cost = cost_line("edit")
        with gr.Column(scale=6):
            out = results("edit")
            actions = action_row("edit")
            compare = gr.ImageSlider(label=label("compare"), type="filepath", elem_id="edit-compare", format="png")
            status = gr.Markdown(elem_id="edit-status")
            rewrite = build_rewrite_row("edit")
    return EditPanel(image, url, instruction, preset, style, obj, fill, opts, sizes, run, stop, out, compare, status,
                     actions, recent, rewrite=rewrite, template_note=template_note, cost=cost, image_note=image_note)


# --- fusion ---------------------------------------------------------------------------------------
@dataclass
class FusePanel:
    """The fusion tab's widgets."""

    slots: list[gr.Image]
    swap12: gr.Button
    swap23: gr.Button
    instruction: gr.Textbox
    options: OptionWidgets
    sizes: SizeWidgets
    run: gr.Button
    stop: gr.Button
    results: gr.Gallery
    status: gr.Markdown
    actions: ActionWidgets  # (result_actions.py)
    recent: gr.Dataset
    rewrite: RewriteRow | None = None  # "keep this wording" (rewrite.py)
    slot_note: gr.Markdown | None = None  # each slot's check (form_assist.py)
    cost: gr.Markdown | None = None
    more_slots: list[gr.Image] = field(default_factory=list)  # slot 4...slot 10 (fusion_slots.py)

    def api_inputs(self) -> dict[str, Any]:
        """Widgets by ``/fuse`` parameter name."""
        image1, image2, image3 = self.slots
        return {"image1": image1, "image2": image2, "image3": image3, "instruction": self.instruction,
                **_run_options(self.options, self.sizes),
                **{f"image{k}": slot for k, slot in enumerate(self.more_slots, FIRST_EXTRA)}}

    def reuse_fields(self) -> dict[str, Any]:
        """Widgets by reuse control name."""
        s = self.sizes
        return {"prompt": self.instruction, "size_mode": s.mode, "width": s.width, "height": s.height,
                **{f"image{k}": slot for k, slot in enumerate([*self.slots, *self.more_slots], 1)},
                **self.options.by_name()}


def build_fuse() -> FusePanel:
    """The multi-image fusion tab."""
    with gr.Tab(I18N("tab_fuse"), id="fuse", elem_id="tab-fuse"):
        gr.Markdown(I18N("fuse_help"), elem_id="fuse-help")
        with gr.Row():
            slots = [upload(f"img{i}", f"fuse-img{i}", 220) for i in (1, 2, 3)]
        more_slots = build_extra_slots()
        slot_note = gr.Markdown(elem_id="fuse-slot-note")
        with gr.Row():
            swap12 = gr.Button(I18N("swap12"), size="sm", elem_id="fuse-swap12")
            swap23 = gr.Button(I18N("swap23"), size="sm", elem_id="fuse-swap23")
        with gr.Row():
            with gr.Column(scale=5):
                instruction = gr.Textbox(label=I18N("fuse_instruction"), lines=3, elem_id="fuse-instruction",
                                         placeholder=I18N("fuse_ph"))
                recent = recent_box("fuse", instruction)
                opts = options(EDIT, "fuse")
                sizes = size_widgets("fuse")
                run, stop = run_buttons("run_fuse", "fuse")
                cost = cost_line("fuse")
            with gr.Column(scale=6):
                out = results("fuse")
                actions = action_row("fuse")
                status = gr.Markdown(elem_id="fuse-status")
                rewrite = build_rewrite_row("fuse")
    return FusePanel(slots, swap12, swap23, instruction, opts, sizes, run, stop, out, status, actions, recent,
                     rewrite=rewrite, slot_note=slot_note, cost=cost, more_slots=more_slots)


# --- gallery --------------------------------------------------------------------------------------
@dataclass
class GalleryPanel:
    """The gallery tab's widgets and per-session state."""

    tab: gr.Tab
    page_ids: gr.State  # the ids of the thumbnails shown, in order (a selection's index -> id)
    page_no: gr.State
    selected: gr.State
    query: gr.Textbox
    task: gr.Dropdown
    model: gr.Dropdown
    refresh: gr.Button
    grid: gr.Gallery
    prev: gr.Button
    page_info: gr.Markdown
    next: gr.Button
    picks: gr.CheckboxGroup
    zip_button: gr.Button
    zip_file: gr.File
    preview: gr.Image
    details: gr.Markdown
    download: gr.DownloadButton
    reuse: gr.Button
    to_edit: gr.Button
    to_fuse: gr.Button
    delete: gr.Button
    undo: gr.Button  # shown right after a delete
    last_deleted: gr.State  # the id Undo brings back
    status: gr.Markdown
    select: SelectWidgets  # select on thumbnails, all / none, zip of all matches (gallery_search.py)
    keep_wording: gr.Button | None = None  # reuse with the rewritten prompt, rewriting off (rewrite.py)
    spend: gr.Markdown | None = None  # today's and this month's spend (see cost_lines)
    chain: ChainWidgets | None = None  # the selected result's lineage (lineage_view.py)
    compare_pick: gr.Button | None = None  # "Compare with…" on the selected result (compare.py)
    compare: CompareWidgets | None = None  # two results side by side, as a slider, recipes diffed (compare.py)

    def filters(self) -> list[Any]:
        """Search text, task and model filters (the first inputs of every paging event)."""
        return [self.query, self.task, self.model]

    def page_outputs(self) -> list[Any]:
        """What a page of results updates."""
        return [self.grid, self.page_info, self.page_ids, self.page_no, self.picks, self.model]


def _gallery_filters() -> dict[str, Any]:
    with gr.Row():
        query = gr.Textbox(label=I18N("search"), max_lines=1, scale=3, elem_id="gallery-search")
        task = gr.Dropdown(choices=[(I18N("all"), ""), (I18N("task.t2i"), "t2i"), (I18N("task.edit"), "edit"),
                                    (I18N("task.fuse"), "fuse")],
                           value="", label=I18N("filter_task"), scale=1, elem_id="gallery-task")
        model = gr.Dropdown(choices=[(I18N("all"), "")], value="", label=I18N("filter_model"), scale=2,
                            elem_id="gallery-model", allow_custom_value=True)
        refresh = gr.Button(I18N("refresh"), scale=1, elem_id="gallery-refresh")
    return {"query": query, "task": task, "model": model, "refresh": refresh}


def _gallery_grid() -> dict[str, Any]:
    """Thumbnails, paging, and the zip of ticked results."""
    # No label badge: it covered the first thumbnail, and the tab already says "Gallery".
    grid = gr.Gallery(label=I18N("tab_gallery"), show_label=False, columns=6, height=560, allow_preview=False,
                      object_fit="cover", elem_id="gallery-grid", buttons=[], interactive=False, format="jpeg")
    with gr.Row():
        prev = gr.Button(I18N("prev"), size="sm", elem_id="gallery-prev")
        page_info = gr.Markdown(elem_id="gallery-page")
        nxt = gr.Button(I18N("next"), size="sm", elem_id="gallery-next")
    select = select_row()  # select mode on the thumbnails, all / none, zip of all matches
    with gr.Accordion(I18N("select_zip"), open=False):
        picks = gr.CheckboxGroup(choices=[], label=I18N("select_zip"), elem_id="gallery-picks")
    zip_button = gr.Button(I18N("zip"), size="sm", elem_id="gallery-zip")
    zip_file = gr.File(label=I18N("zip_file"), interactive=False, elem_id="gallery-zip-file", visible=False)
    return {"grid": grid, "prev": prev, "page_info": page_info, "next": nxt, "picks": picks,
            "zip_button": zip_button, "zip_file": zip_file, "select": select}


def _gallery_details() -> dict[str, Any]:
    """Preview and record of the selected result, and what can be done with it."""
    preview = gr.Image(label=I18N("details"), interactive=False, height=320, format="png",
                       elem_id="gallery-preview", buttons=["fullscreen"])
    details = gr.Markdown(elem_id="gallery-details")
    chain = build_chain()  # where it came from and what was made from it (lineage_view.py)
    compare_pick = build_pick()  # "Compare with…" (compare.py)
    with gr.Row():
        download = gr.DownloadButton(label("download_png"), interactive=False, size="sm", elem_id="gallery-download")
        reuse = gr.Button(I18N("reuse"), size="sm", elem_id="gallery-reuse")
    with gr.Row():
        to_edit = gr.Button(I18N("to_edit"), size="sm", elem_id="gallery-to-edit")
        to_fuse = gr.Button(I18N("to_fuse"), size="sm", elem_id="gallery-to-fuse")
        delete = gr.Button(I18N("delete"), size="sm", variant="stop", elem_id="gallery-delete")
    status = gr.Markdown(elem_id="gallery-status")
    undo = gr.Button(I18N("keep.undo"), size="sm", visible=False, elem_id="gallery-undo")
    return {"preview": preview, "details": details, "download": download, "reuse": reuse, "to_edit": to_edit,
            "to_fuse": to_fuse, "delete": delete, "status": status, "undo": undo, "last_deleted": gr.State(None),
            "chain": chain, "compare_pick": compare_pick}


def build_gallery() -> GalleryPanel:
    """The gallery tab: search and filters, thumbnails, and the selected result's actions."""
    with gr.Tab(I18N("tab_gallery"), id="gallery", elem_id="tab-gallery") as tab:
        page_ids, page_no, selected = gr.State([]), gr.State(1), gr.State(None)
        filters = _gallery_filters()
        spend = spend_line()
        with gr.Row():
            with gr.Column(scale=7):
                grid = _gallery_grid()
            with gr.Column(scale=5):
                details = _gallery_details()
                keep = gr.Button(I18N("rewrite.keep_gallery"), size="sm", elem_id="gallery-keep-wording")
        compare = build_compare()
    return GalleryPanel(tab=tab, page_ids=page_ids, page_no=page_no, selected=selected, **filters, **grid,
                        **details, keep_wording=keep, spend=spend, compare=compare)
