"""Which platform and region is this key for? One free request per place, all at once.

A key works only in its own region of its own platform (Alibaba Cloud Model Studio, the Qianwen
AI platform, QwenCloud: each has keys of its own); a call elsewhere fails authentication. Fetching a task
that does not exist (``GET {base}/tasks/{random-uuid}``) costs nothing and generates nothing:
in the key's region it answers 200 with ``task_status: UNKNOWN``, elsewhere 401
``InvalidApiKey``. :func:`probe_places` sends that request to every place concurrently through
the house client (its timeouts, retries and typed errors) and says, for each place, whether
the key is valid there, how long the answer took and which catalogue models the place offers.
:func:`places` says where to ask: the configured base URL first (a workspace host, a gateway,
the emulator), then the others. What it finds is returned to the caller, never kept: the region
of one visitor's key is no one else's.

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
from ..config import (PLATFORMS, REGIONS, WORKSPACE_REGIONS, Settings, Transport, place_name, platform_name,
                      platform_of, workspace_url)
from ..errors import AliyunImageError, ApiError, NetworkError, region_name, scrub
from ..i18n import Message, msg, render, t

VALID = "valid"  #: the key is accepted in this region
INVALID = "invalid"  #: the region refused the key (401 / InvalidApiKey)
UNREACHABLE = "unreachable"  #: no answer: DNS, refused, timeout, TLS
ERROR = "error"  #: an answer that says neither (a 5xx after retries, a reply we cannot read)

DEFAULT_TIMEOUT = 5.0  # seconds per attempt; a region that answers at all does so well within it
DEFAULT_RETRIES = 1  # one retry for a hiccup, so the whole check still ends within seconds
CONFIGURED = "configured"  #: the name of a configured base URL whose host tells no place (gateway, emulator)


@dataclass(frozen=True)
class RegionResult:
    """The key check's outcome in one place (a region, a platform, or the configured base URL)."""

    region: str  # beijing, singapore, us, eu-central-1, qianwen... or CONFIGURED (the name given in ``bases``)
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

    @property
    def platform(self) -> str:
        """The platform of this place (BAILIAN, ``qianwen``, ``qwencloud``); ``""`` for a configured
        base URL that tells none."""
        return "" if self.region == CONFIGURED else platform_of(self.region)

    def name(self) -> Message | str:
        """This place for messages: the region's (or platform's) name, or the configured base URL."""
        return self.base_url if self.region == CONFIGURED else region_name(self.region)

    def label(self, lang: str = "en") -> str:
        """The place's name for people in ``lang``: ``Singapore``, ``QwenCloud`` or the base URL."""
        return render(lang, self.name())

    def detail(self, lang: str = "en") -> str:
        """Why the key is not valid here, in ``lang`` (empty when it is)."""
        if self.status == INVALID:
            # The house message for a refused key tells to check the key; here a refusal is the
            # expected answer of every region but one, so say just that.
            return t(lang, "error.key_refused_here", region=self.name(), code=self.code)
        return scrub(self.error.text(lang)) if self.error is not None else ""

    def to_dict(self) -> dict:
        """Plain data for JSON output; ``detail_zh`` and ``detail_en`` are the JSON fields of old."""
        return {"region": self.region, "platform": self.platform, "base_url": self.base_url, "status": self.status,
                "latency_ms": self.latency_ms, "models": self.models, "code": self.code,
                "detail_zh": self.detail("zh"), "detail_en": self.detail("en")}


@dataclass(frozen=True)
class KeyCheck:
    """Per-region results of :func:`probe_places`, in the order the regions were given."""

    results: tuple[RegionResult, ...]

    @property
    def region(self) -> str | None:
        """The place (region or platform id) where the key is valid (the first, should there be
        several), or None; a configured base URL that tells no place does not name one."""
        return next((r.region for r in self.results if r.valid and r.region != CONFIGURED), None)

    @property
    def platform(self) -> str | None:
        """The platform of :attr:`region`, or None."""
        return None if self.region is None else platform_of(self.region)

    @property
    def valid(self) -> bool:
        """True when the key is valid somewhere (a place, or the configured base URL)."""
        return any(r.valid for r in self.results)

    def get(self, name: str) -> RegionResult | None:
        """The result for the place ``name`` (as given in ``bases``), or None when it was not asked."""
        return next((r for r in self.results if r.region == name), None)

    def to_dict(self) -> dict:
        """Plain data for JSON output (holds no key)."""
        return {"region": self.region, "platform": self.platform, "valid": self.valid,
                "results": [r.to_dict() for r in self.results]}


@dataclass(frozen=True)
class Places:
    """Where a key check asks: base URLs by place name, the configured one first."""

    bases: dict[str, str]
    configured: str  # the settings' place (a region or platform id, or CONFIGURED); may be absent from bases


def default_bases(workspace: str | None = None) -> dict[str, str]:
    """Every place with a public base URL: ``{"beijing": "https://dashscope.aliyuncs.com/api/v1", ...,
    "qianwen": ..., "qwencloud": ...}``; with a ``workspace`` id, also the workspace hosts of the
    regions only those reach (``https://{ws}.eu-central-1.maas.aliyuncs.com/api/v1``...)."""
    bases = {**REGIONS, **PLATFORMS}
    for region in WORKSPACE_REGIONS:
        url = workspace_url(workspace or "", region)
        if url:
            bases[region] = url
    return bases


def places(settings: Settings, overrides: Mapping[str, str] | None = None, *, others: bool = True) -> Places:
    """Where to ask about a key for ``settings``: its base URL first, then (with ``others``) every
    other place of :func:`default_bases`, or only those of ``overrides`` when given.

    ``overrides`` maps place names to base URLs (``--region-base``: a proxy, an emulator in tests);
    it also replaces the configured place's URL when that host is a known one (a public region, a
    workspace host, a platform), so nothing goes to the real service then. A base URL whose host
    tells no place (a gateway, the emulator) is asked as it is, named after the region asked for,
    else :data:`CONFIGURED`.
    """
    bases: dict[str, str] = {}
    if settings.is_custom_base:
        configured = settings.region if settings.region_explicit else CONFIGURED
        bases[configured] = settings.base_url
    else:
        configured = settings.region
        url = settings.base_url if overrides is None else overrides.get(configured)
        if url:
            bases[configured] = url
    if others:
        for name, url in (default_bases(settings.workspace) if overrides is None else overrides).items():
            bases.setdefault(name, url)
    return Places(bases, configured)


def key_hint(key: str) -> Message | None:
    """What the key's prefix suggests (``sk-sp-``: a Token Plan key; ``sk-ws-``: a workspace or
    Qianwen AI platform key), or None. A hint only: the probe decides."""
    lowered = (key or "").strip().lower()
    if lowered.startswith("sk-sp-"):
        return msg("platform.hint_token_plan")
    if lowered.startswith("sk-ws-"):
        return msg("platform.hint_workspace")
    return None


def how_to_reach(found: RegionResult, workspace: str | None = None) -> Message:
    """How to point the settings at the place ``found``: ``--region singapore`` for a public
    region, else its base URL (the platform's, or the workspace host's when the workspace is known)."""
    if found.region in REGIONS:
        return msg("platform.how_region", region=found.region, base=REGIONS[found.region])
    base = PLATFORMS.get(found.region) or workspace_url(workspace or "", found.region) or found.base_url
    return msg("platform.how_base", base=base)


def verdict(result: KeyCheck, configured: str, workspace: str | None = None) -> list[Message]:
    """What the check found, as sentences for people: where the key belongs (platform and region),
    and, when the settings point elsewhere, which place to use instead, naming the platform when
    the key is another platform's. Empty when nothing accepted the key (the caller says why)."""
    cfg = result.get(configured)
    found = next((r for r in result.results if r.valid and r.region != CONFIGURED), None)
    lines: list[Message] = []
    if cfg is not None and cfg.valid and configured == CONFIGURED:
        lines.append(msg("platform.works_at", base=cfg.base_url))
        lines.append(msg("platform.also_place", place=place_name(found.region)) if found is not None
                     else msg("platform.place_untold"))
        return lines
    if cfg is not None and cfg.valid:
        return [msg("platform.belongs", place=place_name(configured))]
    if found is None:
        return lines
    lines.append(msg("platform.belongs", place=place_name(found.region)))
    if configured == found.region:
        return lines
    how = how_to_reach(found, workspace)
    if configured == CONFIGURED:
        if cfg is not None and cfg.status == INVALID:
            lines.append(msg("platform.configured_refuses", base=cfg.base_url, how=how))
        return lines
    if platform_of(configured) != found.platform:
        lines.append(msg("platform.wrong_platform", platform=platform_name(found.platform),
                         configured=platform_name(platform_of(configured)), how=how))
    else:
        lines.append(msg("platform.wrong_region", region=region_name(configured), how=how))
    return lines


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
    # The place is named even for a custom base (a proxy, an emulator), so messages name it; a
    # configured base URL that tells none is named by its URL (region_text), never as Beijing.
    named = region != CONFIGURED
    transport = Transport(connect_timeout=timeout, read_timeout=timeout,
                          max_retries=retries, backoff_base=0.25, backoff_max=1.0, retry_after_max=1.0)
    return Settings(region=region if named else "beijing", region_explicit=named, base_url=base.rstrip("/"),
                    workspace=workspace, transport=transport)


def probe_places(key: str, bases: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT, *,
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
