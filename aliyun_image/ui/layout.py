"""The Blocks: the panels (:mod:`.panels`), the handlers, and the wiring of events between them.

Public API endpoints (stable ``api_name``): ``generate``, ``edit``, ``fuse``, their parameters
in the order of :data:`.endpoints.PARAMS`. Everything else is UI plumbing and private
(``api_visibility="private"``), so it is neither documented nor callable as an API or MCP tool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from .cost_ui import wire as wire_cost
from ..runtime import AppContext
from .endpoints import PARAMS, check_handler
from .gallery_handlers import ReuseTargets
from .gallery_search import wire_gallery_search
from .guard import Guard
from .locale_shim import LocaleShim
from .keep_panels import build_png_info, wire_keep
from .handlers import Handlers
from .assist import wire_slot_checks, wire_templates
from .result_actions import wire_result_actions
from .rewrite import wire_rewrite
from .rewrite_options import wire_rewrite_options
from .fusion_slots import wire_extra_slots
from .sessions import lean_sessions_lifespan
from .panels import (EditPanel, FusePanel, GalleryPanel, T2IPanel, build_edit, build_fuse, build_gallery,
                     build_header, build_t2i)
from .banner import banner_texts
from .strings import UI, t
from .widgets import COUNT_JS, PRIVATE, STOP, OptionWidgets, model_labels, progress_on
from .. import i18n

ASSETS = Path(__file__).resolve().parent / "static"  # shipped in the package: css and head scripts


def _wire_run(ctx: AppContext, endpoint: str, handler: Callable[..., Any], panel: Any, outputs: list[Any],
              stop: Callable[..., Any]) -> None:
    """A run button as public endpoint ``endpoint`` (inputs in the API's order) and its Stop."""
    check_handler(handler, endpoint)
    widgets = panel.api_inputs()
    inputs = [widgets[name] for name in PARAMS[endpoint]]
    # No key among the inputs: it travels as a request header (see run_handlers).
    event = panel.run.click(handler, inputs, outputs, api_name=endpoint, concurrency_id="runs",
                            concurrency_limit=ctx.opts.concurrency, **progress_on(panel.status))
    panel.stop.click(stop, None, [panel.results, panel.status], cancels=[event], **STOP, **progress_on(panel.status))


def _wire_model(demo: gr.Blocks, follow: Callable[..., Any], refresh: Callable[..., Any], o: OptionWidgets,
                targets: list[Any]) -> None:
    """Controls follow the effective model (quality switch or explicit model), from page load on.

    A user's pick (``input``) resets the model-dependent values to the model's defaults; any other
    change (a reuse filling the form) updates only choices and limits, keeping what was filled in.
    """
    outputs = [o.info, *targets, o.n, o.extend, o.negative]
    for w in (o.quality, o.model):
        w.input(follow, [o.quality, o.model], outputs, **PRIVATE)
        w.change(refresh, [o.quality, o.model], outputs, **PRIVATE)
    demo.load(refresh, [o.quality, o.model], outputs, **PRIVATE)


def _wire_runs(demo: gr.Blocks, ctx: AppContext, h: Handlers, t2i: T2IPanel, edit: EditPanel,
               fuse: FusePanel) -> None:
    for source in (t2i.prompt, t2i.limit):
        source.change(None, [t2i.prompt, t2i.limit], t2i.count, js=COUNT_JS, **PRIVATE)
    _wire_model(demo, h.follow_t2i, h.refresh_t2i, t2i.options, [t2i.size])
    for w in (t2i.options.quality, t2i.options.model):
        w.change(h.prompt_limit, [t2i.options.quality, t2i.options.model], t2i.limit, **PRIVATE)
    demo.load(h.prompt_limit, [t2i.options.quality, t2i.options.model], t2i.limit, **PRIVATE)
    _wire_run(ctx, "generate", h.generate, t2i, [t2i.results, t2i.status], h.stop_t2i)

    wire_templates(edit.preset, edit.style, edit.obj, edit.fill, edit.instruction, edit.template_note)
    _wire_model(demo, h.follow_edit, h.refresh_edit, edit.options, [edit.sizes.preset])
    _wire_run(ctx, "edit", h.edit, edit, [edit.results, edit.compare, edit.status], h.stop_edit)

    a, b, c = fuse.slots
    wire_slot_checks([*fuse.slots, *fuse.more_slots], fuse.slot_note)
    wire_extra_slots(demo, fuse.options.quality, fuse.options.model, fuse.more_slots)
    fuse.swap12.click(h.swap, [a, b], [a, b], **PRIVATE)
    fuse.swap23.click(h.swap, [b, c], [b, c], **PRIVATE)
    _wire_model(demo, h.follow_edit, h.refresh_edit, fuse.options, [fuse.sizes.preset])
    _wire_run(ctx, "fuse", h.fuse, fuse, [fuse.results, fuse.status], h.stop_fuse)
    for task, panel, prompt in (("t2i", t2i, t2i.prompt), ("edit", edit, edit.instruction),
                                ("fuse", fuse, fuse.instruction)):
        assert panel.rewrite is not None
        o = panel.options
        wire_rewrite(h.rewrite, task, panel.rewrite, prompt, o.extend, o.seed, panel.status, panel.run)
        wire_rewrite_options(demo, task, o)  # the 3.0 line's rewriting mode and thinking switch


def _wire_gallery(h: Handlers, g: GalleryPanel, tabs: gr.Tabs, edit: EditPanel, fuse: FusePanel) -> None:
    filters, page_out = g.filters(), g.page_outputs()
    g.tab.select(h.gallery_page, [*filters, g.page_no], page_out, **PRIVATE)
    g.refresh.click(h.gallery_page, [*filters, g.page_no], page_out, **PRIVATE)
    for trigger in (g.query.submit, g.task.input, g.model.input):
        trigger(h.gallery_first_page, filters, page_out, **PRIVATE)
    g.prev.click(h.gallery_step, [*filters, g.page_no, gr.State(-1)], page_out, **PRIVATE)
    g.next.click(h.gallery_step, [*filters, g.page_no, gr.State(1)], page_out, **PRIVATE)
    g.grid.select(h.gallery_select, g.page_ids, [g.selected, g.details, g.preview, g.download, g.status],
                  **PRIVATE)
    g.delete.click(h.gallery_delete, g.selected, [g.selected, g.status, g.last_deleted, g.undo], **PRIVATE).then(
        h.gallery_page, [*filters, g.page_no], page_out, **PRIVATE).then(
        lambda: (None, "", gr.DownloadButton(value=None, interactive=False)), None,
        [g.preview, g.details, g.download], **PRIVATE)
    g.zip_button.click(h.gallery_zip, g.picks, [g.zip_file, g.status], **PRIVATE)
    g.to_edit.click(h.send_to_edit, g.selected, [edit.image, tabs, g.status], **PRIVATE)
    g.to_fuse.click(h.send_to_fuse, [g.selected, *fuse.slots], [*fuse.slots, tabs, g.status], **PRIVATE)
    assert h.reuse_targets is not None  # built with the panels, just before the wiring
    g.reuse.click(h.reuse, g.selected, h.reuse_targets.outputs(), **PRIVATE)
    if g.keep_wording is not None:
        g.keep_wording.click(h.reuse_wording, g.selected, h.reuse_targets.outputs(), **PRIVATE)


def build_demo(ctx: AppContext) -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` (not launched)."""
    hosted = ctx.opts.hosted
    if not hosted:
        # One local user: serve results straight from the results folder instead of copying and
        # re-hashing every shown image into Gradio's cache. (Never in hosted mode: static paths
        # are served to anyone who knows a path.)
        gr.set_static_paths([str(Path(ctx.settings.data_dir).resolve())])
    # Cache copies of results shown in the page are cleaned: hourly in the shared demo, daily locally.
    delete_cache = (3600, 6 * 3600) if hosted else (24 * 3600, 7 * 24 * 3600)
    with gr.Blocks(title="aliyun-image", delete_cache=delete_cache, analytics_enabled=False) as demo:
        header = build_header(ctx)
        with gr.Tabs(elem_id="tabs") as tabs:
            t2i, edit, fuse, gallery = build_t2i(), build_edit(), build_fuse(), build_gallery()
        png = build_png_info()
        reuse = ReuseTargets(tabs, gallery.status, {"t2i": t2i.reuse_fields(), "edit": edit.reuse_fields(),
                                                    "fuse": fuse.reuse_fields()},
                             {"t2i": t2i.status, "edit": edit.status, "fuse": fuse.status, "png": png.status})
        h = Handlers(ctx, reuse=reuse)
        wire_keep(h, gallery, png)  # Undo after a delete, PNG info
        _wire_runs(demo, ctx, h, t2i, edit, fuse)
        # Queued (not PRIVATE's queue=False): the key header rides on queue calls only. At most two
        # checks at once: each makes one small request per region on the visitor's key.
        header.check.click(h.check_key, None, header.report, api_visibility="private", concurrency_limit=2,
                           concurrency_id="keycheck")
        _wire_gallery(h, gallery, tabs, edit, fuse)
        wire_result_actions(ctx, h, demo, tabs, t2i, edit, fuse)
        wire_gallery_search(h, gallery, h.gallery_first_page)
        wire_cost(demo, ctx, {"t2i": t2i, "edit": edit, "fuse": fuse}, gallery)
    # Queued events answer only through the queue: Gradio's direct /run/<name> route (open unless
    # on a Space) would skip every concurrency limit (runs, zips, key checks).
    demo.api_open = False
    return demo


def page_i18n(ctx: AppContext) -> gr.I18n:
    """The page's translations for ``gr.I18n``: the catalogue's ``[ui]`` table in every language
    of :data:`aliyun_image.i18n.LANGUAGES`, plus the texts rendered when the page is built
    (banners with values, model labels).

    Gradio's frontend (6.31, ``setupi18n``) picks the browser's locale among the languages it
    ships itself: the exact ``navigator.language`` when it has it (``zh-CN``, ``zh-TW``), else its
    base language (``ja-JP`` -> ``ja``, ``en-US`` -> ``en``), else ``en``; it then looks a key up
    in that locale, its base, and ``en`` (svelte-i18n's fallback chain). Translations keyed by our
    base codes (``en``, ``zh``, ``ja``) are therefore found for every locale Gradio can pick, and
    aliases such as ``zh-CN`` or ``ja-JP`` would only send the same texts twice. Gradio ships no
    ``zh-HK``, ``zh-SG`` or bare ``zh`` and would show those browsers English: :mod:`.locale_shim`
    maps them to ``zh-TW`` / ``zh-CN`` first, so the page reads Chinese like its messages.
    """
    tables = {}
    for lang in i18n.LANGUAGES:
        texts = {k: v for k, v in i18n.catalogue(lang).items() if k.startswith(UI)}
        tables[lang] = {**texts, **model_labels(lang), **banner_texts(ctx, lang)}
    return gr.I18n(**tables)


def toast_css() -> str:
    """CSS that titles error toasts in the page's language.

    Gradio 6.31 groups toasts by type and heads each group with the type's English name
    ("Error"), whatever ``gr.Error(title=...)`` says (the title only reaches API clients). The
    page's ``<html lang>`` is the locale Gradio chose, so ``:lang()`` picks the catalogue's title.
    """
    def title(lang: str) -> str:
        return json.dumps(t(lang, "toast.error"), ensure_ascii=False)

    rules = [".toast-title.error { font-size: 0; }",
             ".toast-title.error .toast-count { font-size: var(--text-lg); }",
             f".toast-title.error::before {{ content: {title(i18n.DEFAULT)}; font-size: var(--text-lg); }}"]
    rules += [f".toast-title.error:lang({lang})::before {{ content: {title(lang)}; }}"
              for lang in i18n.LANGUAGES if lang != i18n.DEFAULT]
    return "\n".join(rules)


def launch_kwargs(ctx: AppContext) -> dict[str, Any]:
    """Arguments for ``demo.launch`` that every way of launching must use (safety settings)."""
    opts = ctx.opts
    allowed = [] if opts.hosted else [str(Path(ctx.settings.data_dir).resolve())]
    upload_max = int(opts.max_upload_mb * (1 << 20)) if opts.max_upload_mb > 0 else None
    kwargs: dict[str, Any] = {
        "i18n": page_i18n(ctx),
        "run_history": False,  # it would keep every input in localStorage
        "allowed_paths": allowed,
        "css_paths": [ASSETS / "style.css"],
        "css": toast_css(),
        "head_paths": [ASSETS / "key_header.html", ASSETS / "shortcuts.html", ASSETS / "key_banner.html"],
        "theme": gr.themes.Soft(),
        "footer_links": ["api", "gradio"],
        "show_error": True,
        "max_file_size": upload_max,
        # Deep links closed, request bodies capped (see guard.py); sessions without Gradio's copy of
        # the page, which only deep links read (see sessions.py).
        "app_kwargs": {"middleware": [Middleware(Guard, upload_max=upload_max), Middleware(LocaleShim)],
                       "lifespan": lean_sessions_lifespan},
    }
    if opts.hosted:
        # Gradio's default keeps 10,000 sessions. A session costs ~15 KiB (~75 KiB once its page has
        # loaded) with the lean state of sessions.py, ~360-430 KiB with Gradio's own
        # (python -m bench.session_memory).
        kwargs["state_session_capacity"] = max(10, opts.max_sessions)
    return kwargs
