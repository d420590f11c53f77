"""What the emulator received: :class:`Recorded` requests, and their redacted JSON form."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass


@dataclass(repr=False)
class Recorded:
    """One request as it arrived on the wire.

    ``headers`` has lower-cased names and, in process only, the real ``authorization`` value
    (tests assert on it); :meth:`public` redacts it. ``query`` keeps the last value of each
    name.

    ``form`` is set for the OSS multipart POST only (None elsewhere or when unparseable)::

        {"fields": [("OSSAccessKeyId", "LTAI..."), ..., ("file", "cat.png")],   # wire order
         "files": {"file": {"filename": "cat.png", "content_type": None, "data": b"..."}}}

    Plain fields appear in ``fields`` with their text value; a file field appears there with
    its file name (``""`` if none was sent) and its bytes are in ``files``.

    ``order`` is what the emulator made of a valid generation or task-create request, with the
    model's defaults applied (``model``, ``task``, ``size``, ``n``, ``prompt_extend``,
    ``negative_prompt``, ``watermark``), so a test can see a default the reply does not show.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    endpoint: str
    form: dict | None = None
    latency: float = 0.0  # the emulator's added delay for this request (generation, task create)
    order: dict | None = None
    throttled: bool = False  # refused with 429 by the emulator's task_limit (not carried out)

    @property
    def json(self):
        """The body parsed as JSON, or None when empty or not JSON."""
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None

    def __repr__(self) -> str:
        # Redacted: a failing test prints reprs, and the key must not reach logs.
        headers = _redact(self.headers)
        body = self.body[:80] + (b"..." if len(self.body) > 80 else b"")
        return (f"Recorded({self.method} {self.path} endpoint={self.endpoint!r} query={self.query!r} "
                f"headers={headers!r} body={body!r})")

    def public(self) -> dict:
        """A JSON-safe copy with the API key redacted (what ``GET /_emulator/requests`` shows)."""
        headers = _redact(self.headers)
        out = {"method": self.method, "path": self.path, "query": self.query, "headers": headers,
               "endpoint": self.endpoint, **_body_fields(self.body)}
        if self.order is not None:
            out["order"] = self.order
        if self.throttled:
            out["throttled"] = True
        if self.form is not None:
            out["form"] = {
                "fields": [list(pair) for pair in self.form["fields"]],
                "files": {name: {"filename": f["filename"], "content_type": f["content_type"],
                                 "size": len(f["data"]),
                                 "data_base64": base64.b64encode(f["data"]).decode()}
                          for name, f in self.form["files"].items()},
            }
        return out


def _redact(headers: dict[str, str]) -> dict[str, str]:
    out = dict(headers)
    if "authorization" in out:
        out["authorization"] = "Bearer ***" if out["authorization"].lower().startswith("bearer") else "***"
    return out


def _body_fields(body: bytes) -> dict:
    try:
        return {"body": body.decode("utf-8"), "body_base64": None}
    except UnicodeDecodeError:
        return {"body": None, "body_base64": base64.b64encode(body).decode()}
