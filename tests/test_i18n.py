"""The message catalogue: every key in every language, the same placeholders, the reader's language."""

from __future__ import annotations

import re

import pytest

from aliyun_image import i18n


def test_every_key_exists_in_every_language_with_the_same_placeholders():
    reference = i18n.catalogue("en")
    assert len(reference) > 1
    for lang in i18n.LANGUAGES:
        table = i18n.catalogue(lang)
        missing = sorted(set(reference) - set(table))
        extra = sorted(set(table) - set(reference))
        assert not missing, f"{lang} lacks {missing[:10]}"
        assert not extra, f"{lang} has keys English lacks: {extra[:10]}"
        wrong = [k for k in reference if i18n.placeholders(reference[k]) != i18n.placeholders(table[k])]
        assert not wrong, f"{lang}: placeholders differ from English in {wrong[:10]}"


def test_no_text_is_empty_and_no_markdown_escape_leaks():
    for lang in i18n.LANGUAGES:
        for key, text in i18n.catalogue(lang).items():
            assert text.strip(), f"{lang}:{key} is empty"
            assert "\\_" not in text and "\\*" not in text, f"{lang}:{key} holds a Markdown escape"


@pytest.mark.parametrize("header, lang", [
    (None, "en"), ("", "en"), ("fr-FR,fr;q=0.9", "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("zh-TW", "zh"),
    ("ja-JP,ja;q=0.9,en-US;q=0.8", "ja"), ("en-US,en;q=0.9,ja;q=0.8", "en"),
    ("fr;q=0.9, ja;q=0.5, zh;q=0.7", "zh"), ("ja;q=0, en;q=0.1", "en"), ("ja;q=bogus, zh", "zh"),
])
def test_accept_language_picks_the_best_language_we_have(header, lang):
    assert i18n.from_accept_language(header) == lang


@pytest.mark.parametrize("env, lang", [
    ({}, "en"), ({"LANG": "ja_JP.UTF-8"}, "ja"), ({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "ja_JP.UTF-8"}, "ja"), ({"LANG": "ja_JP", "ALIYUN_IMAGE_LANG": "en"}, "en"),
])
def test_cli_language_follows_the_locale(env, lang):
    assert i18n.from_locale(None, env) == lang


def test_explicit_language_wins_over_the_locale():
    assert i18n.from_locale("ja", {"LANG": "zh_CN.UTF-8"}) == "ja"


def test_messages_render_in_the_readers_language_with_nested_messages():
    inner = i18n.msg("meta.name")
    m = i18n.msg("error.request_id", id=inner)
    assert m.render("en") == "request id English"
    assert m.render("ja") == "リクエスト ID 日本語"
    assert i18n.t("xx", "meta.name") == "English"  # unknown language: English
    assert i18n.t("zh", "no.such.key") == "no.such.key"


FILE_NAME = re.compile(r"\.(png|jpe?g|webp|gif|json|toml|css|js|py)$")
TABLES = ("meta", "error", "image", "catalog", "job", "money", "storage", "run", "cli", "ui")


def test_every_key_the_code_names_exists_in_every_language():
    """A key typed wrong renders as the key itself: find it here, not in front of a reader. Every string
    literal of the package shaped like a catalogue key (``"money.budget_refused"``) must be one."""
    import ast
    from pathlib import Path

    shape = re.compile(rf"^(?:{'|'.join(TABLES)})\.[a-z0-9_]+(?:\.[A-Za-z0-9_]+)*$")
    root = Path(i18n.__file__).resolve().parent.parent
    named: dict[str, str] = {}
    for path in root.rglob("*.py"):
        if "emulator" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            # a file name ("image.png") is not a key; "error.outcome_" is a prefix completed at run time
            if shape.match(text) and not FILE_NAME.search(text) and not text.endswith("_"):
                named.setdefault(node.value, f"{path.relative_to(root)}:{node.lineno}")
    assert len(named) > 150, "the scan no longer finds the keys"
    for lang in i18n.LANGUAGES:
        missing = sorted(f"{k} ({where})" for k, where in named.items() if k not in i18n.catalogue(lang))
        assert not missing, f"{lang} lacks {missing}"
