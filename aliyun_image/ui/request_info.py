"""Who is calling: the request's language, its session, its visitor cookie and network address (and
so the gallery it may see and the quotas it draws from), and the key header it carries."""

from __future__ import annotations

import re
from urllib.parse import unquote

import gradio as gr

from .. import i18n
from ..money import Payers
from ..runtime import AppContext, Visitor
from ..storage import Gallery
from .http_guard import client_address, visitor_token
from .mcp_tools import mcp_peer


def request_lang(request: gr.Request | None) -> str:
    """The caller's language (one of :data:`aliyun_image.i18n.LANGUAGES`) from the request's
    Accept-Language header: the browser's for the page, English for a client that sends none."""
    headers = getattr(request, "headers", None) or {}
    return i18n.from_accept_language(headers.get("accept-language"))


# Routes whose session hash comes from the caller's request body (see request_session).
_SESSION_PATH = re.compile(r"/(?:queue/join|run/[^/]+)$")


def request_session(request: gr.Request | None) -> str | None:
    """The caller's session, or None for a session-less API call.

    Gradio gives a call through ``/gradio_api/call/...`` its public event id as "session hash":
    anyone who saw that id could act as that session, so it is not a session. A queue join and a
    direct ``/run/...`` call (how the page sends the un-queued gallery events) carry in their body
    the hash the page chose and keeps to itself: that is the session.

    A call through the MCP bridge is session-less too: the bridge's one client (one hash) speaks
    for every MCP caller (see :mod:`.mcp_tools`).
    """
    if mcp_peer(_headers(request)):
        return None
    found = getattr(request, "session_hash", None)
    try:
        path = str(request.url.path) if request is not None and getattr(request, "request", None) else ""
    except AttributeError:
        path = ""
    if found and path and not _SESSION_PATH.search(path.rstrip("/")):
        return None
    return found


def _headers(request: gr.Request | None) -> dict[str, str]:
    try:
        return dict(getattr(request, "headers", None) or {})
    except (TypeError, ValueError):
        return {}


def client_host(request: gr.Request | None, trusted_proxies: int = 0) -> str | None:
    """The caller's network address: for a call through the MCP bridge, the address the MCP request
    came from (the bridge itself calls from 127.0.0.1); else the connection's peer, or behind
    ``trusted_proxies`` proxies the address the outermost of them saw (see
    :func:`.http_guard.client_address`)."""
    peer = mcp_peer(_headers(request))
    if peer:
        return peer
    client = getattr(request, "client", None)
    peer = getattr(client, "host", None)
    headers = getattr(request, "headers", None) or {}
    return client_address(headers.get("x-forwarded-for"), str(peer) if peer else None, trusted_proxies)


def request_visitor(ctx: AppContext, request: gr.Request | None) -> Visitor:
    """Who is calling: the app's visitor cookie (when well-formed), the page session and the client
    address (after the proxies the host trusts, ``ALIYUN_IMAGE_TRUSTED_PROXIES``)."""
    headers = getattr(request, "headers", None) or {}
    return Visitor(token=visitor_token(headers.get("cookie")), session=request_session(request),
                   address=client_host(request, ctx.settings.hosting.trusted_proxies))


def request_owner(ctx: AppContext, request: gr.Request | None) -> str | None:
    """The store owner of the caller (see :meth:`AppContext.owner_of`)."""
    return ctx.owner_of(request_visitor(ctx, request))


def request_payers(ctx: AppContext, request: gr.Request | None) -> Payers:
    """Whom the caller's runs count against in the hourly quotas: visitor and address."""
    return ctx.payers(request_visitor(ctx, request))


def header_key(value: str | None) -> str | None:
    """The key as typed: the page percent-encodes a key with characters a header cannot carry."""
    if value and re.search(r"%[0-9A-Fa-f]{2}", value):
        return unquote(value)
    return value


def caller_gallery(ctx: AppContext, request: gr.Request | None) -> Gallery:
    """The results the caller may see and change: in hosted mode their own only, whatever ids they
    send (see :meth:`AppContext.gallery`)."""
    return ctx.gallery_of(request_visitor(ctx, request))
