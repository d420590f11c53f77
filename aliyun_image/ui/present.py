"""Small helpers the handlers share: who is calling, in which language, and how text is shown."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import unquote

import gradio as gr

from .. import i18n
from ..generation import outcome as summary
from ..errors import AliyunImageError
from ..i18n import Message
from ..storage import Record
from ..generation import escape_md
from .strings import t


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
    """
    found = getattr(request, "session_hash", None)
    try:
        path = str(request.url.path) if request is not None and getattr(request, "request", None) else ""
    except AttributeError:
        path = ""
    if found and path and not _SESSION_PATH.search(path.rstrip("/")):
        return None
    return found


def client_host(request: gr.Request | None) -> str | None:
    """The caller's network address, if the request carries one."""
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return str(host) if host else None


def header_key(value: str | None) -> str | None:
    """The key as typed: the page percent-encodes a key with characters a header cannot carry."""
    if value and re.search(r"%[0-9A-Fa-f]{2}", value):
        return unquote(value)
    return value


def count(value: Any) -> int:
    """``n`` from a widget or an API caller; anything not a finite number becomes 0, which the
    service refuses with its own message (NaN must not crash a handler)."""
    try:
        return int(value) if value is not None and math.isfinite(float(value)) else 0
    except (TypeError, ValueError):
        return 0


def caption(rec: Record) -> str:
    """Gallery caption: the record's ``#id`` (what every action refers to), start of the prompt,
    model and size."""
    prompt = rec.prompt if len(rec.prompt) <= 48 else rec.prompt[:47] + "…"
    return f"#{rec.id} · {prompt} · {rec.model} · {rec.size}"


def caption_id(text: Any) -> int | None:
    """The record id at the start of a gallery caption (``#12 · …``), or None."""
    found = re.match(r"\s*(?:✓\s*)?#(\d{1,12})\b", text) if isinstance(text, str) else None
    return int(found.group(1)) if found else None


# Markdown escaping of text shown in a Markdown component (one rule for the page and the
# summaries). Done once, where text goes into Markdown: never on a toast, which shows text as is.
md = escape_md


def error_md(err: AliyunImageError, lang: str) -> str:
    """A failure as the status line shows it."""
    return "⚠️ " + md(err.text(lang))


def ui_error(lang: str, message: str) -> gr.Error:
    """A toast (and an error for API and MCP clients) in ``lang`` only, title included.
    ``message`` is plain text: a toast does not render Markdown."""
    return gr.Error(message, title=t(lang, "toast.error"), print_exception=False)


def gr_error(err: AliyunImageError, lang: str) -> gr.Error:
    """A failure with nothing produced, raised so API and MCP clients see it as an error (the page
    shows the same message in the status line too), in the caller's language."""
    return ui_error(lang, err.text(lang))


# --- adapters for texts other packages hand over (one place to change when they move) ----------
def event_text(lang: str, text: Message | str) -> str:
    """A run event's status text in ``lang``."""
    return i18n.render(lang, text)


def run_text(lang: str, name: str) -> str:
    """A text of the run summary's (e.g. ``offline_note``), which the summary builder owns."""
    return summary.text(lang, name)
