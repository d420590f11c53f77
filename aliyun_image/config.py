"""Settings: where to call, with which key, where results go, how patient to be.

Resolution order, for every field: explicit argument (CLI flag, UI choice) > environment
variable > default. Environment names follow the official SDK where one exists
(``DASHSCOPE_API_KEY``, ``DASHSCOPE_HTTP_BASE_URL``, ``DASHSCOPE_WORKSPACE_ID``, the key file
``DASHSCOPE_API_KEY_FILE_PATH`` or ``~/.dashscope/api_key``).

The region is told from the base URL's host name when it is one of DashScope's; for any other
host (the emulator, a proxy) it is the region asked for, or Beijing.

The API key is only ever *read* here (the key file too: it is never created or written). It is
held by the :class:`Settings` object in memory, hidden from ``repr`` and never written to
``os.environ``, a file or a log.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ValidationError, region_label
from .errors import region_name as region_name  # re-exported: money and catalog name regions
from .i18n import Message, msg, render

log = logging.getLogger(__name__)

# Each region's base URL; its name for people is the catalogue's ``error.region.<name>``
# (:func:`region_name`, kept in errors.py, which names regions in its own messages).
REGIONS: dict[str, str] = {
    "beijing": "https://dashscope.aliyuncs.com/api/v1",
    "singapore": "https://dashscope-intl.aliyuncs.com/api/v1",
    "us": "https://dashscope-us.aliyuncs.com/api/v1",
}
REGION_ALIASES = {"cn": "beijing", "cn-beijing": "beijing", "bj": "beijing", "intl": "singapore",
                  "sg": "singapore", "ap-southeast-1": "singapore", "us-east-1": "us"}
# Region hosts, and the cloud region ids of workspace domains ({ws}.{id}.maas.aliyuncs.com): three
# are one of REGIONS, the others (WORKSPACE_REGIONS) are regions of their own that only a workspace
# host reaches (models document 7.4). An id not listed here is kept as it is: a region of its own.
REGION_HOSTS = {urlsplit(url).hostname: name for name, url in REGIONS.items()}
WORKSPACE_REGIONS = ("eu-central-1", "ap-northeast-1", "cn-hongkong")
MAAS_REGIONS = {"cn-beijing": "beijing", "ap-southeast-1": "singapore", "us-east-1": "us",
                **{r: r for r in WORKSPACE_REGIONS}}
_MAAS_HOST = re.compile(r"^[a-z0-9-]+\.([a-z]{2}-[a-z0-9-]+)\.maas\.aliyuncs\.com$")
# Alibaba Cloud Model Studio (Bailian) serves every region above. Two newer platforms have keys of
# their own (a Bailian key does not work there, nor the reverse) and one base URL each; as a place
# to call they are a region of their own, named by the platform's id. Names: the message catalogue.
BAILIAN = "bailian"
PLATFORMS: dict[str, str] = {
    "qianwen": "https://maas.qianwenaiapi.com/api/v1",  # the Qianwen AI platform (China)
    "qwencloud": "https://maas.qwencloudapi.com/api/v1",  # QwenCloud (international)
}
PLATFORM_HOSTS = {urlsplit(url).hostname: name for name, url in PLATFORMS.items()}
PLACES = (*REGIONS, *WORKSPACE_REGIONS, *PLATFORMS)  # every place id a key may belong to

OFFLINE_KEY = "sk-offline-demo"  # the in-process emulator's key in offline mode; not a secret, not a real key
ENV_KEY = "DASHSCOPE_API_KEY"
ENV_BASE_URL = "DASHSCOPE_HTTP_BASE_URL"
ENV_WORKSPACE = "DASHSCOPE_WORKSPACE_ID"
ENV_KEY_FILE = "DASHSCOPE_API_KEY_FILE_PATH"
ENV_REGION = "ALIYUN_IMAGE_REGION"
ENV_DATA_DIR = "ALIYUN_IMAGE_DATA_DIR"
ENV_DOWNLOAD_HOSTS = "ALIYUN_IMAGE_DOWNLOAD_HOSTS"
ENV_UPLOAD = "ALIYUN_IMAGE_UPLOAD"
ENV_TIMEOUT = "ALIYUN_IMAGE_TIMEOUT"
ENV_RETRIES = "ALIYUN_IMAGE_RETRIES"
ENV_DAILY_BUDGET = "ALIYUN_IMAGE_DAILY_BUDGET"
ENV_MONTHLY_BUDGET = "ALIYUN_IMAGE_MONTHLY_BUDGET"
ENV_ALLOW_UNPRICED = "ALIYUN_IMAGE_ALLOW_UNPRICED"
ENV_HOST_HOURLY_BUDGET = "ALIYUN_IMAGE_HOST_HOURLY_BUDGET"
ENV_SESSION_HOURLY_BUDGET = "ALIYUN_IMAGE_SESSION_HOURLY_BUDGET"
ENV_TASK_LIMIT = "ALIYUN_IMAGE_TASK_LIMIT"
# The shared demo's visitors (Hosting): proxies in front of the app, the share of an address, the cookie.
ENV_TRUSTED_PROXIES = "ALIYUN_IMAGE_TRUSTED_PROXIES"
ENV_ADDRESS_SHARE = "ALIYUN_IMAGE_ADDRESS_SHARE"
ENV_VISITOR_DAYS = "ALIYUN_IMAGE_VISITOR_DAYS"
ENV_COOKIE_SAMESITE = "ALIYUN_IMAGE_COOKIE_SAMESITE"
ENV_VISITOR_SECRET = "ALIYUN_IMAGE_VISITOR_SECRET"
# Runs going at once (hosted: per visitor and per client address) and the Batch tab's sizes.
ENV_RUNS_PER_VISITOR = "ALIYUN_IMAGE_RUNS_PER_VISITOR"
ENV_RUNS_PER_ADDRESS = "ALIYUN_IMAGE_RUNS_PER_ADDRESS"
ENV_BATCH_MAX_ITEMS = "ALIYUN_IMAGE_BATCH_MAX_ITEMS"
ENV_BATCH_MAX_RUNNING = "ALIYUN_IMAGE_BATCH_MAX_RUNNING"
ENV_SPACE_ID = "SPACE_ID"  # set by Hugging Face Spaces
SPACE_STORAGE = Path("/data")  # where a Space's persistent storage is mounted, when it has some
SAMESITE = ("lax", "strict", "none")


def normalize_region(name: str) -> str:
    """``"SG"`` -> ``"singapore"``; raises ValidationError for unknown names."""
    key = (name or "").strip().lower()
    key = REGION_ALIASES.get(key, key)
    if key not in REGIONS:
        raise ValidationError(msg("job.region_unknown", region=name), code="Config.Region")
    return key


def region_from_url(url: str) -> str | None:
    """The region a base URL's host belongs to, or None for any other host (emulator, proxy).

    ``https://dashscope-intl.aliyuncs.com/api/v1`` -> ``"singapore"``;
    ``https://ws1.ap-southeast-1.maas.aliyuncs.com/api/v1`` -> ``"singapore"``;
    ``https://ws1.eu-central-1.maas.aliyuncs.com/api/v1`` -> ``"eu-central-1"``;
    ``https://maas.qianwenaiapi.com/api/v1`` -> ``"qianwen"`` (a platform: a region of its own).
    """
    host = (urlsplit(url or "").hostname or "").lower()
    if host in REGION_HOSTS:
        return REGION_HOSTS[host]
    if host in PLATFORM_HOSTS:
        return PLATFORM_HOSTS[host]
    m = _MAAS_HOST.match(host)
    if m:
        return MAAS_REGIONS.get(m.group(1), m.group(1))
    return None


def platform_of(region: str) -> str:
    """The platform serving ``region``: ``"qianwen"`` or ``"qwencloud"`` for their own ids,
    Alibaba Cloud Model Studio (:data:`BAILIAN`) for every other region."""
    return region if region in PLATFORMS else BAILIAN


def platform_name(platform: str) -> Message | str:
    """A platform's name for people: the catalogue's ``platform.bailian``, or the name of the
    platform's own region id (``error.region.qianwen``)."""
    return msg("platform.bailian") if platform == BAILIAN else region_name(platform)


def place_name(region: str) -> Message | str:
    """Platform and region for people: ``Alibaba Cloud Model Studio (Bailian), Singapore``; a
    platform with one region of its own is just its name (``QwenCloud``)."""
    if region in PLATFORMS:
        return region_name(region)
    return msg("platform.place", platform=platform_name(BAILIAN), region=region_name(region))


def workspace_url(workspace: str, region: str) -> str | None:
    """The workspace host's base URL of ``region`` (``eu-central-1``, ``singapore``...) for
    ``workspace``, or None where workspace hosts do not exist (the platforms, unknown ids)."""
    cloud_id = next((k for k, v in MAAS_REGIONS.items() if v == region), None)
    if cloud_id is None or not workspace:
        return None
    return f"https://{workspace}.{cloud_id}.maas.aliyuncs.com/api/v1"


def _key_file(env: Mapping[str, str]) -> Path | None:
    """Where the SDK looks for a key file: ``DASHSCOPE_API_KEY_FILE_PATH``, else
    ``~/.dashscope/api_key`` (the first that exists)."""
    named = env.get(ENV_KEY_FILE, "").strip()
    candidates = [Path(named).expanduser()] if named else []
    home = env.get("HOME") or env.get("USERPROFILE")
    if home:
        candidates.append(Path(home) / ".dashscope" / "api_key")
    return next((c for c in candidates if c.is_file()), None)


def read_key_file(env: Mapping[str, str]) -> str | None:
    """The key stored in the SDK's key file, or None. Read only: never created or written.

    An unreadable file counts as absent: the "no API key" message then says where to put one.
    """
    path = _key_file(env)
    if path is None:
        return None
    try:
        # A key file holds one short line; reading a few KB at most keeps a wrong path harmless.
        with path.open("r", encoding="utf-8", errors="replace") as f:
            text = f.read(4096)
    except OSError:
        return None
    return text.strip() or None


def _number(text: str, name: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        raise ValidationError(msg("job.not_a_number", name=name, value=text), code="Config.Number") from None


def parse_budget(value: str | float | Decimal | None, name: str) -> Decimal | None:
    """A budget amount (the price list's currency) as an exact Decimal; "" or None: no budget."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ValidationError(msg("job.budget_invalid", name=name, value=str(value)), code="Config.Budget")
    return amount


def require_key(key: str | None, settings: Settings) -> str:
    """The key to send, or a ValidationError: missing, or not something a header can carry.

    Checked before any request, so a key pasted with a stray space, newline or full-width
    character gets a clear message instead of a confusing network error.
    """
    key = (key or "").strip()
    if not key:
        # Only the CLI and library callers get here: the web app routes a call without any key
        # to the offline demo, and its key box has its own wording.
        raise ValidationError(msg("job.no_key", region=settings.region_text()), code="InvalidApiKey")
    if not key.isascii() or not key.isprintable() or any(ch.isspace() for ch in key):
        raise ValidationError(msg("job.key_format"), code="InvalidApiKey.Format")
    return key


# Settings used to be one flat record of some thirty fields. They are grouped by who reads them:
# the HTTP client reads the transport, the upload step the upload rules, the scheduler and the
# service's pools the concurrency, the money checks the budgets, the hosted demo's guards the
# hosting. Each field lives in exactly one group; the top level keeps where to call and where to
# write. ``Settings.from_env`` and ``Settings.with_`` still take the flat names (CLI flags, app
# settings and tests pass them) and route each to its group (:data:`_GROUP_OF`).


@dataclass(frozen=True)
class Transport:
    """How patient the HTTP client is: timeouts, retries and backoff, task polling, downloads."""

    connect_timeout: float = 10.0
    read_timeout: float = 300.0  # the SDK's default; Max models can take a minute or more
    download_timeout: float = 60.0
    max_retries: int = 3
    backoff_base: float = 1.0  # seconds; doubles per attempt, full jitter
    backoff_max: float = 20.0
    retry_after_max: float = 60.0  # never sleep longer than this for one Retry-After
    poll_schedule: tuple[float, ...] = (1, 1, 2, 2, 2, 4, 4, 4, 5)  # the SDK's; last repeats
    task_timeout: float = 600.0
    max_download_bytes: int = 64 * 1024 * 1024
    download_hosts: tuple[str, ...] = ("*.aliyuncs.com",)


@dataclass(frozen=True)
class Uploads:
    """When a local input image is sent inline and when through a temporary OSS upload."""

    upload: str = "auto"  # auto | always | never: temporary OSS upload for local images
    inline_max_bytes: int = 6 * 1024 * 1024  # above this a local image is uploaded (auto mode)


@dataclass(frozen=True)
class Concurrency:
    """How many requests and tasks run at once."""

    max_parallel: int = 4  # concurrent requests for fan-out and downloads
    # The scheduler's starting number of tasks at once per (key, model): None = the model data's
    # value or 2; 0 = no scheduler (every request sent at once, 429s retried by the client).
    task_limit: int | None = None
    task_limit_max: int = 5  # the scheduler never raises its limit above this
    batch_max_running: int = 8  # batches the app runs at once (ALIYUN_IMAGE_BATCH_MAX_RUNNING)


@dataclass(frozen=True)
class BudgetCaps:
    """Spending caps, in the price list's currency (None: no cap; see money/budget.py)."""

    daily_budget: Decimal | None = None
    monthly_budget: Decimal | None = None
    allow_unpriced: bool = False  # under a budget, run models whose price is unknown anyway
    host_hourly_budget: Decimal | None = None  # hosted: the host key's spend per rolling hour (all visitors)
    session_hourly_budget: Decimal | None = None  # hosted: the same per visitor


@dataclass(frozen=True)
class Hosting:
    """The shared demo's guards: whether the app is hosted, and where local inputs may come from."""

    hosted: bool = False  # shared demo: no local paths or private URLs as inputs
    input_dirs: tuple[Path, ...] = ()  # hosted: local inputs allowed only from here (uploads dir)
    # Proxies in front of the app that each append the address they saw to X-Forwarded-For: the
    # client's address is the N-th entry from the right (0: the connection's own peer address).
    trusted_proxies: int = 0
    address_share: float = 4.0  # a client address may use this many visitors' hourly images
    visitor_days: int = 7  # how long the visitor cookie (and so a visitor's gallery) lasts
    cookie_samesite: str = "lax"  # "none" on a Space: the page is in an iframe of another site
    on_space: bool = False  # a Hugging Face Space (SPACE_ID is set)
    restart_clears: bool = False  # a Space without persistent storage: a restart loses the results
    # Runs (and batches) going at once: per visitor and per client address (0: no cap). Hosted only:
    # the app's run slots are shared by everyone, and a visitor's own key is not bounded by the hourly quota.
    runs_per_visitor: int = 3
    runs_per_address: int = 8
    # Items (combinations) one batch of the Batch tab may expand to; None: 100 hosted, locally the
    # engine's cap (ALIYUN_IMAGE_BATCH_MAX_ITEMS).
    batch_max_items: int | None = None


def persistent_data_dir(env: Mapping[str, str], storage: Path = SPACE_STORAGE) -> Path | None:
    """Where results and their database go by default on a Space with persistent storage:
    ``<storage>/aliyun-image`` when ``SPACE_ID`` is set and ``storage`` (``/data``) is a writable
    directory; None elsewhere (a Space without it, or not a Space): then ``outputs``."""
    if not env.get(ENV_SPACE_ID):
        return None
    try:
        usable = storage.is_dir() and os.access(storage, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    return storage / "aliyun-image" if usable else None


def hosting_from_env(env: Mapping[str, str], data_dir: Path, storage: Path = SPACE_STORAGE) -> dict[str, Any]:
    """The visitor settings of :class:`Hosting` from ``env`` (defaults that suit a Space when
    ``SPACE_ID`` is set: one proxy in front, a cross-site cookie), and whether a restart of the
    Space clears the results in ``data_dir`` (they are kept only under ``storage``)."""
    space = bool(env.get(ENV_SPACE_ID))
    proxies = env.get(ENV_TRUSTED_PROXIES, "").strip()
    share = env.get(ENV_ADDRESS_SHARE, "").strip()
    days = env.get(ENV_VISITOR_DAYS, "").strip()
    samesite = env.get(ENV_COOKIE_SAMESITE, "").strip().lower() or ("none" if space else "lax")
    if samesite not in SAMESITE:
        raise ValidationError(msg("hosting.samesite_invalid", value=samesite), code="Config.SameSite")
    kept = persistent_data_dir(env, storage) is not None and _inside(data_dir, storage)
    n_proxies = int(_number(proxies, ENV_TRUSTED_PROXIES, int)) if proxies else (1 if space else 0)
    n_share = float(_number(share, ENV_ADDRESS_SHARE, float)) if share else 4.0
    n_days = int(_number(days, ENV_VISITOR_DAYS, int)) if days else 7
    if n_proxies < 0 or n_share < 1 or n_days < 1:
        raise ValidationError(msg("hosting.range_invalid", proxies=n_proxies, share=n_share, days=n_days),
                              code="Config.Hosting")
    runs = {}
    for name, var, default in (("runs_per_visitor", ENV_RUNS_PER_VISITOR, 3),
                               ("runs_per_address", ENV_RUNS_PER_ADDRESS, 8)):
        given = env.get(var, "").strip()
        runs[name] = int(_number(given, var, int)) if given else default
        if runs[name] < 0:
            raise ValidationError(msg("run_slots.setting_invalid", name=var, value=given), code="Config.Hosting")
    return dict(trusted_proxies=n_proxies, address_share=n_share, visitor_days=n_days, cookie_samesite=samesite,
                on_space=space, restart_clears=space and not kept, **runs)


def _lenient_count(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A positive whole number from ``env[name]``, else ``default``: a value that is not one is
    ignored with a warning in the log (the batch limits have always been read so; a typo there
    must not keep the app from starting)."""
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        n = int(value)
    except ValueError:
        log.warning("ignoring %s: not a whole number: %r", name, value)
        return default
    return n if n > 0 else default


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


# Each group's attribute on Settings, and the flat name of every field in it -> its group.
_GROUPS: dict[str, type] = {"transport": Transport, "uploads": Uploads, "concurrency": Concurrency,
                            "budgets": BudgetCaps, "hosting": Hosting}
_GROUP_OF: dict[str, str] = {f.name: group for group, kind in _GROUPS.items() for f in fields(kind)}


@dataclass(frozen=True)
class Settings:
    """Everything the client and service need to know. Build it with :meth:`from_env`."""

    api_key: str | None = field(default=None, repr=False)
    region: str = "beijing"  # replaced by the base URL's region when its host tells one
    base_url: str = REGIONS["beijing"]
    region_explicit: bool = False  # region asked for (flag, env), not just the default
    workspace: str | None = None  # DASHSCOPE_WORKSPACE_ID, sent as X-DashScope-WorkSpace
    data_dir: Path = Path("outputs")
    fsync: bool = True  # results survive a power cut, not just a crash
    transport: Transport = field(default_factory=Transport)
    uploads: Uploads = field(default_factory=Uploads)
    concurrency: Concurrency = field(default_factory=Concurrency)
    budgets: BudgetCaps = field(default_factory=BudgetCaps)
    hosting: Hosting = field(default_factory=Hosting)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (default ``os.environ``) with ``overrides`` on top.

        ``overrides`` with value None are ignored, so CLI flags can be passed straight through.
        ``region=`` picks a region's base URL unless ``base_url=`` (or ``DASHSCOPE_HTTP_BASE_URL``)
        names one explicitly; then the base URL's host says the region when it can.
        The API key: ``api_key=`` > ``DASHSCOPE_API_KEY`` > the SDK's key file.
        """
        env = os.environ if env is None else env  # (narrowed: env is a Mapping from here on)
        o = {k: v for k, v in overrides.items() if v is not None}
        asked = o.pop("region", None) or env.get(ENV_REGION)
        region = normalize_region(asked or "beijing")
        base = o.pop("base_url", None) or env.get(ENV_BASE_URL) or REGIONS[region]
        hosts = o.pop("download_hosts", None)
        if hosts is None:
            extra = [h.strip() for h in env.get(ENV_DOWNLOAD_HOSTS, "").split(",") if h.strip()]
            hosts = ("*.aliyuncs.com", *extra)
        # The key file is read only when no key was given: a given key must not touch the disk.
        key = (o.pop("api_key", None) or env.get(ENV_KEY) or "").strip() or read_key_file(env)
        kw: dict = dict(
            api_key=key or None,
            region=region,
            region_explicit=bool(asked),
            workspace=(o.pop("workspace", None) or env.get(ENV_WORKSPACE) or "").strip() or None,
            base_url=base.rstrip("/"),
            # On a Space with persistent storage, under /data: a restart of the Space keeps them.
            data_dir=Path(o.pop("data_dir", None) or env.get(ENV_DATA_DIR) or persistent_data_dir(env) or "outputs"),
            upload=(o.pop("upload", None) or env.get(ENV_UPLOAD) or "auto").lower(),
            download_hosts=tuple(hosts),
        )
        for name, var in (("daily_budget", ENV_DAILY_BUDGET), ("monthly_budget", ENV_MONTHLY_BUDGET),
                          ("host_hourly_budget", ENV_HOST_HOURLY_BUDGET),
                          ("session_hourly_budget", ENV_SESSION_HOURLY_BUDGET)):
            given = name in o  # a flag (or an app setting): name it as the user typed it, not the env var
            kw[name] = parse_budget(o.pop(name) if given else env.get(var),  # 0 is a budget too
                                    f"--{name.replace('_', '-')}" if given else var)
        kw["allow_unpriced"] = bool(o.pop("allow_unpriced", None)) or env.get(ENV_ALLOW_UNPRICED, "") in ("1", "true")
        if env.get(ENV_TIMEOUT):
            kw["read_timeout"] = _number(env[ENV_TIMEOUT], ENV_TIMEOUT, float)
        if env.get(ENV_RETRIES):
            kw["max_retries"] = _number(env[ENV_RETRIES], ENV_RETRIES, int)
        if env.get(ENV_TASK_LIMIT):
            kw["task_limit"] = _number(env[ENV_TASK_LIMIT], ENV_TASK_LIMIT, int)
        kw.update(hosting_from_env(env, kw["data_dir"]))
        kw["batch_max_items"] = _lenient_count(env, ENV_BATCH_MAX_ITEMS, None)
        kw["batch_max_running"] = _lenient_count(env, ENV_BATCH_MAX_RUNNING, 8)
        kw.update(o)
        s = cls()._with(kw)
        s.check()
        return s

    def __post_init__(self) -> None:
        # The host is where calls go, so it decides the region (also after with_(base_url=...)).
        told = region_from_url(self.base_url)
        if told is not None and told != self.region:
            object.__setattr__(self, "region", told)

    def check(self) -> None:
        """Refuse settings that cannot work, with a message saying which one and why."""
        if self.uploads.upload not in ("auto", "always", "never"):
            raise ValidationError(msg("job.upload_invalid"), code="Config.Upload")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(msg("job.base_url_invalid", url=self.base_url), code="Config.BaseUrl")
        # The names are the settings' own (as a developer reads them), the same in every language.
        t = self.transport
        for name, value in (("timeout", t.read_timeout), ("connect timeout", t.connect_timeout),
                            ("download timeout", t.download_timeout)):
            if not value > 0:
                raise ValidationError(msg("job.timeout_invalid", name=name, value=value), code="Config.Timeout")
        ws = self.workspace or ""
        if ws and not (ws.isascii() and ws.isprintable() and not any(ch.isspace() for ch in ws)):
            raise ValidationError(msg("job.workspace_invalid"), code="Config.Workspace")
        retries, task_limit = t.max_retries, self.concurrency.task_limit
        if retries < 0 or retries > 20:
            raise ValidationError(msg("job.retries_range", n=retries), code="Config.Retries")
        if task_limit is not None and not 0 <= task_limit <= 64:
            raise ValidationError(msg("job.task_limit_range", n=task_limit), code="Config.TaskLimit")

    def with_(self, **changes) -> Settings:
        """A copy with ``changes`` applied (None values ignored)."""
        return self._with({k: v for k, v in changes.items() if v is not None})

    def _with(self, changes: Mapping[str, Any]) -> Settings:
        """A copy with ``changes`` applied, each flat name (``backoff_base=``) routed to its group;
        a group itself (``transport=Transport(...)``) or a top-level field is replaced as given.
        An unknown name raises TypeError, as the constructor would."""
        top: dict[str, Any] = {}
        grouped: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            group = _GROUP_OF.get(name)
            if group is None:
                top[name] = value
            else:
                grouped.setdefault(group, {})[name] = value
        for group, values in grouped.items():
            top[group] = replace(top.get(group, getattr(self, group)), **values)
        return replace(self, **top)

    @property
    def host(self) -> str:
        """Host name of the base URL (download allow-list and messages use it)."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def is_custom_base(self) -> bool:
        """True when the base URL's host is none of DashScope's (emulator, proxy...), so it
        does not tell the region."""
        return region_from_url(self.base_url) is None

    @property
    def region_known(self) -> bool:
        """True when the region is known: told by the host, or asked for on a custom base."""
        return not self.is_custom_base or self.region_explicit

    @property
    def platform(self) -> str:
        """The platform calls go to (:data:`BAILIAN`, ``"qianwen"``, ``"qwencloud"``), or ``""``
        when a custom base with no region asked for does not tell."""
        return platform_of(self.region) if self.region_known else ""

    def region_text(self) -> Message | str:
        """Where calls go, for messages: ``Beijing (dashscope.aliyuncs.com)`` as a catalogue
        :class:`~aliyun_image.i18n.Message`, or the custom base URL as it is (emulator, proxy)."""
        if self.is_custom_base:
            return self.base_url
        return region_label(self.region, self.host)

    def region_label(self, lang: str = "en") -> str:
        """:meth:`region_text` in ``lang``."""
        return render(lang, self.region_text())

    @property
    def supports_temp_upload(self) -> bool:
        """The temporary-upload flow exists in Beijing only (or on a custom base, e.g. the emulator)."""
        return self.region == "beijing" or self.is_custom_base
