"""``/batch`` and ``/grid``: batches and X/Y grids for scripts and agents (public API endpoints and
MCP tools; parameters in :data:`.endpoints.PARAMS`).

The engine is :mod:`aliyun_image.generation.batch` (planned, priced, stored before sending, resumable
without resending a maybe-billed request) and :mod:`aliyun_image.generation.grid`; this module turns
a call into a spec, runs it in a worker thread on the caller's route (their key, else the host's,
else the offline demo) and returns the stored images and the summary. The same rules as a run from
the page: in hosted mode the caller's own results only (their owner, as the run handlers derive
it), the hourly quota and the budgets refuse before anything is sent, a batch is capped at
:data:`HOSTED_MAX_REQUESTS` requests, and a call counts among the caller's runs going, as a batch
(:mod:`aliyun_image.runtime.run_slots`). Calling again with the same input makes only what is missing.

The endpoints have no widgets in the page (the Batch tab has its own events): their inputs are
invisible components whose starting values are the API's defaults.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gradio as gr

from ..enums import EventKind, Task
from ..errors import AliyunImageError, ValidationError, unexpected
from ..generation import Axis, BatchOutcome, BatchSpec, Event, batch as batches, grid as grids
from ..i18n import msg, render
from ..runtime import AppContext, RunKind
from .endpoints import MODE_DEFAULT, PARAMS, THINKING_DEFAULT, check_handler
from .page_text import caption, gr_error, md, ui_error
from .request_info import header_key, request_lang, request_owner, request_visitor
from .rewrite_options import negative_value, rewrite_values
from .run_handlers import run_options
from .strings import t

log = logging.getLogger(__name__)

HOSTED_MAX_REQUESTS = 100  # one call of a shared demo: a bigger plan is split by the caller


def _axes(text: str) -> tuple[Axis, ...]:
    """``NAME=V1,V2`` lines (or ``;``-separated), blank ones skipped."""
    parts = [p for p in (p.strip() for line in str(text or "").splitlines() for p in line.split(";")) if p]
    if len(parts) > batches.MAX_VARIABLES:  # refused before parsing a megabyte of them
        raise ValidationError(msg("batch_limits.too_many_vars", n=len(parts), limit=batches.MAX_VARIABLES),
                              code="Validation.Batch")
    return tuple(Axis.parse(p) for p in parts)


class BatchApi:
    """The ``/batch`` and ``/grid`` handlers over one :class:`AppContext`."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        # Threads of their own, as many as the calls Gradio lets run at once ("runs"): in the event loop's
        # default executor (cpu count + 4: six threads on two cores) six slow batches of one visitor left
        # every other visitor's /batch and /grid, and the key checks, waiting behind them.
        self.pool = ThreadPoolExecutor(max(4, ctx.opts.concurrency), thread_name_prefix="aliyun-image-batch-call")

    def _options(self, negative: str, quality: str, model: str, size: str, n: Any, seed: Any,
                 prompt_extend: bool, watermark: bool, extend_mode: str | None, thinking: bool | None) -> dict:
        """The options every request shares, as /generate reads them."""
        opts = run_options(quality, model, n, seed, negative, prompt_extend, watermark, size or None)
        opts.update(rewrite_values(Task.T2I, quality, model, prompt_extend, extend_mode, thinking))
        opts["negative"] = negative_value(Task.T2I, quality, model, opts["negative"])
        return opts

    async def _run(self, request: gr.Request | None, api_key: str | None, spec: BatchSpec, lang: str,
                   progress: gr.Progress | None = None) -> tuple[list[tuple[str, str]], str]:
        """Plan, check, run ``spec`` in a worker thread; the results (the grid image last) and the
        summary. Raises ``gr.Error`` when refused or when nothing was made. ``progress`` hears of
        each image as it lands (API clients see it in the job's status, MCP clients as progress
        notifications, which keep a long batch's call alive)."""
        route = self.ctx.route(header_key(api_key))
        owner, visitor = request_owner(self.ctx, request), request_visitor(self.ctx, request)

        # Gradio finds the event a progress update belongs to in context variables of this
        # coroutine; the batch's threads have none: hand each update to the loop in this context.
        loop, here = asyncio.get_running_loop(), contextvars.copy_context()

        def landed(ev: Event) -> None:
            if progress is not None and ev.kind in (EventKind.RESULT, EventKind.FAILURE) and ev.total:
                loop.call_soon_threadsafe(functools.partial(progress, (ev.done, ev.total), unit="images"),
                                          context=here)

        how: dict[str, Any] = dict(api_key=route.key, quota=self.ctx.quota_for(route),
                                   payer=self.ctx.payers(visitor), on_event=landed)

        def check(planned: batches.Plan) -> None:
            """A new batch's refusals before it is stored (a refused call leaves no rows): its size in
            hosted mode, the hourly quota and the budgets, for the whole plan."""
            if self.ctx.opts.hosted and planned.requests > HOSTED_MAX_REQUESTS:
                raise ValidationError(msg("batch.too_big", limit=HOSTED_MAX_REQUESTS), code="Validation.Batch")
            quota = how["quota"]
            refused = quota.refusal(how["payer"], planned.images) if quota is not None else None
            if refused is not None:
                raise ValidationError(refused, code="Quota.Exceeded")
            batches.check_cost(route.service, planned, planned.units, api_key=route.key, owner=owner)

        def work() -> tuple[BatchOutcome, Any]:
            # The caller's place among the runs going (hosted: as a batch), held by this thread from
            # its first line to its last: a caller gone meanwhile cannot leave it held.
            with self.ctx.run_slot(visitor, RunKind.API_BATCH):
                prepared = batches.prepare(route.service, spec, owner=owner, check=check)
                outcome = batches.run(route.service, prepared.batch_id, owner=owner, **how)
                grid = None
                if spec.kind == grids.TASK and outcome.settled:
                    grid = grids.make_grid(route.service, outcome, lang=lang, owner=owner)
                return outcome, grid

        try:
            # A worker thread: the batch goes on (and is stored) if the caller goes away.
            outcome, grid = await asyncio.get_running_loop().run_in_executor(self.pool, work)
        except AliyunImageError as err:
            raise gr_error(err, lang) from None
        except Exception as exc:  # a bug: logged, shown as "unexpected", never a traceback
            log.exception("batch failed")
            raise gr_error(unexpected(exc), lang) from None
        gallery = [(str(r.file), caption(r, lang)) for r in outcome.results if r.file is not None]
        if grid is not None:
            gallery.append((str(grid), f"{t(lang, 'batch_api.grid_caption')} · {grid.name}"))
        lines = [render(lang, m) for m in outcome.summary()]
        if not outcome.results:
            raise ui_error(lang, "\n".join(lines))
        return gallery, "\n\n".join(md(line.strip()) for line in lines)

    # --- the public API (parameter order: endpoints.PARAMS) ---------------------------------------
    async def batch(self, prompts: str, variables: str = "", negative: str = "", quality: str = "plus",
                    model: str = "", size: str = "", n: float = 1, seed: float = -1, prompt_extend: bool = True,
                    watermark: bool = False, extend_mode: str | None = MODE_DEFAULT,
                    thinking: bool | None = THINKING_DEFAULT,
                    request: gr.Request = None,  # type: ignore[assignment]
                    x_dashscope_api_key: gr.Header = None,  # type: ignore[assignment]
                    progress: gr.Progress = gr.Progress()):  # noqa: B008 - Gradio's way of asking for it
        """Make many images from a prompt list or a template in one call (text-to-image), priced and
        checked against the budgets before anything is sent.

        Calling again with the same input makes only what is missing (a request that may have been
        billed is never sent again). Your DashScope API key goes in the request header
        ``X-DashScope-API-Key`` (optional where the host provides one).

        Args:
            prompts: One prompt per line (blank lines and lines starting with # are skipped); a line
                may use variables such as {animal}.
            variables: The values of the template's variables, one NAME=V1,V2 per line, e.g.
                "animal=cat,dog"; every combination is made. model=..., seed=..., size=... and
                prompt_extend=on,off vary the request instead.
            negative: What to avoid; empty for none.
            quality: "plus" (default) or "max".
            model: Explicit model name, or empty to choose by quality.
            size: "W*H", e.g. "1328*1328"; empty for the model default.
            n: Images per prompt, 1-6.
            seed: 0-2147483647, or -1 for random.
            prompt_extend: Let the service rewrite each prompt.
            watermark: Add the "Qwen-Image" watermark.
            extend_mode: "direct" (default) or "agent", for models that take it.
            thinking: Let the rewriting think first (models that take it).
        Returns:
            The images and the batch's summary (its id, what failed). Raises an error when nothing was made.
        """
        lang = request_lang(request)
        try:
            spec = BatchSpec(str(prompts or ""), _axes(variables),
                             self._options(negative, quality, model, size, n, seed, prompt_extend, watermark,
                                           extend_mode, thinking))
        except AliyunImageError as err:
            raise gr_error(err, lang) from None
        return await self._run(request, x_dashscope_api_key, spec, lang, progress)

    async def grid(self, prompt: str, x: str = "", y: str = "", negative: str = "", quality: str = "plus",
                   model: str = "", size: str = "", seed: float = -1, prompt_extend: bool = True,
                   watermark: bool = False, extend_mode: str | None = MODE_DEFAULT,
                   thinking: bool | None = THINKING_DEFAULT,
                   request: gr.Request = None,  # type: ignore[assignment]
                   x_dashscope_api_key: gr.Header = None,  # type: ignore[assignment]
                   progress: gr.Progress = gr.Progress()):  # noqa: B008 - Gradio's way of asking for it
        """An X/Y grid: one prompt over one or two axes (model, seed, size, prompt_extend or a {variable}
        of the prompt), every combination one image, and one labelled grid image of them all.

        Your DashScope API key goes in the request header ``X-DashScope-API-Key`` (optional where
        the host provides one).

        Args:
            prompt: The prompt; it may use a variable such as {style} that an axis gives values.
            x: The columns, NAME=V1,V2, e.g. "model=qwen-image-plus,qwen-image-2.0".
            y: The rows, NAME=V1,V2, e.g. "seed=1,2"; empty for one row.
            negative: What to avoid; empty for none.
            quality: "plus" (default) or "max".
            model: Explicit model name (when model is not an axis), or empty to choose by quality.
            size: "W*H" (when size is not an axis); empty for the model default.
            seed: 0-2147483647, or -1 for random (when seed is not an axis).
            prompt_extend: Let the service rewrite the prompt (when it is not an axis).
            watermark: Add the "Qwen-Image" watermark.
            extend_mode: "direct" (default) or "agent", for models that take it.
            thinking: Let the rewriting think first (models that take it).
        Returns:
            The cell images with the grid image last, and the summary. Raises an error when nothing was made.
        """
        lang = request_lang(request)
        try:
            axes = [*_axes(x)[:1], *_axes(y)[:1]]
            opts = self._options(negative, quality, model, size, 1, seed, prompt_extend, watermark, extend_mode,
                                 thinking)
            spec = grids.grid_spec(str(prompt or ""), axes, opts)
        except AliyunImageError as err:
            raise gr_error(err, lang) from None
        return await self._run(request, x_dashscope_api_key, spec, lang, progress)

    # --- wiring ----------------------------------------------------------------------------------
    def wire(self) -> None:
        """The two endpoints, on invisible inputs whose values are the API's defaults (inside the
        app's Blocks)."""
        defaults = {"variables": "", "x": None, "y": "", "negative": "", "quality": "plus", "model": "",
                    "size": "", "n": 1, "seed": -1, "prompt_extend": True, "watermark": False,
                    "extend_mode": MODE_DEFAULT, "thinking": THINKING_DEFAULT}
        limits: dict[str, Any] = {"concurrency_id": "runs", "concurrency_limit": self.ctx.opts.concurrency}
        with gr.Column(visible=False):
            for endpoint, handler in (("batch", self.batch), ("grid", self.grid)):
                check_handler(handler, endpoint)
                inputs: list[Any] = []
                for name in PARAMS[endpoint]:
                    value = defaults.get(name)
                    if isinstance(value, bool):
                        inputs.append(gr.Checkbox(value=value, label=name))
                    elif isinstance(value, int):
                        inputs.append(gr.Number(value=value, label=name, precision=0))
                    else:
                        inputs.append(gr.Textbox(value=value, label=name))
                outputs = [gr.Gallery(label="results", format="png"), gr.Markdown()]
                trigger = gr.Button(visible=False)
                trigger.click(handler, inputs, outputs, api_name=endpoint, show_progress="hidden", **limits)
