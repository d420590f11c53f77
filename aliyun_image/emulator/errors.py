"""The one error the emulated services raise: :class:`ServiceError`.

DashScope endpoints and the emulated OSS refuse requests the same way (an HTTP status, a
code, a message); only the body format differs, and the endpoint that catches the error
picks it (JSON via :func:`.replies.error_reply`, XML via :func:`.replies.oss_error_reply`).
This module imports nothing from the emulator, so any module may raise it.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error reply to send: HTTP ``status``, service ``code`` and ``message``.

    ``headers`` are extra HTTP headers (e.g. ``Retry-After``); ``extra`` are extra fields of
    OSS's XML error document (e.g. ``OSSAccessKeyId``), ignored by JSON replies.
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 extra: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}
