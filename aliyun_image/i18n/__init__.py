"""One message catalogue: every text a person reads, by key, in each language of :data:`LANGUAGES`.

The texts live in ``locales/<lang>.toml`` (one file per language; TOML tables give the keys their
dotted prefixes, ``[cli] done = "..."`` is ``cli.done``). Code never holds a sentence: it names a
key and its parameters (:class:`Message`), and the edge that shows it (the CLI, the page, an API
reply) renders it in the reader's language with :func:`t` or :meth:`Message.render`.

Adding a language is adding ``locales/<code>.toml`` and its code to :data:`LANGUAGES`; a test
checks that every key exists in every file with the same placeholders.

How the reader's language is found:
- CLI: ``--lang``, then ``ALIYUN_IMAGE_LANG``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` (:func:`from_locale`);
- page and API: the request's ``Accept-Language`` (:func:`from_accept_language`), English when absent.
"""

from __future__ import annotations

import functools
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 (requirements.txt installs tomli there)
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["DEFAULT", "LANGUAGES", "Message", "catalogue", "from_accept_language", "from_locale",
           "msg", "normalize", "placeholders", "render", "t"]

#: The languages of the catalogue, in the order a page lists them. English is the fallback.
LANGUAGES: tuple[str, ...] = ("en", "zh", "ja")
DEFAULT = "en"

_DIR = Path(__file__).resolve().parent / "locales"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """Every text of ``lang`` as a flat ``{dotted.key: text}`` dict (read once per process)."""
    with open(_DIR / f"{lang}.toml", "rb") as fh:
        return _flatten(tomllib.load(fh))


def normalize(tag: str | None) -> str | None:
    """The catalogue language for a locale or language tag (``zh-CN``, ``ja_JP.UTF-8``, ``en``), or None."""
    base = (tag or "").strip().lower().replace("_", "-").split(".")[0].split("-")[0]
    return base if base in LANGUAGES else None


def from_accept_language(header: str | None) -> str:
    """The reader's language from an ``Accept-Language`` header: the best-weighted language the
    catalogue has, English when the header is absent or names none of ours."""
    best: tuple[float, int, str] | None = None
    for pos, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = normalize(tag)
        if not lang:
            continue
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -pos) > (best[0], best[1])):
            best = (q, -pos, lang)
    return best[2] if best else DEFAULT


def from_locale(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The CLI reader's language: ``explicit`` (``--lang``), else the first of ``ALIYUN_IMAGE_LANG``,
    ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is set (POSIX order), else English."""
    if explicit:
        return normalize(explicit) or DEFAULT
    env = os.environ if environ is None else environ
    for var in ("ALIYUN_IMAGE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if value:
            return normalize(value) or DEFAULT
    return DEFAULT


def placeholders(text: str) -> set[str]:
    """The named ``{placeholders}`` of a catalogue text."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class _Params(dict):
    """Format parameters that render nested :class:`Message` values in the same language."""

    def __init__(self, lang: str, params: Mapping[str, Any]):
        super().__init__(params)
        self.lang = lang

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return value.render(self.lang) if isinstance(value, Message) else value

    def __missing__(self, key: str) -> str:  # a missing parameter shows as itself, never raises
        return "{" + key + "}"


def t(lang: str, key: str, /, **params: Any) -> str:
    """The text ``key`` in ``lang`` with ``params`` filled in (a :class:`Message` parameter is
    rendered in ``lang`` too). A key missing from ``lang`` falls back to English, then to the key."""
    lang = normalize(lang) or DEFAULT
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue(DEFAULT).get(key, key)
    return text.format_map(_Params(lang, params)) if params else text


@dataclass(frozen=True)
class Message:
    """A text to be shown later: a catalogue key and its parameters, never a sentence.

    Errors, run events and notes carry these; the edge renders them for its reader.
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        """This message in ``lang``."""
        return t(lang, self.key, **self.params)

    def __str__(self) -> str:  # logs and tracebacks read English
        return self.render(DEFAULT)


def msg(key: str, /, **params: Any) -> Message:
    """Shorthand for ``Message(key, params)``."""
    return Message(key, params)


def render(lang: str, value: Message | str) -> str:
    """``value`` in ``lang``: a :class:`Message` rendered, a plain string (a model name, a path) as is."""
    return value.render(lang) if isinstance(value, Message) else value
