"""What the running app knows: settings, services, the store, the mode, and how to route a call.

Routing a call (:meth:`AppContext.route`), in order:

1. ``--offline``: everything goes to the in-process emulator.
2. The visitor typed a key: the real API with *their* key (not limited here).
3. The host configured ``DASHSCOPE_API_KEY``: the real API with the host's key; in hosted mode
   within the hourly limits of :class:`~aliyun_image.quota.HourlyQuota`.
4. No key anywhere: the offline demo on the in-process emulator.

Keys are never stored here: a visitor's key arrives with each call and leaves with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..config import OFFLINE_KEY, Settings
from ..quota import HourlyQuota
from ..service import ImageService
from ..store import ResultStore

log = logging.getLogger(__name__)


@dataclass
class AppOptions:
    """Start-up choices (flags and environment)."""

    hosted: bool = False
    offline: bool = False
    region: str | None = None
    base_url: str | None = None
    data_dir: str | None = None
    concurrency: int = 64
    session_limit: int = 10  # host-key images per visitor per hour (hosted mode)
    total_limit: int = 100  # host-key images per hour for the whole demo (hosted mode)
    settings_overrides: dict = field(default_factory=dict)


@dataclass
class Route:
    """Where one call goes: which service, with which key, and why."""

    service: ImageService
    key: str
    kind: str  # own | host | offline


def gradio_upload_dir() -> Path:
    """Where Gradio keeps uploads (hosted mode accepts local inputs only from there)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


class AppContext:
    """Services and policy for one running app. Create with :meth:`start`, stop with :meth:`close`."""

    def __init__(self, opts: AppOptions):
        self.opts = opts
        extra = dict(opts.settings_overrides)
        if opts.hosted:
            extra.update(hosted=True, input_dirs=(gradio_upload_dir(),))
        self.settings = Settings.from_env(region=opts.region, base_url=opts.base_url, data_dir=opts.data_dir, **extra)
        self.host_key = self.settings.api_key
        self.store = ResultStore.open(self.settings.data_dir, fsync=self.settings.fsync)
        self.emulator = None
        self.offline_service: ImageService | None = None
        if opts.offline or not self.host_key:
            from ..emulator import Emulator

            self.emulator = Emulator().start()
            off = self.settings.with_(base_url=self.emulator.base_url, api_key=OFFLINE_KEY)
            self.offline_service = ImageService(off, store=self.store)
        self.live_service = ImageService(self.settings, store=self.store)
        self.quota = HourlyQuota(opts.session_limit, opts.total_limit)

    @classmethod
    def start(cls, opts: AppOptions) -> AppContext:
        """Build the context and finish, in the background, downloads a crash cut short."""
        ctx = cls(opts)
        threading.Thread(target=ctx._resume, daemon=True, name="aliyun-image-resume").start()
        return ctx

    def _resume(self) -> None:
        try:
            got = self.live_service.resume_pending()
            if got:
                log.info("resumed %d interrupted download(s)", len(got))
        except Exception:  # noqa: BLE001 - start-up must not fail over an old download
            log.warning("resuming interrupted downloads failed", exc_info=True)

    @property
    def offline_only(self) -> bool:
        """True when every call without a visitor key lands on the emulator."""
        return self.opts.offline or not self.host_key

    def route(self, visitor_key: str | None) -> Route:
        """Pick service and key for one call (see the module docstring for the order)."""
        key = (visitor_key or "").strip()
        if self.opts.offline:
            assert self.offline_service is not None
            return Route(self.offline_service, key or OFFLINE_KEY, "offline")
        if key:
            return Route(self.live_service, key, "own")
        if self.host_key:
            return Route(self.live_service, self.host_key, "host")
        assert self.offline_service is not None
        return Route(self.offline_service, OFFLINE_KEY, "offline")

    def owner(self, session_hash: str | None) -> str | None:
        """The store owner for a browser session: None locally (one shared gallery), an opaque
        id derived from the session in hosted mode (each visitor sees only their own)."""
        if not self.opts.hosted:
            return None
        raw = f"aliyun-image-owner:{session_hash or 'anonymous'}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def close(self) -> None:
        """Stop the emulator and close the store."""
        if self.emulator is not None:
            self.emulator.stop()
        self.store.close()
