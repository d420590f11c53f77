"""The message catalogue: every key in every language, the same placeholders, the reader's language."""

from __future__ import annotations

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
