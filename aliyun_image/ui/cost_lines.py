"""Money in the page: the cost line beside each Run button and the gallery's spend line.

The cost line follows quality, model, ``n`` and the rewriting switch as they change (no prompt,
no key needed): the run's estimate in the visitor's language, and when a budget would refuse the
run, why (the Run button is then disabled; the service would refuse the run with the same message),
a hosted visitor's hourly image cap included ("ask for 2 or fewer" while some are left). The
variations button under each panel's results says what its click costs for the selected result,
and the result actions are enabled only when there is a result to act on.
The gallery's line shows today's and this month's spend (billed, and maybe billed apart) for the
visitor (everyone's locally), with the budgets left when some are set. All events are private.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..money import billing, budget, ledger
from .. import catalog
from ..catalog import EDIT, T2I
from ..enums import Payer
from ..money import estimate_for, money_text
from ..runtime import AppContext
from ..storage import Record
from .page_text import as_record_id, md
from .request_info import caller_gallery, request_lang, request_owner
from .strings import t
from .widgets import PRIVATE

# Stands for "a key the visitor typed" when routing the estimate: the route's kind and payer depend
# only on whether there is one (the key itself never reaches the server outside a run's header).
_TYPED = "typed-key"

# A line that follows the options: no spinner or fading while it refreshes.
QUIET: dict[str, Any] = {**PRIVATE, "show_progress": "hidden"}


def _t(lang: str, name: str, /, **params: Any) -> str:
    return t(lang, f"cost.{name}", **params)


def cost_line(prefix: str) -> gr.Markdown:
    """The cost line under a panel's Run button (filled on page load)."""
    return gr.Markdown(elem_id=f"{prefix}-cost", elem_classes=["cost-line"])


def spend_line() -> gr.Markdown:
    """The gallery's spend line (filled when the tab opens)."""
    return gr.Markdown(elem_id="gallery-spend", elem_classes=["cost-line"])


def key_typed_flag() -> gr.Checkbox:
    """Whether the visitor typed a key (set by the page's key_banner.html, hidden by CSS): a yes/no,
    never the key, which travels only as a request header."""
    return gr.Checkbox(value=False, label="key typed", container=False, elem_id="key-typed")


def cost_text(ctx: AppContext, task: str, quality: str, model: str, n: Any, extend: Any, lang: str,
              owner: str | None = None, key_typed: bool = False, size: str | None = None, inputs: int = 0) -> str:
    """The cost line (see :func:`cost_state`)."""
    return cost_state(ctx, task, quality, model, n, extend, lang, owner, key_typed, size, inputs)[0]


def cost_state(ctx: AppContext, task: str, quality: str, model: str, n: Any, extend: Any, lang: str,
               owner: str | None = None, key_typed: bool = False, size: str | None = None,
               inputs: int = 0) -> tuple[str, bool]:
    """The cost line and whether the run can go: the estimate, free in the offline demo, or why a
    budget would refuse the run (then False: the Run button is disabled while it says so)
    (``owner``: the visitor, for the per-visitor hourly cap of a hosted demo; ``key_typed``: a key
    is in the key box, so runs go to the real API on it, see :meth:`AppContext.route`; ``size``:
    the size chosen, None or "" left to the model (a model priced by size class: "up to" its 2K
    price); ``inputs``: the input images a run sends at least, for models that bill them)."""
    name, spec = catalog.choose_model(task, model, quality == "max")
    try:
        count = max(1, int(float(n or 1)))
    except (TypeError, ValueError):
        count = 1
    est = estimate_for(spec, count, bool(extend), ctx.settings.region, model=name,
                       size=catalog.check_size(spec, task, size).value if size else None, inputs=inputs)
    route = ctx.route(_TYPED if key_typed else None)
    quota = ctx.quota_for(route)
    if quota is not None and owner is not None:  # the hourly image cap a hosted run would meet
        refused = quota.refusal(owner, count)
        if refused is not None:
            return _t(lang, "blocked", why=md(refused.render(lang))), False
    if route.kind == Payer.OFFLINE:
        return _t(lang, "free", est=est.text(lang)), True
    refusal = billing.budget_refusal(route.service.store, route.service.settings, est, route.key, owner)
    if refusal is not None:
        return _t(lang, "blocked", why=md(refusal.text(lang, details=False))), False
    return _t(lang, "cost", est=est.text(lang)), True


def variations_label(ctx: AppContext, rec: Record | None, lang: str, key_typed: bool = False) -> str:
    """The variations button's label for the stored result ``rec``: what one click makes (as many
    images as ``rec``'s run) and what it costs, by the cost line's rules (its model, size, input
    images and rewriting, the app's region and currency; "price unknown" when the catalogue has no
    price, free when the run would go to the offline demo). Just the action without a result."""
    action = t(lang, "action.variations")
    if rec is None:
        return action
    p = rec.params
    try:
        count = max(1, int(p.get("n") or 1))
    except (TypeError, ValueError):
        count = 1
    name, spec = catalog.choose_model(rec.task, rec.model)
    est = estimate_for(spec, count, bool(p.get("prompt_extend")), ctx.settings.region, model=name,
                       size=p.get("size") or None, inputs=len(rec.inputs))
    if ctx.route(_TYPED if key_typed else None).kind == Payer.OFFLINE:
        price = t(lang, "varprice.free")
    else:
        price = est.head().render(lang)
    return t(lang, "varprice.label_one" if count == 1 else "varprice.label", action=action, n=count, price=price)


def action_buttons(ctx: AppContext, record_id: Any, key_typed: bool, request: Any) -> list:
    """The result actions' buttons for the panel's selected result ``record_id`` (the caller's
    own, else none): variations (priced, see :func:`variations_label`), edit this, slot 1-3 and the
    run's zip, enabled only with a result to act on."""
    rid = as_record_id(record_id)
    rec = caller_gallery(ctx, request).get(rid) if rid is not None else None
    can = rec is not None and rec.file is not None
    label = variations_label(ctx, rec if can else None, request_lang(request), key_typed)
    return [gr.Button(value=label, interactive=can)] + [gr.Button(interactive=can) for _ in range(5)]


def spend_text(ctx: AppContext, lang: str, owner: str | None) -> str:
    """Today and this month for ``owner`` (None: everyone), and what the budgets leave."""
    line = ledger.summary_text(ctx.store, lang, owner)
    s = ctx.settings
    if ctx.offline_only:
        line += _t(lang, "free_note")
    elif not ctx.opts.hosted:
        totals = ledger.summary(ctx.store)
        for kind, limit, spent in (("daily", s.budgets.daily_budget, totals["today"]),
                                   ("monthly", s.budgets.monthly_budget, totals["month"])):
            if limit is not None:
                for cur, rest in budget.left(limit, spent).items():  # currencies apart
                    line += " · " + _t(lang, "left", name=_t(lang, kind), left=money_text(rest, cur))
    return _t(lang, "spend", line=line)


def run_cost_md(job: Any, results: list, failures: list, lang: str, region: str | None, free: bool) -> str:
    """What a finished run cost, for its status block ("" without a region, or when nothing was
    or may have been billed: failures are free)."""
    if region is None:
        return ""
    est = estimate_for(job.spec, job.n, job.prompt_extend, region, requests=job.requests, model=job.model,
                       size=job.size, inputs=len(job.images))
    if sum(billing.run_cost(est, len(results), failures)) == 0 and not billing.moderated(failures):
        return ""
    return md(billing.run_cost_text(est, len(results), failures, lang, free=free,
                                    prices=[getattr(r, "price", None) for r in results]))


def wire(demo: gr.Blocks, ctx: AppContext, panels: dict[str, Any], gallery: Any) -> None:
    """Keep the cost lines of ``panels`` (``{"t2i": T2IPanel, "edit": ..., "fuse": ...}``) and the
    gallery's spend line up to date; they follow whether a key is typed, too."""
    typed = key_typed_flag()
    def actions(record_id: Any, key_typed: bool, request: gr.Request) -> list:
        return action_buttons(ctx, record_id, bool(key_typed), request)

    for prefix, panel in panels.items():
        task = T2I if prefix == "t2i" else EDIT
        o = panel.options

        # The t2i size picks a 3.0-pro price class; edits and fusion send 1 / 2 input images at least.
        size_box = getattr(panel, "size", None)
        least = 0 if task == T2I else 2 if prefix == "fuse" else 1

        def update(quality: str, model: str, n: float, extend: bool, key_typed: bool, request: gr.Request,
                   size: str | None = None, task: str = task, least: int = least) -> tuple[str, gr.Button]:
            owner = request_owner(ctx, request)
            text, can = cost_state(ctx, task, quality, model, n, extend, request_lang(request), owner,
                                   bool(key_typed), size=size, inputs=least)
            # The Run button cannot act while the line says the run cannot go (issue 16 §8).
            return text, gr.Button(interactive=can)

        inputs = [o.quality, o.model, o.n, o.extend, typed] + ([size_box] if isinstance(size_box, gr.Dropdown) else [])
        outputs = [panel.cost, panel.run]
        for w in inputs:
            w.change(update, inputs, outputs, **QUIET)
        demo.load(update, inputs, outputs, **QUIET)
        panel.status.change(update, inputs, outputs, **QUIET)  # a run ended: the budget left changed

        # The result actions act on the selected result: enabled with one, and the variations
        # button says what a click costs (it follows the selection and the key box).
        a = panel.actions
        act_inputs = [a.current, typed]
        act_outputs = [a.variations, a.edit, *a.slots, a.zip_run]
        # (after the cost line, which follows the key box: a trigger on the key flag itself kept the
        # page's banner from switching back when the key was cleared)
        for trigger in (a.current.change, panel.cost.change):
            trigger(actions, act_inputs, act_outputs, **QUIET)

    def spend(request: gr.Request) -> str:
        return spend_text(ctx, request_lang(request), request_owner(ctx, request))

    for trigger in (gallery.tab.select, gallery.refresh.click, demo.load):
        trigger(spend, None, gallery.spend, **QUIET)
