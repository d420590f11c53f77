"""The page's title and mode banner, each in the visitor's language only.

Which banner shows follows how calls are routed (:meth:`AppContext.route`): offline demo, shared
demo with or without a host key, or live on the server's key (local, with ``DASHSCOPE_API_KEY``:
"billed to that key"). A second banner, "live: your key", is in the page from the start but hidden;
the page's script (static/key_banner.html) swaps the two while the key box holds text. The key
itself never leaves the browser for that: the swap is done in the page, and the key box is never
an input of any event.

The shared demo's banners also say how long a visitor's results are kept (they belong to the
browser's visitor cookie, see ``http_guard.py``), whether a restart of the Space clears them, and
offer "download all": a zip of the visitor's own results, made by the gallery's matching zip
(:meth:`.gallery_search.GallerySearch.download_matching` with no search), so it can only ever
hold the caller's results.

Banners carry values (limits, days, the region): gr.I18n formats nothing, so :func:`banner_texts`
renders them for every language when the page is built, under keys of their own in the page's
translations (no table is changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..runtime import AppContext
from .gallery_search import ZIPS, GallerySearch
from .strings import key, t
from .widgets import BUILT, I18N

PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # queued: zips share the "zips" limit


BANNERS = ("offline", "live_host", "hosted", "hosted_hostkey", "hosted_offline")  # see banner_key


@dataclass
class BannerRow:
    """The shared demo's "download all" button and the zip box it fills."""

    download: gr.Button
    zip_file: gr.File


def banner_key(ctx: AppContext) -> str:
    """Which banner the mode needs, as its ``ui.banner.*`` name (``live_host``: local, with the
    host's key)."""
    if ctx.opts.offline:
        return "hosted_offline" if ctx.opts.hosted else "offline"
    if ctx.opts.hosted:
        return "hosted_hostkey" if ctx.host_key else "hosted"
    return "offline" if not ctx.host_key else "live_host"


def banner_text(ctx: AppContext, name: str, lang: str) -> str:
    """The banner ``name`` (see :func:`banner_key`) in ``lang``, values filled in. Shared-demo
    banners go on with how long results are kept (and that a restart of a Space without
    persistent storage clears them). The offline banner's shell command is a paragraph of its own,
    which the page hides on phones (style.css), where no one can type it."""
    if name == "offline":
        return t(lang, "visitor.offline") + "\n\n" + t(lang, "visitor.offline_shell")
    if name == "live_host":
        return t(lang, "visitor.live_host", region=ctx.settings.region_label(lang))
    text = t(lang, f"visitor.{name}", session=ctx.opts.session_limit)
    hosting = ctx.settings.hosting
    kept = t(lang, "visitor.kept", days=hosting.visitor_days)
    if hosting.restart_clears:
        kept += " " + t(lang, "visitor.restart")
    return text + "\n\n" + kept


def banner_texts(ctx: AppContext, lang: str) -> dict[str, str]:
    """The banners rendered in ``lang``, by their page keys."""
    out = {key(f"{BUILT}banner.own"): t(lang, "banner.own", region=ctx.settings.region_label(lang))}
    for name in BANNERS:
        out[key(f"{BUILT}banner.{name}")] = banner_text(ctx, name, lang)
    return out


def build_title_and_banner(ctx: AppContext) -> BannerRow | None:
    """Title with subtitle, the mode's banner and the hidden "live: your key" banner; in the
    shared demo also "download all" (returned, to be wired by :func:`wire_download_all`)."""
    gr.Markdown(I18N("title_block"), elem_id="title")
    name = banner_key(ctx)
    gr.Markdown(I18N(f"{BUILT}banner.{name}"), elem_id="banner", elem_classes=["banner", f"banner-{name}"])
    if not ctx.opts.offline:  # with --offline there is no key box, so no key can change the route
        gr.Markdown(I18N(f"{BUILT}banner.own"), elem_id="banner-own", elem_classes=["banner", "banner-own"])
    if not ctx.opts.hosted:
        return None
    with gr.Row(elem_id="download-all-row"):
        download = gr.Button(I18N("visitor.download_all"), size="sm", elem_id="download-all", scale=0,
                             min_width=260)
        zip_file = gr.File(interactive=False, elem_id="download-all-file", visible=False, show_label=False)
    return BannerRow(download, zip_file)


def wire_download_all(row: BannerRow | None, search: GallerySearch) -> None:
    """"Download all": the visitor's own results as one zip (the gallery's matching zip with no
    search or filter: the newest 200, the message says when there are more)."""
    if row is None:
        return

    def download_all(request: gr.Request) -> gr.File:
        path, _ = search.download_matching("", "", "", request)
        return gr.File(value=path, visible=True)

    row.download.click(download_all, None, row.zip_file, **ZIPS, **PRIVATE)
