"""Reading the catalogue's TOML files: merge, resolve ``base``, check every field.

The built-in ``models.toml`` comes first; a user file (same schema) changes the fields it gives
for a known id and adds new ids. Every value is checked here, so the rules in
:mod:`.catalog` can trust the data, and a malformed file gets one message that names the file,
the model and the field (rendered in the reader's language).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..i18n import Message, msg
from ..config import WORKSPACE_REGIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (requirements.txt installs it there)
    import tomli as tomllib

TASKS = {"t2i", "edit"}
ENDPOINTS = {"sync", "async"}
PARAMS = {"negative_prompt", "prompt_extend", "prompt_extend_mode", "enable_thinking", "watermark", "seed"}
ASYNC_APIS = {"image-synthesis", "image-generation"}  # text2image/image-synthesis (legacy), the messages body
REGIONS = {"beijing", "singapore", "us"}
STATUSES = {"current", "legacy"}
SIZE_KINDS = {"fixed", "sides", "pixels", "none"}
# note_zh and note_en: a user file's notes from before the message catalogue (read as ``note``)
_TEXT = ("family", "display", "note", "note_zh", "note_en", "source", "checked", "alias_of", "base", "best")
MODEL_FIELDS = {"id", "tasks", "endpoints", "size", "edit_size", "n", "prompt_max", "negative_max", "images",
                "params", "prompt_extend_default", "regions", "price", "price_extend", "price_2k", "price_input",
                "currency", "status", "unverified", "task_limit", "refuses", "async_api", *_TEXT}
SIZE_FIELDS = {"kind", "presets", "ratios", "preset_pixels", "default", "picked", "min_side", "max_side",
               "min_pixels", "max_pixels", "max_aspect"}
CURRENCIES = {"CNY", "USD"}
PRICE_FIELDS = ("price", "price_extend", "price_2k", "price_input")


class CatalogError(ValidationError):
    """A catalogue file that cannot be used (exit code 2, like any refused input)."""


@dataclass(frozen=True)
class CatalogData:
    """Checked raw entries: size rules by name, models by id (``base`` already applied)."""

    sizes: dict[str, dict]
    models: dict[str, dict]
    files: tuple[Path, ...]


def _fail(path: Path, where: Message | str | None, problem: Message) -> CatalogError:
    """The error for ``problem`` found at ``where`` (a model's field, a table; None: the file itself)."""
    if where is None:
        return CatalogError(msg("catalog.file_error", path=str(path), problem=problem), code="Config.Models")
    return CatalogError(msg("catalog.file_error_at", path=str(path), where=where, problem=problem),
                        code="Config.Models")


def _where(model: str, field: str) -> Message:
    return msg("catalog.where_field", model=model, field=field)


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise _fail(path, None, msg("catalog.file_missing")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, None, msg("catalog.file_unreadable", error=type(exc).__name__)) from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, None, msg("catalog.file_not_toml", error=str(exc))) from None


def load_data(builtin: Path, user: Path | None) -> CatalogData:
    """Read ``builtin``, then ``user`` on top; check and resolve everything."""
    sizes: dict[str, dict] = {}
    entries: dict[str, dict] = {}
    origin: dict[str, Path] = {}  # which file last touched a model (for messages)
    files = [builtin] + ([user] if user else [])
    for path in files:
        doc = _read(path)
        unknown = set(doc) - {"sizes", "model"}
        if unknown:
            raise _fail(path, None, msg("catalog.unknown_tables", names=str(sorted(unknown))))
        for name, raw in _table(path, doc.get("sizes", {}), "sizes").items():
            sizes[name] = {**sizes.get(name, {}), **_check_size(path, name, raw)}
        for raw in _models_list(path, doc.get("model", [])):
            mid = raw["id"]
            entries[mid] = {**entries.get(mid, {}), **raw}
            origin[mid] = path
    models = {mid: _resolve(mid, entries, origin, []) for mid in entries}
    for mid, raw in models.items():
        _check_model(origin[mid], mid, raw, sizes, models)
    return CatalogData(sizes, models, tuple(files))


def _table(path: Path, value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, where, msg("catalog.must_be_table"))
    return value


def _models_list(path: Path, value: Any) -> list[dict]:
    if not isinstance(value, list):
        raise _fail(path, "model", msg("catalog.must_be_entries"))
    out = []
    for i, raw in enumerate(value, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"].strip():
            raise _fail(path, msg("catalog.where_entry", n=i), msg("catalog.no_id"))
        unknown = set(raw) - MODEL_FIELDS
        if unknown:
            field = sorted(unknown)[0]
            raise _fail(path, _where(raw["id"], field), msg("catalog.unknown_field"))
        entry = {**raw, "id": raw["id"].strip()}
        if "note" not in entry and (raw.get("note_en") or raw.get("note_zh")):
            # A file written before the message catalogue: its own note, in one language (English
            # first), and set on the entry itself so that it wins over its base's note.
            entry["note"] = raw.get("note_en") or raw.get("note_zh")
        out.append(entry)
    return out


def _resolve(mid: str, entries: dict[str, dict], origin: dict[str, Path], seen: list[str]) -> dict:
    """The entry with its ``base`` chain applied (fields given on the entry win)."""
    raw = entries[mid]
    base = raw.get("base")
    if not base:
        return dict(raw)
    if base not in entries:
        raise _fail(origin[mid], _where(mid, "base"), msg("catalog.not_in_catalogue", name=base))
    if base in seen or base == mid:
        chain = " -> ".join([*seen, mid, base])
        raise _fail(origin[mid], _where(mid, "base"), msg("catalog.circular", chain=chain))
    parent = _resolve(base, entries, origin, [*seen, mid])
    # Everything the entry does not set is its parent's (unverified and alias_of included: a
    # snapshot of an unverified model is no better known, so entries reset them explicitly).
    return {**parent, **raw}


def _check_size(path: Path, name: str, raw: Any) -> dict:
    where = f"sizes.{name}"
    if not isinstance(raw, dict):
        raise _fail(path, where, msg("catalog.must_be_table"))
    unknown = set(raw) - SIZE_FIELDS
    if unknown:
        raise _fail(path, where, msg("catalog.unknown_fields", names=str(sorted(unknown))))
    if raw.get("kind") not in SIZE_KINDS:
        raise _fail(path, f"{where}.kind", msg("catalog.one_of", choices=str(sorted(SIZE_KINDS))))
    for key in ("min_side", "max_side", "min_pixels", "max_pixels", "preset_pixels", "max_aspect"):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] <= 0):
            raise _fail(path, f"{where}.{key}", msg("catalog.positive_integer"))
    presets = raw.get("presets", [])
    if not isinstance(presets, list) or not all(
            isinstance(p, list) and len(p) == 3 and isinstance(p[0], str) and all(
                isinstance(v, int) and v > 0 for v in p[1:]) for p in presets):
        raise _fail(path, f"{where}.presets", msg("catalog.presets_list"))
    ratios = raw.get("ratios", [])
    if not isinstance(ratios, list) or not all(isinstance(r, str) and _is_ratio(r) for r in ratios):
        raise _fail(path, f"{where}.ratios", msg("catalog.ratios_list"))
    for key in ("default", "picked"):
        if not isinstance(raw.get(key, ""), str):
            raise _fail(path, f"{where}.{key}", msg("catalog.size_default_text"))
    return raw


def _is_ratio(text: str) -> bool:
    a, _, b = text.partition(":")
    return a.isdigit() and b.isdigit() and int(a) > 0 and int(b) > 0


def _check_model(path: Path, mid: str, raw: dict, sizes: dict[str, dict], models: dict[str, dict]) -> None:
    """Every field of one resolved model entry, or a message naming it."""

    def bad(field: str, problem: Message) -> CatalogError:
        return _fail(path, _where(mid, field), problem)

    for key in _TEXT:
        if key in raw and not isinstance(raw[key], str):
            raise bad(key, msg("catalog.must_be_string"))
    _check_choices(raw, "tasks", TASKS, bad, required=True)
    _check_choices(raw, "endpoints", ENDPOINTS, bad)
    _check_choices(raw, "params", PARAMS, bad, empty_ok=True)
    _check_choices(raw, "refuses", PARAMS, bad, empty_ok=True)
    if raw.get("async_api", "image-synthesis") not in ASYNC_APIS:
        raise bad("async_api", msg("catalog.one_of", choices=str(sorted(ASYNC_APIS))))
    # A model may also be documented in regions only a workspace host reaches (their offer is partial:
    # a model that does not list one is "not known there", never refused).
    _check_choices(raw, "regions", REGIONS | set(WORKSPACE_REGIONS), bad, empty_ok=True)
    if raw.get("status", "current") not in STATUSES:
        raise bad("status", msg("catalog.one_of", choices=str(sorted(STATUSES))))
    for key in ("size", "edit_size"):
        if key in raw and raw[key] not in sizes:
            raise bad(key, msg("catalog.no_size_rule", name=raw[key]))
    _check_numbers(raw, bad)
    for key in PRICE_FIELDS:
        _check_price(raw.get(key, {}), key, bad)
    currency = raw.get("currency", {})
    if not isinstance(currency, dict) or not all(r in REGIONS and c in CURRENCIES for r, c in currency.items()):
        raise bad("currency", msg("money.tier.currency_table", choices=str(sorted(CURRENCIES))))
    if raw.get("best") and raw["best"] not in models:
        raise bad("best", msg("catalog.not_in_catalogue", name=raw["best"]))
    unverified = raw.get("unverified", [])
    if not isinstance(unverified, list) or not all(isinstance(u, str) for u in unverified):
        raise bad("unverified", msg("catalog.field_names"))


def _check_numbers(raw: dict, bad: Any) -> None:
    _check_range(raw, "n", 1, bad)
    _check_range(raw, "images", 0, bad)
    if "edit" in raw["tasks"] and raw.get("images", [0, 0])[1] < 1:
        raise bad("images", msg("catalog.edit_needs_image"))
    for key, low in (("prompt_max", 1), ("negative_max", 0)):
        value = raw.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise bad(key, msg("catalog.integer_at_least", low=low))
    task_limit = raw.get("task_limit", 1)
    if not isinstance(task_limit, int) or isinstance(task_limit, bool) or not 1 <= task_limit <= 64:
        raise bad("task_limit", msg("catalog.task_limit_range"))
    if not isinstance(raw.get("prompt_extend_default", True), bool):
        raise bad("prompt_extend_default", msg("catalog.true_or_false"))


def _check_choices(raw: dict, key: str, allowed: set[str], bad: Any, *, required: bool = False,
                   empty_ok: bool = False) -> None:
    if key not in raw:
        if required:
            raise bad(key, msg("catalog.missing_field"))
        return
    value = raw[key]
    if not isinstance(value, list) or (not value and not empty_ok) or not all(v in allowed for v in value):
        raise bad(key, msg("catalog.list_of", choices=str(sorted(allowed))))


def _check_range(raw: dict, key: str, low: int, bad: Any) -> None:
    if key not in raw:
        return
    value = raw[key]
    if not (isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value) and low <= value[0] <= value[1]):
        raise bad(key, msg("catalog.min_max", low=low))


def _check_price(value: Any, key: str, bad: Any) -> None:
    if not isinstance(value, dict) or not all(
            r in REGIONS and isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0
            for r, p in value.items()):
        raise bad(key, msg("catalog.price_table"))
