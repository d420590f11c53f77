"""Reply values (:class:`HttpReply`) and the body formats the emulator speaks (DashScope JSON, OSS XML)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from .oss import error_xml

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml"


def new_request_id() -> str:
    """A DashScope-style request id (uuid4)."""
    return str(uuid.uuid4())


@dataclass
class HttpReply:
    """One HTTP reply, not yet sent. ``content_type`` None sends no Content-Type header."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # close the connection afterwards (body not fully read, etc.)


def json_reply(obj, status: int = 200, headers: dict[str, str] | None = None) -> HttpReply:
    """``obj`` as UTF-8 JSON (non-ASCII kept raw, like the service)."""
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return HttpReply(status, body, JSON_TYPE, dict(headers or {}))


def error_reply(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                request_id: str | None = None) -> HttpReply:
    """DashScope's error body: ``{"request_id", "code", "message"}`` with the HTTP status."""
    rid = request_id or new_request_id()
    return json_reply({"request_id": rid, "code": code, "message": message}, status, headers)


def oss_error_reply(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> HttpReply:
    """OSS's XML error document with the HTTP status (and ``x-oss-request-id``)."""
    rid = uuid.uuid4().hex[:24].upper()
    return HttpReply(status, error_xml(code, message, rid, extra), XML_TYPE, {"x-oss-request-id": rid})
