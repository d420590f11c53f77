"""The model table and the size rules."""

import re

import pytest

from aliyun_image.catalog import spec as catalog
from aliyun_image.catalog.spec import EDIT, T2I, check_size, get_model
from aliyun_image.i18n import Message


def test_plus_max_rule():
    assert catalog.default_model(T2I) == "qwen-image-plus"
    assert catalog.default_model(T2I, best=True) == "qwen-image-max"
    assert catalog.default_model(EDIT) == "qwen-image-edit-plus"
    assert catalog.default_model(EDIT, best=True) == "qwen-image-edit-max"


def test_snapshots_are_their_own_entries_and_know_their_model():
    assert get_model("qwen-image-plus-2026-01-09").snapshot_of == "qwen-image-plus"
    assert get_model("qwen-image-edit-plus-2025-12-15").snapshot_of == "qwen-image-edit-plus"
    assert get_model("qwen-image-2.0-pro-2026-06-22").snapshot_of == "qwen-image-2.0-pro"
    assert "qwen-image-plus-2026-01-09" in get_model("qwen-image-plus").snapshots
    # only the aliases take the async endpoint, not their dated snapshots
    assert get_model("qwen-image-plus-2026-01-09").endpoints == (catalog.SYNC,)
    assert get_model("qwen-image-nope") is None
    assert "qwen-image-max-2025-12-30" in catalog.all_model_names()


def test_required_models_and_capabilities():
    for name in ("qwen-image-plus", "qwen-image-max", "qwen-image-edit-plus", "qwen-image-edit-max",
                 "qwen-image-2.0", "qwen-image-2.0-pro", "qwen-image", "qwen-image-edit", "qwen-image-3.0",
                 "qwen-image-3.0-pro", "z-image-turbo"):
        assert get_model(name) is not None, name
    assert get_model("qwen-image").endpoints == (catalog.SYNC, catalog.ASYNC)
    assert get_model("qwen-image-plus").fixed_n
    assert get_model("qwen-image-edit-plus").n_max == 6
    v2 = get_model("qwen-image-2.0")
    assert v2.does(T2I) and v2.does(EDIT) and v2.n_max == 6


def test_t2i_sizes_with_labels():
    opts = catalog.size_options("qwen-image-plus")
    assert [o.value for o in opts] == ["1664*928", "1472*1104", "1328*1328", "1104*1472", "928*1664"]
    assert opts[0].label.startswith("16:9")
    assert get_model("qwen-image-max").size.default == "1664*928"


def test_edit_presets_span_1_1_to_21_9_in_range_and_multiples_of_16():
    opts = catalog.size_options("qwen-image-edit-plus", EDIT)
    ratios = [o.ratio for o in opts]
    assert ratios[0] == "1:1" and "21:9" in ratios
    for o in opts:
        assert o.width % 16 == 0 and o.height % 16 == 0
        assert 512 <= o.width <= 2048 and 512 <= o.height <= 2048


@pytest.mark.parametrize("text,expected", [
    (None, "1664*928"), ("", "1664*928"), ("auto", "1664*928"), ("1:1", "1328*1328"),
    ("1328*1328", "1328*1328"), ("1328x1328", "1328*1328"), ("928 × 1664", "928*1664"),
])
def test_fixed_sizes_accepted(text, expected):
    r = check_size(get_model("qwen-image-plus"), T2I, text)
    assert r.ok and r.value == expected


def test_x_separator_is_told():
    r = check_size(get_model("qwen-image-plus"), T2I, "1328x1328")
    assert r.notes and "*" in r.notes[0].render("en")
    assert all("1328*1328" in r.notes[0].render(lang) for lang in ("en", "zh", "ja"))


@pytest.mark.parametrize("text", ["1024*1024", "1472*1140", "big", "21:9"])
def test_fixed_sizes_refused(text):
    r = check_size(get_model("qwen-image-plus"), T2I, text)
    assert not r.ok and r.problem and all(r.problem.render(lang) for lang in ("en", "zh", "ja"))
    assert r.problem.render("zh") != r.problem.render("en") != r.problem.render("ja")


def test_edit_free_size_snapped_and_told():
    r = check_size(get_model("qwen-image-edit-plus"), EDIT, "1033*1032")
    assert r.ok and r.value == "1040*1024"
    assert any("1040*1024" in note.render("en") for note in r.notes)
    assert check_size(get_model("qwen-image-edit-plus"), EDIT, None).value is None  # follows last input


@pytest.mark.parametrize("text", ["500*1024", "1024*2100", "4096*4096"])
def test_edit_sides_out_of_range(text):
    assert not check_size(get_model("qwen-image-edit-plus"), EDIT, text).ok


def test_v2_pixel_rule():
    spec = get_model("qwen-image-2.0")
    assert check_size(spec, T2I, None).value == "2048*2048"
    assert check_size(spec, T2I, "2688*1536").ok  # 4.1 MP, within 512^2..2048^2
    assert not check_size(spec, T2I, "3000*3000").ok
    assert not check_size(spec, T2I, "256*256").ok


# --- the data file --------------------------------------------------------------------------------
def use_user_file(monkeypatch, tmp_path, text):
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(catalog.ENV_MODELS, str(path))
    return path


def test_builtin_file_loads_and_every_entry_is_consistent():
    data = catalog.load(None)
    assert len(data.models) >= 20
    for spec in data.models.values():
        assert spec.tasks and spec.endpoints and 1 <= spec.n_min <= spec.n_max
        if spec.does(EDIT):
            assert spec.images_max >= 1
        if spec.best:
            assert spec.best in data.models
        # the default size, when the model has one, passes the model's own check
        for task in spec.tasks:
            default = spec.size_rule(task).default
            if default:
                assert check_size(spec, task, default).value == default, spec.name


def test_facts_from_the_models_document():
    turbo = get_model("z-image-turbo")
    assert not turbo.prompt_extend_default and not turbo.accepts("negative_prompt")
    assert turbo.price_in("beijing") == 0.10 and turbo.price_in("beijing", prompt_extend=True) == 0.20
    assert get_model("qwen-image-3.0").size.default is None  # the model picks a size
    assert get_model("qwen-image-3.0").prompt_max > 800 and "prompt_max" in get_model("qwen-image-3.0").unverified
    assert get_model("qwen-image-2.1-pro").price_in("beijing") is None  # not found: never guessed
    assert get_model("qwen-image-edit").size.kind == "none" and get_model("qwen-image-edit").n_max == 1
    assert get_model("qwen-image-plus").status == "legacy" and get_model("qwen-image-2.0-pro").status == "current"
    assert not get_model("qwen-image-2.1-pro").verified


def test_user_file_adds_a_model_and_corrects_a_field(monkeypatch, tmp_path):
    use_user_file(monkeypatch, tmp_path, '''
[[model]]
id = "qwen-image-4.0"
base = "qwen-image-3.0"
display = "Qwen-Image 4.0"
price = { beijing = 0.3 }

[[model]]
id = "qwen-image-edit-plus"
n = [1, 4]
''')
    new = get_model("qwen-image-4.0")
    assert new.title == "Qwen-Image 4.0" and new.does(EDIT) and new.price_in("beijing") == 0.3
    edit = get_model("qwen-image-edit-plus")
    assert edit.n_max == 4 and edit.images_max == 3  # only the given field changed
    assert "qwen-image-4.0" in [m.name for m in catalog.models_for(T2I)]


@pytest.mark.parametrize("text,needles", [
    ('[[model]]\nid = "x"\nbase = "qwen-image-plus"\nn = [0, 2]\n', ["model x", "field n"]),
    ('[[model]]\nid = "x"\nbase = "qwen-image-plus"\nprce = 1\n', ["model x", "field prce", "unknown field"]),
    ('[[model]]\nid = "x"\nbase = "no-such-model"\n', ["model x", "field base", "no-such-model"]),
    ('[[model]]\nid = "x"\ntasks = ["paint"]\n', ["model x", "field tasks"]),
    ('[[model]]\nid = "x"\nbase = "qwen-image-plus"\nsize = "huge"\n', ["model x", "field size", "huge"]),
    ('[[model]]\nid = "x"\nbase = "qwen-image-plus"\nprice = { mars = 1 }\n', ["model x", "field price"]),
    ("[[model]\nid = 1", ["not valid TOML"]),
    ('[[model]]\nid = "a"\nbase = "b"\n[[model]]\nid = "b"\nbase = "a"\n', ["circular"]),
])
def test_broken_user_file_names_file_model_and_field(monkeypatch, tmp_path, text, needles):
    path = use_user_file(monkeypatch, tmp_path, text)
    with pytest.raises(catalog.CatalogError) as ei:
        catalog.models()
    assert str(path) in ei.value.en and str(path) in ei.value.zh and str(path) in ei.value.text("ja")
    for needle in needles:
        assert needle in ei.value.en, ei.value.en
    # one language per reader: the English message names the model and field in English only
    assert not re.search(r"[\u4e00-\u9fff]", ei.value.en.replace(str(path), "")), ei.value.en
    assert ei.value.text("ja").startswith("モデルカタログファイル")


def test_model_notes_are_catalogue_texts_and_a_user_file_may_write_its_own(monkeypatch, tmp_path):
    for spec in catalog.models().values():
        assert isinstance(spec.note, Message), spec.name  # every built-in model has a note, snapshots their base's
        texts = {lang: spec.note.render(lang) for lang in ("en", "zh", "ja")}
        assert all(texts.values()) and len(set(texts.values())) == 3 and "catalog.note" not in texts["en"], texts
    assert get_model("qwen-image-max-2025-12-30").note == get_model("qwen-image-max").note
    use_user_file(monkeypatch, tmp_path, '''
[[model]]
id = "mine"
base = "qwen-image-plus"
note = "My own words"

[[model]]
id = "older"
base = "qwen-image-plus"
note_zh = "旧文件的说明"
note_en = "A note from an older file"
''')
    assert get_model("mine").note == "My own words"
    assert get_model("older").note == "A note from an older file"


def test_missing_user_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(catalog.ENV_MODELS, str(tmp_path / "nope.toml"))
    with pytest.raises(catalog.CatalogError, match="nope.toml"):
        catalog.models()


def test_every_model_sends_only_what_it_accepts():
    from aliyun_image.dashscope import protocol
    from aliyun_image.jobs import build_job

    for spec in catalog.models().values():
        task = "t2i" if spec.does(T2I) else "edit"
        images = [] if task == "t2i" else ["https://example.com/a.png"] * spec.images_min
        job = build_job(task, "一只橘猫", images=images, model=spec.name, seed=1)
        params = protocol.sync_body(job, 1, ["https://example.com/a.png"] * len(images))["parameters"]
        for name in ("negative_prompt", "prompt_extend", "watermark", "seed"):
            assert (name in params) == spec.accepts(name), (spec.name, name)
        assert ("size" in params) == bool(spec.size_rule(task).default), spec.name
        assert params["prompt_extend"] == spec.prompt_extend_default if "prompt_extend" in params else True


def test_app_with_a_broken_user_file_says_so_and_stops(monkeypatch, tmp_path, capsys):
    from aliyun_image.cli import webapp

    use_user_file(monkeypatch, tmp_path, "[[model]\nid = 1")
    for var in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")  # the launcher speaks the locale's language, and only it
    assert webapp.main(["--offline", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "不是有效的 TOML" in err and "not valid TOML" not in err and "Traceback" not in err


def test_keys_put_together_at_run_time_exist_in_every_language():
    """Keys built from a kind or a model (literal keys are checked for the whole package in test_i18n)."""
    from aliyun_image.money import budget
    from aliyun_image import i18n

    named = set()
    # keys put together from a kind
    named |= {f"money.budget_{part}.{kind}" for kind in budget._KINDS for part in ("name", "when", "wait")}
    named |= {f"money.quota.{kind}_{who}" for kind in ("host", "offline") for who in ("session", "demo")}
    named |= {str(spec.note.key) for spec in catalog.models().values() if isinstance(spec.note, Message)}
    for lang in i18n.LANGUAGES:
        missing = sorted(k for k in named if k not in i18n.catalogue(lang))
        assert not missing, f"{lang} lacks {missing}"


def test_one_rule_chooses_the_model_for_the_job_the_model_info_and_the_cost_line():
    """``choose_model`` is the product rule written once: the job, the page's model info and its cost line
    all ask it, so a named Plus with "best quality" is Max everywhere (the estimate used to price Plus)."""
    from aliyun_image import jobs
    from aliyun_image.enums import Task

    assert catalog.choose_model(T2I, None) == ("qwen-image-plus", get_model("qwen-image-plus"))
    assert catalog.choose_model(T2I, " ", best=True)[0] == "qwen-image-max"
    assert catalog.choose_model(T2I, "qwen-image-plus", best=True)[0] == "qwen-image-max"
    snapshot = "qwen-image-plus-2026-01-09"
    assert catalog.choose_model(T2I, snapshot)[0] == snapshot  # a dated snapshot is sent as typed
    name, spec = catalog.choose_model(EDIT, "qwen-image-9000", best=True)
    assert name == "qwen-image-9000" and spec.generic  # unknown: kept, generic rules
    for model, best in ((None, False), ("qwen-image-plus", True), (snapshot, False), ("qwen-image-9000", True)):
        assert jobs.resolve_model(Task.T2I, model, best)[:2] == catalog.choose_model(T2I, model, best)


def test_a_model_that_cannot_do_the_task_is_named_as_typed_even_with_best_quality():
    from aliyun_image import jobs
    from aliyun_image.enums import Task
    from aliyun_image.errors import ValidationError

    with pytest.raises(ValidationError) as ei:
        jobs.resolve_model(Task.EDIT, "qwen-image-plus", True)
    assert ei.value.code == "Validation.Model" and "qwen-image-plus" in ei.value.text("en")
