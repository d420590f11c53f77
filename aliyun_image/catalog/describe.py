"""What a model is and accepts, in words: the UI's model picker and the CLI's ``models`` share it.

Everything comes from the catalogue; a price the catalogue does not have is said to be unknown,
never guessed.
"""

from __future__ import annotations


from .spec import TIER_2K_PIXELS, ModelSpec, SizeRule, models, pixels_label
from ..config import region_name
from ..i18n import render, t



def badge(spec: ModelSpec, lang: str) -> str:
    """The model's badge: newest, legacy, unverified (or none)."""
    if not spec.verified or spec.generic:
        return t(lang, "catalog.badge_unverified")
    if spec.status == "legacy":
        return t(lang, "catalog.badge_legacy")
    if spec.family == newest_family():
        return t(lang, "catalog.badge_newest")
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
    if rule.kind == "fixed":
        return t(lang, "catalog.sizes_fixed", sizes=", ".join(p.value for p in rule.presets))
    if rule.kind == "sides":
        return t(lang, "catalog.sizes_sides", low=rule.min_side, high=rule.max_side)
    if rule.kind == "pixels":
        return t(lang, "catalog.sizes_pixels", low=pixels_label(rule.min_pixels), high=pixels_label(rule.max_pixels))
    if rule.kind == "none":
        return t(lang, "catalog.sizes_none")
    return t(lang, "catalog.sizes_free")


SYMBOLS = {"CNY": "¥", "USD": "$"}


def amount_text(value: float, currency: str) -> str:
    """``¥0.25``, ``$0.075``, or ``0.5 EUR`` for a currency without a symbol here."""
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{value:g}" if symbol else f"{value:g} {currency}"


def price_text(spec: ModelSpec, region: str, lang: str) -> str:
    """``"¥0.20 / image (Beijing)"``, with the rewriting price when it differs, the 2K price and
    the input image fee when the model has them; or "unknown"."""
    where = region_name(region)
    price = spec.price_in(region)
    if price is None:
        return t(lang, "catalog.price_unknown_in", region=where)
    cur = spec.currency_in(region)
    text = t(lang, "catalog.price_per_image", price=amount_text(price, cur), region=where)
    extended = spec.price_in(region, prompt_extend=True)
    if extended is not None and extended != price:
        text += t(lang, "catalog.price_with_extend", price=amount_text(extended, cur))
    if spec.tiered_in(region):
        text += t(lang, "money.tier.price_2k", price=amount_text(spec.price_2k[region], cur),
                  pixels=f"{TIER_2K_PIXELS:,}")
    fee = spec.input_price_in(region)
    if fee:
        text += t(lang, "money.tier.input_fee", price=amount_text(fee, cur))
    return text


def summary(spec: ModelSpec, task: str, region: str, lang: str) -> str:
    """Two short Markdown lines about ``spec`` for ``task``: its note, then sizes, n, prompt, price."""
    if spec.generic:
        return t(lang, "catalog.generic_model", model=f"**{spec.name}**")
    n_top = spec.n_max if not spec.fixed_n else 6
    facts = [size_text(spec.size_rule(task), lang), t(lang, "catalog.images_per_run", top=n_top),
             t(lang, "catalog.prompt_up_to", limit=spec.prompt_max), price_text(spec, region, lang)]
    if not spec.verified or spec.unverified:
        facts.append(t(lang, "catalog.some_unverified"))
    # Markdown: the sizes' "*" must not turn into emphasis
    return f"**{spec.title}** — {render(lang, spec.note)}\n\n" + " · ".join(f.replace("*", "\\*") for f in facts)
