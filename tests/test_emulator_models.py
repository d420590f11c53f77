"""The emulator follows the model catalogue: every model by its rules, regions and their keys.

Over real HTTP, like :mod:`tests.test_emulator` (whose request helpers this module reuses).
"""

from __future__ import annotations

import math
import uuid

import pytest
import requests

from aliyun_image.catalog.spec import ASYNC as ASYNC_ENDPOINT
from aliyun_image.catalog.spec import ASYNC_GENERATION
from aliyun_image.catalog.spec import EDIT, SYNC, T2I, ModelSpec, all_model_names, get_model
from aliyun_image.emulator import Emulator

from .test_emulator import (
    ASYNC, AUTH, TASKS, assert_error, data_uri, edit, image_of, png, poll, post, t2i, task_body, urls_of,
)


def spec_of(model: str) -> ModelSpec:
    """The catalogue entry of ``model`` (which must exist)."""
    spec = get_model(model)
    assert spec is not None, model
    return spec


def main_task(spec: ModelSpec) -> str:
    """The task a default request of ``spec`` asks for: text-to-image when it does that."""
    return T2I if spec.does(T2I) else EDIT


IMAGE_TASKS = "/services/aigc/image-generation/generation"  # the 3.0 line's async task API
MODELS = all_model_names()
EDIT_MODELS = [m for m in MODELS if spec_of(m).does(EDIT)]
SERVED = [(m, e) for m in MODELS for e in spec_of(m).endpoints]  # every endpoint each entry lists
SIZED = [m for m in MODELS if spec_of(m).size_rule(main_task(spec_of(m))).kind != "none"]


@pytest.fixture(scope="module")
def server():
    with Emulator(task_delay=0.05) as emu:
        yield emu


@pytest.fixture
def emu(server):
    server.clear()
    yield server
    server.clear()


def default_body(model: str, **params) -> dict:
    """The simplest valid request for ``model``: text-to-image if it does that, else an edit
    with as few input images as it takes."""
    spec = spec_of(model)
    if spec.does(T2I):
        return t2i(model=model, **params)
    return edit([data_uri(png())] * max(1, spec.images_min), model=model, **params)


def understood(emu) -> dict:
    """What the emulator made of the last generation request (model defaults applied)."""
    order = emu.calls("generation")[-1].order
    assert order is not None
    return order


# --- every model, by its own rules ----------------------------------------------------------------
@pytest.mark.parametrize("model,endpoint", SERVED)
def test_every_model_serves_a_default_request(emu, model, endpoint):
    spec = spec_of(model)
    n = spec.n_max
    if endpoint == SYNC:
        r = post(emu, default_body(model, n=n))
        assert r.status_code == 200, r.text
        assert len(urls_of(r)) == n and r.json()["usage"]["image_count"] == n
        usage = r.json()["usage"]
        size = (usage["width"], usage["height"])
    elif spec.async_api == ASYNC_GENERATION:  # the 3.0 line: the messages body, a task id, choices
        created = post(emu, default_body(model, n=n), headers=ASYNC, path=IMAGE_TASKS)
        assert created.status_code == 200, created.text
        done, _ = poll(emu, created.json()["output"]["task_id"])
        assert done["output"]["task_status"] == "SUCCEEDED"
        assert sum("image" in c for c in done["output"]["choices"][0]["message"]["content"]) == n
        w, h = emu.calls("image_task_create")[-1].order["size"].split("*")
        size = (int(w), int(h))
    else:
        assert endpoint == ASYNC_ENDPOINT
        created = post(emu, task_body(model=model, n=n), headers=ASYNC, path=TASKS)
        assert created.status_code == 200, created.text
        done, _ = poll(emu, created.json()["output"]["task_id"])
        assert done["output"]["task_status"] == "SUCCEEDED"
        assert len(done["output"]["results"]) == n
        w, h = emu.calls("task_create")[-1].order["size"].split("*")
        size = (int(w), int(h))
    rule = spec.size_rule(main_task(spec))
    if rule.default:
        assert f"{size[0]}*{size[1]}" == rule.default
    if rule.kind == "pixels":
        assert rule.min_pixels <= size[0] * size[1] <= rule.max_pixels


@pytest.mark.parametrize("model", MODELS)
def test_n_above_the_models_max_is_refused(emu, model):
    n_max = spec_of(model).n_max
    r = post(emu, default_body(model, n=n_max + 1))
    assert_error(r, 400, "InvalidParameter", "num_images_per_prompt must be 1" if n_max == 1 else None)


@pytest.mark.parametrize("model", EDIT_MODELS)
def test_edit_models_take_up_to_their_images_max(emu, model):
    spec = spec_of(model)
    img = data_uri(png(48, 32))
    for count in {spec.images_min, min(3, spec.images_max), spec.images_max}:
        r = post(emu, edit([img] * count, model=model))
        assert r.status_code == 200, (count, r.text)
        assert understood(emu)["task"] == EDIT
    assert_error(post(emu, edit([img] * (spec.images_max + 1), model=model)), 400, "InvalidParameter",
                 "input images")


@pytest.mark.parametrize("model", [m for m in EDIT_MODELS if spec_of(m).family.startswith("Qwen-Image 2.0")
                                   or spec_of(m).family.startswith("Qwen-Image 3.0")])
def test_2_0_and_3_0_edit_one_to_three_images_on_sync(emu, model):
    assert SYNC in spec_of(model).endpoints
    for count in (1, 2, 3):
        assert post(emu, edit([data_uri(png())] * count, model=model)).status_code == 200


@pytest.mark.parametrize("model", [m for m in MODELS if not spec_of(m).does(EDIT)])
def test_text_only_models_refuse_input_images(emu, model):
    assert_error(post(emu, edit([data_uri(png())], model=model)), 400, "InvalidParameter")


def _refused_sizes(spec: ModelSpec, task: str) -> list[str]:
    """Sizes ``spec`` must refuse for ``task``, by the kind of its size rule."""
    rule = spec.size_rule(task)
    if rule.kind == "fixed":
        return ["1024*1024", "1664*930"]
    if rule.kind == "sides":
        return [f"{rule.min_side - 32}*1024", f"1024*{rule.max_side + 64}"]
    assert rule.kind == "pixels", rule.kind
    low, high = math.isqrt(rule.min_pixels) - 32, math.isqrt(rule.max_pixels) + 64
    return [f"{low}*{low}", f"{high}*{high}"]


@pytest.mark.parametrize("model", SIZED)
def test_sizes_outside_the_models_rule_are_refused(emu, model):
    spec = spec_of(model)
    task = main_task(spec)
    for size in _refused_sizes(spec, task):
        assert_error(post(emu, default_body(model, size=size)), 400, "InvalidParameter")
    good = spec.size_rule(task).presets[0].value
    r = post(emu, default_body(model, size=good))
    assert r.status_code == 200, r.text
    assert f"{r.json()['usage']['width']}*{r.json()['usage']['height']}" == good


def test_unknown_model_is_not_found(emu):
    assert_error(post(emu, t2i(model="qwen-image-9.9-ultra")), 404, "ModelNotFound", "Model can not be found.")
    assert_error(post(emu, task_body(model="qwen-image-9.9-ultra"), headers=ASYNC, path=TASKS), 404,
                 "ModelNotFound")


# --- particular models ----------------------------------------------------------------------------
def test_z_image_turbo_defaults_and_ignored_negative_prompt(emu):
    assert post(emu, t2i(model="z-image-turbo", negative_prompt="blurry")).status_code == 200
    order = understood(emu)
    assert order["prompt_extend"] is False  # off by default for this model
    assert order["negative_prompt"] == ""  # it has none: ignored, not refused
    assert order["size"] == "1024*1536"
    assert post(emu, t2i(model="z-image-turbo", prompt_extend=True)).status_code == 200
    assert understood(emu)["prompt_extend"] is True
    assert post(emu, t2i(model="qwen-image-plus", negative_prompt="blurry")).status_code == 200
    assert understood(emu)["prompt_extend"] is True and understood(emu)["negative_prompt"] == "blurry"


@pytest.mark.parametrize("model", ["qwen-image-3.0", "qwen-image-3.0-pro"])
@pytest.mark.parametrize("prompt", ["横版海报：江南水乡", "portrait of an old fisherman", "一只猫"])
def test_3_0_without_a_size_answers_2048_square_billed_as_2k(emu, model, prompt):
    """As the field reports saw it: with no size, 3.0 answered 2048*2048 whatever the prompt, billed 2K."""
    usage = post(emu, t2i(prompt, model=model)).json()["usage"]
    assert (usage["width"], usage["height"]) == (2048, 2048)
    assert usage["output_image_type"] == "qima_output_2k" and usage["output_image_count"] == 1
    assert usage["input_image_count"] == 0 and usage["input_image_type"] == "qima_input_1k"  # present without input
    r = post(emu, t2i(prompt, model=model, size="1024*768"))  # a given size wins
    assert (r.json()["usage"]["width"], r.json()["usage"]["height"]) == (1024, 768)


@pytest.mark.parametrize("size,kind", [("1024*768", "qima_output_1k"), ("1488*1488", "qima_output_1k"),
                                       ("1504*1504", "qima_output_2k"), ("2048*1152", "qima_output_2k")])
def test_3_0_usage_names_the_class_by_output_area(emu, size, kind):
    """2K above 2,250,000 px (1488*1488 is below, 1504*1504 above); inputs counted in edits."""
    r = post(emu, t2i(model="qwen-image-3.0-pro", size=size, n=2))
    assert r.json()["usage"]["output_image_type"] == kind and r.json()["usage"]["output_image_count"] == 2
    imgs = [data_uri(png(64, 64)), data_uri(png(80, 60))]
    e = post(emu, edit(imgs, model="qwen-image-3.0-pro", size=size)).json()["usage"]
    assert e["output_image_type"] == kind and e["input_image_count"] == 2
    legacy = post(emu, t2i(model="qwen-image-plus")).json()["usage"]
    assert "output_image_type" not in legacy and legacy["image_count"] == 1  # the older replies' shape


def test_a_rule_without_a_pick_still_picks_from_the_prompt():
    from aliyun_image.catalog.spec import SizeOption, SizeRule
    from aliyun_image.emulator.sizes import default_size

    presets = (SizeOption(1536, 1536, "1:1"), SizeOption(2048, 1152, "16:9"), SizeOption(1152, 2048, "9:16"))
    rule = SizeRule(kind="pixels", presets=presets, default=None, min_pixels=262144, max_pixels=4194304)
    assert default_size(rule, "a wide landscape of hills") == (2048, 1152)
    assert default_size(rule, "竖版人像，少女") == (1152, 2048)
    assert default_size(rule, "一只猫") == (1536, 1536)
    assert default_size(SizeRule(**{**rule.__dict__, "picked": "2048*2048"}), "a wide landscape") == (2048, 2048)


@pytest.mark.parametrize("words", ["违禁内容 一只猫", "a moderation-refuse test"])
def test_moderation_refuses_sync_and_fails_a_task(emu, words):
    assert_error(post(emu, t2i(words, model="qwen-image-3.0-pro")), 400, "DataInspectionFailed")
    created = requests.post(emu.base_url + TASKS, json=task_body(words), headers=ASYNC, timeout=10)
    assert created.status_code == 200
    end, _ = poll(emu, created.json()["output"]["task_id"])
    assert end["output"]["task_status"] == "FAILED" and end["output"]["code"] == "DataInspectionFailed"


def test_qwen_image_edit_one_image_and_no_size(emu):
    img = [data_uri(png(64, 32))]
    r = post(emu, edit(img, model="qwen-image-edit"))
    assert r.status_code == 200 and len(urls_of(r)) == 1
    assert r.json()["usage"]["width"] > r.json()["usage"]["height"]  # follows the input
    assert_error(post(emu, edit(img, model="qwen-image-edit", n=2)), 400, "InvalidParameter")
    assert_error(post(emu, edit(img, model="qwen-image-edit", size="1024*1024")), 400, "InvalidParameter",
                 "takes no size")


@pytest.mark.parametrize("body", [
    t2i(model="z-image-turbo", size="512*512"),
    t2i(model="qwen-image-2.0-pro-2026-03-03", size="512*512"),
    edit([data_uri(png())], model="qwen-image-edit"),
])
def test_stand_in_images_name_their_model(emu, body):
    r = post(emu, body)
    im = image_of(requests.get(urls_of(r)[0], timeout=10).content)
    assert im.info["model"] == body["model"]
    assert "EMULATOR" in im.info["Software"]


# --- regions and keys ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def singapore():
    with Emulator(region="singapore", region_keys={"key-of-beijing": "beijing", "key-of-sg": "singapore"}) as emu:
        yield emu


def auth(key: str) -> dict:
    """Headers that send ``key``."""
    return {"Authorization": f"Bearer {key}"}


def get_task(emu, task_id: str, headers) -> requests.Response:
    """``GET /tasks/{task_id}`` with ``headers``."""
    return requests.get(f"{emu.base_url}/tasks/{task_id}", headers=headers, timeout=10)


def test_keys_are_region_bound(singapore):
    for key in ("sk-sg-0123456789", "sk-intl-0123456789", "key-of-sg", "sk-test-0123456789"):
        assert post(singapore, t2i(), headers=auth(key)).status_code == 200, key
    for key in ("sk-bj-0123456789", "sk-cn-0123456789", "sk-us-0123456789", "key-of-beijing"):
        assert_error(post(singapore, t2i(), headers=auth(key)), 401, "InvalidApiKey", "Invalid API-key provided.")
    # With api_keys only those (and the region_keys of this region) are accepted.
    with Emulator(region="singapore", api_keys={"listed", "sk-bj-listed"}, region_keys={"sg-key": "singapore"}) as emu:
        for key, status in (("listed", 200), ("sg-key", 200), ("sk-bj-listed", 401), ("sk-sg-unlisted", 401)):
            assert post(emu, t2i(), headers=auth(key)).status_code == status, key
    with Emulator() as beijing:  # the default region; keys of no region work everywhere
        assert beijing.region == "beijing"
        assert post(beijing, t2i(), headers=auth("sk-bj-0123456789")).status_code == 200
        assert post(beijing, t2i(), headers=AUTH).status_code == 200
        assert_error(post(beijing, t2i(), headers=auth("sk-sg-0123456789")), 401, "InvalidApiKey")


def test_unknown_task_is_a_free_key_check(singapore):
    task_id = str(uuid.uuid4())
    r = get_task(singapore, task_id, auth("sk-sg-0123456789"))
    assert r.status_code == 200
    assert set(r.json()) == {"output", "request_id"} and r.json()["request_id"]
    assert r.json()["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    assert_error(get_task(singapore, task_id, auth("sk-bj-0123456789")), 401, "InvalidApiKey")
    assert_error(get_task(singapore, task_id, auth("sk-invalid-key")), 401, "InvalidApiKey")
    assert_error(get_task(singapore, task_id, {}), 401, "InvalidApiKey", "No API-key provided.")


@pytest.fixture
def beijing_only_model(tmp_path, monkeypatch):
    """A catalogue entry offered in Beijing only (the built-in table has none today)."""
    path = tmp_path / "models.toml"
    path.write_text('[[model]]\nid = "qwen-image-bj-only"\nbase = "qwen-image-plus"\nregions = ["beijing"]\n',
                    encoding="utf-8")
    monkeypatch.setenv("ALIYUN_IMAGE_MODELS", str(path))
    assert spec_of("qwen-image-bj-only").regions == ("beijing",)
    return "qwen-image-bj-only"


def test_model_not_offered_in_the_region_is_not_found(singapore, beijing_only_model):
    key = auth("sk-sg-0123456789")
    assert_error(post(singapore, t2i(model=beijing_only_model), headers=key), 404, "ModelNotFound",
                 "not available in this region")
    assert_error(post(singapore, task_body(model=beijing_only_model), headers={**key, "X-DashScope-Async": "enable"},
                      path=TASKS), 404, "ModelNotFound")
    r = requests.get(f"{singapore.base_url}/uploads", params={"action": "getPolicy", "model": beijing_only_model},
                     headers=key, timeout=10)
    assert_error(r, 404, "ModelNotFound")
    with Emulator() as beijing:
        assert post(beijing, t2i(model=beijing_only_model)).status_code == 200


def test_us_region_offers_no_qwen_image_model():
    with Emulator(region="us") as us:
        for model in ("qwen-image-plus", "qwen-image-edit-plus", "z-image-turbo"):
            assert_error(post(us, default_body(model)), 404, "ModelNotFound", "not available in this region")


def test_region_is_checked_and_settable():
    with pytest.raises(ValueError, match="unknown region"):
        Emulator(region="mars")
    with pytest.raises(ValueError, match="unknown region"):
        Emulator(region_keys={"k": "moon"})
    with Emulator(region="Singapore") as emu:
        assert emu.region == "singapore"
        control = emu.origin + "/_emulator/control"
        assert requests.post(control, json={"action": "set", "region": "beijing"}, timeout=10).status_code == 200
        assert requests.get(emu.origin + "/_emulator/health", timeout=10).json()["region"] == "beijing"
        assert post(emu, t2i(), headers=auth("sk-bj-0123456789")).status_code == 200
        assert requests.post(control, json={"action": "set", "region": "mars"}, timeout=10).status_code == 400
