"""HTTP to DashScope: the only module that speaks to the service.

It sends and receives; what goes on the wire (paths, headers, bodies) and what comes back
(typed replies) is :mod:`.protocol`'s business.

One :class:`requests.Session` per client (keep-alive, connection pool sized for fan-out),
explicit connect/read timeouts, retries with exponential backoff and jitter on 429/5xx and
connection failures (``Retry-After`` honoured), and one typed error for every failure.

Why retries are careful: a generation request whose reply never arrived may have been
carried out *and billed*. Such requests are not retried blindly (see :meth:`_send`); the
user is told instead (:class:`~aliyun_image.errors.OutcomeUnknownError`).

The API key is an argument of each call, never an attribute: one client (and its connection
pool) can serve many hosted-demo visitors, each with their own key.
"""

from __future__ import annotations

import email.utils
import html
import fnmatch
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .. import __version__
from . import protocol
from ..config import Settings
from ..errors import (
    AliyunImageError,
    DownloadError,
    ThrottledError,
    api_error,
    bad_reply,
    cancelled,
    download_http_error,
    download_too_big,
    download_truncated,
    network_error,
    outcome_unknown,
    region_label,
    task_end_error,
    task_timeout,
)
from ..i18n import Message, msg

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# 429s that waiting will not fix (billing, quota): report at once instead of retrying.
NO_RETRY_CODES = frozenset({"PrepaidBillOverdue", "PostpaidBillOverdue", "CommodityNotPurchased",
                            "Throttling.AllocationQuota", "Arrearage"})
JSON_TYPE = protocol.JSON_TYPE
UPLOAD_MIN_RATE = 32 * 1024  # bytes/s: the slowest line an upload should still get through on
Reply = protocol.Reply  # the client returns wire replies; protocol parses them


class Sink(Protocol):
    """Where a download goes: a file opened ``wb+``, or a wrapper such as
    :class:`~aliyun_image.images.pngtext.PngTextWriter` that adds the recipe on the way."""

    def write(self, data: bytes, /) -> int: ...
    def seek(self, pos: int, whence: int = 0, /) -> int: ...
    def truncate(self, size: int | None = None, /) -> int: ...
    def flush(self) -> None: ...


def _retry_after(resp: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), if any."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unparseable: fall back to our own backoff
    return max(0.0, when.timestamp() - time.time()) if when else None


def _transport_kind(exc: requests.RequestException) -> tuple[str, bool]:
    """Classify a transport failure: (kind, request_possibly_processed).

    Connect-phase failures mean the server never saw the request, so a retry cannot bill
    twice. A read timeout or a drop after sending means it may have been carried out.
    """
    text = repr(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls", False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect_timeout", False
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "timeout", True
    if "NameResolutionError" in text or "getaddrinfo" in text or "Name or service not known" in text:
        return "dns", False
    if "NewConnectionError" in text or "ConnectionRefused" in text or "Connection refused" in text:
        return "refused", False
    return "reset", True


class DashScopeClient:
    """Thin, careful HTTP client for the Qwen-Image endpoints.

    ``session`` is the seam for tests and benchmarks; by default a pooled session is made.
    ``sleep`` is injectable so retry schedules can be checked without waiting.
    """

    def __init__(self, settings: Settings, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.session = session or requests.Session()
        if session is None:
            # Fan-out and concurrent downloads need more than requests' default 10 per host.
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=max(16, settings.concurrency.max_parallel * 4))
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
            self.session.trust_env = True  # corporate proxies via HTTPS_PROXY still work
        self._sleep = sleep
        self._rng = random.Random()

    # --- plumbing -------------------------------------------------------------------------------
    @property
    def region(self) -> Message | str:
        """Where requests go, for messages: ``Beijing (dashscope.aliyuncs.com)``, or a custom base URL."""
        s = self.settings
        return s.base_url if s.is_custom_base else region_label(s.region, s.host)

    def url(self, path: str) -> str:
        """Absolute URL of an API path under the configured base URL."""
        return self.settings.base_url.rstrip("/") + path

    def _headers(self, api_key: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Accept": JSON_TYPE, "User-Agent": f"aliyun-image/{__version__}"}
        if api_key:
            h["Authorization"] = f"Bearer {api_key}"
        if self.settings.workspace:  # the SDK's header for DASHSCOPE_WORKSPACE_ID (protocol doc 2.2)
            h["X-DashScope-WorkSpace"] = self.settings.workspace
        if extra:
            h.update(extra)
        return h

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0-based): exponential with equal jitter."""
        cap = min(self.settings.transport.backoff_max, self.settings.transport.backoff_base * (2 ** attempt))
        return cap / 2 + self._rng.uniform(0, cap / 2)

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def _send(self, method: str, path_or_url: str, *, api_key: str | None, body: Any = None,
              headers: dict[str, str] | None = None, params: dict | None = None,
              billable: bool = False, model: str = "", cancel: threading.Event | None = None,
              retry_throttled: bool = True) -> Reply:
        """Send one API request with retries, and return its JSON or raise one typed error.

        ``billable`` marks requests that start paid work (generation, task creation): once sent,
        they are never resent after a read timeout or a dropped connection, since the service
        may have carried them out. Connect-phase failures (nothing was sent) are retried.
        ``retry_throttled=False`` (the :mod:`~aliyun_image.dashscope.scheduler`'s requests): a transient 429 is
        raised at once as a :class:`ThrottledError` with its ``Retry-After``; the scheduler, which owns
        the account's limit, queues the request again (a 429 was not accepted, so not billed).
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        data = None
        hdrs = self._headers(api_key, headers)
        if body is not None:
            data = protocol.encode(body)
            hdrs["Content-Type"] = JSON_TYPE
        t = self.settings.transport
        retries = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise cancelled()
            try:
                resp = self.session.request(method, url, data=data, headers=hdrs, params=params,
                                            timeout=(t.connect_timeout, t.read_timeout),
                                            allow_redirects=False)
            except requests.RequestException as exc:
                kind, maybe_done = _transport_kind(exc)
                target = urlsplit(url).netloc
                if billable and maybe_done:
                    # The request may have been carried out and billed: never resend it blindly.
                    # (Stale pooled connections are already weeded out by urllib3 before reuse.)
                    raise outcome_unknown(target, kind) from None
                if kind in ("dns", "tls") or retries >= t.max_retries:
                    raise network_error(kind, target, retries=retries, detail=type(exc).__name__) from None
                self._sleep(self.backoff(retries))
                retries += 1
                continue
            payload, parse_error = self._parse(resp)
            if resp.status_code == 200 and payload is not None:
                return Reply(payload, str(payload.get("request_id") or ""), retries)
            transient = payload is None or str(payload.get("code") or "") not in NO_RETRY_CODES
            if resp.status_code == 429 and transient and not retry_throttled:
                wait = _retry_after(resp)
                raise ThrottledError.of(self._error(resp, payload, parse_error, model=model, retries=0),
                                        min(wait, t.retry_after_max) if wait is not None else None)
            if resp.status_code in RETRY_STATUS and transient and retries < t.max_retries:
                wait = _retry_after(resp)
                wait = min(wait, t.retry_after_max) if wait is not None else self.backoff(retries)
                log.info("HTTP %s from %s; retry %d in %.1fs", resp.status_code, path_or_url, retries + 1, wait)
                self._sleep(wait)
                retries += 1
                continue
            raise self._error(resp, payload, parse_error, model=model, retries=retries)

    @staticmethod
    def _parse(resp: requests.Response) -> tuple[dict | None, str]:
        try:
            payload = resp.json()
        except ValueError:
            return None, "not JSON"
        if not isinstance(payload, dict):
            return None, "JSON is not an object"
        return payload, ""

    def _error(self, resp: requests.Response, payload: dict | None, parse_error: str, *,
               model: str, retries: int) -> AliyunImageError:
        if payload is None:
            if resp.status_code >= 400:
                # Gateways answer 502/503 with HTML; show the status and a snippet, not "Unknown".
                return api_error(resp.status_code, f"HTTP{resp.status_code}", plain_excerpt(resp.text),
                                 region=self.region, model=model, retries=retries)
            return bad_reply(resp.status_code, parse_error, body=resp.text)
        code, message, rid = protocol.error_fields(payload)
        if not code and resp.status_code < 400:
            return bad_reply(resp.status_code, f"unexpected HTTP {resp.status_code}", rid, resp.text)
        return api_error(resp.status_code, code, message, rid, region=self.region,
                         model=model, retries=retries)

    # --- endpoints ------------------------------------------------------------------------------
    def generate(self, api_key: str | None, body: dict, *, oss_resolve: bool = False,
                 cancel: threading.Event | None = None, retry_throttled: bool = True) -> Reply:
        """Synchronous generation or edit (``multimodal-generation/generation``); ``retry_throttled``: :meth:`_send`."""
        return self._send("POST", protocol.GENERATION_PATH, api_key=api_key, body=body,
                          headers=protocol.OSS_RESOLVE_HEADER if oss_resolve else None,
                          billable=True, model=body.get("model", ""), cancel=cancel,
                          retry_throttled=retry_throttled)

    def create_task(self, api_key: str | None, body: dict, *, path: str = protocol.TASK_CREATE_PATH,
                    oss_resolve: bool = False, retry_throttled: bool = True) -> Reply:
        """Create an async task (:func:`.protocol.parse_task_id` names it) at ``path``: the legacy
        text-to-image API by default, :func:`.protocol.task_create_path` for a given model; see :meth:`_send`."""
        headers = {**protocol.ASYNC_HEADER, **(protocol.OSS_RESOLVE_HEADER if oss_resolve else {})}
        return self._send("POST", path, api_key=api_key, body=body, headers=headers, billable=True,
                          model=body.get("model", ""), retry_throttled=retry_throttled)

    def get_task(self, api_key: str | None, task_id: str) -> Reply:
        """One poll of an async task."""
        return self._send("GET", protocol.task_path(task_id), api_key=api_key)

    def cancel_task(self, api_key: str | None, task_id: str) -> Reply:
        """Cancel a task that is still PENDING (the service refuses others)."""
        return self._send("POST", protocol.task_cancel_path(task_id), api_key=api_key,
                          headers={"Content-Length": "0"})

    def wait_task(self, api_key: str | None, task_id: str, *, model: str = "",
                  cancel: threading.Event | None = None,
                  on_status: Callable[[str], None] | None = None) -> protocol.Generation:
        """Poll until the task ends; return what it generated or raise its error.

        Polls on the SDK's schedule (1, 1, 2, 2, 2, 4, 4, 4, 5, 5... s). On ``cancel`` the task
        is cancelled on the service too, so it stops costing money if it had not started; a task
        that already runs cannot be cancelled and will be billed, so it is collected as usual.
        """
        schedule = self.settings.transport.poll_schedule
        deadline = time.monotonic() + self.settings.transport.task_timeout
        i = 0
        while True:
            reply = self.get_task(api_key, task_id)
            state = protocol.parse_task(reply)
            if on_status:
                on_status(state.status.value)
            if state.generation is not None:
                return state.generation
            if state.status.finished:
                raise task_end_error(state.status.value, state.code, state.message, reply.request_id,
                                     region=self.region, model=model)
            wait = schedule[min(i, len(schedule) - 1)]
            i += 1
            if time.monotonic() + wait > deadline:
                raise task_timeout(task_id, self.settings.transport.task_timeout, reply.request_id)
            if cancel is not None and cancel.wait(wait):
                if self._try_cancel(api_key, task_id):
                    raise cancelled()
                # Already running: it will finish and be billed, so keep collecting it (Stop keeps
                # what is paid for) and stop asking the cancel flag.
                cancel = None
            elif cancel is None:
                self._sleep(wait)

    def _try_cancel(self, api_key: str | None, task_id: str) -> bool:
        """Cancel a task on the service; False when it refuses (the task already runs)."""
        try:
            self.cancel_task(api_key, task_id)
        except AliyunImageError:
            return False
        return True

    # --- temporary upload (local files, Beijing only) -----------------------------------------
    def upload_policy(self, api_key: str | None, model: str) -> dict:
        """Step 1 of the temporary upload: a signed OSS form policy bound to ``model``."""
        reply = self._send("GET", protocol.UPLOAD_POLICY_PATH, api_key=api_key,
                           params={"action": "getPolicy", "model": model}, model=model)
        return protocol.parse_upload_policy(reply)

    def upload(self, policy: dict, filename: str, data: bytes, mime: str) -> str:
        """Step 2: POST the file to OSS with the policy; return the ``oss://`` reference.

        No Authorization header goes to OSS: the policy signature is the credential.
        """
        host = str(policy["upload_host"])
        self.check_host(host, purpose="upload")
        key = f"{policy['upload_dir']}/{filename}"
        fields = protocol.upload_form(policy, key, filename, data, mime)
        last: AliyunImageError | None = None
        for attempt in range(self.settings.transport.max_retries + 1):
            try:
                timeout = (self.settings.transport.connect_timeout, self._upload_timeout(len(data)))
                resp = self.session.post(host, files=fields, headers={"Accept": "application/json"}, timeout=timeout)
            except requests.RequestException as exc:
                kind, _ = _transport_kind(exc)
                last = network_error(kind, urlsplit(host).netloc, retries=attempt, detail=type(exc).__name__)
                if kind in ("dns", "tls"):
                    break
            else:
                if resp.status_code in (200, 204):
                    return f"oss://{key}"
                last = self._upload_error(resp, attempt)
                if resp.status_code not in RETRY_STATUS:
                    break
            if attempt < self.settings.transport.max_retries:
                self._sleep(self.backoff(attempt))
        assert last is not None
        raise last

    def _upload_timeout(self, size: int) -> float:
        """Seconds to allow an upload: the read timeout (``--timeout``), and more for a big file
        on a slow line (10 MB at 256 kbit/s is about 5 minutes), never less than a download's."""
        t = self.settings.transport
        return max(t.read_timeout, t.download_timeout, size / UPLOAD_MIN_RATE)

    def _upload_error(self, resp: requests.Response, attempt: int) -> AliyunImageError:
        """OSS refused the upload: its code, in a sentence about uploading."""
        code, message = protocol.oss_error(resp.text)
        err = api_error(resp.status_code, f"Upload.{code or resp.status_code}", message or resp.text[:160],
                        region=self.region, retries=attempt)
        return err.with_text(msg("error.upload_failed", message=err.message))

    # --- result downloads --------------------------------------------------------------------
    def check_host(self, url: str, purpose: str = "download") -> None:
        """Refuse URLs outside the allow-list, so a hostile reply cannot make us fetch internal addresses."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        # The host checked must be the one requests connects to. A backslash or credentials
        # (``https://evil.example\\@dashscope-a1.oss-accelerate.aliyuncs.com/``) or an escaped
        # host make the two parsers disagree (requests would go to evil.example): refused outright.
        if "\\" in parts.netloc or "@" in parts.netloc or not re.fullmatch(r"[a-z0-9.:-]+", host):
            host = ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = -1
        base = urlsplit(self.settings.base_url)
        base_port = base.port or (443 if base.scheme == "https" else 80)
        allowed = [p.lower() for p in self.settings.transport.download_hosts] + [self.settings.host.lower()]
        # Patterns (*.aliyuncs.com) match on the name; the base URL's host only on its own port,
        # so a custom base (an emulator, a proxy) does not open every port of that machine.
        ok = parts.scheme in ("http", "https") and bool(host) and (
            any(fnmatch.fnmatchcase(host, p.lower()) for p in self.settings.transport.download_hosts)
            or (host == self.settings.host.lower() and port == base_port))
        if not ok:
            key = "error.host_refused_download" if purpose == "download" else "error.host_refused_upload"
            raise DownloadError(msg(key, host=host or url[:60], allowed=", ".join(a for a in allowed if a)),
                                code="Download.HostNotAllowed")

    def allows(self, url: str) -> bool:
        """True when :meth:`download` may fetch ``url`` (see :meth:`check_host`)."""
        try:
            self.check_host(url)
        except DownloadError:
            return False
        return True

    def download(self, url: str, out: Sink, *, max_bytes: int | None = None,
                 cancel: threading.Event | None = None) -> str:
        """Stream ``url`` into ``out`` (a file opened ``wb+``); return the Content-Type.

        Redirects are followed by hand (at most 3) so that each hop passes :meth:`check_host`.
        Transient failures (5xx, drops, truncation) are retried; the file is rewound each time,
        so ``out`` never holds a mix of two attempts.
        """
        limit = max_bytes or self.settings.transport.max_download_bytes
        last: _Retry | None = None
        for attempt in range(self.settings.transport.max_retries + 1):
            if last is not None:
                self._sleep(last.wait if last.wait is not None else self.backoff(attempt - 1))
            out.seek(0)
            out.truncate()
            try:
                return self._download_once(url, out, limit, cancel, attempt)
            except _Retry as retry:
                last = retry
                if retry.final:
                    break
        assert last is not None
        raise last.error

    def _download_once(self, url: str, out: Sink, limit: int, cancel: threading.Event | None,
                       attempt: int) -> str:
        """One attempt: raises :class:`_Retry` for what another attempt may fix, an error otherwise."""
        target = url
        try:
            resp, target = self._follow(url)
            with resp:
                self._check_status(resp, attempt)
                got, declared = self._stream(resp, out, limit, cancel)
                if declared and got != declared:
                    raise _Retry(download_truncated(got, declared, attempt))
                out.flush()
                return resp.headers.get("Content-Type", "")
        except requests.RequestException as exc:
            if "IncompleteRead" in repr(exc) or "ChunkedEncodingError" in type(exc).__name__:
                raise _Retry(download_truncated(None, None, attempt)) from None
            kind, _ = _transport_kind(exc)
            net = network_error(kind, urlsplit(target).netloc, retries=attempt, detail=type(exc).__name__)
            err = DownloadError(net.msg, code=net.code, retries=attempt)
            raise _Retry(err, final=kind in ("dns", "tls")) from None

    def _follow(self, url: str) -> tuple[requests.Response, str]:
        """GET ``url``, following up to 3 redirects, each hop checked against the allow-list."""
        target, t = url, self.settings.transport
        for _hop in range(4):
            self.check_host(target)
            # identity: the byte count must match Content-Length (no transparent gzip)
            resp = self.session.get(target, stream=True,
                                    timeout=(t.connect_timeout, t.download_timeout),
                                    allow_redirects=False, headers={"Accept-Encoding": "identity"})
            if not (resp.is_redirect and resp.headers.get("Location")):
                break
            target = urljoin(target, resp.headers["Location"])
            resp.close()
        return resp, target

    def _check_status(self, resp: requests.Response, attempt: int) -> None:
        """A non-200: retry later for 429/5xx (honouring Retry-After), otherwise the error itself."""
        if resp.status_code == 200:
            return
        code, message = protocol.oss_error(resp.text if resp.status_code < 600 else "")
        err = download_http_error(resp.status_code, code, message, attempt)
        if resp.status_code not in RETRY_STATUS:
            raise err
        wait = _retry_after(resp)
        raise _Retry(err, wait=min(wait, self.settings.transport.retry_after_max) if wait is not None else None)

    @staticmethod
    def _stream(resp: requests.Response, out: Sink, limit: int,
                cancel: threading.Event | None) -> tuple[int, int]:
        """Copy the body into ``out`` within ``limit`` bytes; return (bytes got, bytes declared)."""
        declared = _content_length(resp.headers.get("Content-Length"))
        if declared > limit:
            raise download_too_big(limit)
        got = 0
        for chunk in resp.iter_content(64 * 1024):
            if cancel is not None and cancel.is_set():
                raise cancelled()
            got += len(chunk)
            if got > limit:
                raise download_too_big(limit)
            out.write(chunk)
        return got, declared


class _Retry(Exception):
    """One download attempt failed in a way another attempt may fix (``final``: it cannot)."""

    def __init__(self, error: AliyunImageError, *, wait: float | None = None, final: bool = False):
        super().__init__(error.code)
        self.error, self.wait, self.final = error, wait, final


def plain_excerpt(body: str, limit: int = 160) -> str:
    """A short plain-text excerpt of an error page (a gateway's HTML 502): tags, scripts and
    runs of whitespace removed, so the user reads the words, not the markup."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", body or "")
    text = re.sub(r"(?s)<[^>]+>", " ", text)
    text = html.unescape(re.sub(r"\s+", " ", text)).strip()
    return text[:limit] + ("…" if len(text) > limit else "")


def _content_length(value: str | None) -> int:
    """Content-Length as an int; 0 (unknown) when absent or malformed (e.g. ``"12, 12"``)."""
    try:
        return max(0, int(str(value or "0").split(",")[0].strip()))
    except ValueError:
        return 0
