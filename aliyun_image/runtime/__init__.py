"""The composition root shared by the CLI and the web app: which service a call goes to (own key, host key,
offline demo), the offline backend and the hosted quotas, built in one place.
"""

from __future__ import annotations

from .backends import backend_settings
from .context import AppContext, AppOptions, Route, Visitor, gradio_upload_dir
from .run_slots import RunKind, RunSlot, RunSlots

__all__ = [
    "AppContext",
    "AppOptions",
    "Route",
    "RunKind",
    "RunSlot",
    "RunSlots",
    "Visitor",
    "backend_settings",
    "gradio_upload_dir",
]
