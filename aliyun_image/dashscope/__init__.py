"""The remote service: the DashScope wire format (:mod:`.protocol`), the HTTP client (the only code that
speaks to DashScope), input images on the wire (:mod:`.uploads`), the account-limit scheduler and the key check.
"""

from __future__ import annotations

from .client import DashScopeClient
from .keycheck import KeyCheck
from .protocol import Generation, url_expiry
from .scheduler import Scheduler, queued_text
from .uploads import image_refs

__all__ = [
    "DashScopeClient",
    "Generation",
    "KeyCheck",
    "Scheduler",
    "image_refs",
    "queued_text",
    "url_expiry",
]
