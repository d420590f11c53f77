"""The Blocks and its composition root: the panels (:mod:`.panels`), one object per feature
(:class:`Features`), each wiring its own events.

Public API endpoints (stable ``api_name``): ``generate``, ``edit``, ``fuse`` (:mod:`.run_handlers`),
``variations``, ``download_run`` (:mod:`.result_actions`) and ``download_matching``
(:mod:`.gallery_search`), their parameters in the order of :data:`.endpoints.PARAMS`. Everything
else is UI plumbing and private (``api_visibility="private"``), so it is neither documented nor
callable as an API or MCP tool.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from .. import i18n
from ..enums import Task
from ..runtime import AppContext
from .batch_api import BatchApi
from .banner import banner_texts, wire_download_all
from .batch_panel import BatchTab, build_batch
from .compare import CompareView
from .cost_lines import wire as wire_cost
from .form_assist import wire_slots, wire_templates, wire_upload_check
from .fusion_slots import wire_extra_slots
from .gallery_handlers import GalleryHandlers, ReuseTargets
from .gallery_search import GallerySearch
from .http_guard import HttpGuard, VisitorCookie, trust_no_proxy_by_default
from .key_check import KeyCheck
from .lineage_view import LineageView
from .locale_shim import LocaleShim
from .model_controls import ModelControls
from .panels import build_edit, build_fuse, build_gallery, build_header, build_t2i
from .png_info import PngInfo, build_png_drop
from .recent_view import RecentRunsView, build_strip
from .result_actions import ResultActions
from .rewrite import RewriteHandlers
from .rewrite_options import wire_rewrite_options
from .run_handlers import RunHandlers
from .mcp_tools import McpPeer, mcp_lifespan
from .sessions import lean_sessions_lifespan
from .strings import UI, t
from .widgets import model_labels

ASSETS = Path(__file__).resolve().parent / "static"  # shipped in the package: css and head scripts


@dataclass
class Features:
    """Every feature's event handlers, one object each, built with what it needs."""

    ctx: AppContext
    runs: RunHandlers  # /generate, /edit, /fuse and their Stop
    models: ModelControls  # controls that follow the effective model
    key: KeyCheck  # the header's key check
    gallery: GalleryHandlers  # paging, details, delete and Undo, zip, send to a panel, reuse
    search: GallerySearch  # search as you type, select on thumbnails, /download_matching
    actions: ResultActions  # under each run's results: edit this, use as slot n, /variations, /download_run
    png: PngInfo  # a dropped PNG's recipe into its panel
    rewrite: RewriteHandlers  # "keep this wording" under each run panel
    batch: BatchTab  # the Batch tab: batches and grids run on the server, Stop, Resume, zip
    lineage: LineageView  # the gallery details' chain: where a result came from, what was made from it
    compare: CompareView  # two results side by side, as a slider, their recipes' differences


def features(ctx: AppContext, reuse: ReuseTargets | None = None) -> Features:
    """The app's features over ``ctx``; ``reuse``: the widgets "Reuse parameters" and PNG info fill
    (the page's; None where no page is built)."""
    runs = RunHandlers(ctx)
    return Features(ctx=ctx, runs=runs, models=ModelControls(ctx.settings.region), key=KeyCheck(ctx),
                    gallery=GalleryHandlers(ctx, reuse, runs.reuses), search=GallerySearch(ctx),
                    actions=ResultActions(ctx, runs), png=PngInfo(ctx, reuse),
                    rewrite=RewriteHandlers(runs.rewrites, runs.live), lineage=LineageView(ctx),
                    compare=CompareView(ctx), batch=BatchTab(ctx))


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
        recent = build_strip()  # the visitor's runs in progress and finished since (runs outlive the page)
        # "wrap": every tab stays one tap away on a phone (the default "menu" folds them into an unlabelled ⋯).
        with gr.Tabs(elem_id="tabs", overflow_behavior="wrap") as tabs:
            t2i, edit, fuse = build_t2i(), build_edit(), build_fuse()
            batch, gallery = build_batch(), build_gallery()
        drop = build_png_drop()
        reuse = ReuseTargets(tabs, gallery.status, {"t2i": t2i.reuse_fields(), "edit": edit.reuse_fields(),
                                                    "fuse": fuse.reuse_fields()},
                             {"t2i": t2i.status, "edit": edit.status, "fuse": fuse.status, "png": drop.status})
        f = features(ctx, reuse)
        # The order of the wiring is the order of the page's events (and of the suffixes Gradio
        # gives private events that share a function's name): keep it.
        f.gallery.wire_undo(gallery)
        f.png.wire(drop)
        f.models.wire_t2i(demo, t2i)
        f.runs.wire("generate", t2i, [t2i.results, t2i.status])
        wire_templates(edit)
        f.models.wire_edit(demo, edit)
        f.runs.wire("edit", edit, [edit.results, edit.compare, edit.status])
        wire_slots(fuse)
        wire_extra_slots(demo, fuse.options.quality, fuse.options.model, fuse.more_slots)  # slot 4...slot 10
        f.models.wire_edit(demo, fuse)
        f.runs.wire("fuse", fuse, [fuse.results, fuse.status])
        for task, panel in (("t2i", t2i), ("edit", edit), ("fuse", fuse)):
            f.rewrite.wire(task, panel)
            wire_rewrite_options(demo, task, panel.options)  # the 3.0 line's rewriting mode and thinking
        f.key.wire(header.check, header.report)
        f.gallery.wire(gallery, tabs, edit, fuse)
        f.actions.wire(demo, tabs, t2i, edit, fuse)
        f.search.wire(gallery, f.gallery.gallery_first_page)
        if gallery.chain is not None:
            f.lineage.wire(gallery, gallery.chain)
        if gallery.compare is not None and gallery.compare_pick is not None:
            f.compare.wire(gallery, gallery.compare_pick, gallery.compare)
        wire_cost(demo, ctx, {"t2i": t2i, "edit": edit, "fuse": fuse}, gallery)
        f.runs.wire_stop_state(demo, {Task.T2I: t2i, Task.EDIT: edit, Task.FUSE: fuse})
        wire_upload_check(edit)  # the edit upload's check as it arrives, like fusion's slots
        strip = RecentRunsView(ctx, f.runs, f.batch.handlers.live)
        strip.wire(demo, recent, {Task.T2I: t2i, Task.EDIT: edit, Task.FUSE: fuse})
        BatchApi(ctx).wire()  # /batch and /grid for scripts and agents (no widgets of their own)
        wire_download_all(header.banner, f.search)  # hosted: the visitor's own results as one zip
        f.batch.wire(demo, batch, f.models)  # last: its events follow every earlier one
        strip.wire_batches(recent, f.batch, batch, tabs)  # a batch picked in the strip opens in the Batch tab
    # Queued events answer only through the queue: Gradio's direct /run/<name> route (open unless
    # on a Space) would skip every concurrency limit (runs, zips, key checks).
    demo.api_open = False
    quiet_queue_polling(demo)
    return demo


# How often Gradio's queue looks for work while it has none, and for progress to send. Gradio 6.31
# polls every 1 ms (10 ms for progress) on Linux: an idle app then spends about a tenth of a CPU core
# doing nothing (bench/idle_cpu.py: 6.2 CPU s a minute; 1.4 with these). 20 ms and 50 ms cost at most
# that much latency on an event's start or a progress line: nothing a person can see, and a hosted
# demo between visitors (or each app a test module starts) stops taking a core's tenth.
QUEUE_POLL_S = 0.02
PROGRESS_POLL_S = 0.05


def quiet_queue_polling(demo: gr.Blocks) -> None:
    """Make ``demo``'s queue poll at :data:`QUEUE_POLL_S` / :data:`PROGRESS_POLL_S` (Gradio has no
    setting for it: its ``Queue`` object's attributes, left alone if a Gradio version renames them)."""
    queue = getattr(demo, "_queue", None)
    for name, value in (("sleep_when_free", QUEUE_POLL_S), ("progress_update_sleep_when_free", PROGRESS_POLL_S)):
        if isinstance(getattr(queue, name, None), (int, float)):
            setattr(queue, name, value)


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


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """What the server sets up at start-up, before serving a request: lean sessions, MCP output."""
    async with lean_sessions_lifespan(app), mcp_lifespan(app):
        yield


def launch_kwargs(ctx: AppContext) -> dict[str, Any]:
    """Arguments for ``demo.launch`` that every way of launching must use (safety settings)."""
    opts = ctx.opts
    data = Path(ctx.settings.data_dir).resolve()
    # Hosted results outside the working dir (a Space's /data) may be copied into Gradio's cache only
    # if allowed; HttpGuard then closes the folder to Gradio's file route (closed_dirs).
    allowed = [str(data)] if not opts.hosted or not data.is_relative_to(Path.cwd().resolve()) else []
    h = ctx.settings.hosting
    visitor = VisitorCookie(h.visitor_days, h.cookie_samesite, h.trusted_proxies) if opts.hosted else None
    if opts.hosted:
        trust_no_proxy_by_default()  # the client address is read by request_info, after the trusted proxies
    upload_max = int(opts.max_upload_mb * (1 << 20)) if opts.max_upload_mb > 0 else None
    kwargs: dict[str, Any] = {
        "i18n": page_i18n(ctx),
        "run_history": False,  # it would keep every input in localStorage
        "allowed_paths": allowed,
        "css_paths": [ASSETS / "style.css"],
        "css": toast_css(),
        "head_paths": [ASSETS / "key_header.html", ASSETS / "shortcuts.html", ASSETS / "key_banner.html",
                       ASSETS / "phone_key_box.html"],
        "theme": gr.themes.Soft(),
        "footer_links": ["api", "gradio"],
        "show_error": True,
        "max_file_size": upload_max,
        # Deep links closed, request bodies capped (see http_guard.py); sessions without Gradio's copy of
        # the page, which only deep links read (see sessions.py).
        # Hosted: the visitor cookie on page loads, and the results folder closed to file URLs. MCP calls
        # stamped with their caller's address, and their tools' images given as images (see mcp_tools.py).
        "app_kwargs": {"middleware": [Middleware(HttpGuard, upload_max=upload_max, visitor=visitor,
                                                 closed_dirs=[data] if opts.hosted else []),
                                      Middleware(LocaleShim),
                                      Middleware(McpPeer, trusted_proxies=ctx.settings.hosting.trusted_proxies)],
                       "lifespan": _lifespan},
    }
    if opts.hosted:
        # Gradio's default keeps 10,000 sessions. A session costs ~15 KiB (~75 KiB once its page has
        # loaded) with the lean state of sessions.py, ~360-430 KiB with Gradio's own
        # (python -m bench.session_memory).
        kwargs["state_session_capacity"] = max(10, opts.max_sessions)
    return kwargs
