"""The Blocks layout: four tabs, the banner, the key box, and the wiring of events.

Public API endpoints (stable ``api_name``): ``generate``, ``edit``, ``fuse``. Everything else is
UI plumbing and private (``api_visibility="private"``), so it is neither documented nor callable
as an API or MCP tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from .. import catalog
from ..catalog import EDIT, T2I
from starlette.middleware import Middleware

from .context import AppContext
from .guard import Guard
from .handlers import Handlers
from .strings import EN, PRESET_LABELS, STYLES, ZH

ASSETS = Path(__file__).resolve().parent / "static"  # shipped in the package: css and head scripts
I18N = gr.I18n(en=EN, zh=ZH, **{"zh-CN": ZH, "zh-TW": ZH, "zh-HK": ZH})
PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": False}
# Stop handlers stream the images that were already paid for: queued, and never waiting behind runs.
STOP: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None}


def _progress_on(status: gr.Markdown) -> dict[str, Any]:
    """Progress shows on the status line only: Gradio's default overlay would cover the results
    (streamed images included) until the run ends, with a second, English-only progress text."""
    return {"show_progress": "minimal", "show_progress_on": [status]}

# Live character count, computed in the browser (no server round trip per keystroke).
COUNT_JS = """(p) => { const n = [...(p || '')].length;
  return `<span class="char-count${n > %d ? ' over' : ''}">${n} / %d</span>`; }""" % (
    catalog.PROMPT_MAX, catalog.PROMPT_MAX)


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


@dataclass
class SizeWidgets:
    """Edit/fusion size: automatic, a preset, or custom width and height."""

    mode: gr.Radio
    preset: gr.Dropdown
    width: gr.Number
    height: gr.Number


def _model_choices(task: str) -> list[tuple[str, str]]:
    return [("auto", "")] + [(m.name, m.name) for m in catalog.models_for(task)]


def _quality() -> gr.Radio:
    return gr.Radio(choices=[(I18N("q_plus"), "plus"), (I18N("q_max"), "max")], value="plus",
                    label=I18N("quality"))


def _options(task: str, prefix: str, n_max: int = 6) -> tuple[gr.Radio, gr.Accordion, OptionWidgets]:
    quality = _quality()
    with gr.Accordion(I18N("advanced"), open=False) as acc:
        model = gr.Dropdown(choices=_model_choices(task), value="", label=I18N("model"), elem_id=f"{prefix}-model")
        negative = gr.Textbox(value=catalog.DEFAULT_NEGATIVE, label=I18N("negative"), lines=2,
                              max_lines=4, elem_id=f"{prefix}-negative")
        with gr.Row():
            # No minimum/maximum: Gradio would refuse out-of-range values with an English-only error;
            # the service checks them and answers in the visitor's language.
            seed = gr.Number(value=-1, precision=0, label=I18N("seed"), elem_id=f"{prefix}-seed")
            extend = gr.Checkbox(value=catalog.DEFAULT_PROMPT_EXTEND, label=I18N("extend"))
            watermark = gr.Checkbox(value=catalog.DEFAULT_WATERMARK, label=I18N("watermark"))
    n = gr.Slider(1, n_max, value=1, step=1, label=I18N("n"), elem_id=f"{prefix}-n")
    return quality, acc, OptionWidgets(negative, quality, model, n, seed, extend, watermark)


def _tolerant(image: gr.Image) -> gr.Image:
    """Let uploads that Gradio cannot decode reach the service, which names the file and says what
    is wrong in the visitor's language, instead of Gradio's English traceback with a temp path."""
    strict = image.preprocess

    def preprocess(payload):  # Gradio's FileData
        try:
            return strict(payload)
        except Exception:  # any decode failure: hand over the raw upload
            return getattr(payload, "path", None)

    image.preprocess = preprocess
    return image


def _size_widgets(prefix: str) -> SizeWidgets:
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


def _run_buttons(label_key: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    with gr.Row():
        run = gr.Button(I18N(label_key), variant="primary", elem_id=f"{prefix}-run", elem_classes=["run-btn"])
        stop = gr.Button(I18N("stop"), variant="stop", elem_id=f"{prefix}-stop")
    return run, stop


def _results(prefix: str) -> gr.Gallery:
    return gr.Gallery(label=I18N("results"), columns=2, height=520, format="png", object_fit="contain",
                      elem_id=f"{prefix}-results", buttons=["download", "fullscreen"], interactive=False)


def _banner(ctx: AppContext) -> gr.Markdown:
    if ctx.opts.offline:
        key = "banner_hosted_offline" if ctx.opts.hosted else "banner_offline"
    elif ctx.opts.hosted:
        key = "banner_hosted_hostkey" if ctx.host_key else "banner_hosted"
    else:
        key = "banner_offline" if not ctx.host_key else ""
    if not key:
        return gr.Markdown(visible=False, elem_id="banner")
    text = {"en": EN[key], "zh": ZH[key]}
    if key == "banner_hosted_hostkey":
        text = {k: v.format(session=ctx.opts.session_limit) for k, v in text.items()}
    # Both languages: the banner is the one text a visitor must not miss, and gr.I18n does not
    # format numbers in; the Chinese line first, as the product's home audience reads it first.
    return gr.Markdown(f"{text['zh']}\n\n{text['en']}", elem_id="banner", elem_classes=["banner"])


def build_demo(ctx: AppContext) -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` (not launched)."""
    h = Handlers(ctx)
    hosted = ctx.opts.hosted
    if not hosted:
        # One local user: serve results straight from the results folder instead of copying and
        # re-hashing every shown image into Gradio's cache. (Never in hosted mode: static paths
        # are served to anyone who knows a path.)
        gr.set_static_paths([str(Path(ctx.settings.data_dir).resolve())])
    # Cache copies of results shown in the page are cleaned: hourly in the shared demo, daily locally.
    delete_cache = (3600, 6 * 3600) if hosted else (24 * 3600, 7 * 24 * 3600)
    with gr.Blocks(title="aliyun-image", delete_cache=delete_cache, analytics_enabled=False) as demo:
        gr.Markdown(f"# {EN['title']}\n{ZH['subtitle']}\n\n{EN['subtitle']}", elem_id="title")
        _banner(ctx)
        # With --offline every call goes to the emulator, so a key box would only mislead.
        with gr.Accordion(I18N("key_box"), open=hosted and not ctx.host_key, elem_id="key-box",
                          visible=not ctx.opts.offline):
            # Never an input of any event: the page sends its value as a request header
            # (static/key_header.html), so Gradio never holds it in session state.
            gr.Textbox(label=I18N("key_label"), placeholder=I18N("key_placeholder"), type="password",
                       value="", elem_id="api-key", max_lines=1)

        with gr.Tabs(elem_id="tabs") as tabs:
            # --- text to image -----------------------------------------------------------------------
            with gr.Tab(I18N("tab_t2i"), id="t2i", elem_id="tab-t2i"):
                with gr.Row():
                    with gr.Column(scale=5):
                        prompt = gr.Textbox(label=I18N("prompt"), placeholder=I18N("prompt_ph"), lines=4,
                                            max_lines=12, elem_id="t2i-prompt")
                        count = gr.HTML(f'<span class="char-count">0 / {catalog.PROMPT_MAX}</span>',
                                        elem_id="t2i-count")
                        quality, _, o1 = _options(T2I, "t2i")
                        sizes = catalog.size_options(catalog.default_model(T2I), T2I)
                        size = gr.Dropdown(choices=[(s.label, s.value) for s in sizes], value=sizes[0].value,
                                           label=I18N("size"), elem_id="t2i-size")
                        run1, stop1 = _run_buttons("generate", "t2i")
                    with gr.Column(scale=6):
                        out1 = _results("t2i")
                        status1 = gr.Markdown(elem_id="t2i-status")
                prompt.change(None, prompt, count, js=COUNT_JS, **PRIVATE)
                for w in (o1.quality, o1.model):
                    w.change(h.t2i_sizes, [o1.quality, o1.model], size, **PRIVATE)
                # No key among the inputs: it travels as a request header (see Handlers).
                inputs1 = [prompt, o1.negative, o1.quality, o1.model, size, o1.n, o1.seed, o1.extend,
                           o1.watermark]
                ev1 = run1.click(h.generate, inputs1, [out1, status1], api_name="generate",
                                 concurrency_id="runs", concurrency_limit=ctx.opts.concurrency, **_progress_on(status1))
                stop1.click(h.stop_t2i, None, [out1, status1], cancels=[ev1], **STOP, **_progress_on(status1))

            # --- edit ----------------------------------------------------------------------------------
            with gr.Tab(I18N("tab_edit"), id="edit", elem_id="tab-edit"):
                with gr.Row():
                    with gr.Column(scale=5):
                        image = _tolerant(gr.Image(type="filepath", label=I18N("edit_image"),
                                                   sources=["upload", "clipboard"], image_mode=None, height=300,
                                                   elem_id="edit-image"))
                        image_url = gr.Textbox(label=I18N("edit_url"), placeholder=I18N("edit_url_ph"), max_lines=1,
                                               elem_id="edit-url")
                        instruction = gr.Textbox(label=I18N("instruction"), placeholder=I18N("instruction_ph"),
                                                 lines=3, elem_id="edit-instruction")
                        with gr.Accordion(I18N("presets"), open=True):
                            with gr.Row():
                                preset = gr.Dropdown(choices=[(v, k) for k, v in PRESET_LABELS["zh"].items()],
                                                     value="background", label=I18N("preset"), elem_id="edit-preset",
                                                     min_width=200)
                                style = gr.Dropdown(choices=STYLES, value=STYLES[0], label=I18N("style"), min_width=200)
                            with gr.Row(equal_height=True):
                                obj = gr.Textbox(label=I18N("object"), max_lines=1, scale=3)
                                fill = gr.Button(I18N("apply_preset"), elem_id="edit-fill", scale=1)
                        _, _, o2 = _options(EDIT, "edit")
                        s2 = _size_widgets("edit")
                        run2, stop2 = _run_buttons("run_edit", "edit")
                    with gr.Column(scale=6):
                        out2 = _results("edit")
                        compare = gr.ImageSlider(label=I18N("compare"), type="filepath", elem_id="edit-compare",
                                                 format="png")
                        status2 = gr.Markdown(elem_id="edit-status")
                fill.click(h.apply_preset, [preset, style, obj], instruction, **PRIVATE)
                for w in (o2.quality, o2.model):
                    w.change(h.edit_sizes, [o2.quality, o2.model], s2.preset, **PRIVATE)
                inputs2 = [image, image_url, instruction, o2.quality, o2.model, o2.n, s2.mode, s2.preset, s2.width,
                           s2.height, o2.seed, o2.negative, o2.extend, o2.watermark]
                ev2 = run2.click(h.edit, inputs2, [out2, compare, status2], api_name="edit", concurrency_id="runs",
                                 concurrency_limit=ctx.opts.concurrency, **_progress_on(status2))
                stop2.click(h.stop_edit, None, [out2, status2], cancels=[ev2], **STOP, **_progress_on(status2))

            # --- fusion --------------------------------------------------------------------------------
            with gr.Tab(I18N("tab_fuse"), id="fuse", elem_id="tab-fuse"):
                gr.Markdown(f"{ZH['fuse_help']}\n\n{EN['fuse_help']}", elem_id="fuse-help")
                with gr.Row():
                    slots = [_tolerant(gr.Image(type="filepath", label=I18N(f"img{i}"), sources=["upload", "clipboard"],
                                                image_mode=None, height=220, elem_id=f"fuse-img{i}")) for i in (1, 2, 3)]
                with gr.Row():
                    swap12 = gr.Button(I18N("swap12"), size="sm", elem_id="fuse-swap12")
                    swap23 = gr.Button(I18N("swap23"), size="sm", elem_id="fuse-swap23")
                with gr.Row():
                    with gr.Column(scale=5):
                        instruction3 = gr.Textbox(label=I18N("instruction"), lines=3, elem_id="fuse-instruction",
                                                  placeholder=I18N("fuse_ph"))
                        _, _, o3 = _options(EDIT, "fuse")
                        s3 = _size_widgets("fuse")
                        run3, stop3 = _run_buttons("run_fuse", "fuse")
                    with gr.Column(scale=6):
                        out3 = _results("fuse")
                        status3 = gr.Markdown(elem_id="fuse-status")
                swap12.click(h.swap, [slots[0], slots[1]], [slots[0], slots[1]], **PRIVATE)
                swap23.click(h.swap, [slots[1], slots[2]], [slots[1], slots[2]], **PRIVATE)
                for w in (o3.quality, o3.model):
                    w.change(h.edit_sizes, [o3.quality, o3.model], s3.preset, **PRIVATE)
                inputs3 = [*slots, instruction3, o3.quality, o3.model, o3.n, s3.mode, s3.preset, s3.width, s3.height,
                           o3.seed, o3.negative, o3.extend, o3.watermark]
                ev3 = run3.click(h.fuse, inputs3, [out3, status3], api_name="fuse", concurrency_id="runs",
                                 concurrency_limit=ctx.opts.concurrency, **_progress_on(status3))
                stop3.click(h.stop_fuse, None, [out3, status3], cancels=[ev3], **STOP, **_progress_on(status3))

            # --- gallery -------------------------------------------------------------------------------
            with gr.Tab(I18N("tab_gallery"), id="gallery", elem_id="tab-gallery") as gallery_tab:
                page_ids = gr.State([])
                page_no = gr.State(1)
                selected = gr.State(None)
                with gr.Row():
                    query = gr.Textbox(label=I18N("search"), max_lines=1, scale=3, elem_id="gallery-search")
                    task = gr.Dropdown(choices=[(I18N("all"), ""), (I18N("task_t2i"), "t2i"), (I18N("task_edit"), "edit"),
                                                (I18N("task_fuse"), "fuse")],
                                       value="", label=I18N("filter_task"), scale=1, elem_id="gallery-task")
                    model = gr.Dropdown(choices=[("all", "")], value="", label=I18N("filter_model"), scale=2,
                                        elem_id="gallery-model", allow_custom_value=True)
                    refresh = gr.Button(I18N("refresh"), scale=1, elem_id="gallery-refresh")
                with gr.Row():
                    with gr.Column(scale=7):
                        grid = gr.Gallery(label=I18N("tab_gallery"), columns=6, height=560, allow_preview=False,
                                          object_fit="cover", elem_id="gallery-grid", buttons=[],
                                          interactive=False, format="jpeg")
                        with gr.Row():
                            prev = gr.Button(I18N("prev"), size="sm", elem_id="gallery-prev")
                            page_info = gr.Markdown(elem_id="gallery-page")
                            nxt = gr.Button(I18N("next"), size="sm", elem_id="gallery-next")
                        with gr.Accordion(I18N("select_zip"), open=False):
                            picks = gr.CheckboxGroup(choices=[], label=I18N("select_zip"), elem_id="gallery-picks")
                            zip_btn = gr.Button(I18N("zip"), size="sm", elem_id="gallery-zip")
                            zip_file = gr.File(label=I18N("zip_file"), interactive=False, elem_id="gallery-zip-file")
                    with gr.Column(scale=5):
                        preview = gr.Image(label=I18N("details"), interactive=False, height=320, format="png",
                                           elem_id="gallery-preview", buttons=["fullscreen"])
                        details = gr.Markdown(elem_id="gallery-details")
                        with gr.Row():
                            download = gr.DownloadButton(I18N("download_png"), interactive=False, size="sm",
                                                         elem_id="gallery-download")
                            reuse = gr.Button(I18N("reuse"), size="sm", elem_id="gallery-reuse")
                        with gr.Row():
                            to_edit = gr.Button(I18N("to_edit"), size="sm", elem_id="gallery-to-edit")
                            to_fuse = gr.Button(I18N("to_fuse"), size="sm", elem_id="gallery-to-fuse")
                            delete = gr.Button(I18N("delete"), size="sm", variant="stop", elem_id="gallery-delete")
                        action_status = gr.Markdown(elem_id="gallery-status")

                page_out = [grid, page_info, page_ids, page_no, picks, model]
                filters = [query, task, model]
                gallery_tab.select(h.gallery_page, [*filters, page_no], page_out, **PRIVATE)
                refresh.click(h.gallery_page, [*filters, page_no], page_out, **PRIVATE)
                for trig in (query.submit, task.input, model.input):
                    trig(h.gallery_first_page, filters, page_out, **PRIVATE)
                prev.click(h.gallery_step, [*filters, page_no, gr.State(-1)], page_out, **PRIVATE)
                nxt.click(h.gallery_step, [*filters, page_no, gr.State(1)], page_out, **PRIVATE)
                grid.select(h.gallery_select, page_ids, [selected, details, preview, download, action_status],
                            **PRIVATE)
                delete.click(h.gallery_delete, selected, [selected, action_status], **PRIVATE).then(
                    h.gallery_page, [*filters, page_no], page_out, **PRIVATE).then(
                    lambda: (None, "", gr.DownloadButton(value=None, interactive=False)), None,
                    [preview, details, download], **PRIVATE)
                zip_btn.click(h.gallery_zip, picks, [zip_file, action_status], **PRIVATE)
                to_edit.click(h.send_to_edit, selected, [image, tabs, action_status], **PRIVATE)
                to_fuse.click(h.send_to_fuse, [selected, *slots], [*slots, tabs, action_status], **PRIVATE)
                h.panels = {
                    "t2i": {"prompt": prompt, "size": size, **o1.__dict__},
                    "edit": {"prompt": instruction, "url": image_url, "size_mode": s2.mode, "width": s2.width,
                             "height": s2.height, **o2.__dict__},
                    "fuse": {"prompt": instruction3, "size_mode": s3.mode, "width": s3.width, "height": s3.height,
                             **o3.__dict__},
                }
                reuse_outputs = [tabs, action_status] + [w for p in h.panels.values() for w in p.values()]
                h.panels.update(tabs=tabs, status=action_status)
                reuse.click(h.reuse, selected, reuse_outputs, **PRIVATE)

        demo.load(h.preset_labels, None, preset, **PRIVATE)
    return demo


def launch_kwargs(ctx: AppContext) -> dict[str, Any]:
    """Arguments for ``demo.launch`` that every way of launching must use (safety settings)."""
    opts = ctx.opts
    allowed = [] if opts.hosted else [str(Path(ctx.settings.data_dir).resolve())]
    upload_max = int(opts.max_upload_mb * (1 << 20)) if opts.max_upload_mb > 0 else None
    kwargs: dict[str, Any] = {
        "i18n": I18N,
        "run_history": False,  # it would keep every input in localStorage
        "allowed_paths": allowed,
        "css_paths": [ASSETS / "style.css"],
        "head_paths": [ASSETS / "key_header.html", ASSETS / "shortcuts.html"],
        "theme": gr.themes.Soft(),
        "footer_links": ["api", "gradio"],
        "show_error": True,
        "max_file_size": upload_max,
        # Deep links closed, request bodies capped (see guard.py).
        "app_kwargs": {"middleware": [Middleware(Guard, upload_max=upload_max)]},
    }
    if opts.hosted:
        # Each session's state is about 240 KB; Gradio's default keeps 10,000 (2.4 GB).
        kwargs["state_session_capacity"] = max(10, opts.max_sessions)
    return kwargs
