"""The Batch tab's endpoints: plan, run, Stop, Resume, show one batch, and the owner's list.

Every handler works on the caller's own batches only: the owner is :func:`.request_info.request_owner`
(the run handlers' rule: the visitor's cookie, else the page session), and a batch id that is not
theirs reads as unknown. The visitor's key arrives as the ``X-DashScope-API-Key`` header of the call
that starts or resumes a batch and lives in that batch's thread until it ends, never in a component,
the database or a log. Endpoints are ``undocumented``: callable by clients (tests, scripts), not in
the API page and not MCP tools (the public ``batch`` tool is :mod:`.endpoints`' business). What the
page shows, and how a batch starts, is :mod:`.batch_view`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import gradio as gr

from .. import catalog
from ..errors import AliyunImageError
from ..generation import BatchSpec, batch as batches, grid
from ..runtime import AppContext, RunKind
from ..storage.batches import DONE
from .batch_view import BatchLimits, BatchView, page_spec, refusal, refuse
from .page_text import error_md, gr_error
from .request_info import header_key, request_lang, request_owner, request_visitor
from .strings import t


class BatchHandlers:
    """The Batch tab's endpoints (parameters in the page's order; every one the caller's batches only)."""

    def __init__(self, ctx: AppContext, limits: BatchLimits | None = None):
        self.ctx = ctx
        self.view = BatchView(ctx, limits)
        self.live = self.view.live  # the app's running batches

    def _spec(self, mode: str, prompts: str, variables: str, x_axis: str, x_values: str, y_axis: str,
              y_values: str, quality: str, model: str, size: str, n: float, seed: float, negative: str,
              prompt_extend: bool, watermark: bool, extend_mode: str | None, thinking: bool | None) -> BatchSpec:
        opts = self.view.options(quality, model, size, n, seed, negative, prompt_extend, watermark, extend_mode,
                                 thinking)
        axes = [(x_axis, x_values), (y_axis, y_values)]
        return page_spec(self.view.limits, mode, prompts, variables, axes, opts)

    def batch_plan(self, mode: str, prompts: str, variables: str, x_axis: str, x_values: str, y_axis: str,
                   y_values: str, quality: str, model: str, size: str, n: float, seed: float, negative: str,
                   prompt_extend: bool, watermark: bool, extend_mode: str | None = None, thinking: bool | None = None,
                   request: gr.Request = None,  # type: ignore[assignment]
                   x_dashscope_api_key: gr.Header = None) -> str:  # type: ignore[assignment]
        """The plan of a batch before it runs: items, requests, images and the total price, or why
        it would be refused (too big, a budget, the hosted hourly quota). Sends and stores nothing."""
        lang = request_lang(request)
        if not str(prompts or "").strip():
            return t(lang, "batch.plan_empty", var="{animal}")
        route = self.ctx.route(header_key(x_dashscope_api_key))
        try:
            spec = self._spec(mode, prompts, variables, x_axis, x_values, y_axis, y_values, quality, model, size, n,
                              seed, negative, prompt_extend, watermark, extend_mode, thinking)
            p = batches.plan(route.service, spec)
        except AliyunImageError as err:
            return error_md(err, lang)
        text = self.view.plan_text(p, route, lang)
        try:
            self.view.check(route, p, request_owner(self.ctx, request), request)
        except AliyunImageError as err:
            return text + "\n\n" + error_md(err, lang)
        return text

    def axis_values(self, axis: str, values: str, request: gr.Request = None) -> Any:  # type: ignore[assignment]
        """The values box of a grid axis as its axis asks: for ``model`` the text-to-image models the
        catalogue offers in this region (as a hint: a grid of them all would be costly), for
        ``prompt_extend`` ``on,off`` (filled in when empty); any other axis the usual hint."""
        lang = request_lang(request)
        name = str(axis or "").strip()
        if name == "model":
            s = self.ctx.settings
            ids = [m.name for m in catalog.models_for(catalog.T2I) if not s.region_known or s.region in m.regions]
            return gr.Textbox(placeholder=t(lang, "grid_ux.models_ph", models=",".join(ids[:2])),
                              info=t(lang, "grid_ux.models_info", models=", ".join(ids)))
        if name == "prompt_extend":
            return gr.Textbox(value=values if str(values or "").strip() else "on,off", placeholder="on,off",
                              info=t(lang, "grid_ux.switch_info"))
        return gr.Textbox(placeholder=t(lang, "batch.values_ph"), info="")

    async def batch_run(self, mode: str, prompts: str, variables: str, x_axis: str, x_values: str, y_axis: str,
                        y_values: str, quality: str, model: str, size: str, n: float, seed: float, negative: str,
                        prompt_extend: bool, watermark: bool, extend_mode: str | None = None,
                        thinking: bool | None = None,
                        request: gr.Request = None,  # type: ignore[assignment]
                        x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Run a batch: a prompt list (or a template and its variables), or an X/Y grid. Planned and
        checked against the budgets and the hosted quota before anything is sent, stored, then run on
        the server (closing the page does not stop it). Streams the gallery (every image in its
        place), the status, and at the end the summary, the grid image, the zip and the list of
        batches. Raises an error when refused."""
        lang = request_lang(request)
        owner = request_owner(self.ctx, request)
        route = self.ctx.route(header_key(x_dashscope_api_key))
        try:
            spec = self._spec(mode, prompts, variables, x_axis, x_values, y_axis, y_values, quality, model, size, n,
                              seed, negative, prompt_extend, watermark, extend_mode, thinking)

            def new_batch() -> str:  # inside the caller's batch place: a burst of Runs stores one batch
                self.view.plan_checked(route, spec, owner, request)
                return batches.prepare(route.service, spec, owner=owner, new=True).batch_id

            live = await asyncio.to_thread(self.view.start_held, route, owner, lang, request, new_batch)
        except AliyunImageError as err:
            yield refusal(err, lang)
            raise gr_error(err, lang) from None
        async for out in self._follow_to_end(live, lang):
            yield out

    async def _follow_to_end(self, live: Any, lang: str) -> AsyncIterator[Any]:
        """Follow a running batch in this page; a failure that ended it is raised as the page's error."""
        async for out in self.view.follow(live, lang):
            yield out
        if live.error is not None:
            raise gr_error(live.error, lang)

    async def _watch(self, live: Any, lang: str, request: gr.Request | None,
                     raise_error: bool = True) -> AsyncIterator[Any]:
        """Follow a batch that runs already (started elsewhere: another page, before a reload) in a
        place of its own among the caller's watchers (hosted; :mod:`aliyun_image.runtime.run_slots`):
        without one, a visitor could fill the app's "batches" queue group with pages following their
        one batch. Refused at once when their pages follow as many as they may; the place is given
        back however the following ends (the batch ended, the client went away, an error)."""
        try:
            slot = self.ctx.run_slot(request_visitor(self.ctx, request), RunKind.WATCH)
        except AliyunImageError as err:
            yield refusal(err, lang)
            raise gr_error(err, lang) from None
        follow = cast(AsyncGenerator[Any, None],  # both are async generators
                      self._follow_to_end(live, lang) if raise_error else self.view.follow(live, lang))
        with slot:
            async with contextlib.aclosing(follow):  # closed here, not whenever it is collected
                async for out in follow:
                    yield out

    async def batch_resume(self, batch_id: str, request: gr.Request = None,  # type: ignore[assignment]
                           x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Follow one of your batches: while it runs on the server, watch it; when it stopped short
        (Stop, a closed app, failures), make only what is missing (never resending a request that
        may have been billed); when it is complete, show it."""
        lang = request_lang(request)
        owner = request_owner(self.ctx, request)
        live = self.live.get(str(batch_id or ""), owner)
        if live is None:
            route = self.ctx.route(header_key(x_dashscope_api_key))
            try:
                found = await asyncio.to_thread(batches.find, route.service, str(batch_id or ""), owner)
                if found is None:
                    raise refuse("not_found", id=str(batch_id or "")[:40])
                if all(u.state == DONE for u in found[1]) and (found[0].kind != grid.TASK
                                                              or self.view.grid_file(found[0].id, owner)):
                    yield await asyncio.to_thread(self.view.snapshot, found[0].id, owner, lang, True)
                    return
                live = await asyncio.to_thread(self.view.start_held, route, owner, lang, request,
                                               lambda: found[0].id)
            except AliyunImageError as err:
                yield refusal(err, lang)
                raise gr_error(err, lang) from None
            follow = self._follow_to_end(live, lang)  # started here: inside the batch's own place
        else:
            follow = self._watch(live, lang, request)
        async for out in follow:
            yield out

    async def batch_show(self, batch_id: str, request: gr.Request = None):  # type: ignore[assignment]
        """Show one of your batches as stored (its images, summary, grid image and zip); one that
        runs now is followed until it ends."""
        lang = request_lang(request)
        if not str(batch_id or "").strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        owner = request_owner(self.ctx, request)
        live = self.live.get(str(batch_id or ""), owner)
        if live is not None:
            async for out in self._watch(live, lang, request, raise_error=False):
                yield out
            return
        try:
            yield await asyncio.to_thread(self.view.snapshot, str(batch_id or ""), owner, lang)
        except AliyunImageError as err:
            yield refusal(err, lang)
            raise gr_error(err, lang) from None

    def batch_stop(self, request: gr.Request = None) -> str:  # type: ignore[assignment]
        """Stop your running batch: what is still queued is not sent (Resume makes it later); what
        was sent finishes and is kept (it was paid for)."""
        lang = request_lang(request)
        live = self.live.of(request_owner(self.ctx, request))
        if live is None:
            return "ℹ️ " + t(lang, "batch.nothing_running")
        live.cancel.set()
        return self.view.progress(live, lang)

    def batch_form(self, batch_id: str, request: gr.Request = None) -> list[Any]:  # type: ignore[assignment]
        """The form filled from one of your batches as it was asked for (mode, prompts, variables or
        axes, model and options), so what it runs is in sight and can be changed for a new batch
        (Run always starts a new one). Another owner's id, or none, changes nothing."""
        return self.view.form(str(batch_id or "").strip(), request_owner(self.ctx, request))

    def batch_list(self, request: gr.Request = None) -> Any:  # type: ignore[assignment]
        """Your recent batches (running, unfinished, complete), newest first, for the picker."""
        lang = request_lang(request)
        return gr.Dropdown(choices=self.view.choices(request_owner(self.ctx, request), lang))
