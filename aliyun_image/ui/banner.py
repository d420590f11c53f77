"""The page's title and mode banner, each in the visitor's language only.

Which banner shows follows how calls are routed (:meth:`AppContext.route`): offline demo, shared
demo with or without a host key, or none (local, with the host's key). A second banner, "live:
your key", is in the page from the start but hidden; the page's script (static/key_banner.html)
swaps the two while the key box holds text. The key itself never leaves the browser for that:
the swap is done in the page, and the key box is never an input of any event.
"""

from __future__ import annotations

import gradio as gr

from .context import AppContext
from .strings import EN, ZH
from .widgets import I18N


def banner_key(ctx: AppContext) -> str:
    """Which banner the mode needs ("" for none: local, with the host's key)."""
    if ctx.opts.offline:
        return "banner_hosted_offline" if ctx.opts.hosted else "banner_offline"
    if ctx.opts.hosted:
        return "banner_hosted_hostkey" if ctx.host_key else "banner_hosted"
    return "banner_offline" if not ctx.host_key else ""


def _register(key: str, **fmt: object) -> str:
    """A translation key for ``key``'s text with ``fmt`` filled in (gr.I18n formats nothing, and
    these values are fixed for the life of the app)."""
    filled = f"{key}:filled"
    EN[filled], ZH[filled] = EN[key].format(**fmt), ZH[key].format(**fmt)
    return filled


def build_title_and_banner(ctx: AppContext) -> None:
    """Title with subtitle, the mode's banner and the hidden "live: your key" banner."""
    gr.Markdown(I18N("title_block"), elem_id="title")
    key = banner_key(ctx)
    if key == "banner_hosted_hostkey":
        key = _register(key, session=ctx.opts.session_limit)
    if key:
        gr.Markdown(I18N(key), elem_id="banner", elem_classes=["banner"])
    else:
        gr.Markdown(visible=False, elem_id="banner")
    if not ctx.opts.offline:  # with --offline there is no key box, so no key can change the route
        s = ctx.settings
        own = _register("banner_own", region=s.region_label("en"))
        ZH[own] = ZH["banner_own"].format(region=s.region_label("zh"))
        gr.Markdown(I18N(own), elem_id="banner-own", elem_classes=["banner", "banner-own"])
