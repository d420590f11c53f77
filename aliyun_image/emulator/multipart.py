"""A small, strict ``multipart/form-data`` parser (RFC 7578) for the emulated OSS upload.

The stdlib ``cgi`` module is deprecated and ``email`` rewrites binary payloads, so the body
is split on the boundary directly; only header *parameters* (``name``, ``filename``, with
RFC 2231 and quoting handled) go through :mod:`email.message`. Field order is preserved,
because the OSS POST protocol cares about it (``file`` must come last).
"""

from __future__ import annotations

import email.message
from dataclasses import dataclass


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass
class Part:
    """One form field. ``filename`` is None for plain fields; ``data`` is the raw value."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        """The value decoded as UTF-8 (invalid bytes replaced)."""
        return self.data.decode("utf-8", "replace")


def boundary_of(content_type: str) -> str | None:
    """The ``boundary`` parameter of a ``multipart/form-data`` Content-Type, or None."""
    msg = email.message.Message()
    msg["content-type"] = content_type or ""
    if msg.get_content_type() != "multipart/form-data":
        return None
    b = msg.get_param("boundary")
    return b if isinstance(b, str) and 0 < len(b) <= 200 else None


def _headers(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise MultipartError("malformed part header")
        # Browsers and urllib3 send raw UTF-8 file names; keep them readable.
        out[name.decode("latin-1").strip().lower()] = value.decode("utf-8", "replace").strip()
    return out


def parse(body: bytes, content_type: str) -> list[Part]:
    """Split ``body`` into its parts, in order. Raises :class:`MultipartError` when malformed."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise MultipartError("Content-Type is not multipart/form-data with a boundary")
    delim = b"--" + boundary.encode("latin-1", "replace")
    pos = body.find(delim)
    if pos < 0:
        raise MultipartError("boundary not found in body")
    parts: list[Part] = []
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":  # close delimiter
            return parts
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):  # only transport padding may follow
            raise MultipartError("malformed boundary line")
        start = eol + 2
        end = body.find(b"\r\n" + delim, start)
        if end < 0:
            raise MultipartError("part is not terminated")
        chunk = body[start:end]
        if chunk.startswith(b"\r\n"):
            head, data = b"", chunk[2:]
        else:
            split = chunk.find(b"\r\n\r\n")
            if split < 0:
                raise MultipartError("part has no header terminator")
            head, data = chunk[:split], chunk[split + 4:]
        headers = _headers(head)
        disp = email.message.Message()
        disp["content-disposition"] = headers.get("content-disposition", "")
        name = disp.get_param("name", header="content-disposition")
        if disp.get_content_disposition() != "form-data" or not isinstance(name, str):
            raise MultipartError("part without Content-Disposition: form-data; name=...")
        filename = disp.get_filename()
        parts.append(Part(name, data, filename, headers.get("content-type")))
        pos = end + 2
