"""What a running emulator shares between its threads: :class:`EmulatorState`.

The :class:`~.server.Emulator` owns one and hands it to the HTTP server, which passes it to
the endpoints and the control surface. Those modules depend on this one only (never on the
server), so the serving code has no import cycle: server -> handler -> endpoints/control ->
state -> the stores.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field

from ..catalog import SEED_MAX
from .faults import FaultBook
from .inputs import Resolver
from .oss import OssBucket
from .records import Recorded
from .regions import BEIJING, key_region
from .render import InputStore
from .results import ServedImages
from .tasks import TaskStore

MAX_RECORDED = 20_000  # oldest records are dropped beyond this (long-running demo servers)

Latency = float | tuple[float, float]


@dataclass(eq=False)
class EmulatorState:
    """The stores, settings, recorded requests and counters of one emulator.

    Settings (``latency``, ``task_delay``, ``url_ttl``, ``policy_ttl``, ``api_keys``,
    ``region``, ``region_keys``) may be changed while serving; ``origin`` and ``base_url`` are
    set once the server is bound.
    ``lock`` guards ``requests``, the in-flight counters and ``rng``; the stores lock
    themselves.
    """

    inputs: InputStore
    results: ServedImages
    bucket: OssBucket
    tasks: TaskStore
    resolver: Resolver
    faults: FaultBook = field(default_factory=FaultBook)
    api_keys: set[str] | None = None
    region: str = BEIJING  # the region whose service this emulator plays (see .regions)
    region_keys: dict[str, str] = field(default_factory=dict)  # key -> the region it belongs to
    latency: Latency = 0.0
    task_delay: float = 0.6
    url_ttl: float = 86400.0
    policy_ttl: float = 300.0
    origin: str = ""
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0  # requests inside their latency right now
    peak_in_flight: int = 0  # the most at once since the last clear()
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def new(cls, *, fixed_image: bytes | None = None, seed: int = 0, **settings) -> EmulatorState:
        """Fresh, empty stores; ``settings`` are the dataclass's setting fields (``latency``...)."""
        secret = os.urandom(32)  # per instance: URLs and policies of another run are not accepted
        inputs = InputStore()
        results = ServedImages(inputs, secret, fixed_image=fixed_image)
        bucket = OssBucket(secret)
        resolver = Resolver(inputs, results, bucket, set())
        return cls(inputs, results, bucket, TaskStore(), resolver, rng=random.Random(seed), **settings)

    # --- recording -------------------------------------------------------------------------------
    def record(self, rec: Recorded) -> None:
        """Keep ``rec`` (the oldest are dropped beyond :data:`MAX_RECORDED`)."""
        with self.lock:
            self.requests.append(rec)
            if len(self.requests) > MAX_RECORDED:
                del self.requests[: len(self.requests) - MAX_RECORDED]

    def calls(self, endpoint: str) -> list[Recorded]:
        """Recorded requests of one endpoint, in order."""
        with self.lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def clear(self) -> None:
        """Forget recorded requests, pending faults and task outcomes; random faults off."""
        with self.lock:
            self.requests.clear()
            self.peak_in_flight = self.in_flight
        self.faults.clear()

    # --- helpers for the endpoints ---------------------------------------------------------------
    def key_ok(self, key: str) -> bool:
        """True when ``key`` is accepted: a key of ``region_keys``, one of ``api_keys`` if given,
        else any key that starts with ``sk-``, is at least 8 characters long and does not
        contain ``invalid``; and in every case the key belongs to :attr:`region` or to no
        region in particular (:func:`.regions.key_region`)."""
        region = key_region(key, self.region_keys)
        if region is not None and region != self.region:
            return False  # a key works only in its own region (models document, section 3)
        if key in self.region_keys:
            return True
        if self.api_keys is not None:
            return key in self.api_keys
        return key.startswith("sk-") and len(key) >= 8 and "invalid" not in key.lower()

    def random_seed(self) -> int:
        """A seed for a request that gave none (the service picks one at random too)."""
        with self.lock:
            return self.rng.randint(0, SEED_MAX)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True early if the emulator is stopping."""
        return self.stopping.wait(max(0.0, float(seconds))) if seconds > 0 else self.stopping.is_set()

    def sleep_latency(self, rec: Recorded | None = None) -> None:
        """Apply ``latency`` (a number, or a ``(low, high)`` uniform range), note it on ``rec``
        and count the requests inside it (``peak_in_flight``)."""
        lat = self.latency
        if isinstance(lat, (tuple, list)):
            with self.lock:
                lat = self.rng.uniform(float(lat[0]), float(lat[1]))
        if rec is not None:
            rec.latency = float(lat or 0.0)
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if lat and lat > 0:
                self.wait(lat)
        finally:
            with self.lock:
                self.in_flight -= 1

    def result_url(self, token: str, now: float | None = None) -> str:
        """The signed URL of one result, valid ``url_ttl`` seconds from ``now``."""
        return self.results.url(self.origin, token, self.url_ttl, now)

    def mint_urls(self, tokens: list[str]) -> list[str]:
        """Signed result URLs for ``tokens``, valid ``url_ttl`` seconds from now."""
        now = time.time()
        return [self.result_url(t, now) for t in tokens]
