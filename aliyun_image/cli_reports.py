"""What the ``models`` and ``check`` commands print: the catalogue and a key check as text or JSON.

Kept apart from :mod:`.cli` (argument parsing and the image commands) so each stays small.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable

from . import catalog, keycheck
from .config import REGIONS, Settings, check_key, region_names
from .errors import ZH, ApiError, validation
from .i18n import render
from .keycheck import KeyCheck


def _say(lang: str, zh: str, en: str) -> None:
    print(zh if lang == ZH else en, file=sys.stderr)


def _rule_info(rule: catalog.SizeRule) -> dict:
    """A size rule as plain data (``models --json``)."""
    info: dict = {"kind": rule.kind, "default": rule.default,
                  "presets": [{"ratio": o.ratio, "size": o.value} for o in rule.presets]}
    if rule.kind == "sides":
        info.update(min_side=rule.min_side, max_side=rule.max_side)
    if rule.kind == "pixels":
        info.update(min_pixels=rule.min_pixels, max_pixels=rule.max_pixels)
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
        "params": sorted(spec.params), "prompt_extend_default": spec.prompt_extend_default,
        # Prices only where the catalogue has them: an absent region stays absent, never guessed.
        "currency": spec.currency, "price": dict(spec.price), "price_extend": dict(spec.price_extend),
        "best": spec.best, "alias_of": spec.alias_of, "snapshot_of": spec.snapshot_of,
        "snapshots": list(spec.snapshots), "note_zh": render("zh", spec.note), "note_en": render("en", spec.note),
        "source": spec.source, "checked": spec.checked,
    }


def _size_text(rule: catalog.SizeRule, task: str, lang: str) -> str:
    """One size rule in words: what may be asked for, and the default."""
    zh = lang == ZH
    presets = ", ".join(f"{o.value} ({o.ratio})" for o in rule.presets)
    if rule.kind == "fixed":
        what = (f"可选 {presets}" if zh else f"one of {presets}")
    elif rule.kind == "sides":
        what = (f"宽和高各 {rule.min_side}–{rule.max_side} 像素" if zh
                else f"width and height each {rule.min_side}-{rule.max_side} px")
    elif rule.kind == "pixels":
        lo, hi = catalog.pixels_label(rule.min_pixels), catalog.pixels_label(rule.max_pixels)
        what = f"总像素 {lo} 至 {hi}" if zh else f"total pixels {lo} to {hi}"
    elif rule.kind == "none":
        what = "不能指定（跟随输入图片）" if zh else "none (follows the input image)"
    else:
        what = "不检查" if zh else "not checked"
    if rule.kind != "fixed" and presets:
        what += (f"；预设 {presets}" if zh else f"; presets {presets}")
    if rule.default:
        default = rule.default
    elif task == catalog.EDIT:
        default = "跟随最后一张输入图" if zh else "follows the last input image"
    else:
        default = "由服务决定" if zh else "chosen by the service"
    return f"{what}；默认 {default}" if zh else f"{what}; default {default}"


def _price_text(spec: catalog.ModelSpec, lang: str) -> str:
    """Price per image in each region the catalogue prices; "price unknown" where it has none."""
    zh = lang == ZH
    parts = []
    for region in spec.regions or sorted(spec.price):
        name = region_names(region)[0 if zh else 1]
        off = spec.price.get(region)
        if off is None:
            parts.append(f"{name} 价格未知" if zh else f"{name} price unknown")
            continue
        on = spec.price_extend.get(region)
        if on is None:
            parts.append(f"{name} {off:g} {spec.currency}")
        else:  # prompt rewriting changes the price (z-image-turbo): both, never one guessed
            parts.append(f"{name} {off:g} {spec.currency}（改写关闭）/ {on:g}（改写开启）" if zh
                         else f"{name} {off:g} {spec.currency} (rewriting off) / {on:g} (rewriting on)")
    if not parts:
        return "价格未知" if zh else "price unknown"
    return ("每张 " if zh else "per image: ") + ("；" if zh else "; ").join(parts)


def _model_lines(spec: catalog.ModelSpec, lang: str) -> list[str]:
    """The text block of ``models`` for one model."""
    zh = lang == ZH
    status = spec.status + ("" if spec.verified else ", unverified")
    head = f"{spec.name}  [{status}; {'+'.join(sorted(spec.tasks))}; {'/'.join(spec.endpoints)}]"
    regions = ", ".join(spec.regions) or "-"
    n = f"{spec.n_min}" if spec.n_min == spec.n_max else f"{spec.n_min}-{spec.n_max}"
    if spec.negative_max:
        negative = f"反向提示词 ≤ {spec.negative_max} 字" if zh else f"negative ≤ {spec.negative_max} chars"
    else:
        negative = "不支持反向提示词" if zh else "no negative prompt"
    limits = f"n {n}; " + (f"提示词 ≤ {spec.prompt_max} 字" if zh else f"prompt ≤ {spec.prompt_max} chars")
    limits += f"; {negative}"
    if spec.does(catalog.EDIT):
        limits += (f"; 输入图片 {spec.images_min}-{spec.images_max} 张" if zh
                   else f"; input images {spec.images_min}-{spec.images_max}")
    lines = [head, f"    {'地域' if zh else 'regions'}: {regions}", f"    {_price_text(spec, lang)}",
             f"    {'限制' if zh else 'limits'}: {limits}"]
    for task in sorted(spec.tasks):
        lines.append(f"    {task} {'尺寸' if zh else 'size'}: {_size_text(spec.size_rule(task), task, lang)}")
    partly = sorted(spec.unverified - {"*"})
    if partly:
        lines.append(f"    {'未核实' if zh else 'unverified'}: {', '.join(partly)}")
    if spec.snapshots:
        lines.append(f"    {'快照' if zh else 'snapshots'}: {', '.join(spec.snapshots)}")
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
_STATUS_WORDS = {"valid": ("有效", "valid"), "invalid": ("无效", "invalid"),
                 "unreachable": ("无法连接", "unreachable"), "error": ("出错", "error")}


def _region_bases(pairs: list[str] | None) -> dict[str, str] | None:
    """``["beijing=http://...", ...]`` -> ``{"beijing": "http://..."}``; None when not given."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise validation(f"--region-base 应写成 地域=URL（收到“{pair}”）",
                             f"--region-base takes REGION=URL (got '{pair}')", code="Config.RegionBase")
        out[name.strip().lower()] = url.strip()
    return out


def _check_lines(result: KeyCheck, lang: str) -> list[str]:
    """The per-region table of ``check``: status, latency, models offered (or why not valid)."""
    zh = lang == ZH
    lines = []
    for r in result.results:
        word = _STATUS_WORDS.get(r.status, (r.status, r.status))[0 if zh else 1]
        ms = f"{r.latency_ms} ms" if r.latency_ms is not None else "-"
        lines.append(f"{r.region:<12} {word:<12} {ms:>8}  {r.label(lang)}  {r.base_url}")
        if r.valid:
            models = ", ".join(r.models) or ("（目录中无）" if zh else "(none in the catalogue)")
            lines.append(f"    {'可用模型' if zh else 'models'}: {models}")
        else:
            lines.append(f"    {r.detail(lang)}")
    return lines


def check(args: argparse.Namespace, lang: str,
          backend: Callable[[argparse.Namespace], contextlib.AbstractContextManager[Settings]]) -> int:
    """``check``: which region accepts the key (``backend`` gives the settings, offline or not)."""
    bases = _region_bases(args.region_base)
    with backend(args) as settings:
        key = check_key(settings.api_key, settings)
        if bases is None and args.offline:
            bases = {"beijing": settings.base_url}  # the offline emulator plays Beijing
        result = keycheck.check_key(key, bases, timeout=args.timeout or keycheck.DEFAULT_TIMEOUT,
                                    retries=keycheck.DEFAULT_RETRIES if args.retries is None else args.retries,
                                    workspace=settings.workspace)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    else:
        print("\n".join(_check_lines(result, lang)))
    if result.region is None:
        if any(r.status == keycheck.INVALID for r in result.results):
            _say(lang, "这个 Key 在能连上的地域中都无效。请从百炼控制台重新复制 Key。",
                 "No region that answered accepts the key. Copy it again from the Bailian console.")
        else:
            _say(lang, "没有地域给出回答，无法判断 Key 是否有效。请检查网络或代理设置后重试。",
                 "No region answered, so the key could not be checked. Check the network or proxy and try again.")
        return ApiError.exit_code
    zh, en = region_names(result.region)
    _say(lang, f"这个 Key 属于{zh}地域。", f"The key belongs to the {en} region.")
    if settings.region_known and settings.region != result.region and not args.offline:
        # --region does not override a base URL that was given, so name the base URL too.
        base = REGIONS.get(result.region, "")
        how_zh = f"--region {result.region}" + (f"（或 Base URL {base}）" if base else "")
        how_en = f"--region {result.region}" + (f" (or the base URL {base})" if base else "")
        _say(lang, f"注意：当前设置指向{region_names(settings.region)[0]}地域；请使用 {how_zh}。",
             f"Note: the settings point at {region_names(settings.region)[1]}; use {how_en}.")
    return 0

