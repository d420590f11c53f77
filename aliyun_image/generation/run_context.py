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
    running: int = 0  # requests out to the service now (holding a slot of the account's limit)
    finished: int = 0  # requests that came back (or gave up)

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
