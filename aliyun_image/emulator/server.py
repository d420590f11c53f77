"""The :class:`Emulator`: a local DashScope (Qwen-Image) server over real HTTP.

It is both the offline demo backend (``python -m aliyun_image emulator``) and the test double
of the client: it validates requests like the service (against :mod:`aliyun_image.catalog`),
answers with the documented shapes, serves deterministic PNG results from signed, expiring
URLs, emulates the temporary-upload flow, records every request, and plays back scripted
faults. See ``shared/dashscope-protocol.md`` sections 3-6 for the wire protocol.
"""

from __future__ import annotations

import os
import random
import threading
import time

from ..catalog import SEED_MAX
from .faults import DEFAULT_500, ENDPOINTS, KINDS, Fault, FaultBook, TaskOutcome
from .handler import EmulatorHTTPServer
from .inputs import Resolver
from .oss import OssBucket
from .records import Recorded
from .render import InputStore
from .results import ServedImages
from .tasks import TaskStore

MAX_RECORDED = 20_000  # oldest records are dropped beyond this (long-running demo servers)


class Emulator:
    """A DashScope-compatible HTTP server on ``host:port`` (port 0 = pick a free one).

    Use as a context manager (``with Emulator() as emu:``) or call :meth:`start` /
    :meth:`stop`. ``latency`` (seconds, or a ``(low, high)`` range) delays successful
    generation and task-creation replies; ``task_delay`` is how long an async task takes;
    ``url_ttl`` how long result URLs stay valid; ``policy_ttl`` how long an upload policy
    does; ``fixed_image`` makes every result serve those bytes (benchmarks); ``seed`` seeds
    the emulator's own random choices (seeds picked when a request gives none, latency range).

    Keys: with ``api_keys`` only those are accepted; otherwise any key that starts with
    ``sk-``, is at least 8 characters long and does not contain ``invalid``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_keys: set[str] | None = None,
                 latency: float | tuple[float, float] = 0.0, task_delay: float = 0.6,
                 url_ttl: float = 86400.0, fixed_image: bytes | None = None, seed: int = 0,
                 policy_ttl: float = 300.0):
        self.host = host
        self.port = port
        self.api_keys = set(api_keys) if api_keys is not None else None
        self.latency = latency
        self.task_delay = task_delay
        self.url_ttl = url_ttl
        self.policy_ttl = policy_ttl
        self.seed = seed
        self.requests: list[Recorded] = []
        self.in_flight = 0  # requests inside their latency right now
        self.peak_in_flight = 0  # the most at once since the last clear()
        self.faults = FaultBook()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = False
        self.origin = ""
        self.base_url = ""
        secret = os.urandom(32)  # per instance: URLs and policies of another run are not accepted
        self.inputs = InputStore()
        self.results = ServedImages(self.inputs, secret, fixed_image=fixed_image)
        self.bucket = OssBucket(secret)
        self.tasks = TaskStore()
        self.resolver = Resolver(self.inputs, self.results, self.bucket, set())

    @property
    def fixed_image(self) -> bytes | None:
        """Bytes every result serves instead of a render (None = render)."""
        return self.results.fixed_image

    @fixed_image.setter
    def fixed_image(self, value: bytes | None) -> None:
        self.results.fixed_image = value

    # --- lifecycle -------------------------------------------------------------------------------
    def _bind(self) -> EmulatorHTTPServer:
        if self._httpd is None:
            self._stopping.clear()
            self._httpd = EmulatorHTTPServer((self.host, self.port), self)
            self.port = self._httpd.server_address[1]
            url_host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
            self.origin = f"http://{url_host}:{self.port}"
            self.base_url = self.origin + "/api/v1"
            self.resolver.own_hosts = {f"{h}:{self.port}" for h in (url_host, "127.0.0.1", "localhost")}
        return self._httpd

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; returns self (``base_url`` is valid afterwards)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        httpd = self._bind()
        self._serving = True
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"dashscope-emulator:{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until Ctrl+C (or :meth:`stop` from another thread)."""
        try:
            thread = self._thread
            if thread is not None and thread.is_alive():  # start() was called: just block
                while thread.is_alive():
                    thread.join(0.5)
                return
            httpd = self._bind()
            self._serving = True
            httpd.serve_forever(poll_interval=0.25)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, close the listening socket and drop open connections (idempotent)."""
        with self._lock:  # stop() may race with serve_forever()'s own cleanup
            httpd, self._httpd = self._httpd, None
            serving, self._serving = self._serving, False
            thread, self._thread = self._thread, None
        if httpd is None:
            return
        self._stopping.set()  # wakes faults that are sleeping (hang, slow) and latency sleeps
        if serving and thread is not threading.current_thread():
            httpd.shutdown()  # returns once serve_forever() has left its loop
        httpd.server_close()
        httpd.close_open_sockets()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- recording -------------------------------------------------------------------------------
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)
            if len(self.requests) > MAX_RECORDED:
                del self.requests[: len(self.requests) - MAX_RECORDED]

    def calls(self, endpoint: str) -> list[Recorded]:
        """Recorded requests of one endpoint (``"generation"``, ``"download"``...), in order."""
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def clear(self) -> None:
        """Forget recorded requests, pending faults and task outcomes; random faults off."""
        with self._lock:
            self.requests.clear()
            self.peak_in_flight = self.in_flight
        self.faults.clear()

    # --- fault injection -------------------------------------------------------------------------
    def fail(self, endpoint: str = "generation", *, status: int = 500, code: str = "InternalError",
             message: str = DEFAULT_500, times: int = 1, retry_after: float | None = None,
             body: bytes | str | None = None, content_type: str = "application/json") -> None:
        """Answer the next ``times`` requests of ``endpoint`` with an error.

        By default a DashScope JSON error (``code``, ``message``); with ``body`` that raw body
        and ``content_type`` instead (e.g. an HTML 502 from a proxy). ``retry_after`` adds a
        ``Retry-After`` header.
        """
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        self.faults.add(endpoint, Fault("fail", int(times), status, code, message,
                                        None if retry_after is None else float(retry_after),
                                        body, content_type))

    def fault(self, kind: str, endpoint: str = "generation", *, times: int = 1, seconds: float = 0.0) -> None:
        """Misbehave on the next ``times`` requests of ``endpoint``.

        ``reset``: read the request, close the socket without a reply. ``hang``: wait
        ``seconds``, then answer normally. ``missing_fields``: HTTP 200 with a request_id but
        without ``output.choices`` / ``output.results`` / ``output.task_id`` / ``data``.
        The download kinds (``truncate``, ``slow``, ``expired``, ``not_image``) work here too.
        """
        if kind == "fail" or kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use fail() for error replies")
        self.faults.add(endpoint, Fault(kind, int(times), seconds=float(seconds)))

    def download_fault(self, kind: str, *, times: int = 1, seconds: float = 2.0) -> None:
        """Misbehave on the next ``times`` result downloads.

        ``truncate``: full Content-Length, half the bytes, then close. ``slow``: the body in
        ~10 chunks spread over ``seconds``. ``expired``: 403 OSS XML ``AccessDenied``
        "Request has expired.". ``not_image``: 200 ``text/html``.
        """
        self.fault(kind, "download", times=times, seconds=seconds)

    def task_outcome(self, status: str, *, code: str = "InternalError", message: str = DEFAULT_500,
                     times: int = 1) -> None:
        """Make the next ``times`` created tasks end as ``FAILED`` (with code/message),
        ``UNKNOWN`` or ``CANCELED`` instead of ``SUCCEEDED``."""
        self.faults.add_outcome(TaskOutcome(str(status).upper(), code, message, int(times)))

    def random_faults(self, rate: float, *, seed: int = 0) -> None:
        """Fail each generation request with probability ``rate``: 500 InternalError,
        503 ModelUnavailable or 429 Throttling.RateQuota (Retry-After: 1). 0 turns it off."""
        self.faults.set_random(rate, seed)

    # --- helpers for the endpoints ---------------------------------------------------------------
    def key_ok(self, key: str) -> bool:
        """True when ``key`` is accepted (see the class docstring)."""
        if self.api_keys is not None:
            return key in self.api_keys
        return key.startswith("sk-") and len(key) >= 8 and "invalid" not in key.lower()

    def random_seed(self) -> int:
        """A seed for a request that gave none (the service picks one at random too)."""
        with self._lock:
            return self._rng.randint(0, SEED_MAX)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True early if the emulator is stopping."""
        return self._stopping.wait(max(0.0, float(seconds))) if seconds > 0 else self._stopping.is_set()

    def sleep_latency(self, rec: Recorded | None = None) -> None:
        """Apply :attr:`latency` (a number, or a ``(low, high)`` uniform range) and note it on
        ``rec``, so a load test can tell the emulator's delay from the client's own cost.
        Counts the requests inside it (:attr:`peak_in_flight`: how many a client had going at
        once, which shows whether its concurrency slots are free)."""
        lat = self.latency
        if isinstance(lat, (tuple, list)):
            with self._lock:
                lat = self._rng.uniform(float(lat[0]), float(lat[1]))
        if rec is not None:
            rec.latency = float(lat or 0.0)
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if lat and lat > 0:
                self.wait(lat)
        finally:
            with self._lock:
                self.in_flight -= 1

    def mint_urls(self, tokens: list[str]) -> list[str]:
        """Signed result URLs for ``tokens``, valid :attr:`url_ttl` seconds from now."""
        now = time.time()
        return [self.results.url(self.origin, t, self.url_ttl, now) for t in tokens]

    def __repr__(self) -> str:
        state = self.base_url or "not started"
        return f"<Emulator {state}>"


__all__ = ["Emulator", "Recorded", "ENDPOINTS"]
