"""What the ``models`` and ``check`` commands print: the catalogue and a key check as text or JSON.

Kept apart from :mod:`.cli` (argument parsing and the image commands) so each stays small.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable

from .. import catalog
from ..dashscope import keycheck
from ..config import Settings, require_key
from ..errors import ApiError, ValidationError, region_name
from ..i18n import msg, render, t
from ..dashscope import KeyCheck



def _rule_info(rule: catalog.SizeRule) -> dict:
    """A size rule as plain data (``models --json``)."""
    info: dict = {"kind": rule.kind, "default": rule.default,
                  "presets": [{"ratio": o.ratio, "size": o.value} for o in rule.presets]}
    if rule.kind == "sides":
        info.update(min_side=rule.min_side, max_side=rule.max_side)
    if rule.kind == "pixels":
        info.update(min_pixels=rule.min_pixels, max_pixels=rule.max_pixels)
    if rule.max_aspect:
        info.update(max_aspect=rule.max_aspect)
    return info


def model_info(spec: catalog.ModelSpec) -> dict:
    """Everything the catalogue says about one model, as plain data (``models --json``)."""
    return {
        "id": spec.name, "display": spec.title, "family": spec.family, "status": spec.status,
        "verified": spec.verified, "unverified": sorted(spec.unverified),
        "tasks": sorted(spec.tasks), "endpoints": list(spec.endpoints), "regions": list(spec.regions),
        "sizes": {task: _rule_info(spec.size_rule(task)) for task in sorted(spec.tasks)},
        "n": [spec.n_min, spec.n_max], "prompt_max": spec.prompt_max, "negative_max": spec.negative_max,
        "images": [spec.images_min, spec.images_max] if spec.does(catalog.EDIT) else None,
        "params": sorted(spec.params), "refuses": sorted(spec.refuses), "async_api": spec.async_api,
        "prompt_extend_default": spec.prompt_extend_default,
        # Prices only where the catalogue has them: an absent region stays absent, never guessed.
        # currency: the one of every priced region (None when they differ: see currencies)
        "currency": _one_currency(spec), "currencies": {r: spec.currency_in(r) for r in sorted(spec.price)},
        "price": dict(spec.price), "price_extend": dict(spec.price_extend),
        "price_2k": dict(spec.price_2k), "price_input": dict(spec.price_input),
        "best": spec.best, "alias_of": spec.alias_of, "snapshot_of": spec.snapshot_of,
        "snapshots": list(spec.snapshots), "note_zh": render("zh", spec.note), "note_en": render("en", spec.note),
        "source": spec.source, "checked": spec.checked,
    }


def _size_text(rule: catalog.SizeRule, task: str, lang: str) -> str:
    """One size rule in words: what may be asked for, and the default."""
    def say(key: str, **params: object) -> str:
        return t(lang, "cli.models." + key, **params)

    presets = ", ".join(f"{o.value} ({o.ratio})" for o in rule.presets)
    if rule.kind == "fixed":
        what = say("one_of", presets=presets)
    elif rule.kind == "sides":
        what = say("sides", low=rule.min_side, high=rule.max_side)
    elif rule.kind == "pixels":
        what = say("pixels", low=catalog.pixels_label(rule.min_pixels), high=catalog.pixels_label(rule.max_pixels))
    elif rule.kind == "none":
        what = say("size_none")
    else:
        what = say("not_checked")
    if rule.max_aspect:
        what = f"{what}, {t(lang, 'catalog.params.aspect', ratio=f'{rule.max_aspect}:1')}"
    if rule.kind != "fixed" and presets:
        what = say("presets", what=what, presets=presets)
    if rule.default:
        default = rule.default
    elif task == catalog.EDIT:
        default = say("default_last_input")
    else:
        default = say("default_service")
    return say("with_default", what=what, default=default)


def _one_currency(spec: catalog.ModelSpec) -> str | None:
    """The currency of all the model's prices, or None when regions differ (3.0: CNY and USD)."""
    found = {spec.currency_in(r) for r in spec.price} or {spec.currency_in("")}
    return found.pop() if len(found) == 1 else None


def _price_text(spec: catalog.ModelSpec, lang: str) -> str:
    """Price per image in each region the catalogue prices; "price unknown" where it has none."""
    parts = []
    for region in spec.regions or sorted(spec.price):
        name = render(lang, region_name(region))
        off = spec.price.get(region)
        if off is None:
            parts.append(t(lang, "cli.models.price_unknown_in", region=name))
            continue
        on = spec.price_extend.get(region)
        cur = spec.currency_in(region)
        if on is not None:  # prompt rewriting changes the price (z-image-turbo): both, never one guessed
            text = t(lang, "cli.models.price_rewriting", region=name, off=f"{off:g}", currency=cur, on=f"{on:g}")
        elif spec.tiered_in(region):  # the output's size changes the price (3.0-pro)
            text = t(lang, "money.tier.models_tiers", region=name, low=f"{off:g}", high=f"{spec.price_2k[region]:g}",
                     currency=cur)
        else:
            text = f"{name} {off:g} {cur}"
        fee = spec.input_price_in(region)
        if fee:
            text += t(lang, "money.tier.models_input", fee=f"{fee:g}")
        parts.append(text)
    if not parts:
        return t(lang, "cli.models.price_unknown")
    return t(lang, "cli.models.per_image", prices=t(lang, "cli.models.separator").join(parts))


def _model_lines(spec: catalog.ModelSpec, lang: str) -> list[str]:
    """The text block of ``models`` for one model."""
    def say(key: str, **params: object) -> str:
        return t(lang, "cli.models." + key, **params)

    status = spec.status if spec.verified else say("status_unverified", status=spec.status)
    head = f"{spec.name}  [{status}; {'+'.join(sorted(spec.tasks))}; {'/'.join(spec.endpoints)}]"
    regions = ", ".join(spec.regions) or "-"
    n = f"{spec.n_min}" if spec.n_min == spec.n_max else f"{spec.n_min}-{spec.n_max}"
    limits = [f"n {n}", say("prompt_max", max=spec.prompt_max),
              say("negative_max", max=spec.negative_max) if spec.negative_max else say("no_negative")]
    if spec.does(catalog.EDIT):
        limits.append(say("input_images", low=spec.images_min, high=spec.images_max))
    lines = [head, "    " + say("regions", regions=regions), f"    {_price_text(spec, lang)}",
             "    " + say("limits", limits=say("separator").join(limits))]
    for task in sorted(spec.tasks):
        lines.append("    " + say("size", task=task, rule=_size_text(spec.size_rule(task), task, lang)))
    extras = sorted(spec.params & {"prompt_extend_mode", "enable_thinking"})
    if extras:  # the rewriting's options (--extend-mode, --thinking) go only to the models that take them
        lines.append("    " + t(lang, "catalog.params.takes", names=", ".join(extras)))
    partly = sorted(spec.unverified - {"*"})
    if partly:
        lines.append("    " + say("unverified", fields=", ".join(partly)))
    if spec.snapshots:
        lines.append("    " + say("snapshots", names=", ".join(spec.snapshots)))
    note = render(lang, spec.note)
    if note:
        lines.append(f"    {note}")
    return lines


def models(args: argparse.Namespace, lang: str) -> int:
    """``models``: the catalogue as text, or everything as JSON."""
    specs = list(catalog.models().values())
    if args.json:
        print(json.dumps([model_info(s) for s in specs], ensure_ascii=False, indent=1))
        return 0
    for spec in specs:
        print("\n".join(_model_lines(spec, lang)))
    return 0


# --- check: which region is this key for? ----------------------------------------------------
_STATUS_WORDS = ("valid", "invalid", "unreachable", "error")  # the key check's statuses, in cli.check.*


def _region_bases(pairs: list[str] | None) -> dict[str, str] | None:
    """``["beijing=http://...", ...]`` -> ``{"beijing": "http://..."}``; None when not given."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ValidationError(msg("cli.check.region_base", pair=pair), code="Config.RegionBase")
        out[name.strip().lower()] = url.strip()
    return out


def _check_lines(result: KeyCheck, lang: str) -> list[str]:
    """The per-place table of ``check``: status, latency, models offered (or why not valid)."""
    lines = []
    for r in result.results:
        word = t(lang, "cli.check." + r.status) if r.status in _STATUS_WORDS else r.status
        ms = f"{r.latency_ms} ms" if r.latency_ms is not None else "-"
        lines.append(f"{r.region:<14} {word:<12} {ms:>8}  {r.label(lang)}  {r.base_url}")
        if r.valid:
            models = ", ".join(r.models) or t(lang, "cli.check.none_in_catalogue")
            lines.append("    " + t(lang, "cli.check.models", models=models))
        else:
            lines.append(f"    {r.detail(lang)}")
    return lines


def check(args: argparse.Namespace, lang: str,
          backend: Callable[[argparse.Namespace], contextlib.AbstractContextManager[Settings]]) -> int:
    """``check``: which platform and region accept the key (``backend`` gives the settings, offline
    or not). The configured base URL is asked first, then the other places (``--region-base``
    replaces them); offline, only the in-process emulator is asked, unless ``--region-base`` names others."""
    overrides = _region_bases(args.region_base)
    with backend(args) as settings:
        key = require_key(settings.api_key, settings)
        where = keycheck.places(settings, overrides, others=not args.offline or overrides is not None)
        result = keycheck.probe_places(key, where.bases, timeout=args.timeout or keycheck.DEFAULT_TIMEOUT,
                                    retries=keycheck.DEFAULT_RETRIES if args.retries is None else args.retries,
                                    workspace=settings.workspace)
    hint = keycheck.key_hint(key)
    if args.json:
        data = {**result.to_dict(), "configured": where.configured, "hint": render(lang, hint) if hint else None}
        print(json.dumps(data, ensure_ascii=False, indent=1))
    else:
        print("\n".join(_check_lines(result, lang)))
    if not result.valid:
        said = [msg("platform.none_accepts" if any(r.status == keycheck.INVALID for r in result.results)
                    else "cli.check.no_region_answered")]
    else:
        said = keycheck.verdict(result, where.configured, settings.workspace)
    for line in [*said, *([hint] if hint is not None else [])]:
        print(render(lang, line), file=sys.stderr)
    return 0 if result.valid else ApiError.exit_code
