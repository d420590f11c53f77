"""Validation before any money is spent: prompt, negative, size, n, seed, model, images."""

import random

import pytest

from aliyun_image.catalog import spec as catalog
from aliyun_image.dashscope import protocol
from aliyun_image.errors import InputImageError, ValidationError
from aliyun_image.jobs import build_job, clean_text


def job(task="t2i", prompt="a cat", **kw):
    return build_job(task, prompt, rng=random.Random(1), **kw)


def test_defaults_follow_the_product_rule():
    j = job()
    assert (j.model, j.size, j.negative, j.prompt_extend, j.watermark) == (
        "qwen-image-plus", "1664*928", catalog.DEFAULT_NEGATIVE, True, False)
    assert j.endpoint == "sync" and j.requests == 1 and 0 <= j.seeds[0] <= catalog.SEED_MAX
    assert not j.seed_given


def test_best_maps_plus_to_max_even_when_plus_named():
    assert job(best=True).model == "qwen-image-max"
    assert job(model="qwen-image-plus", best=True).model == "qwen-image-max"
    assert job("edit", images=["https://example.com/a.png"], best=True).model == "qwen-image-edit-max"


@pytest.mark.parametrize("prompt", ["", "   ", "\u200b\u200b", "\u202e\u200f "])
def test_empty_and_invisible_prompts(prompt):
    with pytest.raises(ValidationError) as ei:
        job(prompt=prompt)
    assert ei.value.code == "Validation.EmptyPrompt" and ei.value.zh


def test_prompt_length_boundary_counts_characters():
    assert job(prompt="猫" * 800).prompt == "猫" * 800
    with pytest.raises(ValidationError) as ei:
        job(prompt="猫" * 801)
    assert "801" in ei.value.en and "801" in ei.value.zh


def test_emoji_rtl_zero_width_inside_kept():
    text = "🐱 قطة\u200bcat"
    assert job(prompt=f"\u200b {text} \u200b").prompt == text
    assert clean_text("  x\u200d ") == "x"


def test_negative_limits_and_empty_negative():
    assert job(negative="").negative == ""
    with pytest.raises(ValidationError):
        job(negative="x" * 501)


@pytest.mark.parametrize("n", [0, 7, -1, "two", 1.5])
def test_n_out_of_range(n):
    with pytest.raises(ValidationError):
        job(n=n)


def test_fanout_splits_requests_with_consecutive_seeds():
    j = job(n=4, seed=2147483646)
    assert j.requests == 4 and j.per_request == 1
    assert j.seeds == [2147483646, 2147483647, 0, 1]
    e = job("edit", images=["https://example.com/a.png"], n=4, seed=5)
    assert e.requests == 1 and e.per_request == 4 and protocol.sync_body(e, 5, ["u"])["parameters"]["n"] == 4


@pytest.mark.parametrize("seed", [-2, 2147483648, "abc", True])
def test_bad_seeds(seed):
    with pytest.raises(ValidationError):
        job(seed=seed)


@pytest.mark.parametrize("seed", [None, "", -1, "random"])
def test_random_seed_is_chosen_and_known(seed):
    j = job(seed=seed)
    assert not j.seed_given and isinstance(j.seeds[0], int)


def test_size_rules_reach_the_job():
    assert job(size="1328x1328").size == "1328*1328"
    assert job(size="1328x1328").notes
    with pytest.raises(ValidationError) as ei:
        job(size="1024x1024")
    assert "1664*928" in ei.value.en
    assert job("edit", images=["https://e.com/a.png"], size="1033*1032").size == "1040*1024"


def test_model_checks():
    with pytest.raises(ValidationError):
        job(model="qwen-image-edit-plus")  # an edit model cannot do t2i
    with pytest.raises(ValidationError):
        job("edit", images=["https://e.com/a.png"], model="qwen-image-max")
    # an id the catalogue does not know is sent with generic rules, and the user is told
    unknown = job(model="qwen-image-4.0", size="3000*2000", n=2)
    assert unknown.spec.generic and unknown.endpoint == "sync" and unknown.size == "3000*2000"
    assert unknown.requests == 2 and unknown.per_request == 1
    assert any("local checks were off" in note.render("en") and "qwen-image-" in note.render("en")
               for note in unknown.notes)
    assert job(model="qwen-image-plus-2026-01-09").model == "qwen-image-plus-2026-01-09"
    # qwen-image works on both endpoints (sync first); the async task API is asked for
    assert job(model="qwen-image").endpoint == "sync"
    assert job(model="qwen-image", use_async=True).endpoint == "async"
    assert job(use_async=True).endpoint == "async"
    with pytest.raises(ValidationError):
        job(model="qwen-image-max", use_async=True)


def test_image_counts():
    with pytest.raises(ValidationError):
        job("t2i", images=["https://e.com/a.png"])
    with pytest.raises(ValidationError):
        job("edit", images=[])
    with pytest.raises(ValidationError) as ei:
        job("fuse", images=["https://e.com/a.png"] * 4)
    assert "4" in ei.value.en
    assert job("fuse", images=["https://e.com/a.png", "https://e.com/b.png"]).task == "fuse"


def test_hosted_refuses_local_paths_and_private_urls(tmp_path):
    opts = {"allow_local_paths": False, "allow_private_urls": False}
    (tmp_path / "a.png").write_bytes(b"x")
    for bad in (str(tmp_path / "a.png"), "file:///etc/passwd", "http://127.0.0.1/a.png", "http://192.168.1.2/x"):
        with pytest.raises(InputImageError):
            job("edit", images=[bad], image_options=opts)


def test_v2_does_both_with_n_up_to_6():
    assert job(model="qwen-image-2.0", n=6).per_request == 6
    assert job("edit", images=["https://e.com/a.png"], model="qwen-image-2.0-pro").task == "edit"
