"""Who is calling: the request's language, its session (and the gallery it may see), its network
address and the key header it carries."""

from __future__ import annotations

import re
from urllib.parse import unquote

import gradio as gr

from .. import i18n
from ..runtime import AppContext
from ..storage import Gallery
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


def client_host(request: gr.Request | None) -> str | None:
    """The caller's network address, if the request carries one: for a call through the MCP
    bridge, the address the MCP request came from (the bridge itself calls from 127.0.0.1)."""
    peer = mcp_peer(_headers(request))
    if peer:
        return peer
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return str(host) if host else None


def header_key(value: str | None) -> str | None:
    """The key as typed: the page percent-encodes a key with characters a header cannot carry."""
    if value and re.search(r"%[0-9A-Fa-f]{2}", value):
        return unquote(value)
    return value


def caller_gallery(ctx: AppContext, request: gr.Request | None) -> Gallery:
    """The results the caller may see and change: in hosted mode their own only, whatever ids they
    send (see :meth:`AppContext.gallery`)."""
    return ctx.gallery(request_session(request))
