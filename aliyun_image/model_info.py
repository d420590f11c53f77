"""What a model is and accepts, in words: the UI's model picker and the CLI's ``models`` share it.

Everything comes from the catalogue; a price the catalogue does not have is said to be unknown,
never guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .catalog import ModelSpec, SizeRule, models, pixels_label
from .catalog_file import REGIONS as CATALOG_REGIONS
from .config import Settings, region_names
from .errors import ZH, validation

if TYPE_CHECKING:  # annotations only: jobs does not import this module
    from .jobs import Job



def badge(spec: ModelSpec, lang: str) -> str:
    """The model's badge: newest, legacy, unverified (or none)."""
    zh = lang == ZH
    if not spec.verified or spec.generic:
        return "未核实" if zh else "unverified"
    if spec.status == "legacy":
        return "旧版" if zh else "legacy"
    if spec.family == newest_family():
        return "最新" if zh else "newest"
    return ""


def newest_family() -> str:
    """The family of the first current model in the catalogue (the file lists newest first)."""
    return next((m.family for m in models().values() if m.status == "current"), "")


def picker_label(spec: ModelSpec, lang: str) -> str:
    """``"Qwen-Image 3.0 › qwen-image-3.0-pro · newest"``: family, id and badge in one line."""
    mark = badge(spec, lang)
    return f"{spec.family or '?'} › {spec.name}" + (f" · {mark}" if mark else "")


def size_text(rule: SizeRule, lang: str) -> str:
    """How sizes work for this rule, in one short phrase."""
    zh = lang == ZH
    if rule.kind == "fixed":
        sizes = ", ".join(p.value for p in rule.presets)
        return f"固定尺寸：{sizes}" if zh else f"fixed sizes: {sizes}"
    if rule.kind == "sides":
        return (f"宽、高各 {rule.min_side}–{rule.max_side} 像素" if zh
                else f"width and height each {rule.min_side}-{rule.max_side} px")
    if rule.kind == "pixels":
        lo, hi = pixels_label(rule.min_pixels), pixels_label(rule.max_pixels)
        return f"自由尺寸 宽*高，总像素 {lo} 到 {hi}" if zh else f"free W*H, total pixels {lo} to {hi}"
    if rule.kind == "none":
        return "不能指定尺寸（跟随输入图）" if zh else "no size (follows the input image)"
    return "尺寸原样发送" if zh else "size passed through"


def price_text(spec: ModelSpec, region: str, lang: str) -> str:
    """``"¥0.20 / image (Beijing)"``, with the rewriting price when it differs; or "unknown"."""
    zh = lang == ZH
    where = region_names(region)[0 if zh else 1]
    price = spec.price_in(region)
    if price is None:
        return f"价格未知（{where}）" if zh else f"price unknown ({where})"
    text = f"¥{price:g} / 张（{where}）" if zh else f"¥{price:g} / image ({where})"
    extended = spec.price_in(region, prompt_extend=True)
    if extended is not None and extended != price:
        text += f"；开启提示词改写 ¥{extended:g}" if zh else f"; ¥{extended:g} with prompt rewriting on"
    return text


def summary(spec: ModelSpec, task: str, region: str, lang: str) -> str:
    """Two short Markdown lines about ``spec`` for ``task``: its note, then sizes, n, prompt, price."""
    zh = lang == ZH
    if spec.generic:
        return (f"**{spec.name}** 不在目录中：按通用规则发送，本地检查已关闭，以服务返回为准。" if zh else
                f"**{spec.name}** is not in the catalogue: sent with generic rules, local checks off; "
                "the service decides.")
    note = spec.note_zh if zh else spec.note_en
    n_top = spec.n_max if not spec.fixed_n else 6
    facts = [size_text(spec.size_rule(task), lang),
             (f"每次 1–{n_top} 张" if zh else f"1-{n_top} images per run"),
             (f"提示词 ≤ {spec.prompt_max} 字" if zh else f"prompt up to {spec.prompt_max} characters"),
             price_text(spec, region, lang)]
    if not spec.verified or spec.unverified:
        facts.append("部分规则未核实" if zh else "some rules not verified")
    # Markdown: the sizes' "*" must not turn into emphasis
    return f"**{spec.title}** — {note}\n\n" + " · ".join(f.replace("*", "\\*") for f in facts)


def check_offered(job: Job, settings: Settings) -> None:
    """Refuse a model the chosen region does not offer, before anything is sent or billed.

    Unknown models (sent with generic rules) and custom bases with no region asked for are
    let through: nothing is known about them. Regions the catalogue has no column for
    (workspace domains such as eu-central-1) get a note instead: their offer is not known.
    """
    s, spec = settings, job.spec
    if spec.generic or not s.region_known or s.region in spec.regions:
        return
    if s.region not in CATALOG_REGIONS:
        job.notes.append((f"不清楚 {s.region} 地域是否提供 {job.model}；若被拒绝，请改用北京或新加坡地域。",
                          f"Whether {s.region} offers {job.model} is not known; if it is refused, use the "
                          "Beijing or Singapore region."))
        return
    zh, en = region_names(s.region)
    where_zh = "、".join(region_names(r)[0] for r in spec.regions) or "（无）"
    where_en = ", ".join(region_names(r)[1] for r in spec.regions) or "(none)"
    raise validation(
        f"{job.model} 在{zh}地域不提供（可用地域：{where_zh}）。请用 --region 或 Base URL 换到可用地域，"
        "并使用该地域的 API Key。",
        f"{job.model} is not offered in the {en} region (available in: {where_en}). Switch with --region or "
        "the base URL, and use that region's API key.", code="Validation.Region")
