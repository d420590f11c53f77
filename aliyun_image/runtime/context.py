"""What the running app knows: settings, services, the store, the mode, and how to route a call.

Routing a call (:meth:`AppContext.route`), in order:

1. ``--offline``: everything goes to the in-process emulator.
2. The visitor typed a key: the real API with *their* key (not limited here).
3. The host configured ``DASHSCOPE_API_KEY``: the real API with the host's key; in hosted mode
   within the hourly limits of :class:`~aliyun_image.money.quota.HourlyQuota`.
4. No key anywhere: the offline demo on the in-process emulator (in hosted mode within its own
   hourly limits: stand-in images cost the host disk and CPU).

Keys are never stored here: a visitor's key arrives with each call (in a request header, never
as a component value) and leaves with it.

In hosted mode each visitor is an *owner*: their results are reachable only through the
:class:`~aliyun_image.storage.gallery.Gallery` of that owner. Who the owner is (:meth:`AppContext.owner_of`):

- a visitor with the app's cookie (set on the page load, see ``ui/http_guard.py``): an id derived
  from the cookie with a server secret, so a reload, another tab or a restart keeps the gallery,
  kept inputs, trash, spend and hourly quota, and the database never holds the cookie itself;
- without the cookie, the page session (Gradio's session hash), as before: a client such as
  ``gradio_client`` keeps one gallery per ``Client``;
- a call with neither gets an owner of its own that nobody else can name.

Owners of both kinds are derived under different labels, so a session hash can never name a
cookie's owner. Runs and results are found by owner (:meth:`AppContext.owner_of`), which is what
lets a later "runs that outlive the page" find a visitor's runs after a reload.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .backends import OfflineBackend
from .run_slots import RunKind, RunSlot, RunSlots
from ..config import ENV_VISITOR_SECRET, OFFLINE_KEY, Settings
from ..enums import Payer
from ..money import HourlyQuota, Payers, payer_id
from ..generation import ImageService
from ..storage import Gallery
from ..storage import ResultStore
from ..storage import Trash
from ..storage import expire_batches

if TYPE_CHECKING:
    from ..emulator import Emulator

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
    demo_session_limit: int = 20  # offline-demo images per visitor per hour (hosted mode)
    demo_total_limit: int = 200  # offline-demo images per hour for the whole demo (hosted mode)
    max_upload_mb: float = 20.0  # hosted: biggest upload accepted (the API takes 10 MB per image)
    disk_budget_mb: float = 2048.0  # hosted: results beyond this are deleted, oldest first
    max_sessions: int = 1000  # hosted: browser sessions whose state Gradio keeps (15-75 KiB each, ui/sessions.py)
    retry_interval: float = 120.0  # seconds between retries of paid results not yet saved
    settings_overrides: dict = field(default_factory=dict)


@dataclass
class Route:
    """Where one call goes: which service, with which key, and why."""

    service: ImageService
    key: str
    kind: Payer  # OWN | HOST | OFFLINE


@dataclass(frozen=True)
class Visitor:
    """Who is calling, as far as the request tells: the app's visitor cookie (``token``, checked
    well-formed, never stored), the page session (``session``) and the client ``address``."""

    token: str | None = None
    session: str | None = None
    address: str | None = None


SECRET_FILE = ".visitor-secret"  # in the data dir: owners stay the same across restarts


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
        self.store = ResultStore.open(self.settings.data_dir, fsync=self.settings.fsync, show_paths=not opts.hosted)
        # Downloads a stop cut short, as found at start-up (before housekeeping finishes them): the page
        # tells each owner what became of theirs (saved, or expired: never requested again).
        self.pending_at_start: tuple[tuple[int, str | None], ...] = tuple(
            (r.id, r.owner) for r in self.store.pending())
        self.offline: OfflineBackend | None = None
        self.offline_service: ImageService | None = None
        if opts.offline or not self.host_key:
            self.offline = OfflineBackend()
            self.offline_service = ImageService(self.offline.settings(self.settings), store=self.store)
        self.live_service = ImageService(self.settings, store=self.store)
        share = self.settings.hosting.address_share
        self.quota = HourlyQuota(opts.session_limit, opts.total_limit, kind=Payer.HOST, address_share=share)
        self.demo_quota = HourlyQuota(opts.demo_session_limit, opts.demo_total_limit, kind=Payer.OFFLINE,
                                      address_share=share)
        hosting = self.settings.hosting
        # Runs and batches going at once, per visitor and per address (hosted), batches in all.
        self.run_slots = RunSlots(hosted=opts.hosted, per_visitor=hosting.runs_per_visitor,
                                  per_address=hosting.runs_per_address,
                                  batches=self.settings.concurrency.batch_max_running)
        self._secret = _visitor_secret(Path(self.settings.data_dir)) if opts.hosted else b""
        self._stopping = threading.Event()
        self._housekeeping = threading.Lock()
        self._pruning = threading.Lock()
        self._zips = Path(tempfile.mkdtemp(prefix="aliyun-image-zips-"))

    @classmethod
    def start(cls, opts: AppOptions) -> AppContext:
        """Build the context and start the background housekeeping: finish downloads that a
        crash or a full disk cut short, now and every ``retry_interval`` seconds (result URLs
        live 24 h), and keep hosted results within the disk budget."""
        ctx = cls(opts)
        threading.Thread(target=ctx._housekeeping_loop, daemon=True, name="aliyun-image-housekeeping").start()
        return ctx

    def _housekeeping_loop(self) -> None:
        while True:
            self.housekeeping()
            if self._stopping.wait(max(1.0, self.opts.retry_interval)):
                return

    def housekeeping(self) -> None:
        """One round: save pending paid results that can be saved now; enforce the disk budget;
        expire the trash and (hosted) old batches."""
        with self._housekeeping:
            self.enforce_disk_budget()
            self.tidy_trash()
            self.forget_old_batches()
            for svc in {id(s): s for s in (self.live_service, self.offline_service) if s is not None}.values():
                try:
                    got = svc.resume_pending()
                    if got:
                        log.info("saved %d pending result(s)", len(got))
                except Exception:  # housekeeping must never take the app down
                    log.warning("saving pending results failed", exc_info=True)

    def enforce_disk_budget(self) -> None:
        """Hosted mode: delete the oldest results beyond the disk budget (they are ephemeral)."""
        if not self.opts.hosted or self.opts.disk_budget_mb <= 0:
            return
        try:
            budget = int(self.opts.disk_budget_mb * (1 << 20))
            with self._pruning:  # runs that end together must not each delete the same excess
                removed = Trash(self.store).make_room(budget) + self.store.prune(budget)
            if removed:
                log.info("disk budget: deleted %d oldest result(s)", removed)
                Trash(self.store).inputs.collect(self.store)  # and the inputs only they used
        except Exception:
            log.warning("enforcing the disk budget failed", exc_info=True)

    def tidy_trash(self) -> None:
        """Empty what has been in the trash too long (30 days; a day when hosted)."""
        try:
            Trash(self.store).expire(hosted=self.opts.hosted)
        except Exception:  # housekeeping must never take the app down
            log.warning("emptying the trash failed", exc_info=True)

    def forget_old_batches(self) -> int:
        """Hosted: delete the batches (and their units) nobody touched for as long as a visitor is
        kept (``ALIYUN_IMAGE_VISITOR_DAYS``: their cookie, the only way back to them, is gone by then;
        a caller with neither cookie nor session could never reach theirs again). Locally: keep."""
        if not self.opts.hosted:
            return 0
        try:
            days = self.settings.hosting.visitor_days
            return expire_batches(self.store.root, days * 86400.0, show_paths=self.store.show_paths)
        except Exception:  # housekeeping must never take the app down
            log.warning("forgetting old batches failed", exc_info=True)
            return 0

    def zip_path(self, name: str, ids: list[int]) -> Path:
        """Where to write the zip of results ``ids``. The same results always get the same path
        (and so the same bytes and name), so asking again rewrites one file and Gradio's
        content-addressed cache keeps one copy: a repeated request cannot pile zips up on the disk.
        Zips older than ten minutes are deleted first: Gradio has copied each into its cache by then."""
        cutoff = time.time() - 600
        for old in self._zips.glob("*"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
        key = hashlib.sha256(",".join(map(str, sorted(set(ids)))).encode()).hexdigest()[:20]
        return self._zips / key / name

    def quota_for(self, route: Route) -> HourlyQuota | None:
        """The hourly budget a call on ``route`` draws from, if any (hosted mode only)."""
        if not self.opts.hosted:
            return None
        return {Payer.HOST: self.quota, Payer.OFFLINE: self.demo_quota}.get(route.kind)

    @property
    def emulator(self) -> Emulator | None:
        """The in-process emulator serving offline calls, if this app has one."""
        return self.offline.emulator if self.offline is not None else None

    @property
    def offline_only(self) -> bool:
        """True when every call without a visitor key lands on the emulator."""
        return self.opts.offline or not self.host_key

    def route(self, visitor_key: str | None) -> Route:
        """Pick service and key for one call (see the module docstring for the order)."""
        key = (visitor_key or "").strip()
        if self.opts.offline:
            assert self.offline_service is not None
            return Route(self.offline_service, key or OFFLINE_KEY, Payer.OFFLINE)
        if key:
            return Route(self.live_service, key, Payer.OWN)
        if self.host_key:
            return Route(self.live_service, self.host_key, Payer.HOST)
        assert self.offline_service is not None
        return Route(self.offline_service, OFFLINE_KEY, Payer.OFFLINE)

    def owner(self, session_hash: str | None) -> str | None:
        """The store owner for a page session without the visitor cookie (see :meth:`owner_of`)."""
        return self.owner_of(Visitor(session=session_hash))

    def owner_of(self, visitor: Visitor) -> str | None:
        """The store owner of ``visitor``: None locally (one shared gallery); in hosted mode an
        opaque id from their cookie, else from their page session, else a fresh random one (its
        results come back in the reply, and no other caller, nor a later call, can reach them)."""
        if not self.opts.hosted:
            return None
        stable = self.stable_owner(visitor)
        return stable if stable is not None else "call-" + secrets.token_hex(10)

    def stable_owner(self, visitor: Visitor) -> str | None:
        """The owner ``visitor`` keeps from call to call (cookie, else session), None without either."""
        if visitor.token:
            # Keyed with the server's secret: the database holds no value a cookie could be made from.
            return hmac.new(self._secret, f"visitor:{visitor.token}".encode(), hashlib.sha256).hexdigest()[:24]
        if visitor.session:
            raw = f"aliyun-image-owner:{visitor.session}"
            return hashlib.sha256(raw.encode()).hexdigest()[:24]
        return None

    def payers(self, visitor: Visitor) -> Payers:
        """Whom a run of ``visitor`` counts against in the hourly quotas: their stable owner (or
        their address without one) and their address."""
        return payer_id(self.stable_owner(visitor), visitor.address)

    def run_slot(self, visitor: Visitor, kind: RunKind = RunKind.RUN) -> RunSlot:
        """Hold a place for a run or batch of ``visitor`` (see :mod:`.run_slots`), or raise
        ValidationError when they (or their address) have as many going as they may."""
        return self.run_slots.take(self.payers(visitor), kind)

    def gallery(self, session_hash: str | None) -> Gallery:
        """The results a session may see and change (all of them locally, its own when hosted)."""
        return self.gallery_of(Visitor(session=session_hash))

    def gallery_of(self, visitor: Visitor) -> Gallery:
        """The results ``visitor`` may see and change (all locally, their own when hosted)."""
        return Gallery(self.store, self.owner_of(visitor))

    def close(self) -> None:
        """Stop housekeeping and the emulator, and close the store."""
        self._stopping.set()
        with self._housekeeping:
            pass  # wait for a round in progress
        shutil.rmtree(self._zips, ignore_errors=True)
        if self.offline is not None:
            self.offline.close()
        self.store.close()


def _visitor_secret(data_dir: Path) -> bytes:
    """The key that turns visitor cookies into owners: ``ALIYUN_IMAGE_VISITOR_SECRET``, else a
    random one kept in the data dir (readable by the app's user only), so that owners, and with
    them galleries, survive a restart exactly as long as the results do."""
    given = os.environ.get(ENV_VISITOR_SECRET, "").strip()
    if given:
        return given.encode()
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    made = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(made.hex())
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(path.read_text().strip())
    except OSError:  # a read-only data dir: owners last as long as this process
        log.warning("could not keep the visitor secret in the data dir; cookies end with this process")
    return made
