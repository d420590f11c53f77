"""The model table and the size rules."""

import pytest

from aliyun_image import catalog
from aliyun_image.catalog import EDIT, T2I, check_size, get_model


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
    assert r.notes and "*" in r.notes[0][1]


@pytest.mark.parametrize("text", ["1024*1024", "1472*1140", "big", "21:9"])
def test_fixed_sizes_refused(text):
    r = check_size(get_model("qwen-image-plus"), T2I, text)
    assert not r.ok and r.problem[0] and r.problem[1]


def test_edit_free_size_snapped_and_told():
    r = check_size(get_model("qwen-image-edit-plus"), EDIT, "1033*1032")
    assert r.ok and r.value == "1040*1024"
    assert any("1040*1024" in en for _, en in r.notes)
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
