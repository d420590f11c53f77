"""What the requests of one run share while :meth:`aliyun_image.generation.service.ImageService.run` sends
them: the job, the wire references of its images, the key for this call, the owner, the download
pool and the progress callback. The key lives here for the run only, never beyond it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..storage import InputStore, keep_job_inputs
from ..jobs import Job


@dataclass(frozen=True)
class BatchPart:
    """A run that is one request of a stored batch (:mod:`.batch`): the batch's id (every result
    carries it), the ``idx`` of the request's first image among the batch's images, and what to do
    just before the request goes out (the batch writes "sent" to disk then: after a crash, a unit
    that may have been billed is never sent again)."""

    batch_id: str
    idx: int
    on_send: Callable[[], None]


class Inline:
    """Stands in for a thread pool when there is one download: runs it right away."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` now."""
        fn(*args)


@dataclass
class RunContext:
    """What every request of one run shares."""

    job: Job
    refs: list[str]
    uses_oss: bool
    key: str
    owner: str | None
    batch_id: str
    dl_pool: ThreadPoolExecutor | Inline
    record: Callable[..., None]  # takes a service Event (and settled=True when its hold share is gone)
    cancel: threading.Event | None
    settle: Callable[[], None] | None = None  # one image's share of the run's budget hold goes
    kept: bool = False  # the job's input images are kept (see keep_inputs)
    keep_lock: threading.Lock = field(default_factory=threading.Lock)
    part_of: BatchPart | None = None  # one request of a stored batch
    _parents: list[dict] | None = None  # the results' lineage, found once (see parents_once)
    running: int = 0  # requests out to the service now (holding a slot of the account's limit)
    finished: int = 0  # requests that came back (or gave up)

    def sending(self, retry_throttled: bool) -> bool:
        """Called in the scheduler's slot right before the HTTP request (again after a 429, which
        was not billed): tells a batch its unit is going out. Returns ``retry_throttled`` as is."""
        if self.part_of is not None:
            self.part_of.on_send()
        return retry_throttled

    def progress(self, report: Callable[[int, int], None], running: int = 0, finished: int = 0) -> None:
        """Count requests sent (``running`` +1), back (-1) or done with (``finished`` +1), and
        ``report(out now, still waiting for their turn)``; under the lock, so reports from the
        run's threads reach the page in the order of the counts."""
        with self.keep_lock:
            self.running += running
            self.finished += finished
            report(self.running, max(0, self.job.requests - self.running - self.finished))

    def keep_inputs(self, inputs: InputStore) -> None:
        """Keep the job's input images, once per run, when the service has made something: a run
        refused before any result (a made-up key, say) leaves nothing on the disk."""
        with self.keep_lock:
            if not self.kept:
                keep_job_inputs(inputs, self.job.images, self.owner)
                self.kept = True

    def parents_once(self, find: Callable[[], list[dict]]) -> list[dict]:
        """The lineage every result of the run carries (``find()``: :func:`.lineage.job_parents`), looked for
        once, when the first result is recorded (reading the inputs' stored files costs a little)."""
        with self.keep_lock:
            if self._parents is None:
                self._parents = find()
            return self._parents
