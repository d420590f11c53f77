"""The page's title and mode banner, each in the visitor's language only.

Which banner shows follows how calls are routed (:meth:`AppContext.route`): offline demo, shared
demo with or without a host key, or none (local, with the host's key). A second banner, "live:
your key", is in the page from the start but hidden; the page's script (static/key_banner.html)
swaps the two while the key box holds text. The key itself never leaves the browser for that:
the swap is done in the page, and the key box is never an input of any event.

Two banners carry values (the hourly limit, the region): gr.I18n formats nothing, so
:func:`banner_texts` renders them for every language when the page is built, under keys of
their own in the page's translations (no table is changed).
"""

from __future__ import annotations

import gradio as gr

from ..runtime import AppContext
from .strings import key, t
from .widgets import BUILT, I18N


def banner_key(ctx: AppContext) -> str:
    """Which banner the mode needs, as its ``ui.banner.*`` name ("" for none: local, with the
    host's key)."""
    if ctx.opts.offline:
        return "hosted_offline" if ctx.opts.hosted else "offline"
    if ctx.opts.hosted:
        return "hosted_hostkey" if ctx.host_key else "hosted"
    return "offline" if not ctx.host_key else ""


def banner_texts(ctx: AppContext, lang: str) -> dict[str, str]:
    """The banners that need values, rendered in ``lang``, by their page keys."""
    return {key(f"{BUILT}banner.hosted_hostkey"): t(lang, "banner.hosted_hostkey", session=ctx.opts.session_limit),
            key(f"{BUILT}banner.own"): t(lang, "banner.own", region=ctx.settings.region_label(lang))}


def build_title_and_banner(ctx: AppContext) -> None:
    """Title with subtitle, the mode's banner and the hidden "live: your key" banner."""
    gr.Markdown(I18N("title_block"), elem_id="title")
    name = banner_key(ctx)
    if name:
        filled = name == "hosted_hostkey"  # the one mode banner with a value
        gr.Markdown(I18N(f"{BUILT if filled else ''}banner.{name}"), elem_id="banner", elem_classes=["banner"])
    else:
        gr.Markdown(visible=False, elem_id="banner")
    if not ctx.opts.offline:  # with --offline there is no key box, so no key can change the route
        gr.Markdown(I18N(f"{BUILT}banner.own"), elem_id="banner-own", elem_classes=["banner", "banner-own"])
