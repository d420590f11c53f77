"""The public endpoints as MCP tools (``python app.py --mcp``): what an agent gets back, and who
an MCP call is.

Gradio 6.31 makes every public endpoint a tool (named after its handler, described by its
docstring, parameters from :mod:`.endpoints`) and runs a call through its own queue with one
in-process gradio_client. Two things of that bridge do not fit this app; :func:`install` and
:class:`McpPeer` change them on the launched server:

- **What comes back.** Gradio renders every output that is not a single file as Python text: a
  gallery became ``[{'image': {'path': '/srv/...', ...}, 'caption': ...}]``, server paths
  included. :func:`tool_content` gives instead one MCP image per result (the stored PNG's bytes
  as they are, recipe included) followed by a text line with its caption and URL; a file (a zip)
  as its URL; the status line as text. The edit panel's before/after view is left out: it
  repeats the caller's input and the first result.
- **Who calls.** The bridge's client has one session for every MCP caller, and its calls come
  from 127.0.0.1 carrying the caller's headers (an ``X-Forwarded-For`` too, which the server
  trusts from 127.0.0.1). In hosted mode that would put every agent in one gallery (one could
  fetch another's results by id) and let one pick its address, and with it a fresh hourly
  allowance, per call. :class:`McpPeer` stamps each MCP request with the address the server saw,
  signed with a secret of this process, and drops forwarding headers; a call bearing a valid
  stamp is session-less (without a visitor cookie a fresh owner: its results come back in the
  reply and nowhere else, as for any call without a session; an agent that sends a cookie of
  its own keeps one gallery) and counts against that address (:mod:`.request_info`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import mimetypes
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .http_guard import client_address

log = logging.getLogger(__name__)

PEER_HEADER = "x-aliyun-image-mcp-peer"
# Headers a caller could use to pass for another address once the bridge re-sends the call from
# 127.0.0.1, the one address the server takes them from.
_FORWARDING = {b"x-forwarded-for", b"forwarded", b"x-real-ip", b"x-forwarded-host", PEER_HEADER.encode()}
_SECRET = secrets.token_bytes(32)  # per process: a stamp is good only inside the server that made it

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def _sign(host: str) -> str:
    return hmac.new(_SECRET, host.encode(), hashlib.sha256).hexdigest()


def stamp(host: str) -> str:
    """The :data:`PEER_HEADER` value for an MCP request from ``host``."""
    return f"{host} {_sign(host)}"


def mcp_peer(headers: Mapping[str, str] | None) -> str | None:
    """The caller's address when ``headers`` carry a valid stamp (the call came through the MCP
    bridge of this server), else None. A forged or foreign stamp is simply not one."""
    value = (headers or {}).get(PEER_HEADER)
    if not value or " " not in value:
        return None
    host, signature = value.rsplit(" ", 1)
    return host if hmac.compare_digest(signature, _sign(host)) else None


def is_mcp_path(path: str) -> bool:
    """True for Gradio's MCP routes (streamable HTTP, SSE and its message posts, the schema)."""
    return "/gradio_api/mcp" in path


class McpPeer:
    """ASGI middleware: every request to the MCP routes gets the stamp of the address the server
    saw (after its own proxy-header rules), and loses any header that names another."""

    def __init__(self, app: Callable, trusted_proxies: int = 0):
        self.app = app
        self.trusted_proxies = trusted_proxies  # behind a Space's proxy: the address it saw, as for the page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_mcp_path(scope.get("path", "")):
            client = scope.get("client") or ("unknown", 0)
            raw = scope.get("headers", [])
            forwarded = b",".join(v for k, v in raw if k.lower() == b"x-forwarded-for").decode("latin-1") or None
            address = client_address(forwarded, str(client[0]), self.trusted_proxies) or "unknown"
            headers = [(k, v) for k, v in raw if k.lower() not in _FORWARDING]
            headers.append((PEER_HEADER.encode(), stamp(address).encode("latin-1")))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


# --- what a tool call returns ---------------------------------------------------------------------
def _is_file(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("meta"), dict) \
        and value["meta"].get("_type") == "gradio.FileData"


def _is_gallery(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, dict) and "image" in v for v in value) \
        and bool(value)


def _outputs(data: Any) -> list[Any]:
    """The endpoint's outputs, one per output component. Gradio's bridge hands them over as a
    list, or (without a progress token) as a list holding the client's tuple of them."""
    if isinstance(data, (list, tuple)) and len(data) == 1 and isinstance(data[0], (list, tuple)) \
            and not _is_gallery(data[0]):
        return list(data[0])
    return list(data) if isinstance(data, (list, tuple)) else [data]


def _image_bytes(path: str) -> tuple[bytes, str] | None:
    """The file's bytes and MIME type, if it is an image the server can read."""
    mime = mimetypes.guess_type(path)[0] or ""
    if not mime.startswith("image/"):
        return None
    try:
        return Path(path).read_bytes(), mime
    except OSError:
        return None


def content_items(data: Any) -> Iterator[tuple[str, str, str]]:
    """``(kind, payload, mime)`` for each piece of a tool call's outputs, in order: ``("image",
    base64, mime)`` and ``("text", line, "")``. Pure data, so it is testable without ``mcp``."""
    for value in _outputs(data):
        if _is_gallery(value):
            for item in value:
                image, caption = item.get("image") or {}, item.get("caption") or ""
                found = _image_bytes(str(image.get("path") or ""))
                if found:
                    yield "image", base64.b64encode(found[0]).decode("ascii"), found[1]
                url = image.get("url") or ""
                yield "text", " · ".join(p for p in (caption, url) if p), ""
        elif _is_file(value):
            yield "text", str(value.get("url") or value.get("orig_name") or ""), ""
        elif isinstance(value, (list, tuple)):
            continue  # the before/after view: the caller's input and the first result again
        elif isinstance(value, str) and value:
            yield "text", value, ""
        elif value is not None and not isinstance(value, (str, dict)):
            yield "text", str(value), ""


def tool_content(server: Any, data: Any, root_url: str) -> list[Any]:
    """MCP content for a tool call's outputs (replaces Gradio's ``postprocess_output_data``)."""
    from gradio import processing_utils

    data = processing_utils.add_root_url(data, root_url, None)  # file URLs the agent can fetch
    types = server.types
    return [types.ImageContent(type="image", data=payload, mimeType=mime) if kind == "image"
            else types.TextContent(type="text", text=payload) for kind, payload, mime in content_items(data)]


def install(app: Any) -> bool:
    """Give the launched app's MCP server (if it has one) this module's tool output; False when
    there is none or Gradio's internals are not the ones this was written for (logged: the tools
    still work, with Gradio's own rendering)."""
    blocks = app.get_blocks() if hasattr(app, "get_blocks") else None
    server = getattr(blocks, "mcp_server_obj", None)
    if server is None:
        return False
    if not callable(getattr(server, "postprocess_output_data", None)) or not hasattr(server, "types"):
        log.warning("MCP tool output not installed: Gradio's MCP server changed")
        return False
    server.postprocess_output_data = lambda data, root_url: tool_content(server, data, root_url)
    return True


@contextlib.asynccontextmanager
async def mcp_lifespan(app: Any) -> AsyncIterator[None]:
    """Part of the app's lifespan: install at start-up, before any request is served."""
    install(app)
    yield
