"""The CLI's money: ``--dry-run``, the budget flags, the cost line after a run, and ``spend``.

Kept out of :mod:`aliyun_image.cli` so the parser stays short; ``cli`` calls :func:`add_cost_args`
for generate/edit/fuse and :func:`register` for the ``spend`` command.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any

from . import billing, budget, ledger
from .config import Settings, region_names
from .cost import estimate, money_text
from .errors import ZH, ValidationError


def budget_args(p: argparse.ArgumentParser) -> None:
    """``--daily-budget``, ``--monthly-budget``, ``--allow-unpriced`` (env vars are the defaults)."""
    p.add_argument("--daily-budget", metavar="AMOUNT",
                   help="refuse a run that would take today's spend past AMOUNT (price list currency, e.g. 5 "
                        "for ¥5; default ALIYUN_IMAGE_DAILY_BUDGET)")
    p.add_argument("--monthly-budget", metavar="AMOUNT",
                   help="the same for this month (default ALIYUN_IMAGE_MONTHLY_BUDGET)")
    p.add_argument("--allow-unpriced", action="store_true",
                   help="under a budget, still run models the price list has no price for")


def hosted_budget_args(p: argparse.ArgumentParser) -> None:
    """The app's hosted-mode caps on the host key's spend per rolling hour (the money form of
    ``--total-limit`` and ``--session-limit``)."""
    p.add_argument("--host-hourly-budget", metavar="AMOUNT",
                   help="hosted: refuse host-key runs that would take the last hour's spend of all visitors past "
                        "AMOUNT (default ALIYUN_IMAGE_HOST_HOURLY_BUDGET)")
    p.add_argument("--session-hourly-budget", metavar="AMOUNT",
                   help="hosted: the same per visitor (default ALIYUN_IMAGE_SESSION_HOURLY_BUDGET)")


def add_cost_args(p: argparse.ArgumentParser) -> None:
    """The money flags of generate, edit and fuse."""
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the plan and estimated cost; send nothing")
    budget_args(p)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``spend`` command to the subparsers ``sub``."""
    s = sub.add_parser("spend", help="what was spent: today, this month, by day or by model", parents=[common])
    s.add_argument("--by", choices=["day", "model"], help="one line per day or per model")
    s.add_argument("--json", action="store_true", help="the sums as JSON (exact decimal strings)")
    budget_args(s)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings overrides from the budget flags (None: the environment decides)."""
    return {"daily_budget": getattr(args, "daily_budget", None),
            "monthly_budget": getattr(args, "monthly_budget", None),
            "host_hourly_budget": getattr(args, "host_hourly_budget", None),
            "session_hourly_budget": getattr(args, "session_hourly_budget", None),
            "allow_unpriced": getattr(args, "allow_unpriced", None) or None}


def dry_run(svc: Any, job: Any, lang: str) -> int:
    """Print the plan of a validated job and its estimated cost; send nothing. Exit code 2 when
    the budget would refuse it (the message says why)."""
    zh = lang == ZH
    s: Settings = svc.settings
    est = estimate(job, s.region)
    where = region_names(s.region)[0 if zh else 1]
    rows = [("模型" if zh else "model", job.model), ("地域" if zh else "region", f"{where} ({s.region})"),
            ("尺寸" if zh else "size", job.size or ("自动" if zh else "auto")),
            ("请求数" if zh else "requests", str(job.requests)), ("图片数" if zh else "images", str(job.n)),
            ("预计花费" if zh else "estimated cost", est.text(lang))]
    if billing.paid_by(s, s.api_key) == ledger.FREE:  # the offline demo's emulator: nothing is billed
        rows[-1] = (rows[-1][0], f"¥0（离线演示，不计费；用 API Key 时{est.text(lang)}）" if zh
                    else f"¥0 (offline demo, not billed; with an API key: {est.text(lang)})")
    for name, value in rows:
        print(f"{name}: {value}")
    for note in job.notes:
        print(("提示：" if zh else "Note: ") + note.render(lang))
    try:
        budget.release(svc.store, billing.hold_budget(svc.store, s, job, None))
    except ValidationError as exc:
        print(exc.text(lang), file=sys.stderr)
        return 2
    print("（试运行：未发送任何请求）" if zh else "(dry run: nothing was sent)", file=sys.stderr)
    return 0


def cost_line(svc: Any, job: Any, batch: Any, lang: str) -> str | None:
    """The last line of a run: what it cost (stored images x price; maybe billed apart). None when
    nothing was or may have been billed (the error said it all: failures are free)."""
    est = estimate(job, svc.settings.region)
    if sum(billing.run_cost(est, len(batch.results), batch.failures)) == 0:
        return None
    free = billing.paid_by(svc.settings, svc.settings.api_key) == ledger.FREE
    return billing.run_cost_text(est, len(batch.results), batch.failures, lang, free=free)


def _budget_rows(s: Settings, today: ledger.Spend, month: ledger.Spend, lang: str) -> list[str]:
    zh = lang == ZH
    out = []
    for kind, limit, spent in (("daily", s.daily_budget, today), ("monthly", s.monthly_budget, month)):
        if limit is None:
            continue
        left = max(limit - spent.total(), Decimal(0))
        name = ("每日预算" if kind == "daily" else "每月预算") if zh else f"{kind} budget"
        out.append(f"{name} {money_text(limit, 'CNY')}" + (f"，剩余 {money_text(left, 'CNY')}" if zh
                                                            else f", {money_text(left, 'CNY')} left"))
    return out


def spend(args: argparse.Namespace, lang: str) -> int:
    """``spend``: today and this month (and per day or model), billed and maybe billed apart."""
    from .store import ResultStore

    zh = lang == ZH
    s = Settings.from_env(data_dir=args.data_dir, **overrides(args))
    store = ResultStore.open(s.data_dir, fsync=s.fsync)
    try:
        totals = ledger.summary(store)
        by = ledger.spend_by(store, args.by) if args.by else {}
    finally:
        store.close()
    if args.json:
        budgets = {"daily": None if s.daily_budget is None else str(s.daily_budget),
                   "monthly": None if s.monthly_budget is None else str(s.monthly_budget)}
        out: dict[str, Any] = {k: v.as_dict() for k, v in totals.items()} | {"budgets": budgets}
        if args.by:
            out["by_" + args.by] = {k: v.as_dict() for k, v in by.items()}
        print(json.dumps(out, ensure_ascii=False))
        return 0
    for key, spent in by.items():
        print(f"{key}\t{spent.text(lang)}")
    print(f"{'今天' if zh else 'today'}: {totals['today'].text(lang)}")
    print(f"{'本月' if zh else 'this month'}: {totals['month'].text(lang)}")
    for line in _budget_rows(s, totals["today"], totals["month"], lang):
        print(line)
    return 0

