"""The page's words: keys into the catalogue's ``[ui]`` table, and the edit templates.

Every text the page shows lives in ``aliyun_image/i18n/locales/<lang>.toml`` under ``[ui]``.
Static labels reach the browser through ``gr.I18n`` (:func:`.layout.page_i18n`, which follows
the browser's locale); messages built at run time (status lines, notes, toasts) are rendered
here with :func:`t` in the request's language (:func:`.request_info.request_lang`).
"""

from __future__ import annotations

from typing import Any

from .. import i18n

UI = "ui."  # the catalogue table of the page

# The edit templates (values of the template dropdown) and the style choices (values of the style
# dropdown): the same in every language, the labels and the instruction text come from the catalogue.
TEMPLATES: tuple[str, ...] = ("background", "style", "add", "remove", "text", "enhance")
STYLES: tuple[str, ...] = ("watercolor", "oil_painting", "ghibli", "cyberpunk", "ink", "pixel", "sketch", "clay")
_HAS_DEFAULT = ("background", "add", "remove", "text")  # templates that fill in an example object


def key(name: str) -> str:
    """The catalogue key of the page text ``name`` (``"tab_t2i"`` -> ``"ui.tab_t2i"``)."""
    return UI + name


def t(lang: str, name: str, /, **params: Any) -> str:
    """Page text ``name`` (a key of the ``[ui]`` table) in ``lang``, with ``params`` filled in."""
    return i18n.t(lang, UI + name, **params)


def slot_name(n: int) -> str:
    """A fusion slot's name, 图1/图2/图3 in every language: the model reads these in instructions."""
    return t(i18n.DEFAULT, "slot_name", n=n)


def preset_instruction(preset: str, x: str, lang: str) -> str:
    """The instruction for an edit template in ``lang``, with ``x`` (a style of :data:`STYLES`,
    an object or a text) filled in; a template's example object when ``x`` is empty."""
    if preset not in TEMPLATES:
        return ""
    value = (x or "").strip()
    if preset == "style" and value in STYLES:
        value = t(lang, f"styles.{value}")
    elif not value and preset in _HAS_DEFAULT:
        value = t(lang, f"templates.{preset}_default")
    return t(lang, f"templates.{preset}_text", x=value)
