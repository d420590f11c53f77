"""The run handlers: ``/generate``, ``/edit``, ``/fuse`` and their Stop buttons.

No business logic lives here: validation, limits, HTTP, storing are the service's, the hourly
quota is :mod:`aliyun_image.money.quota`'s and the closing summary :mod:`aliyun_image.generation.outcome`'s. What
is here is presentation: turning widget values into a service call, and streaming each image to
the page the moment it is stored.

Runs are ``async`` generators that watch a :class:`~aliyun_image.ui.runs.Run` (no polling: the
worker thread hands each event to the event loop). When the user presses Stop, Gradio cancels
the run coroutine and the stop handler takes over showing the run; the cancel flag keeps any
further request from starting. Requests already sent still finish and their images are still
saved (they were paid for).

The visitor's API key reaches the run handlers as the ``X-DashScope-API-Key`` request header
(a ``gr.Header`` parameter), never as a component value: Gradio keeps every input value of a
session on the server, logs them on a malformed call and can write them to a deep-link file.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import gradio as gr

from ..dashscope import queued_text
from ..errors import AliyunImageError, unexpected
from ..jobs import Job
from ..enums import Payer, Task
from ..money import Reservation
from ..generation import Outcome, page_summary
from ..runtime import AppContext, Route, RunSlot, Visitor
from .cost_lines import run_cost_md
from .endpoints import PARAMS, check_handler
from .page_text import (caption, event_text, gr_error, md, money_refusal, run_text, typed_key_remedy,
                        ui_error)
from .request_info import header_key, request_lang, request_owner, request_session, request_visitor
from .lineage_memo import ReuseMemo
from .recent_runs import RecentRuns, recent_owner
from .rewrite import RewriteMemo
from .runs import Consumer, Run, RunRegistry
from .endpoints import MODE_DEFAULT, THINKING_DEFAULT
from .fusion_slots import fusion_send
from .rewrite_options import negative_value, rewrite_values
from .strings import t
from .widgets import PRIVATE, STOP, progress_on, scroll_to

log = logging.getLogger(__name__)
QUEUED_KEY = queued_text(0).key  # the scheduler's "queued: account limit N" status
Update = tuple[Any, str]  # (gallery, status) as a run handler yields them


def count(value: Any) -> int:
    """``n`` from a widget or an API caller; anything not a finite number becomes 0, which the
    service refuses with its own message (NaN must not crash a handler)."""
    try:
        return int(value) if value is not None and math.isfinite(float(value)) else 0
    except (TypeError, ValueError):
        return 0


def size_value(mode: str, preset: str | None, width: Any, height: Any) -> str | None:
    """Size for edit/fuse from the size widgets: auto -> None (follows the last input)."""
    if mode == "preset" and preset:
        return preset
    if mode == "custom":
        # An empty field must not silently fall back to automatic: pass it on for a clear message.
        if width and height and math.isfinite(float(width)) and math.isfinite(float(height)):
            return f"{int(width)}*{int(height)}"
        return f"{width or ''}*{height or ''}"
    return None


def run_options(quality: str, model: str, n: Any, seed: Any, negative: str, prompt_extend: bool,
                watermark: bool, size: str | None) -> dict[str, Any]:
    """Service options from a run panel's widgets (every panel has these)."""
    return dict(model=model or None,  # "" = automatic (by the quality switch)
                best=quality == "max", n=count(n if n is not None else 1), seed=seed,
                size=size, negative=negative or "", prompt_extend=prompt_extend, watermark=watermark)


def run_status(run: Run) -> str:
    """The status line while ``run`` is under way: images saved, requests out and waiting for their
    turn (as the scheduler counts them), the service's word on why they wait, and the seconds
    since the start (streamed every second, so a long call never looks stuck)."""
    lang = run.lang
    note = f" {run_text(lang, 'offline_note')}" if run.route_kind == Payer.OFFLINE else ""
    done = len(run.results) + len(run.failures)
    parts = [t(lang, "stopping" if run.stopping else "working", done=done, total=run.job.n)]
    said = run.status_text
    if run.queued is not None and (run.running or run.queued):  # (none of either: downloading)
        parts.append(t(lang, "progress.running", n=run.running))
        if run.queued and said is not None and said.key == QUEUED_KEY:  # waiting on the account's limit
            parts.append(t(lang, "progress.queued_limit", n=run.queued, **said.params))
        elif run.queued:
            parts.append(t(lang, "progress.queued", n=run.queued))
        if said is not None and said.key == QUEUED_KEY:
            said = None
    # The service's other words (uploading...) while nothing is out yet.
    if said is not None and not run.stopping and not run.running and not done:
        parts.append(md(event_text(lang, said)))
    parts.append(t(lang, "progress.elapsed", s=run.elapsed()))
    return " · ".join(parts) + note


def run_gallery(run: Run) -> list[tuple[str, str]]:
    """The run's saved images as gallery items, in request order."""
    return [(str(r.file), caption(r, run.lang)) for r in run.results]


def run_summary(run: Run, region: str | None = None) -> str:
    """The status block when ``run`` ends (the summary shared with the CLI), and with ``region``
    what the run cost."""
    if not run.results and run.failures and all(money_refusal(f) for f in run.failures):
        return refusal_md(run.failures[0], run.lang)
    outcome = Outcome(run.job.n, run.job.model, run.results, run.failures, stopped=run.stopping,
                      offline=run.route_kind == Payer.OFFLINE, notes=run.job.notes)
    cost = run_cost_md(run.job, run.results, run.failures, run.lang, region, run.route_kind == Payer.OFFLINE)
    return page_summary(outcome, run.lang) + (f"\n\n{cost}" if cost else "")


def refusal_md(err: AliyunImageError, lang: str) -> str:
    """A run refused before anything was sent, as the status line says it: a budget's or an hourly
    cap's refusal only points to the cost line under the Run button, which states it in full."""
    return "⚠️ " + (t(lang, "refused.money") if money_refusal(err) else md(err.text(lang)))


class RunHandlers:
    """The run and Stop events of the three run panels, bound to one :class:`AppContext`; other
    features start runs through :meth:`stream` (the same quota, Stop and hosted rules)."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.live = RunRegistry()  # (session, task) -> the run Stop would stop
        self.rewrites = RewriteMemo()  # (session, task) -> how the last run's prompt was rewritten
        self.reuses = ReuseMemo()  # (session, task) -> the result "Reuse parameters" put in the form (lineage)
        self.recent = RecentRuns()  # owner -> their recent runs, listed again when they come back

    # --- the shared run loop ----------------------------------------------------------------------
    def _plan(self, route: Route, visitor: Visitor, task: str, prompt: str, images: list,
              options: dict) -> tuple[Job, Reservation, RunSlot]:
        """The visitor's place among the runs going (first: a visitor at their cap costs no planning),
        the service's plan of the call and the images it reserves; raises AliyunImageError."""
        slot = self.ctx.run_slot(visitor)
        try:
            job = route.service.plan(task, prompt, images, **options)
            return job, Reservation.take(self.ctx.quota_for(route), self.ctx.payers(visitor), job.n), slot
        except AliyunImageError:
            slot.release()
            raise
        except Exception as exc:  # a bug: logged here, shown as "unexpected", never a traceback in the page
            slot.release()
            log.exception("planning failed")
            raise unexpected(exc) from exc

    def _start(self, route: Route, job: Job, reservation: Reservation, slot: RunSlot, task: str,
               session: str | None, owner: str | None, lang: str, typed: bool = False) -> tuple[Run, Consumer]:
        """Start ``job`` in a worker thread, watched by the returned consumer; when it ends (whoever
        watches, if anyone) the reservation is settled and the run's place given back."""

        def finished(run: Run) -> None:
            slot.release()
            self.live.discard(session, task, run)
            self.rewrites.remember(session, task, run.results)
            reservation.settle(len(run.results), run.failures)
            if self.ctx.opts.hosted:
                run.loop.run_in_executor(None, self.ctx.enforce_disk_budget)

        try:
            run = Run(job, lang, route.kind, asyncio.get_running_loop(), on_finish=finished,
                      adapt=typed_key_remedy if typed else None)
            consumer, _ = run.attach()
            self.live.add(session, task, run)
            route.service.start(job, run.post, api_key=route.key, owner=owner, cancel=run.cancel)
        except BaseException:  # no worker thread: nothing will finish the run and give its place back
            slot.release()
            raise
        return run, consumer

    async def stream(self, request: gr.Request | None, api_key: str | None, task: str, prompt: str,
                     images: list, options: dict, note: str = "") -> AsyncIterator[Update]:
        """Plan, check limits, run in a worker thread, and yield (gallery, status) as images land.

        ``note`` (Markdown) closes every status line once the run has started (never a refusal's).
        Raises ``gr.Error`` when nothing was produced (refused, failed), after showing why.
        """
        lang = request_lang(request)
        typed = header_key(api_key) is not None  # the key typed in the page: its own remedy when refused
        route = self.ctx.route(header_key(api_key))
        session = request_session(request)
        owner = request_owner(self.ctx, request)  # the visitor's (cookie, else session): see AppContext.owner_of
        options = self.reuses.with_parents(session, task, prompt, options)  # "reuse of #9"
        try:
            job, reservation, slot = self._plan(route, request_visitor(self.ctx, request), task,
                                                prompt, images, options)
        except AliyunImageError as err:
            if typed:
                err = typed_key_remedy(err)
            yield [], refusal_md(err, lang)
            raise gr_error(err, lang, said=True) from None  # said in the status line: no toast
        run, consumer = self._start(route, job, reservation, slot, task, session, owner, lang, typed)
        self.recent.add(recent_owner(self.ctx, request), run)
        try:
            yield [], run_status(run) + note
            async for gallery, status in self._follow(run, consumer):
                yield gallery, status + note
        except asyncio.CancelledError:
            # The page's Stop or an API client's cancel (Gradio cancels this coroutine): no further
            # requests start. Requests already sent finish and are stored by the worker thread.
            run.cancel.set()
            raise
        # GeneratorExit: the page went away (closed, reloaded) or the client dropped the call. The
        # run goes on and its owner finds it again in the strip of recent runs (recent_runs.py).
        if run.finished and not run.stopping and not run.results and run.failures:
            raise gr_error(run.failures[0], lang, said=True)  # the summary in the status line says it

    async def _follow(self, run: Run, consumer: Consumer) -> AsyncIterator[Update]:
        """(gallery, status) after each change of ``run`` while ``consumer`` watches it; the
        summary at the end, unless another consumer took over (then it shows the end)."""
        shown = len(run.results)
        async for _ in run.watch(consumer):
            # gr.skip(): the gallery did not change; re-sending it makes Gradio re-hash every image
            gallery = run_gallery(run) if len(run.results) != shown else gr.skip()
            shown = len(run.results)
            yield gallery, run_status(run)
        if run.finished and run.is_current(consumer):
            yield run_gallery(run), run_summary(run, self.ctx.settings.region)

    async def reattach(self, run: Run, session: str | None, task: str) -> AsyncIterator[Update]:
        """Follow ``run`` in another page (a reload, a new tab): this watcher takes over from the
        previous one, and this session's Stop finds the run while it is followed."""
        self.live.add(session, task, run)
        try:
            consumer = await run.take_over()
            yield run_gallery(run), run_status(run)
            async for out in self._follow(run, consumer):
                yield out
        finally:
            self.live.discard(session, task, run)

    async def _stop(self, task: str, request: gr.Request | None) -> AsyncIterator[Update]:
        """Stop: no further requests; requests already sent finish (they were paid for) and their
        images are shown as they land; then a summary that says what was kept. Returns at once
        when the session has no unfinished run of ``task``."""
        run = self.live.get(request_session(request), task)
        if run is None:
            yield gr.skip(), gr.skip()
            return
        run.cancel.set()
        run.stopping = True
        consumer = await run.take_over()
        yield run_gallery(run), run_status(run)
        async for out in self._follow(run, consumer):
            yield out

    # --- Stop (private events) --------------------------------------------------------------------
    async def stop_t2i(self, request: gr.Request):
        """Stop the text-to-image run of this session."""
        async for out in self._stop(Task.T2I, request):
            yield out

    async def stop_edit(self, request: gr.Request):
        """Stop the edit run of this session."""
        async for out in self._stop(Task.EDIT, request):
            yield out

    async def stop_fuse(self, request: gr.Request):
        """Stop the fusion run of this session."""
        async for out in self._stop(Task.FUSE, request):
            yield out

    # --- the public API (parameter order: endpoints.PARAMS) ---------------------------------------
    async def generate(self, prompt: str, negative: str, quality: str, model: str, size: str, n: float,
                       seed: float, prompt_extend: bool, watermark: bool, extend_mode: str | None = MODE_DEFAULT,
                       thinking: bool | None = THINKING_DEFAULT,
                       request: gr.Request = None,  # type: ignore[assignment]
                       x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Generate images from a text prompt with Qwen-Image (text-to-image).

        Your DashScope API key goes in the request header ``X-DashScope-API-Key`` (optional where
        the host provides one); it is never a parameter, so it is never stored with the call.

        Args:
            prompt: What to draw, up to 800 characters (Chinese or English; text in quotes is rendered).
            negative: What to avoid (up to 500 characters); empty for none.
            quality: "plus" (default) or "max" (best quality, slower).
            model: Explicit model name, or empty to choose by quality.
            size: "W*H", e.g. "1664*928" (16:9), "1328*1328" (1:1); empty for the model default.
            n: Number of images, 1-6.
            seed: 0-2147483647, or -1 for random.
            prompt_extend: Let the service rewrite the prompt for better results.
            watermark: Add the "Qwen-Image" watermark.
            extend_mode: How the prompt is rewritten, for models that take it (Qwen-Image 3.0, 2.1):
                "direct" (default) or "agent" (plans the picture; text-to-image only).
            thinking: Let the rewriting think first (models that take it; acts only with rewriting on).
        Returns:
            The generated images (PNG) and a status message. Raises an error when nothing was made.
        """
        opts = run_options(quality, model, n, seed, negative, prompt_extend, watermark, size or None)
        opts.update(rewrite_values(Task.T2I, quality, model, prompt_extend, extend_mode, thinking))
        opts["negative"] = negative_value(Task.T2I, quality, model, opts["negative"])
        async for gallery, status in self.stream(request, x_dashscope_api_key, Task.T2I, prompt, [], opts):
            yield gallery, status

    # The defaults after an optional image are there because Python wants them; Gradio fills in
    # the widgets' starting values (endpoints.check_handler: "" keeps instruction required).
    async def edit(self, image: str | None = None, image_url: str | None = None, instruction: str = "",
                   quality: str = "plus", model: str = "", n: float = 1, size_mode: str = "auto",
                   size_preset: str = "1024*1024", width: float = 1024, height: float = 1024, seed: float = -1,
                   negative: str = "", prompt_extend: bool = True, watermark: bool = False,
                   extend_mode: str | None = MODE_DEFAULT,
                   thinking: bool | None = THINKING_DEFAULT,
                   request: gr.Request = None,  # type: ignore[assignment]
                   x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Edit one image with an instruction (Qwen-Image-Edit): change the background, transfer a
        style, add or remove objects, change text.

        Your DashScope API key goes in the request header ``X-DashScope-API-Key`` (optional where
        the host provides one).

        Args:
            image: The input image (an upload, or for an MCP client an http(s) URL or a data: URL).
                Give this or image_url.
            image_url: A public http(s) URL of the input image that the service fetches itself
                (used when no image is given).
            instruction: What to change, up to 800 characters.
            quality: "plus" (default) or "max" (best quality).
            model: Explicit edit model, or empty to choose by quality.
            n: Number of images, 1-6.
            size_mode: "auto" (follow the input's aspect ratio), "preset" or "custom".
            size_preset: "W*H" when size_mode is "preset".
            width: Output width 512-2048 when size_mode is "custom".
            height: Output height 512-2048 when size_mode is "custom".
            seed: 0-2147483647, or -1 for random.
            negative: What to avoid; empty for none.
            prompt_extend: Let the service rewrite the instruction.
            watermark: Add the "Qwen-Image" watermark.
            extend_mode: "direct" (default), for models that take it; "agent" is refused for edits.
            thinking: Let the rewriting think first (models that take it; acts only with rewriting on).
        Returns:
            The edited images, a before/after pair and a status message. Raises an error when nothing was made.
        """
        lang = request_lang(request)
        url = (image_url or "").strip()
        source, refusal = _edit_source(image, url, lang)
        if refusal:
            yield [], None, "⚠️ " + md(refusal)
            raise ui_error(lang, refusal, said=True)
        both = "\n\nℹ️ " + t(lang, "both_inputs") if image and url else ""
        opts = run_options(quality, model, n, seed, negative, prompt_extend, watermark,
                           size_value(size_mode, size_preset, width, height))
        opts.update(rewrite_values(Task.EDIT, quality, model, prompt_extend, extend_mode, thinking))
        opts["negative"] = negative_value(Task.EDIT, quality, model, opts["negative"])
        async for gallery, status in self.stream(request, x_dashscope_api_key, Task.EDIT, instruction, [source], opts):
            pair = (image, gallery[0][0]) if image and isinstance(gallery, list) and gallery else gr.skip()
            yield gallery, pair, status + both

    async def fuse(self, image1: str | None, image2: str | None, image3: str | None = None, instruction: str = "",
                   quality: str = "plus", model: str = "", n: float = 1, size_mode: str = "auto",
                   size_preset: str = "1024*1024", width: float = 1024, height: float = 1024, seed: float = -1,
                   negative: str = "", prompt_extend: bool = True, watermark: bool = False,
                   extend_mode: str | None = MODE_DEFAULT, thinking: bool | None = THINKING_DEFAULT,
                   image4: str | None = None, image5: str | None = None, image6: str | None = None,
                   image7: str | None = None, image8: str | None = None, image9: str | None = None,
                   image10: str | None = None,
                   request: gr.Request = None,  # type: ignore[assignment]
                   x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Fuse 2-3 images in order (图1, 图2, 图3; up to 10 where the model takes them) following an
        instruction that refers to them by number.

        Empty slots are skipped and the instruction's references follow the images sent (slots 1
        and 3 filled: 图3 is sent as 图2, and the status says so); an instruction naming an empty
        slot is refused before anything is sent.

        Your DashScope API key goes in the request header ``X-DashScope-API-Key`` (optional where
        the host provides one).

        Args:
            image1: 图1, the first image.
            image2: 图2, the second image.
            image3: 图3, optional third image. Without a size, the output follows the last image's aspect.
            instruction: Refers to the images as 图1, 图2, 图3, e.g. "the person in 图1 wears the clothes
                from 图2, standing in the scene of 图3".
            quality: "plus" (default) or "max".
            model: Explicit edit model, or empty to choose by quality.
            n: Number of images, 1-6.
            size_mode: "auto", "preset" or "custom".
            size_preset: "W*H" when size_mode is "preset".
            width: Output width when size_mode is "custom".
            height: Output height when size_mode is "custom".
            seed: 0-2147483647, or -1 for random.
            negative: What to avoid; empty for none.
            prompt_extend: Let the service rewrite the instruction.
            watermark: Add the "Qwen-Image" watermark.
            extend_mode: "direct" (default), for models that take it; "agent" is refused for fusion.
            thinking: Let the rewriting think first (models that take it; acts only with rewriting on).
            image4: 图4, for models that take more than three images (Qwen-Image 2.1 Pro: up to 10);
                image5 to image10 likewise.
        Returns:
            The fused images and a status message. Raises an error when nothing was made.
        """
        lang = request_lang(request)
        send = fusion_send((image1, image2, image3, image4, image5, image6, image7, image8, image9, image10),
                           instruction, lang)
        if send.refusal:
            yield [], "⚠️ " + md(send.refusal)
            raise ui_error(lang, send.refusal, said=True)
        opts = run_options(quality, model, n, seed, negative, prompt_extend, watermark,
                           size_value(size_mode, size_preset, width, height))
        opts.update(rewrite_values(Task.FUSE, quality, model, prompt_extend, extend_mode, thinking))
        opts["negative"] = negative_value(Task.FUSE, quality, model, opts["negative"])
        note = "\n\nℹ️ " + md(send.note) if send.note else ""
        async for gallery, status in self.stream(request, x_dashscope_api_key, Task.FUSE, send.instruction,
                                                 send.images, opts, note):
            yield gallery, status

    # --- wiring ----------------------------------------------------------------------------------
    def queue(self, status: gr.Markdown) -> dict[str, Any]:
        """The settings of every event that starts a run (a variation too): all runs share one
        queue of the app's concurrency, and progress shows on the panel's ``status`` line."""
        return {"concurrency_id": "runs", "concurrency_limit": self.ctx.opts.concurrency, **progress_on(status)}

    def wire(self, endpoint: str, panel: Any, outputs: list[Any]) -> None:
        """A panel's run button as public endpoint ``endpoint`` (inputs in the API's order) and its
        Stop; ``outputs``: what the run writes (results, then the status line)."""
        events: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "generate": (self.generate, self.stop_t2i), "edit": (self.edit, self.stop_edit),
            "fuse": (self.fuse, self.stop_fuse)}
        handler, stop = events[endpoint]
        check_handler(handler, endpoint)
        widgets = panel.api_inputs()
        inputs = [widgets[name] for name in PARAMS[endpoint]]
        # No key among the inputs: it travels as a request header (see the module docstring).
        event = panel.run.click(handler, inputs, outputs, api_name=endpoint, **self.queue(panel.status))
        # A phone's stacked columns put the results and the status far below the button: go there.
        panel.run.click(None, None, None, js=scroll_to(f"#{panel.results.elem_id}"), **PRIVATE)
        panel.stop.click(stop, None, [panel.results, panel.status], cancels=[event], **STOP,
                         **progress_on(panel.status))


    def stop_state(self, task: str, request: gr.Request | None) -> gr.Button:
        """The panel's Stop: enabled while the session has an unfinished run of ``task`` (a
        variation included), disabled otherwise."""
        return gr.Button(interactive=self.live.get(request_session(request), task) is not None)

    def wire_stop_state(self, demo: gr.Blocks, panels: dict[str, Any]) -> None:
        """Keep each Stop of ``panels`` (``{Task.T2I: panel, ...}``) enabled only while it can act:
        every status change (a run started, went on, ended) and a page load look again."""
        for task, panel in panels.items():
            def state(request: gr.Request, task: str = task) -> gr.Button:
                return self.stop_state(task, request)
            for trigger in (panel.status.change, demo.load):
                trigger(state, None, panel.stop, **PRIVATE, show_progress="hidden")


def _edit_source(image: str | None, url: str, lang: str) -> tuple[str, str]:
    """The edit's input (the upload wins over the URL box) and "", or "" and why there is none
    (plain text): no input, or URL box text that is not a URL."""
    if url and not image and not re.match(r"(?i)^(https?|oss)://", url):
        return "", t(lang, "not_url", text=url[:80])
    if not (image or url):
        return "", t(lang, "no_input")
    return image or url, ""
