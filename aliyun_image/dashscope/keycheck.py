"""Which region is this key for? One free request per region, all at once.

A key works only in its own region; a call elsewhere fails authentication. Fetching a task
that does not exist (``GET {base}/tasks/{random-uuid}``) costs nothing and generates nothing:
in the key's region it answers 200 with ``task_status: UNKNOWN``, elsewhere 401
``InvalidApiKey``. :func:`probe_regions` sends that request to every region concurrently through
the house client (its timeouts, retries and typed errors) and says, for each region, whether
the key is valid there, how long the answer took and which catalogue models the region offers.

The key is only ever put in the ``Authorization`` header: no result, message or log line
carries it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import catalog
from .client import DashScopeClient
from ..config import REGIONS, Settings
from ..errors import AliyunImageError, ApiError, NetworkError, region_name, scrub
from ..i18n import render, t

VALID = "valid"  #: the key is accepted in this region
INVALID = "invalid"  #: the region refused the key (401 / InvalidApiKey)
UNREACHABLE = "unreachable"  #: no answer: DNS, refused, timeout, TLS
ERROR = "error"  #: an answer that says neither (a 5xx after retries, a reply we cannot read)

DEFAULT_TIMEOUT = 5.0  # seconds per attempt; a region that answers at all does so well within it
DEFAULT_RETRIES = 1  # one retry for a hiccup, so the whole check still ends within seconds


@dataclass(frozen=True)
class RegionResult:
    """The key check's outcome in one region."""

    region: str  # beijing, singapore, us (or the name given in ``bases``)
    base_url: str
    status: str  # VALID, INVALID, UNREACHABLE or ERROR
    latency_ms: int | None  # None when no answer came
    models: tuple[str, ...]  # catalogue models this region offers (snapshots left out)
    code: str = ""  # the error code when not valid (InvalidApiKey, Network.dns...)
    error: AliyunImageError | None = field(default=None, compare=False, repr=False)  # why not valid

    @property
    def valid(self) -> bool:
        """True when the key is accepted here."""
        return self.status == VALID

    def label(self, lang: str = "en") -> str:
        """The region's name for people in ``lang``: ``Singapore``."""
        return render(lang, region_name(self.region))

    def detail(self, lang: str = "en") -> str:
        """Why the key is not valid here, in ``lang`` (empty when it is)."""
        if self.status == INVALID:
            # The house message for a refused key tells to check the key; here a refusal is the
            # expected answer of every region but one, so say just that.
            return t(lang, "error.key_refused_here", region=region_name(self.region), code=self.code)
        return scrub(self.error.text(lang)) if self.error is not None else ""

    def to_dict(self) -> dict:
        """Plain data for JSON output; ``detail_zh`` and ``detail_en`` are the JSON fields of old."""
        return {"region": self.region, "base_url": self.base_url, "status": self.status,
                "latency_ms": self.latency_ms, "models": self.models, "code": self.code,
                "detail_zh": self.detail("zh"), "detail_en": self.detail("en")}


@dataclass(frozen=True)
class KeyCheck:
    """Per-region results of :func:`probe_regions`, in the order the regions were given."""

    results: tuple[RegionResult, ...]

    @property
    def region(self) -> str | None:
        """The region where the key is valid (the first, should there be several), or None."""
        return next((r.region for r in self.results if r.valid), None)

    @property
    def valid(self) -> bool:
        """True when the key is valid in some region."""
        return self.region is not None

    def to_dict(self) -> dict:
        """Plain data for JSON output (holds no key)."""
        return {"region": self.region, "valid": self.valid, "results": [r.to_dict() for r in self.results]}


def default_bases() -> dict[str, str]:
    """Every region's public base URL: ``{"beijing": "https://dashscope.aliyuncs.com/api/v1", ...}``."""
    return dict(REGIONS)


def region_models(region: str) -> tuple[str, ...]:
    """Catalogue models offered in ``region``, text-to-image first, each once, no snapshots."""
    names: dict[str, None] = {}  # a dict keeps the catalogue's order and drops repeats
    for task in (catalog.T2I, catalog.EDIT):
        for m in catalog.models_for(task):
            if region in m.regions:
                names.setdefault(m.name)
    return tuple(names)


def _probe(key: str, region: str, base: str, settings: Settings) -> RegionResult:
    """One ``GET {base}/tasks/{random-uuid}`` with ``key``; never raises for a failed call."""
    models = region_models(region)
    client = DashScopeClient(settings)
    started = time.monotonic()
    try:
        # A fresh random id: it cannot name a real task, so the reply says only who the key is.
        client.get_task(key, str(uuid.uuid4()))
    except AliyunImageError as exc:
        elapsed = round((time.monotonic() - started) * 1000)
        if isinstance(exc, ApiError) and (exc.status == 401 or exc.code.startswith("InvalidApiKey")):
            return RegionResult(region, base, INVALID, elapsed, models, exc.code)
        status = UNREACHABLE if isinstance(exc, NetworkError) else ERROR
        # A copy without the traceback: the result outlives this thread's frames.
        return RegionResult(region, base, status, None if status == UNREACHABLE else elapsed, models, exc.code,
                            exc.replace())
    finally:
        client.close()
    elapsed = round((time.monotonic() - started) * 1000)
    return RegionResult(region, base, VALID, elapsed, models)


def _settings(region: str, base: str, timeout: float, retries: int, workspace: str | None) -> Settings:
    """Settings for one region's probe: short timeouts and backoff, so the check ends in seconds."""
    # The region is named even for a custom base (a proxy, an emulator), so messages name it.
    known = region if region in REGIONS else "beijing"
    return Settings(region=known, region_explicit=region in REGIONS, base_url=base.rstrip("/"),
                    connect_timeout=timeout, read_timeout=timeout,
                    max_retries=retries, backoff_base=0.25, backoff_max=1.0, retry_after_max=1.0,
                    workspace=workspace)


def probe_regions(key: str, bases: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT, *,
              retries: int = DEFAULT_RETRIES, workspace: str | None = None) -> KeyCheck:
    """Ask every region, concurrently, whether it accepts ``key``.

    ``bases`` maps region names to base URLs (default: :func:`default_bases`; tests point
    regions at emulators). ``timeout`` is the connect and read timeout of each attempt and
    ``retries`` the house client's retries on connection failures and 429/5xx. ``workspace``
    is sent as ``X-DashScope-WorkSpace`` when given. Raises ValidationError for settings that
    cannot work (a malformed base URL); a region that fails is reported, not raised.
    """
    regions = dict(bases) if bases is not None else default_bases()
    settings = {name: _settings(name, url, timeout, retries, workspace) for name, url in regions.items()}
    for s in settings.values():
        s.check()
    if not regions:
        return KeyCheck(())
    with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="keycheck") as pool:
        futures = [pool.submit(_probe, key, name, s.base_url, s) for name, s in settings.items()]
        return KeyCheck(tuple(f.result() for f in futures))
