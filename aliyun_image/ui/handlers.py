"""Event handlers: turn widget values into service calls and service results into widget values.

No business logic lives here: validation, limits, HTTP, storing are the service's. What is
here is presentation: language, captions, status lines, and streaming each image to the page
the moment it is stored.

Runs are ``async`` generators that watch a :class:`~aliyun_image.ui.runs.Run` (no polling: the
worker thread hands each event to the event loop). When the user presses Stop, Gradio cancels
the run coroutine and the stop handler takes over showing the run; the cancel flag keeps any
further request from starting. Requests already sent still finish and their images are still
saved (they were paid for).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from typing import Any
from collections.abc import AsyncIterator
from urllib.parse import unquote

import gradio as gr

from .. import catalog
from ..errors import AliyunImageError, may_be_billed, unexpected
from ..store import Record
from .context import AppContext
from .runs import Consumer, Run, RunRegistry
from .strings import PRESET_LABELS, lang_of, preset_instruction, t

log = logging.getLogger(__name__)
PAGE_SIZE = 24


def _lang(request: gr.Request | None) -> str:
    headers = getattr(request, "headers", None) or {}
    return lang_of(headers.get("accept-language"))


def _session(request: gr.Request | None) -> str | None:
    """The caller's session, or None for a session-less API call.

    Gradio gives a call through ``/gradio_api/call/...`` or ``/run/...`` its public event id as
    "session hash": anyone who saw that id could act as that session, so it is not a session.
    Only a queue join carries a hash the client chose and keeps to itself.
    """
    session = getattr(request, "session_hash", None)
    try:
        path = str(request.url.path) if request is not None and getattr(request, "request", None) else ""
    except AttributeError:
        path = ""
    if session and path and not path.rstrip("/").endswith("/queue/join"):
        return None
    return session


def _count(value: Any) -> int:
    """``n`` from a widget or an API caller; anything not a finite number becomes 0, which the
    service refuses with its own message (NaN must not crash a handler)."""
    try:
        return int(value) if value is not None and math.isfinite(float(value)) else 0
    except (TypeError, ValueError):
        return 0


def caption(rec: Record) -> str:
    """Gallery caption: start of the prompt, model and size."""
    prompt = rec.prompt if len(rec.prompt) <= 48 else rec.prompt[:47] + "…"
    return f"{prompt} · {rec.model} · {rec.size}"


def _md(text: str) -> str:
    """Escape Markdown in service text, so ``1000*700`` is not read as emphasis."""
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", str(text))


def _error_md(err: AliyunImageError, lang: str) -> str:
    return "⚠️ " + _md(err.text(lang))


def _failures_md(failures: list[AliyunImageError], lang: str) -> str:
    """One line per distinct failure, with a count when a fan-out failed the same way n times."""
    counts: dict[str, int] = {}
    for f in failures:
        line = f.text(lang)
        counts[line] = counts.get(line, 0) + 1
    return "\n".join(f"- ⚠️ {_md(line)}" + (f" ×{n}" if n > 1 else "") for line, n in counts.items())


def _size_value(mode: str, preset: str | None, width: Any, height: Any) -> str | None:
    """Size for edit/fuse from the size widgets: auto -> None (follows the last input)."""
    if mode == "preset" and preset:
        return preset
    if mode == "custom":
        # An empty field must not silently fall back to automatic: pass it on for a clear message.
        if width and height and math.isfinite(float(width)) and math.isfinite(float(height)):
            return f"{int(width)}*{int(height)}"
        return f"{width or ''}*{height or ''}"
    return None


def _model_arg(model: str | None) -> str | None:
    return model or None  # "" = automatic (by the quality switch)


def _edit_options(quality: str, model: str, n: float, seed: float, size_mode: str, size_preset: str,
                  width: float, height: float, negative: str, prompt_extend: bool, watermark: bool) -> dict:
    """Service options from the edit/fusion widgets (both panels have the same ones)."""
    return dict(model=_model_arg(model), best=quality == "max", n=_count(n if n is not None else 1), seed=seed,
                size=_size_value(size_mode, size_preset, width, height), negative=negative or "",
                prompt_extend=prompt_extend, watermark=watermark)


def _gr_error(err: AliyunImageError) -> gr.Error:
    """A failure with nothing produced, raised so API and MCP clients see it as an error (the page
    shows the same message in the status line too). Both languages: a client has no locale."""
    return gr.Error(_md(err.both()), print_exception=False)


def _header_key(value: str | None) -> str | None:
    """The key as typed: the page percent-encodes a key with characters a header cannot carry."""
    if value and re.search(r"%[0-9A-Fa-f]{2}", value):
        return unquote(value)
    return value


def _quota_identity(session: str | None, owner: str | None, request: gr.Request | None) -> str:
    """Who a per-visitor hourly limit counts against: the session, or for a call without one
    (each gets a fresh owner) the client's address, so new calls do not mean a new budget."""
    if session:
        return owner or session
    client = getattr(request, "client", None)
    return "ip:" + str(getattr(client, "host", None) or "unknown")


def _spent(run: Run) -> int:
    """Images of ``run`` that may have been billed: stored ones and failures that may have been."""
    return len(run.results) + sum(1 for f in run.failures if may_be_billed(f))


def _run_status(run: Run) -> str:
    lang = run.lang
    note = f" {t(lang, 'offline_note')}" if run.route_kind == "offline" else ""
    done = len(run.results) + len(run.failures)
    if run.status_text and not done and not run.stopping:
        return run.status_text[0 if lang == "zh" else 1] + note
    key = "stopping" if run.stopping else "working"
    return t(lang, key, done=done, total=run.job.n) + note


def _run_gallery(run: Run) -> list[tuple[str, str]]:
    return [(str(r.file), caption(r)) for r in run.results]


def _summary(run: Run) -> str:
    lang, job, results, failures = run.lang, run.job, run.results, run.failures
    note = f" {t(lang, 'offline_note')}" if run.route_kind == "offline" else ""
    notes = "".join(f"\n- ℹ️ {_md(zh if lang == 'zh' else en)}" for zh, en in job.notes)
    seeds = ", ".join(dict.fromkeys(str(r.seed) for r in results if r.seed is not None))
    if run.stopping:
        lines = [t(lang, "stopped", ok=len(results), total=job.n)
                 + (" " + t(lang, "seeds_model", seeds=seeds, model=job.model) if results else "") + note]
    elif not results:
        return (t(lang, "failed") + "\n" + _failures_md(failures, lang) if failures else "") + notes
    else:
        key = "done_extra" if len(results) > job.n else "done"
        lines = [t(lang, key, ok=len(results), total=job.n, seeds=seeds, model=job.model) + note]
    rewritten = next((r.actual_prompt for r in results if r.actual_prompt), None)
    if rewritten:
        lines.append(t(lang, "rewritten", text=_md(rewritten)))
    if failures:
        lines.append(t(lang, "partial", ok=len(results), total=job.n, failed=len(failures)))
        lines.append(_failures_md(failures, lang))
    return "\n\n".join(lines) + notes


class Handlers:
    """All event functions of the app, bound to one :class:`AppContext`.

    The visitor's API key reaches the run handlers as the ``X-DashScope-API-Key`` request header
    (a ``gr.Header`` parameter), never as a component value: Gradio keeps every input value of a
    session on the server, logs them on a malformed call and can write them to a deep-link file.
    """

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.panels: dict[str, Any] = {}  # filled by the layout: widgets that ``reuse`` writes to
        self.runs = RunRegistry()  # (session, task) -> the run Stop would stop

    # --- runs -----------------------------------------------------------------------------------
    async def _run(self, request: gr.Request | None, api_key: str | None, task: str, prompt: str,
                   images: list, options: dict) -> AsyncIterator[tuple[Any, str]]:
        """Plan, check limits, run in a worker thread, and yield (gallery, status) as images land.

        Raises ``gr.Error`` when nothing was produced (refused, failed), after showing why.
        """
        lang = _lang(request)
        route = self.ctx.route(_header_key(api_key))
        session = _session(request)
        owner = self.ctx.owner(session)
        quota = self.ctx.quota_for(route)
        payer = _quota_identity(session, owner, request)
        try:
            job = route.service.plan(task, prompt, images, **options)
            if quota is not None:
                quota.take(payer, job.n)
        except Exception as exc:  # never a traceback in the page
            err = exc if isinstance(exc, AliyunImageError) else unexpected(exc)
            if err is not exc:
                log.exception("planning failed")
            yield [], _error_md(err, lang)
            raise _gr_error(err) from None

        def finished(run: Run) -> None:
            self.runs.discard(session, task, run)
            if quota is not None:
                quota.settle(payer, job.n, _spent(run))
            if self.ctx.opts.hosted:
                run.loop.run_in_executor(None, self.ctx.enforce_disk_budget)

        run = Run(job, lang, route.kind, asyncio.get_running_loop(), on_finish=finished)
        consumer, _ = run.attach()
        self.runs.add(session, task, run)
        route.service.start(job, run.post, api_key=route.key, owner=owner, cancel=run.cancel)
        try:
            yield [], _run_status(run)
            async for out in self._follow(run, consumer):
                yield out
        except (asyncio.CancelledError, GeneratorExit):
            # The page's Stop (Gradio cancels this coroutine) or the page went away: no further
            # requests start. Requests already sent finish and are stored by the worker thread.
            run.cancel.set()
            raise
        if run.finished and not run.stopping and not run.results and run.failures:
            raise _gr_error(run.failures[0])

    async def _follow(self, run: Run, consumer: Consumer) -> AsyncIterator[tuple[Any, str]]:
        """(gallery, status) after each change of ``run`` while ``consumer`` watches it; the
        summary at the end, unless another consumer took over (then it shows the end)."""
        shown = len(run.results)
        async for _ in run.watch(consumer):
            # gr.skip(): the gallery did not change; re-sending it makes Gradio re-hash every image
            gallery = _run_gallery(run) if len(run.results) != shown else gr.skip()
            shown = len(run.results)
            yield gallery, _run_status(run)
        if run.finished and run.is_current(consumer):
            yield _run_gallery(run), _summary(run)

    async def _stop(self, task: str, request: gr.Request | None) -> AsyncIterator[tuple[Any, str]]:
        """Stop: no further requests; requests already sent finish (they were paid for) and their
        images are shown as they land; then a summary that says what was kept. Returns at once
        when the session has no unfinished run of ``task``."""
        run = self.runs.get(_session(request), task)
        if run is None:
            yield gr.skip(), gr.skip()
            return
        run.cancel.set()
        run.stopping = True
        consumer = await run.take_over()
        yield _run_gallery(run), _run_status(run)
        async for out in self._follow(run, consumer):
            yield out

    async def stop_t2i(self, request: gr.Request):
        """Stop the text-to-image run of this session."""
        async for out in self._stop("t2i", request):
            yield out

    async def stop_edit(self, request: gr.Request):
        """Stop the edit run of this session."""
        async for out in self._stop("edit", request):
            yield out

    async def stop_fuse(self, request: gr.Request):
        """Stop the fusion run of this session."""
        async for out in self._stop("fuse", request):
            yield out

    async def generate(self, prompt: str, negative: str, quality: str, model: str, size: str, n: float,
                       seed: float, prompt_extend: bool, watermark: bool, request: gr.Request,
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
        Returns:
            The generated images (PNG) and a status message. Raises an error when nothing was made.
        """
        opts = dict(model=_model_arg(model), best=quality == "max", size=size or None, n=_count(n if n is not None else 1),
                    seed=seed, negative=negative or "", prompt_extend=prompt_extend, watermark=watermark)
        async for gallery, status in self._run(request, x_dashscope_api_key, "t2i", prompt, [], opts):
            yield gallery, status

    async def edit(self, image: str | None, image_url: str, instruction: str, quality: str, model: str,
                   n: float, size_mode: str, size_preset: str, width: float, height: float, seed: float,
                   negative: str, prompt_extend: bool, watermark: bool, request: gr.Request,
                   x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Edit one image with an instruction (Qwen-Image-Edit): change the background, transfer a
        style, add or remove objects, change text.

        Your DashScope API key goes in the request header ``X-DashScope-API-Key`` (optional where
        the host provides one).

        Args:
            image: The input image (upload), or empty when image_url is given.
            image_url: A public http(s) URL of the input image (used when no upload is given).
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
        Returns:
            The edited images, a before/after pair, and a status message. Raises an error when
            nothing was made.
        """
        lang = _lang(request)
        url = (image_url or "").strip()
        if url and not image and not re.match(r"(?i)^(https?|oss)://", url):
            msg = _md(t(lang, "not_url", text=url[:80]))
            yield [], None, "⚠️ " + msg
            raise gr.Error(msg, print_exception=False)
        source = image or url or None
        if source is None:
            yield [], None, "⚠️ " + t(lang, "no_input")
            raise gr.Error(t(lang, "no_input"), print_exception=False)
        both = "\n\nℹ️ " + t(lang, "both_inputs") if image and url else ""
        opts = _edit_options(quality, model, n, seed, size_mode, size_preset, width, height, negative,
                             prompt_extend, watermark)
        before = image if image else None
        async for gallery, status in self._run(request, x_dashscope_api_key, "edit", instruction, [source], opts):
            pair = (before, gallery[0][0]) if before and isinstance(gallery, list) and gallery else gr.skip()
            yield gallery, pair, status + both

    async def fuse(self, image1: str | None, image2: str | None, image3: str | None, instruction: str,
                   quality: str, model: str, n: float, size_mode: str, size_preset: str, width: float,
                   height: float, seed: float, negative: str, prompt_extend: bool, watermark: bool,
                   request: gr.Request, x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Fuse 2-3 images in order (图1, 图2, 图3) following an instruction that refers to them by number.

        Your DashScope API key goes in the request header ``X-DashScope-API-Key`` (optional where
        the host provides one).

        Args:
            image1: 图1, the first image.
            image2: 图2, the second image.
            image3: 图3, optional third image. Without a size, the output follows the last image's aspect.
            instruction: e.g. "图1的人物穿上图2的衣服，站在图3的场景里".
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
        Returns:
            The fused images and a status message. Raises an error when nothing was made.
        """
        lang = _lang(request)
        slots = [(i + 1, img) for i, img in enumerate((image1, image2, image3)) if img]
        opts = _edit_options(quality, model, n, seed, size_mode, size_preset, width, height, negative,
                             prompt_extend, watermark)
        gap = ""
        if slots and [s for s, _ in slots] != list(range(1, len(slots) + 1)):
            gap = "\n\nℹ️ " + t(lang, "fuse_gap", order=" → ".join(f"图{s}" for s, _ in slots))
        async for gallery, status in self._run(request, x_dashscope_api_key, "fuse", instruction,
                                               [img for _, img in slots], opts):
            yield gallery, status + gap

    # --- small UI helpers (private events) ---------------------------------------------------------
    def t2i_sizes(self, quality: str, model: str) -> gr.Dropdown:
        """Size presets for the effective text-to-image model."""
        name = model or catalog.default_model(catalog.T2I, quality == "max")
        opts = catalog.size_options(name, catalog.T2I)
        spec = catalog.get_model(name)
        default = spec.size.default if spec else None
        return gr.Dropdown(choices=[(o.label, o.value) for o in opts], value=default or (opts[0].value if opts else None))

    def edit_sizes(self, quality: str, model: str) -> gr.Dropdown:
        """Size presets for the effective edit model."""
        name = model or catalog.default_model(catalog.EDIT, quality == "max")
        opts = catalog.size_options(name, catalog.EDIT)
        return gr.Dropdown(choices=[(o.label, o.value) for o in opts], value=opts[0].value if opts else None)

    def apply_preset(self, preset: str, style: str, obj: str, request: gr.Request) -> str:
        """Instruction text for an edit preset."""
        lang = _lang(request)
        return preset_instruction(preset, style if preset == "style" else obj, lang)

    def swap(self, a: Any, b: Any) -> tuple[Any, Any]:
        """Swap two fusion slots."""
        return b, a

    # --- gallery -------------------------------------------------------------------------------------
    def gallery_page(self, query: str, task: str, model: str, page: float, request: gr.Request):
        """One page of the visitor's results as thumbnails, newest first."""
        lang = _lang(request)
        gallery = self.ctx.gallery(_session(request))
        page = max(1, int(page or 1))
        recs, total = gallery.page(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, query=query or None,
                                   task=task or None, model=model or None)
        pages = max(1, -(-total // PAGE_SIZE))
        if page > pages:  # e.g. after deleting the last item of the last page
            page = pages
            recs, total = gallery.page(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, query=query or None,
                                       task=task or None, model=model or None)
        items = []
        for r in recs:
            thumb = gallery.thumbnail(r)
            items.append((str(thumb or r.file), caption(r)))
        filtered = bool(query or task or model)
        info = (t(lang, "page", page=page, pages=pages, total=total) if total
                else t(lang, "no_match") if filtered else t(lang, "empty_gallery"))
        choices = [(f"#{r.id} {r.prompt[:24]}", r.id) for r in recs]
        models = [("", "")] + [(m, m) for m in gallery.models()]
        return (items, info, [r.id for r in recs], page, gr.CheckboxGroup(choices=choices, value=[]),
                gr.Dropdown(choices=[(t(lang, "all"), "")] + models[1:]))

    def gallery_select(self, ids: list[int], evt: gr.SelectData, request: gr.Request):
        """Show the selected result's full record and enable its actions."""
        lang = _lang(request)
        idx = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        none = (None, t(lang, "no_selection"), None, gr.DownloadButton(value=None, interactive=False), "")
        if not ids or idx is None or idx >= len(ids):
            return none
        rec = self.ctx.gallery(_session(request)).get(ids[idx])
        if rec is None or rec.file is None:
            return none
        # the last value clears the action line ("Select an image first", "Deleted #3"...)
        return (rec.id, self._details(rec, lang), str(rec.file),
                gr.DownloadButton(value=str(rec.file), interactive=True), "")

    def _details(self, rec: Record, lang: str) -> str:
        task_name = t(lang, f"task_{rec.task}")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.created))
        rows = [
            ("任务" if lang == "zh" else "Task", task_name),
            ("模型" if lang == "zh" else "Model", rec.model), ("尺寸" if lang == "zh" else "Size", rec.size),
            ("种子" if lang == "zh" else "Seed", str(rec.seed)),
            ("提示词改写" if lang == "zh" else "Prompt rewriting", t(lang, "yes" if rec.params.get("prompt_extend") else "no")),
            ("水印" if lang == "zh" else "Watermark", t(lang, "yes" if rec.params.get("watermark") else "no")),
            ("请求 ID" if lang == "zh" else "Request id", rec.request_id or "-"),
            ("时间" if lang == "zh" else "Time", when),
            ("文件" if lang == "zh" else "File", f"{rec.file.name if rec.file else '-'} ({rec.bytes // 1024} KB)"),
        ]
        # The id is the table's header row: a Markdown table needs one, and an empty one looks broken.
        md = f"| ID | #{rec.id} |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
        md += f"\n\n**{t(lang, 'prompt')}:** {_md(rec.prompt)}"
        if rec.negative:
            md += f"\n\n**{t(lang, 'negative')}:** {_md(rec.negative)}"
        if rec.actual_prompt:
            md += "\n\n" + t(lang, "rewritten", text=_md(rec.actual_prompt))
        if rec.inputs:
            names = ", ".join(f"图{i + 1} {inp.get('name', '')}" for i, inp in enumerate(rec.inputs))
            md += f"\n\n**{'输入' if lang == 'zh' else 'Inputs'}:** {names}"
        return md

    def gallery_delete(self, selected: int | None, request: gr.Request):
        """Delete the selected result (only the visitor's own)."""
        lang = _lang(request)
        if not selected:
            return gr.update(), t(lang, "no_selection")
        ok = self.ctx.gallery(_session(request)).delete(int(selected))
        return None, (t(lang, "deleted", id=selected) if ok else t(lang, "no_selection"))

    def gallery_zip(self, checked: list[int], request: gr.Request):
        """Zip the ticked results' originals for download."""
        lang = _lang(request)
        # Only the page's thumbnails can be ticked: at most a page of distinct ids (a crafted call
        # with one id repeated thousands of times must not write a giant zip).
        ids = list(dict.fromkeys(int(i) for i in (checked or [])))[:PAGE_SIZE]
        if not ids:
            return None, t(lang, "zip_empty")
        dest = self.ctx.zip_path(f"aliyun-image-{time.strftime('%Y%m%d-%H%M%S')}.zip")
        out = self.ctx.gallery(_session(request)).export_zip(ids, dest)
        if out is None:
            return None, t(lang, "zip_empty")
        return str(out), t(lang, "zip_ready", n=len(ids))

    def send_to_edit(self, selected: int | None, request: gr.Request):
        """Put the selected result into the edit panel's input and switch to it."""
        lang = _lang(request)
        rec = self.ctx.gallery(_session(request)).get(int(selected)) if selected else None
        if rec is None or rec.file is None:
            return gr.update(), gr.Tabs(), t(lang, "no_selection")
        return str(rec.file), gr.Tabs(selected="edit"), t(lang, "sent_edit", id=rec.id)

    def send_to_fuse(self, selected: int | None, a: Any, b: Any, c: Any, request: gr.Request):
        """Put the selected result into the first free fusion slot."""
        lang = _lang(request)
        rec = self.ctx.gallery(_session(request)).get(int(selected)) if selected else None
        if rec is None or rec.file is None:
            return a, b, c, gr.Tabs(), t(lang, "no_selection")
        slots = [a, b, c]
        for i, v in enumerate(slots):
            if not v:
                slots[i] = str(rec.file)
                return (*slots, gr.Tabs(selected="fuse"), t(lang, "sent_fuse", id=rec.id, slot=i + 1))
        return a, b, c, gr.Tabs(), t(lang, "fuse_full")

    def reuse(self, selected: int | None, request: gr.Request) -> dict:
        """Fill the panel the result came from with its parameters (prompt, model, size, seed...)."""
        lang = _lang(request)
        rec = self.ctx.gallery(_session(request)).get(int(selected)) if selected else None
        status = self.panels["status"]
        if rec is None:
            return {status: t(lang, "no_selection")}
        spec = catalog.get_model(rec.model)
        panel = self.panels[rec.task]
        p = rec.params
        default_names = {catalog.default_model(k, b) for k in (catalog.T2I, catalog.EDIT) for b in (False, True)}
        out = {
            self.panels["tabs"]: gr.Tabs(selected=rec.task),
            status: t(lang, "reused", id=rec.id, panel=t(lang, f"tab_{rec.task}")),
            panel["prompt"]: rec.prompt,
            panel["negative"]: rec.negative,
            panel["quality"]: "max" if spec is not None and spec.name.endswith("-max") else "plus",
            panel["model"]: "" if rec.model in default_names else rec.model,
            panel["seed"]: rec.seed if rec.seed is not None else -1,
            # A fan-out image was its own request (its own seed): reusing it means one image. An edit's
            # n images share one request and seed, so n is part of reproducing it.
            panel["n"]: 1 if spec is None or spec.fixed_n else int(p.get("n") or 1),
            panel["extend"]: bool(p.get("prompt_extend")),
            panel["watermark"]: bool(p.get("watermark")),
        }
        size = p.get("size")
        if rec.task == "t2i":
            if size:
                out[panel["size"]] = size
        else:
            out[panel["size_mode"]] = "custom" if size else "auto"
            if size:
                w, h = (int(v) for v in str(size).split("*"))
                out[panel["width"]], out[panel["height"]] = w, h
            url = next((i.get("url") for i in rec.inputs if i.get("url")), None)
            if rec.task == "edit" and url:
                out[panel["url"]] = url
        return out

    def gallery_first_page(self, query: str, task: str, model: str, request: gr.Request):
        """New search or filter: back to page 1."""
        return self.gallery_page(query, task, model, 1, request)

    def gallery_step(self, query: str, task: str, model: str, page: float, step: int, request: gr.Request):
        """Previous / next page."""
        return self.gallery_page(query, task, model, max(1, int(page or 1) + int(step)), request)

    def preset_labels(self, request: gr.Request) -> gr.Dropdown:
        """Preset names in the visitor's language (the dropdown values stay the same)."""
        lang = _lang(request)
        return gr.Dropdown(choices=[(label, key) for key, label in PRESET_LABELS[lang].items()])
