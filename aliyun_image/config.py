"""Settings: where to call, with which key, where results go, how patient to be.

Resolution order, for every field: explicit argument (CLI flag, UI choice) > environment
variable > default. Environment names follow the official SDK where one exists
(``DASHSCOPE_API_KEY``, ``DASHSCOPE_HTTP_BASE_URL``).

The API key is only ever *read* here. It is held by the :class:`Settings` object in memory,
hidden from ``repr`` and never written to ``os.environ``, a file or a log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import validation

REGIONS: dict[str, tuple[str, str, str]] = {
    # name: (base URL, 中文名, English name)
    "beijing": ("https://dashscope.aliyuncs.com/api/v1", "北京", "Beijing"),
    "singapore": ("https://dashscope-intl.aliyuncs.com/api/v1", "新加坡", "Singapore"),
    "us": ("https://dashscope-us.aliyuncs.com/api/v1", "美国（弗吉尼亚）", "US (Virginia)"),
}
REGION_ALIASES = {"cn": "beijing", "cn-beijing": "beijing", "bj": "beijing", "intl": "singapore",
                  "sg": "singapore", "ap-southeast-1": "singapore", "us-east-1": "us"}

OFFLINE_KEY = "sk-offline-demo"  # the in-process emulator's key in offline mode; not a secret, not a real key
ENV_KEY = "DASHSCOPE_API_KEY"
ENV_BASE_URL = "DASHSCOPE_HTTP_BASE_URL"
ENV_REGION = "ALIYUN_IMAGE_REGION"
ENV_DATA_DIR = "ALIYUN_IMAGE_DATA_DIR"
ENV_DOWNLOAD_HOSTS = "ALIYUN_IMAGE_DOWNLOAD_HOSTS"
ENV_UPLOAD = "ALIYUN_IMAGE_UPLOAD"
ENV_TIMEOUT = "ALIYUN_IMAGE_TIMEOUT"
ENV_RETRIES = "ALIYUN_IMAGE_RETRIES"


def normalize_region(name: str) -> str:
    """``"SG"`` -> ``"singapore"``; raises ValidationError for unknown names."""
    key = (name or "").strip().lower()
    key = REGION_ALIASES.get(key, key)
    if key not in REGIONS:
        raise validation(
            f"未知地域“{name}”，可选：beijing（北京）、singapore（新加坡）、us（美国）",
            f"Unknown region '{name}'; choose beijing, singapore or us", code="Config.Region")
    return key


def _number(text: str, name: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        raise validation(f"环境变量 {name} 的值“{text}”不是数字", f"{name}='{text}' is not a number",
                         code="Config.Number") from None


def check_key(key: str | None, settings: Settings) -> str:
    """The key to send, or a ValidationError: missing, or not something a header can carry.

    Checked before any request, so a key pasted with a stray space, newline or full-width
    character gets a clear message instead of a confusing network error.
    """
    key = (key or "").strip()
    if not key:
        raise validation(
            "没有 API Key。请设置环境变量 DASHSCOPE_API_KEY，或在界面中填写"
            f"（当前地域：{settings.region_label('zh')}）。",
            f"No API key. Set the DASHSCOPE_API_KEY environment variable or enter one in the UI "
            f"(region: {settings.region_label('en')}).", code="InvalidApiKey")
    if not key.isascii() or not key.isprintable() or any(ch.isspace() for ch in key):
        raise validation(
            "API Key 含有空格、换行或全角等非法字符。请从百炼控制台重新复制完整的 Key。",
            "The API key contains spaces, line breaks or non-ASCII characters. Copy it again from the "
            "Bailian console.", code="InvalidApiKey.Format")
    return key


@dataclass(frozen=True)
class Settings:
    """Everything the client and service need to know. Build it with :meth:`from_env`."""

    api_key: str | None = field(default=None, repr=False)
    region: str = "beijing"
    base_url: str = REGIONS["beijing"][0]
    data_dir: Path = Path("outputs")
    connect_timeout: float = 10.0
    read_timeout: float = 300.0  # the SDK's default; Max models can take a minute or more
    download_timeout: float = 60.0
    max_retries: int = 3
    backoff_base: float = 1.0  # seconds; doubles per attempt, full jitter
    backoff_max: float = 20.0
    retry_after_max: float = 60.0  # never sleep longer than this for one Retry-After
    poll_schedule: tuple[float, ...] = (1, 1, 2, 2, 2, 4, 4, 4, 5)  # the SDK's; last repeats
    task_timeout: float = 600.0
    upload: str = "auto"  # auto | always | never: temporary OSS upload for local images
    inline_max_bytes: int = 6 * 1024 * 1024  # above this a local image is uploaded (auto mode)
    max_download_bytes: int = 64 * 1024 * 1024
    download_hosts: tuple[str, ...] = ("*.aliyuncs.com",)
    max_parallel: int = 4  # concurrent requests for fan-out and downloads
    fsync: bool = True  # results survive a power cut, not just a crash
    hosted: bool = False  # shared demo: no local paths or private URLs as inputs
    input_dirs: tuple[Path, ...] = ()  # hosted: local inputs allowed only from here (uploads dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (default ``os.environ``) with ``overrides`` on top.

        ``overrides`` with value None are ignored, so CLI flags can be passed straight through.
        ``region=`` picks a region's base URL unless ``base_url=`` (or ``DASHSCOPE_HTTP_BASE_URL``)
        names one explicitly.
        """
        env = os.environ if env is None else env  # (narrowed: env is a Mapping from here on)
        o = {k: v for k, v in overrides.items() if v is not None}
        region = normalize_region(o.pop("region", None) or env.get(ENV_REGION) or "beijing")
        base = o.pop("base_url", None) or env.get(ENV_BASE_URL) or REGIONS[region][0]
        hosts = o.pop("download_hosts", None)
        if hosts is None:
            extra = [h.strip() for h in env.get(ENV_DOWNLOAD_HOSTS, "").split(",") if h.strip()]
            hosts = ("*.aliyuncs.com", *extra)
        kw: dict = dict(
            api_key=(o.pop("api_key", None) or env.get(ENV_KEY) or "").strip() or None,
            region=region,
            base_url=base.rstrip("/"),
            data_dir=Path(o.pop("data_dir", None) or env.get(ENV_DATA_DIR) or "outputs"),
            upload=(o.pop("upload", None) or env.get(ENV_UPLOAD) or "auto").lower(),
            download_hosts=tuple(hosts),
        )
        if env.get(ENV_TIMEOUT):
            kw["read_timeout"] = _number(env[ENV_TIMEOUT], ENV_TIMEOUT, float)
        if env.get(ENV_RETRIES):
            kw["max_retries"] = _number(env[ENV_RETRIES], ENV_RETRIES, int)
        kw.update(o)
        s = cls(**kw)
        s.check()
        return s

    def check(self) -> None:
        """Refuse settings that cannot work, with a message saying which one and why."""
        if self.upload not in ("auto", "always", "never"):
            raise validation("上传方式须为 auto、always 或 never", "upload must be auto, always or never",
                             code="Config.Upload")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise validation(f"Base URL 无效：{self.base_url}（应形如 https://dashscope.aliyuncs.com/api/v1）",
                             f"Invalid base URL: {self.base_url} (expected like https://dashscope.aliyuncs.com/api/v1)",
                             code="Config.BaseUrl")
        for name, value in (("timeout", self.read_timeout), ("connect timeout", self.connect_timeout),
                            ("download timeout", self.download_timeout)):
            if not value > 0:
                raise validation(f"超时须大于 0 秒（{name} = {value}）", f"The {name} must be above 0 s (got {value})",
                                 code="Config.Timeout")
        if self.max_retries < 0 or self.max_retries > 20:
            raise validation(f"重试次数须在 0–20 之间（收到 {self.max_retries}）",
                             f"Retries must be 0-20 (got {self.max_retries})", code="Config.Retries")

    def with_(self, **changes) -> Settings:
        """A copy with ``changes`` applied (None values ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def host(self) -> str:
        """Host name of the base URL (download allow-list and messages use it)."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def is_custom_base(self) -> bool:
        """True when the base URL is not one of the known regions' (emulator, proxy...)."""
        return self.base_url not in {v[0] for v in REGIONS.values()}

    def region_label(self, lang: str = "en") -> str:
        """``"北京 (dashscope.aliyuncs.com)"`` or the custom host, for messages."""
        if self.is_custom_base:
            return self.base_url
        _, zh, en = REGIONS[self.region]
        return f"{zh if lang == 'zh' else en} ({self.host})"

    def regions(self) -> tuple[str, str]:
        """(Chinese, English) region labels, for bilingual messages."""
        return self.region_label("zh"), self.region_label("en")

    @property
    def supports_temp_upload(self) -> bool:
        """The temporary-upload flow exists in Beijing only (or on a custom base, e.g. the emulator)."""
        return self.region == "beijing" or self.is_custom_base
