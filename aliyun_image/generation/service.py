"""Use cases: generate, edit, fuse -> downloaded, stored results.

This is the one API the CLI and the UI call. A call validates (:mod:`.jobs`), sends one or
more requests (fan-out for models fixed at n=1), records every result URL with its expiry
*before* downloading, downloads all results concurrently into the store, and returns a
:class:`Batch` of what succeeded and what failed. Progress arrives through ``on_event`` as
each image lands, so a UI can show it at once.

The API key is a per-call argument (or the settings' key): the service keeps none of its own,
so one service can serve many hosted visitors.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from collections.abc import Callable, Iterator, Sequence

from ..catalog import get_model
from ..money import billing, budget
from ..dashscope import protocol
from ..dashscope import DashScopeClient
from ..dashscope import Generation, url_expiry
from .downloads import download_to, verify_image
from ..recipes import png_texts
from ..config import Settings, require_key
from ..errors import (
    AliyunImageError,
    ApiError,
    CancelledError,
    DownloadError,
    StorageError,
    TaskFailedError,
    TaskGoneError,
    cancelled,
    task_unfollowed,
    unexpected,
)
from ..i18n import Message, msg
from ..jobs import Job, Parent, build_job, check_offered, merge_parents
from ..storage import Journaled
from ..dashscope import image_refs
from ..storage import InputStore
from .run_context import BatchPart, Inline, RunContext
from .lineage import job_parents, resolve_refs
from ..enums import Endpoint, EventKind, Status, Task
from ..images.pngtext import PngTextWriter
from ..storage import saved_later, storage_error
from ..storage import NewResult, Record, ResultStore
from ..dashscope import Scheduler, queued_text
from .outcome import Note

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from 3.11; annotations only

log = logging.getLogger(__name__)


@dataclass
class Event:
    """Progress of a running job (see :class:`~aliyun_image.enums.EventKind`)."""

    kind: EventKind
    record: Record | None = None
    error: AliyunImageError | None = None
    text: Message | None = None  # the status line of a status event, rendered by whoever shows it
    done: int = 0
    total: int = 0
    # A progress event's counts of the run's requests: out to the service now, and waiting for a
    # slot of the account's limit (or a thread). None on every other event.
    running: int | None = None
    queued: int | None = None
    # A batch unit's new state (its first image's place, how many images, the state: sent, done,
    # failed, ...): the page tells "sent, on its way" from "waiting its turn", and a failure at once.
    # None on every other event.
    unit: tuple[int, int, str] | None = None


@dataclass
class Batch:
    """The outcome of one user action: stored results, failures, notes for the user."""

    job: Job
    results: list[Record] = field(default_factory=list)
    failures: list[AliyunImageError] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def raise_if_empty(self) -> Batch:
        """Raise the first failure when nothing succeeded (so callers can just show the error)."""
        if not self.results and self.failures:
            raise self.failures[0]
        return self


class JobOptions(TypedDict, total=False):
    """What a user may choose for a job (see :func:`aliyun_image.jobs.build_job`)."""

    model: str | None  # a model id; None: Plus, or Max with ``best``
    best: bool  # the product rule: Max when the user asks for the best quality
    size: str | None  # "W*H", a ratio like "16:9", or None for the model's default
    n: int | str  # images wanted
    seed: int | str | None  # None / -1 / "random": drawn here and recorded
    negative: str | None  # None: the product default; "": none
    prompt_extend: bool  # let the service rewrite the prompt
    watermark: bool
    use_async: bool  # the async task API (models that have it)
    extend_mode: str | None  # prompt_extend_mode "direct" / "agent" (models that take it); None: not sent
    thinking: bool | None  # enable_thinking (models that take it; acts with rewriting on); None: not sent
    parents: Sequence[Parent]  # the stored results this run comes from (a variation's source...): its lineage


def reply_params(gen: Generation | None) -> dict[str, Any]:
    """What a reply says of the request that is kept with its parameters: ``rewrite_status`` (the
    3.0 line's word on the prompt rewriting), when the reply has one."""
    return {"rewrite_status": gen.rewrite_status} if gen is not None and gen.rewrite_status is not None else {}


class ImageService:
    """Generate, edit and fuse images; every result is downloaded and stored at once."""

    def __init__(self, settings: Settings, store: ResultStore | None = None,
                 client: DashScopeClient | None = None, scheduler: Scheduler | None = None):
        self.settings = settings
        self.store = store or ResultStore.open(settings.data_dir, fsync=settings.fsync)
        self.client = client or DashScopeClient(settings)
        self.scheduler = scheduler or Scheduler(settings)  # every run and visitor waits its turn here
        self._lock = threading.Lock()
        self._unrecorded: list[NewResult] = []  # paid results whose rows did not fit on the disk
        # Rows whose download a run of this service has in hand: resume leaves them to it. (A row's
        # own error field cannot say so: on a full disk even marking it may fail.)
        self._downloading: set[int] = set()
        self.inputs = InputStore(self.store.root, fsync=settings.fsync)  # kept input images (for reuse)

    # --- public use cases -------------------------------------------------------------------------
    def plan(self, task: str, prompt: str | None, images: Sequence[Any] = (), *, owner: str | None = None,
             **options: Unpack[JobOptions]) -> Job:
        """Validate a request without calling the API (raises ValidationError). An image written ``#12`` is
        stored result 12 (``owner``'s; hosted, none without an owner), recorded as the results' parent."""
        h = self.settings.hosting
        images, named = resolve_refs(self.store, task, images, owner, h.hosted)
        if named:
            options["parents"] = merge_parents(options.get("parents", ()), named)
        image_options = {"allow_local_paths": not h.hosted or bool(h.input_dirs),
                         "allowed_dirs": list(h.input_dirs) or None,
                         "allow_private_urls": not h.hosted}
        job = build_job(task, prompt, images=images, image_options=image_options, **options)
        check_offered(job, self.settings)
        return job

    def generate(self, prompt: str, *, api_key: str | None = None, owner: str | None = None,
                 on_event: Callable[[Event], None] | None = None, cancel: threading.Event | None = None,
                 **options: Unpack[JobOptions]) -> Batch:
        """Text-to-image: plan (see :class:`JobOptions`), then :meth:`run`."""
        job = self.plan(Task.T2I, prompt, **options)
        return self.run(job, api_key=api_key, owner=owner, on_event=on_event, cancel=cancel)

    def edit(self, images: Sequence[Any], instruction: str, *, api_key: str | None = None,
             owner: str | None = None, on_event: Callable[[Event], None] | None = None,
             cancel: threading.Event | None = None, **options: Unpack[JobOptions]) -> Batch:
        """Edit 1-3 images (URL, oss://, path, bytes or PIL) following ``instruction``."""
        job = self.plan(Task.EDIT, instruction, images, owner=owner, **options)
        return self.run(job, api_key=api_key, owner=owner, on_event=on_event, cancel=cancel)

    def fuse(self, images: Sequence[Any], instruction: str, *, api_key: str | None = None,
             owner: str | None = None, on_event: Callable[[Event], None] | None = None,
             cancel: threading.Event | None = None, **options: Unpack[JobOptions]) -> Batch:
        """Fuse 2-3 ordered images (slots 1-3, up to 10 where the model takes them) following
        ``instruction``; an instruction naming an image not given is refused before sending."""
        job = self.plan(Task.FUSE, instruction, images, owner=owner, **options)
        return self.run(job, api_key=api_key, owner=owner, on_event=on_event, cancel=cancel)

    def start(self, job: Job, on_event: Callable[[Event], None], *, api_key: str | None = None,
              owner: str | None = None, cancel: threading.Event | None = None) -> threading.Event:
        """Run ``job`` in a background thread, handing each event to ``on_event``; return the
        job's cancel flag.

        ``on_event`` is called from the worker thread as things happen, and the last event has
        ``kind == EventKind.DONE`` whatever happened. Setting the flag stops further requests (those
        already sent finish and are stored: they were paid for). A failure that stops the whole
        job becomes one failure event per wanted image, so counts stay right; a bug becomes an
        "unexpected" event, never a traceback.
        """
        flag = cancel or threading.Event()

        def work() -> None:
            try:
                self.run(job, api_key=api_key, owner=owner, on_event=on_event, cancel=flag)
            except AliyunImageError as exc:
                for _ in range(job.n):
                    on_event(Event(EventKind.FAILURE, error=exc))
            except Exception as exc:  # a UI must never see a traceback
                log.exception("unexpected error in job")
                on_event(Event(EventKind.FAILURE, error=unexpected(exc)))
            finally:
                on_event(Event(EventKind.DONE))

        threading.Thread(target=work, daemon=True, name="aliyun-image-job").start()
        return flag

    def stream(self, job: Job, *, api_key: str | None = None, owner: str | None = None,
               cancel: threading.Event | None = None) -> Iterator[Event]:
        """:meth:`start`, as a blocking iterator; closing it early sets the cancel flag."""
        q: queue.Queue[Event] = queue.Queue()
        cancel = self.start(job, q.put, api_key=api_key, owner=owner, cancel=cancel)
        try:
            while True:
                ev = q.get()
                yield ev
                if ev.kind == EventKind.DONE:
                    return
        finally:
            cancel.set()

    def run(self, job: Job, *, api_key: str | None = None, owner: str | None = None,
            on_event: Callable[[Event], None] | None = None,
            cancel: threading.Event | None = None, part_of: BatchPart | None = None) -> Batch:
        """Execute a validated job (see :meth:`_run`) within the budget: a run whose estimate would
        cross the daily or monthly budget is refused before any request (ValidationError).

        ``part_of``: the job is one request of a stored batch (:mod:`.batch`): its results carry the
        batch's id and their place in it, and the batch hears just before the request goes out."""
        key = require_key(api_key or self.settings.api_key, self.settings)
        if not self.store.files.journal.ensure():  # no room to keep what the run would pay for: send nothing
            raise self.store.files.disk_full_error()
        token = billing.hold_run(self.store, self.settings, job, key, owner)
        try:
            return self._run(job, api_key=key, owner=owner, on_event=on_event, cancel=cancel,
                             settle=lambda: billing.settle_one(self.store, self.settings, job, token),
                             part_of=part_of)
        finally:
            budget.release(self.store, token)

    def _run(self, job: Job, *, api_key: str | None = None, owner: str | None = None,
             on_event: Callable[[Event], None] | None = None,
             cancel: threading.Event | None = None, settle: Callable[[], None] | None = None,
             part_of: BatchPart | None = None) -> Batch:
        """Execute a validated job: requests (concurrently when fanning out), downloads, storing.

        Partial success is normal: the batch keeps every stored result and every failure.
        Raises only for problems that stop the whole job before any request (no key, upload).
        Returns only when every request has finished and every download has been stored, so a
        result the user paid for is never left behind by a crash in a sibling request.
        """
        key = require_key(api_key or self.settings.api_key, self.settings)
        emit = on_event or (lambda ev: None)
        batch = Batch(job, notes=list(job.notes))
        batch_id = part_of.batch_id if part_of is not None else uuid.uuid4().hex[:12]
        lock = threading.Lock()
        refs = image_refs(self.settings, self.client, job, key,
                          lambda: emit(Event(EventKind.STATUS, text=msg("run.uploading"))))

        def record(ev: Event, settled: bool = False) -> None:
            with lock:
                if ev.record is not None:
                    batch.results.append(ev.record)
                if ev.error is not None:
                    batch.failures.append(ev.error)
                ev.done, ev.total = len(batch.results) + len(batch.failures), job.n
            if settle is not None and not settled and (ev.record is not None or ev.error is not None):
                settle()  # this image's charge is recorded: its share of the run's budget hold goes
            try:
                emit(ev)
            except Exception:  # a broken progress callback must not undo a stored result
                log.warning("progress callback failed", exc_info=True)

        uses_oss = any(r.startswith("oss://") for r in refs)
        if job.requests == 1 and job.per_request == 1:
            # One request, one image (the common case): nothing to overlap, so no thread pools;
            # creating and joining two pools per call was most of our overhead over a bare client.
            ctx = RunContext(job, refs, uses_oss, key, owner, batch_id, Inline(), record, cancel, settle,
                             part_of=part_of)
            self._one_request(ctx, 0, job.seeds[0])
            return batch
        parallel = self.settings.concurrency.max_parallel
        req_pool = ThreadPoolExecutor(max(1, min(parallel, job.requests)), thread_name_prefix="aliyun-image-req")
        dl_pool = ThreadPoolExecutor(max(2, parallel * 2), thread_name_prefix="aliyun-image-dl")
        ctx = RunContext(job, refs, uses_oss, key, owner, batch_id, dl_pool, record, cancel, settle,
                         part_of=part_of)
        try:
            futures = [req_pool.submit(self._one_request, ctx, i, seed) for i, seed in enumerate(job.seeds)]
            for i, f in enumerate(futures):
                try:
                    f.result()
                except Exception as exc:  # _one_request reports its own errors; this is a bug
                    log.error("request %d failed unexpectedly", i, exc_info=True)
                    for _ in range(job.per_request):
                        record(Event(EventKind.FAILURE, error=unexpected(exc)))
        finally:
            req_pool.shutdown(wait=True)
            dl_pool.shutdown(wait=True)
        batch.results.sort(key=lambda r: (r.idx, r.id))
        return batch

    # --- steps ---------------------------------------------------------------------------------

    def _new_result(self, ctx: RunContext, idx: int, seed: int, url: str, gen: Generation | None,
                    request_id: str = "", extra_params: dict | None = None) -> NewResult:
        job = ctx.job
        ctx.keep_inputs(self.inputs)  # now that the service made something (see RunContext)
        if ctx.part_of is not None:  # its place among the batch's images (a batch shares one batch_id)
            idx += ctx.part_of.idx
        return NewResult(batch_id=ctx.batch_id, idx=idx, task=job.task, model=job.model, prompt=job.prompt,
                         negative=job.negative, params={**job.params(), **(extra_params or {}), **reply_params(gen)},
                         seed=seed,
                         inputs=job.input_refs(), request_id=gen.request_id if gen else request_id,
                         usage=gen.usage if gen else {}, actual_prompt=gen.actual_prompt if gen else None,
                         url=url, url_expires=url_expiry(url) if url else None, owner=ctx.owner,
                         parents=ctx.parents_once(lambda: job_parents(self.store, job, ctx.owner,
                                                                      self.settings.hosting.hosted)),
                         # the first image of a request carries the request's input image fee
                         **billing.billed_fields(self.settings, job, ctx.key, gen.usage if gen else None,
                                                 first=idx % max(1, job.per_request) == 0))

    def _one_request(self, ctx: RunContext, i: int, seed: int) -> None:
        """One API request, in its turn (:mod:`.scheduler`); its results are recorded, then downloaded."""
        job, want = ctx.job, ctx.job.per_request
        try:
            if ctx.cancel is not None and ctx.cancel.is_set():
                raise cancelled()
            if job.endpoint == Endpoint.ASYNC:
                rid = self._scheduled(ctx, lambda retry: self._one_task(ctx, i, seed, ctx.sending(retry)))
                with self._lock:  # from here on the run downloads it: resume leaves it alone
                    self._downloading.add(rid)
                ctx.dl_pool.submit(self._download_and_record, rid, ctx.record)
                return
            body = protocol.sync_body(job, seed, ctx.refs)
            reply = self._scheduled(ctx, lambda retry: self.client.generate(
                ctx.key, body, oss_resolve=ctx.uses_oss, cancel=ctx.cancel, retry_throttled=ctx.sending(retry)))
            gen = protocol.parse_generation(reply)
        except AliyunImageError as exc:
            if job.endpoint != Endpoint.ASYNC:  # _one_task records its own
                billing.record_maybe(self.store, self.settings, ctx, exc, want)
            for _ in range(want):
                ctx.record(Event(EventKind.FAILURE, error=exc))
            return
        self._store_and_download(ctx, [self._new_result(ctx, i * want + k, seed, url, gen)
                                       for k, url in enumerate(gen.urls)])
        for _ in range(want - len(gen.urls)):  # the service returned fewer images than asked
            ctx.record(Event(EventKind.FAILURE, error=ApiError(
                msg("run.fewer_images"), code="PartialResult", request_id=gen.request_id)))

    def _scheduled(self, ctx: RunContext, send: Callable[[bool], Any]) -> Any:
        """``send(retry_throttled)`` in a slot of the account's limit; the status says when it waits,
        and a progress event says how many of the run's requests are out and how many wait each
        time one is sent or comes back (the scheduler's truth: a request counts as running only
        once it holds a slot)."""
        def on_wait(limit: int) -> None:  # once per run and limit: "Queued: account limit 2 at a time"
            ctx.record(Event(EventKind.STATUS, text=queued_text(limit)))

        def report(out: int, waiting: int) -> None:
            ctx.record(Event(EventKind.STATUS, running=out, queued=waiting))

        def progress(running: int = 0, finished: int = 0) -> None:
            ctx.progress(report, running, finished)

        def counted(retry: bool) -> Any:
            progress(running=1)
            try:
                return send(retry)
            finally:
                progress(running=-1)

        try:
            return self.scheduler.call(ctx.key, ctx.job.model, ctx.batch_id, counted, cancel=ctx.cancel,
                                       on_wait=on_wait)
        finally:
            progress(finished=1)

    def _one_task(self, ctx: RunContext, i: int, seed: int, retry_throttled: bool = True) -> int:
        """Async endpoint: the task is recorded as soon as it exists, so a crash, a timeout or a
        Stop while it runs cannot lose it (``resume`` polls it again). Returns the row to download."""
        job = ctx.job
        try:
            created = self.client.create_task(ctx.key, protocol.task_body(job, seed, ctx.refs),
                                              path=protocol.task_create_path(job.spec), oss_resolve=ctx.uses_oss,
                                              retry_throttled=retry_throttled)
        except AliyunImageError as exc:
            billing.record_maybe(self.store, self.settings, ctx, exc, 1)
            raise
        task_id = protocol.parse_task_id(created)
        (rid,) = self.store.add_pending([self._new_result(ctx, i, seed, "", None, created.request_id,
                                                          {"task_id": task_id})])
        try:
            gen = self.client.wait_task(ctx.key, task_id, model=job.model, cancel=ctx.cancel)
        except TaskFailedError as exc:  # the task's own answer (FAILED, CANCELED): not billed
            self.store.mark(rid, Status.FAILED, exc.code)
            raise
        except TaskGoneError as exc:  # UNKNOWN: it may have run (maybe billed); nothing to collect
            billing.record_maybe(self.store, self.settings, ctx, exc, 1, rid)
            self.store.mark(rid, Status.EXPIRED, exc.code)
            raise
        except AliyunImageError as exc:
            # Whatever became of our polls (timeout, 5xx, an unreadable reply, Stop), the accepted
            # task runs and is billed: the row stays pending with its task id (maybe billed) and
            # `resume` collects it later.
            billing.record_maybe(self.store, self.settings, ctx, exc, 1, rid)
            raise exc if isinstance(exc, CancelledError) else task_unfollowed(task_id, exc) from None
        self._set_url(rid, gen)
        return rid

    def _set_url(self, rid: int, gen: Generation) -> None:
        """Record a finished task's result on its row (async tasks make one image each), with what
        the reply said of the rewriting next to the rewritten prompt."""
        url = gen.urls[0]
        extra = reply_params(gen)
        rec = self.store.get(rid) if extra or gen.usage else None
        self.store.records.set_url(rid, url=url, url_expires=url_expiry(url), request_id=gen.request_id,
                                   usage=gen.usage, actual_prompt=gen.actual_prompt,
                                   params={**rec.params, **extra} if rec is not None and extra else None,
                                   billed=self._billed(rec, gen) if rec is not None else None)

    def _billed(self, rec: Record, gen: Generation) -> dict | None:
        """A task's row priced as its finished poll's ``usage`` billed it (the row was priced by
        the estimate when the task was created); None for rows of no known model or region."""
        spec = get_model(rec.model)
        if spec is None or not rec.region or rec.price is None:
            return None
        p = rec.params
        return billing.billed_price(spec, rec.region, bool(p.get("prompt_extend")), p.get("size"), len(rec.inputs),
                                    gen.usage, first=True)

    def _store_and_download(self, ctx: RunContext, news: list[NewResult]) -> None:
        """Record result URLs first, then download them concurrently."""
        try:
            ids = self.store.add_pending(news)
        except Journaled as exc:  # on disk, in the journal: indexed and downloaded once there is room
            for _ in news:
                ctx.record(Event(EventKind.FAILURE, error=exc))
            return
        except AliyunImageError as exc:
            # Not even the journal had room (it is preallocated, so this is rare): keep the rows
            # in memory for the periodic retry, and hand the user the URLs (valid 24 h).
            with self._lock:
                self._unrecorded.extend(news)
            urls = "\n".join(n.url for n in news)
            # The download command is the CLI's; a hosted visitor has none.
            key = "run.result_urls" if self.settings.hosting.hosted else "run.result_urls_download"
            err = exc.with_text(msg(key, error=exc.msg, urls=urls))
            for _ in news:
                ctx.record(Event(EventKind.FAILURE, error=err))
            return
        # Each row's charge is recorded now, with its URL: its share of the run's budget hold goes in the
        # same breath, or another run checking the budget meanwhile would count the image twice (billed
        # and held) until its download ends. Its later result or failure event settles nothing more.
        if ctx.settle is not None:
            for _ in ids:
                ctx.settle()
        with self._lock:  # from here on the run downloads them: resume leaves them alone
            self._downloading.update(ids)
        for rid in ids:
            ctx.dl_pool.submit(self._download_and_record, rid, functools.partial(ctx.record, settled=True))

    def _download_and_record(self, rid: int, record: Callable[[Event], None]) -> None:
        try:
            rec = self.fetch(rid)
        except AliyunImageError as exc:
            record(Event(EventKind.FAILURE, error=exc))
            return
        except Exception as exc:  # never lose the batch over one odd file
            log.error("download %s failed unexpectedly", rid, exc_info=True)
            record(Event(EventKind.FAILURE, error=unexpected(exc)))
            return
        finally:
            with self._lock:
                self._downloading.discard(rid)
        record(Event(EventKind.RESULT, record=rec))

    def fetch(self, rid: int) -> Record:
        """Download stored result ``rid`` from its URL into the store (also used to resume).

        On a transient failure the row stays ``pending`` (retried at next start while the URL
        lives); an expired URL marks it ``expired``; a reply that is not an image, ``failed``.
        """
        rec = self.store.get(rid)
        if rec is None:
            raise KeyError(rid)
        if rec.status == Status.DONE:
            return rec
        if not self.store.files.ensure_reserve():
            # The disk is full: writing now would eat the space kept for recording paid results.
            # The row is recorded (pending) already, so what the user is told stays "saved later"
            # even when the note of why cannot be written either.
            with contextlib.suppress(AliyunImageError):
                self.store.mark(rid, Status.PENDING, "Storage.DiskFull")
            raise saved_later(self.store.files.disk_full_error())
        try:
            with self.store.files.partial(rid) as fh:
                self.client.download(rec.url, PngTextWriter(fh, png_texts(rec)))
                width, height = verify_image(Path(fh.name), rec.request_id, self.store.show_paths)
                return self.store.commit_file(rid, fh, width=width, height=height)
        except DownloadError as exc:
            status = Status.EXPIRED if exc.code == "Download.Expired" else (
                Status.FAILED if exc.code in ("Download.NotImage", "Download.HostNotAllowed", "Download.TooLarge")
                else Status.PENDING)
            with contextlib.suppress(AliyunImageError):  # the download's error is the one to tell
                self.store.mark(rid, status, exc.code)
            raise
        except (OSError, StorageError) as exc:
            # Writing the file failed (disk full, read-only): the URL is still recorded, so the row
            # stays pending and the periodic retry (or the next start, or `resume`) finishes it.
            err = exc if isinstance(exc, StorageError) else storage_error(self.store.root, exc, self.store.show_paths)
            with contextlib.suppress(AliyunImageError):
                self.store.mark(rid, Status.PENDING, err.code)
            raise (saved_later(err) if err.code == "Storage.DiskFull" else err) from None

    def resume_pending(self, *, on_event: Callable[[Event], None] | None = None) -> list[Record]:
        """Finish what a crash, a restart or a full disk cut short: downloads while their URLs
        are valid, and async tasks that were created but not yet collected (needs the settings'
        key). Rows whose URL this service may not fetch (another service's) are left alone."""
        self.store.index_journal()  # rows kept while the disk was full (another process's too)
        self._record_unrecorded()
        done = []
        now = time.time()
        for rec in self.store.pending():
            with self._lock:
                if rec.id in self._downloading:
                    continue  # a run of this service is downloading it right now
            try:
                if rec.url and not self.client.allows(rec.url):
                    continue
                if not rec.url:
                    if not self._collect_task(rec):
                        continue
                elif rec.url_expires is not None and rec.url_expires < now:
                    self.store.mark(rec.id, Status.EXPIRED, "Download.Expired")
                    continue
                got = self.fetch(rec.id)
            except AliyunImageError as exc:
                if on_event:
                    on_event(Event(EventKind.FAILURE, error=exc))
                if exc.code == "Storage.DiskFull":
                    break  # no room for the others either: wait for the next round
                continue
            done.append(got)
            if on_event:
                on_event(Event(EventKind.RESULT, record=got))
        return done

    def _record_unrecorded(self) -> None:
        """Record result URLs that did not fit in the store when they arrived (still valid ones)."""
        with self._lock:
            news, self._unrecorded = self._unrecorded, []
        keep = [n for n in news if not n.url_expires or n.url_expires > time.time()]
        if not keep:
            return
        try:
            self.store.add_pending(keep)
        except Journaled:
            pass  # on disk now: the next round indexes them
        except AliyunImageError:
            with self._lock:
                self._unrecorded.extend(keep)

    def collect(self, rid: int, *, api_key: str | None = None) -> Record | None:
        """Finish one recorded result if it can be finished now: download it while its URL lives, or
        poll its async task by id (with ``api_key``, else the settings' key) and then download it.
        Never sends a generation request. None while it cannot (the task still runs, no key) or
        when the row failed or expired."""
        rec = self.store.get(rid)
        if rec is None or rec.status == Status.DONE:
            return rec
        if rec.status != Status.PENDING:
            return None
        if not rec.url and not self._collect_task(rec, api_key):
            return None
        return self.fetch(rid)

    def _collect_task(self, rec: Record, api_key: str | None = None) -> bool:
        """Poll a recorded async task once; True when its result URL is now known."""
        task_id = rec.params.get("task_id")
        key = api_key or self.settings.api_key
        if not task_id or not key:
            return False
        state = protocol.parse_task(self.client.get_task(key, str(task_id)))
        if state.generation is not None:
            self._set_url(rec.id, state.generation)
            return True
        if state.status is protocol.TaskStatus.UNKNOWN:
            # The id is gone (ids live 24 h): that says nothing of the outcome, and the task most
            # likely ran and was billed, so it stays maybe billed; the result cannot be fetched.
            self.store.mark(rec.id, Status.EXPIRED, state.code)
        elif state.status.finished:
            self.store.mark(rec.id, Status.FAILED, state.code)
            with self.store.records.charges() as book:
                book.drop_maybe(rec.id)  # a failed task is not billed
        return False

    def download_url(self, url: str, dest: Path | str | None = None) -> Path:
        """Download any allowed result URL to ``dest`` (a file or folder; default the data dir).

        The file appears only when complete and verified to be an image.
        """
        return download_to(self.client, url, dest, self.settings.data_dir / "downloads")
