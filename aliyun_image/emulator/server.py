"""The :class:`Emulator`: a local DashScope (Qwen-Image) server over real HTTP.

It is both the offline demo backend (``python -m aliyun_image emulator``) and the test double
of the client: it validates requests like the service (against :mod:`aliyun_image.catalog.spec`),
answers with the documented shapes, serves deterministic PNG results from signed, expiring
URLs, emulates the temporary-upload flow, records every request, and plays back scripted
faults. See ``shared/dashscope-protocol.md`` sections 3-6 for the wire protocol.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar, overload

from .faults import DEFAULT_500, ENDPOINTS, FaultBook
from .handler import EmulatorHTTPServer
from .inputs import Resolver
from .oss import OssBucket
from .records import Recorded
from .regions import BEIJING, region_name
from .render import InputThumbs
from .results import ServedImages
from .state import MAX_RECORDED, EmulatorState, Latency
from .tasks import TaskStore

T = TypeVar("T")


class _OnState(Generic[T]):
    """An :class:`Emulator` attribute that lives on its :class:`EmulatorState` (read and write),
    so ``emu.latency = 2.0`` reaches the serving threads the way it always did."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _OnState[T]: ...
    @overload
    def __get__(self, obj: Emulator, objtype: type | None = None) -> T: ...
    def __get__(self, obj: Emulator | None, objtype: type | None = None) -> T | _OnState[T]:
        if obj is None:
            return self
        value: T = getattr(obj.state, self.name)
        return value

    def __set__(self, obj: Emulator, value: T) -> None:
        setattr(obj.state, self.name, value)


class Emulator:
    """A DashScope-compatible HTTP server on ``host:port`` (port 0 = pick a free one).

    Use as a context manager (``with Emulator() as emu:``) or call :meth:`start` /
    :meth:`stop`. ``latency`` (seconds, or a ``(low, high)`` range) delays successful
    generation and task-creation replies, and ``image_latency`` adds that much per image to a
    generation reply; ``task_delay`` is how long an async task takes;
    ``url_ttl`` how long result URLs stay valid; ``policy_ttl`` how long an upload policy
    does; ``fixed_image`` makes every result serve those bytes (benchmarks); ``seed`` seeds
    the emulator's own random choices (seeds picked when a request gives none, latency range).

    Keys: with ``api_keys`` only those are accepted; otherwise any key that starts with
    ``sk-``, is at least 8 characters long and does not contain ``invalid``.

    Rate limit: ``task_limit`` (None = none) is the account's limit on tasks in flight per key
    (generations inside their latency plus unfinished async tasks); beyond it requests get 429
    ``Throttling.RateQuota``, with ``Retry-After: limit_retry_after`` when given. ``throttled``
    counts them; such requests are recorded with ``throttled=True`` and carried out never.

    Region: ``region`` is the place the emulator plays: a public region (``"beijing"``,
    ``"singapore"``, ``"us"``), a workspace host's region (``"eu-central-1"``,
    ``"ap-northeast-1"``, ``"cn-hongkong"``) or a platform with keys of its own (``"qianwen"``,
    ``"qwencloud"``). Models the catalogue does not offer there are 404 ``ModelNotFound`` (on a
    platform, whose offer the catalogue does not know, every model is served), and keys bound
    to another place get 401 ``InvalidApiKey``: keys listed in ``region_keys`` (key -> place,
    accepted there even when not in ``api_keys``) and test keys named ``sk-bj-...``,
    ``sk-sg-...``, ``sk-qianwen-...``... (see :mod:`.regions`). Other keys work in every Bailian
    region; the platforms refuse them (the Qianwen AI platform takes ``sk-ws-`` keys).
    """

    # Settings, stores and counters live on the shared state (see :mod:`.state`).
    api_keys: _OnState[set[str] | None] = _OnState()
    region: _OnState[str] = _OnState()
    region_keys: _OnState[dict[str, str]] = _OnState()
    latency: _OnState[Latency] = _OnState()
    image_latency: _OnState[float] = _OnState()
    task_delay: _OnState[float] = _OnState()
    url_ttl: _OnState[float] = _OnState()
    policy_ttl: _OnState[float] = _OnState()
    origin: _OnState[str] = _OnState()
    base_url: _OnState[str] = _OnState()
    requests: _OnState[list[Recorded]] = _OnState()
    in_flight: _OnState[int] = _OnState()
    peak_in_flight: _OnState[int] = _OnState()
    task_limit: _OnState[int | None] = _OnState()
    limit_retry_after: _OnState[float | None] = _OnState()
    throttled: _OnState[int] = _OnState()
    faults: _OnState[FaultBook] = _OnState()
    inputs: _OnState[InputThumbs] = _OnState()
    results: _OnState[ServedImages] = _OnState()
    bucket: _OnState[OssBucket] = _OnState()
    tasks: _OnState[TaskStore] = _OnState()
    resolver: _OnState[Resolver] = _OnState()

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_keys: set[str] | None = None,
                 latency: Latency = 0.0, task_delay: float = 0.6,
                 url_ttl: float = 86400.0, fixed_image: bytes | None = None, seed: int = 0,
                 policy_ttl: float = 300.0, region: str = BEIJING, region_keys: dict[str, str] | None = None,
                 task_limit: int | None = None, limit_retry_after: float | None = None, image_latency: float = 0.0):
        self.host = host
        self.port = port
        self.seed = seed
        keys = {key: region_name(where) for key, where in (region_keys or {}).items()}
        self.state = EmulatorState.new(
            fixed_image=fixed_image, seed=seed, api_keys=set(api_keys) if api_keys is not None else None,
            latency=latency, task_delay=task_delay, url_ttl=url_ttl, policy_ttl=policy_ttl,
            region=region_name(region), region_keys=keys, task_limit=task_limit,
            limit_retry_after=limit_retry_after, image_latency=image_latency)
        self._lock = threading.Lock()  # guards the lifecycle fields below
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = False

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
            self.state.stopping.clear()
            self._httpd = EmulatorHTTPServer((self.host, self.port), self.state)
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
        self.state.stopping.set()  # wakes faults that are sleeping (hang, slow) and latency sleeps
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
    def calls(self, endpoint: str) -> list[Recorded]:
        """Recorded requests of one endpoint (``"generation"``, ``"download"``...), in order."""
        return self.state.calls(endpoint)

    def clear(self) -> None:
        """Forget recorded requests, pending faults and task outcomes; random faults off; replies
        no longer held."""
        self.state.clear()

    def hold(self) -> None:
        """Hold the replies of generation requests (and async task creations) from now on: each is
        recorded, counted in flight and then waits, after its latency, until :meth:`release`.
        Tests use it to keep requests out while they act (Stop, a reload) on a machine of any speed."""
        self.state.gate.clear()

    def release(self) -> None:
        """Let held replies (and later ones) go."""
        self.state.gate.set()

    # --- fault injection (documented on :class:`.faults.FaultBook`) ------------------------------
    def fail(self, endpoint: str = "generation", *, status: int = 500, code: str = "InternalError",
             message: str = DEFAULT_500, times: int = 1, retry_after: float | None = None,
             body: bytes | str | None = None, content_type: str = "application/json") -> None:
        """Answer the next ``times`` requests of ``endpoint`` with an error (JSON, or a raw
        ``body``); see :meth:`.FaultBook.fail`."""
        self.faults.fail(endpoint, status=status, code=code, message=message, times=times,
                         retry_after=retry_after, body=body, content_type=content_type)

    def fault(self, kind: str, endpoint: str = "generation", *, times: int = 1, seconds: float = 0.0) -> None:
        """Misbehave (``reset``, ``hang``, ``missing_fields``...) on the next ``times`` requests
        of ``endpoint``; see :meth:`.FaultBook.fault`."""
        self.faults.fault(kind, endpoint, times=times, seconds=seconds)

    def download_fault(self, kind: str, *, times: int = 1, seconds: float = 2.0) -> None:
        """Misbehave (``truncate``, ``slow``, ``expired``, ``not_image``) on the next ``times``
        result downloads; see :meth:`.FaultBook.download_fault`."""
        self.faults.download_fault(kind, times=times, seconds=seconds)

    def task_outcome(self, status: str, *, code: str = "InternalError", message: str = DEFAULT_500,
                     times: int = 1) -> None:
        """Make the next ``times`` created tasks end as ``FAILED`` (with code/message),
        ``UNKNOWN`` or ``CANCELED`` instead of ``SUCCEEDED``."""
        self.faults.task_outcome(status, code=code, message=message, times=times)

    def random_faults(self, rate: float, *, seed: int = 0) -> None:
        """Fail each generation request with probability ``rate``: 500 InternalError,
        503 ModelUnavailable or 429 Throttling.RateQuota (Retry-After: 1). 0 turns it off."""
        self.faults.set_random(rate, seed)

    # --- helpers for the endpoints (see :class:`.state.EmulatorState`) ---------------------------
    def key_ok(self, key: str) -> bool:
        """True when ``key`` is accepted (see the class docstring)."""
        return self.state.key_ok(key)

    def random_seed(self) -> int:
        """A seed for a request that gave none (the service picks one at random too)."""
        return self.state.random_seed()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True early if the emulator is stopping."""
        return self.state.wait(seconds)

    def sleep_latency(self, rec: Recorded | None = None) -> None:
        """Apply :attr:`latency` (a number, or a ``(low, high)`` uniform range) and note it on
        ``rec``, so a load test can tell the emulator's delay from the client's own cost.
        Counts the requests inside it (:attr:`peak_in_flight`: how many a client had going at
        once, which shows whether its concurrency slots are free)."""
        self.state.sleep_latency(rec)

    def mint_urls(self, tokens: list[str]) -> list[str]:
        """Signed result URLs for ``tokens``, valid :attr:`url_ttl` seconds from now."""
        return self.state.mint_urls(tokens)

    def __repr__(self) -> str:
        state = self.base_url or "not started"
        return f"<Emulator {state} region={self.region}>"


__all__ = ["ENDPOINTS", "MAX_RECORDED", "Emulator", "Recorded"]
