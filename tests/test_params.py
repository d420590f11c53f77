"""Every parameter the current models take (issue 17.2) and the 3.0 async path (17.4).

The catalogue says which model takes which parameter; a parameter a model does not take is refused
before sending; what is sent is checked on the wire (the emulator records every request), through the
service and through the CLI in-process (``aliyun_image.cli.main``).
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from aliyun_image import catalog
from aliyun_image.catalog import ASYNC_GENERATION, ASYNC_SYNTHESIS, EDIT, T2I, check_size, get_model, takers
from aliyun_image.catalog.loader import CatalogError
from aliyun_image.cli import main
from aliyun_image.errors import ValidationError
from aliyun_image.generation.service import ImageService
from aliyun_image.jobs import build_job

from .conftest import TEST_KEY
from .test_emulator import ASYNC, AUTH, assert_error, data_uri, edit, png, post, t2i

REWRITERS = {"qwen-image-3.0-pro", "qwen-image-3.0", "qwen-image-2.1-pro", "qwen-image-2.1-turbo"}
URLS = [f"https://example.com/ref{i}.png" for i in range(1, 12)]
IMAGE_TASKS = "/services/aigc/image-generation/generation"


def spec(model: str) -> catalog.ModelSpec:
    found = get_model(model)
    assert found is not None, model
    return found


def sent(call) -> dict:
    """The ``parameters`` of a recorded generation or task-create request."""
    return call.json["parameters"]


# --- the catalogue ---------------------------------------------------------------------------------
def test_the_catalogue_says_which_model_takes_which_parameter():
    for param in ("prompt_extend_mode", "enable_thinking"):
        assert set(takers(param)) == REWRITERS
        assert set(takers(param, EDIT)) == REWRITERS
    assert not {"qwen-image-plus", "qwen-image-2.0-pro", "z-image-turbo"} & set(takers("prompt_extend_mode"))
    pro = spec("qwen-image-2.1-pro")
    assert (pro.images_min, pro.images_max, pro.n_min, pro.n_max) == (1, 10, 1, 6)
    assert not pro.accepts("negative_prompt") and pro.refuses == {"negative_prompt"} and pro.negative_max == 0
    assert pro.size_rule(T2I).default is None and pro.size_rule(T2I).max_aspect == 8  # the model decides
    turbo = spec("qwen-image-2.1-turbo")
    assert not turbo.verified and turbo.regions == ("beijing",) and turbo.images_max == 10
    for model in ("qwen-image-3.0", "qwen-image-3.0-pro"):
        assert spec(model).endpoints == ("sync", "async") and spec(model).async_api == ASYNC_GENERATION
    assert spec("qwen-image").async_api == ASYNC_SYNTHESIS == spec("qwen-image-plus").async_api


@pytest.mark.parametrize("model", ["qwen-image-3.0", "qwen-image-3.0-pro", "qwen-image-2.1-pro"])
@pytest.mark.parametrize("task", [T2I, EDIT])
def test_aspect_up_to_8_to_1_either_way(model, task):
    rule_spec = spec(model)
    assert check_size(rule_spec, task, "2048*256").value == "2048*256"  # 8:1
    assert check_size(rule_spec, task, "256*2048").ok
    wide = check_size(rule_spec, task, "2304*256")  # 9:1, within the pixel range
    assert not wide.ok and wide.problem is not None
    assert "8:1" in wide.problem.render("en") and "2304*256" in wide.problem.render("ja")
    assert check_size(spec("qwen-image-2.0-pro"), T2I, "2304*256").ok  # no aspect bound there


@pytest.mark.parametrize("line, field", [('async_api = "nope"', "async_api"), ('refuses = ["colour"]', "refuses"),
                                         ('params = ["prompt_extend_mode", "bogus"]', "params")])
def test_a_user_catalogue_with_a_wrong_parameter_field_is_named(tmp_path, line, field):
    user = tmp_path / "models.toml"
    user.write_text(f'[[model]]\nid = "my-model"\nbase = "qwen-image-3.0"\n{line}\n', encoding="utf-8")
    with pytest.raises(CatalogError) as ei:
        catalog.load(user)
    assert field in ei.value.en and "my-model" in ei.value.en


def test_a_user_catalogue_can_give_a_model_the_rewriting_options(tmp_path):
    user = tmp_path / "models.toml"
    user.write_text('[[model]]\nid = "qwen-image-2.0-pro"\n'
                    'params = ["negative_prompt", "prompt_extend", "prompt_extend_mode", "watermark", "seed"]\n',
                    encoding="utf-8")
    loaded = catalog.load(user).models["qwen-image-2.0-pro"]
    assert loaded.accepts("prompt_extend_mode") and not loaded.accepts("enable_thinking")


# --- refused or noted before sending (jobs) -------------------------------------------------------
@pytest.mark.parametrize("task, model, options, param", [
    ("t2i", "qwen-image-plus", {"extend_mode": "direct"}, "prompt_extend_mode"),
    ("t2i", "z-image-turbo", {"thinking": True}, "enable_thinking"),
    ("t2i", "qwen-image-2.0-pro", {"thinking": False}, "enable_thinking"),
    ("edit", "qwen-image-edit-plus", {"extend_mode": "direct"}, "prompt_extend_mode"),
])
def test_a_parameter_the_model_does_not_take_is_refused_naming_those_that_do(task, model, options, param):
    images = [URLS[0]] if task == "edit" else []
    with pytest.raises(ValidationError) as ei:
        build_job(task, "a lighthouse", images=images, model=model, **options)
    err = ei.value
    assert err.code == "Validation.Param" and err.exit_code == 2
    for lang in ("en", "zh", "ja"):
        text = err.text(lang)
        assert model in text and param in text and all(m in text for m in REWRITERS), (lang, text)


@pytest.mark.parametrize("task, images", [("edit", URLS[:1]), ("fuse", URLS[:2])])
@pytest.mark.parametrize("model", ["qwen-image-3.0", "qwen-image-2.1-pro"])
def test_agent_rewriting_is_for_text_to_image_only(task, images, model):
    with pytest.raises(ValidationError) as ei:
        build_job(task, "make it blue", images=images, model=model, extend_mode="agent")
    assert ei.value.code == "Validation.ExtendMode" and "direct" in ei.value.en
    assert build_job(task, "make it blue", images=images, model=model, extend_mode="direct").extend_mode == "direct"
    assert build_job("t2i", "a cat", model=model, extend_mode=" Agent ").extend_mode == "agent"


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValidationError) as ei:
        build_job("t2i", "a cat", model="qwen-image-3.0", extend_mode="planner")
    assert ei.value.code == "Validation.ExtendMode" and "planner" in ei.value.en and "agent" in ei.value.en


def test_with_rewriting_off_the_rewriting_options_are_not_sent_and_the_user_is_told():
    job = build_job("t2i", "a cat", model="qwen-image-3.0", prompt_extend=False, extend_mode="agent", thinking=True)
    assert job.extend_mode is None and job.thinking is None
    assert "prompt_extend_mode" not in job.params() and "enable_thinking" not in job.params()
    (note,) = [n for n in job.notes if n.key == "job.params.rewriting_off"]
    assert "prompt_extend_mode" in note.render("en") and "enable_thinking" in note.render("zh")
    quiet = build_job("t2i", "a cat", model="qwen-image-3.0", prompt_extend=False)
    assert not [n for n in quiet.notes if n.key == "job.params.rewriting_off"]
    on = build_job("t2i", "a cat", model="qwen-image-3.0", thinking=False)
    assert on.thinking is False and on.params()["enable_thinking"] is False and "prompt_extend_mode" not in on.params()


def test_an_unknown_model_gets_what_the_user_asks_for():
    job = build_job("t2i", "a cat", model="qwen-image-9.0", extend_mode="agent", thinking=True)
    assert (job.extend_mode, job.thinking) == ("agent", True)


def test_2_1_pro_sends_no_negative_prompt_and_says_so_when_one_was_typed():
    typed = build_job("t2i", "a cat", model="qwen-image-2.1-pro", negative="blurry")
    assert typed.negative == "" and [n for n in typed.notes if n.key == "job.negative_dropped"]
    default = build_job("t2i", "a cat", model="qwen-image-2.1-pro")
    assert default.negative == "" and not [n for n in default.notes if n.key == "job.negative_dropped"]


@pytest.mark.parametrize("instruction", ["图1的人物站在图3的场景里", "put the person of image 1 into image 3",
                                         "Picture 3 as the sky, picture 1 as the ground"])
def test_a_fusion_naming_an_image_it_does_not_carry_is_refused_before_sending(service, emu, instruction):
    with pytest.raises(ValidationError) as ei:
        service.fuse(URLS[:2], instruction)
    err = ei.value
    assert err.code == "Validation.References"
    assert "slot 3" in err.text("en") and "第 3 个" in err.text("zh") and "3 番目" in err.text("ja")
    assert not emu.calls("generation")


def test_2_1_pro_fuses_up_to_ten_references_in_order(service, emu):
    batch = service.fuse(URLS[:10], "图10的光线照在图1的人物上，背景取自图4", model="qwen-image-2.1-pro")
    assert len(batch.results) == 1
    (call,) = emu.calls("generation")
    content = call.json["input"]["messages"][0]["content"]
    assert [c["image"] for c in content[:-1]] == URLS[:10] and content[-1]["text"].startswith("图10")
    assert "negative_prompt" not in sent(call)
    assert [i["url"] for i in batch.results[0].inputs] == URLS[:10]  # recorded in order
    with pytest.raises(ValidationError) as ei:
        service.fuse(URLS[:11], "merge them", model="qwen-image-2.1-pro")
    assert ei.value.code == "Validation.Images" and "10" in ei.value.en
    with pytest.raises(ValidationError):
        service.fuse(URLS[:4], "merge them", model="qwen-image-3.0")  # 3.0 takes three
    with pytest.raises(ValidationError) as ei:
        service.fuse(URLS[:9], "图10的光线", model="qwen-image-2.1-pro")
    assert ei.value.code == "Validation.References" and "10" in ei.value.en
    assert len(emu.calls("generation")) == 1


# --- on the wire, and kept with the result ----------------------------------------------------------
def _png_recipe(path) -> dict:
    with Image.open(path) as im:
        return json.loads(im.text["aliyun-image"])


def test_3_0_sends_the_rewriting_options_and_keeps_the_rewrite_status(service, emu):
    (rec,) = service.generate("a lighthouse", model="qwen-image-3.0-pro", extend_mode="agent", thinking=True).results
    (call,) = emu.calls("generation")
    assert sent(call)["prompt_extend"] is True
    assert sent(call)["prompt_extend_mode"] == "agent" and sent(call)["enable_thinking"] is True
    assert rec.params["rewrite_status"] == "success" and rec.actual_prompt and rec.actual_prompt != "a lighthouse"
    assert rec.params["prompt_extend_mode"] == "agent" and rec.params["enable_thinking"] is True
    recipe = _png_recipe(rec.file)
    assert recipe["rewrite_status"] == "success" and recipe["actual_prompt"] == rec.actual_prompt
    emu.clear()
    (plain,) = service.generate("a lighthouse", model="qwen-image-3.0").results
    assert not {"prompt_extend_mode", "enable_thinking"} & set(sent(emu.calls("generation")[0]))
    assert plain.params["rewrite_status"] == "success" and "prompt_extend_mode" not in plain.params
    emu.clear()
    (legacy,) = service.generate("a lighthouse", model="qwen-image-plus").results
    assert "rewrite_status" not in legacy.params and _png_recipe(legacy.file)["rewrite_status"] is None


def test_with_rewriting_off_nothing_of_it_is_sent(service, emu):
    batch = service.generate("a lighthouse", model="qwen-image-3.0", prompt_extend=False, thinking=True)
    assert "job.params.rewriting_off" in [n.key for n in batch.job.notes]
    params = sent(emu.calls("generation")[0])
    assert params["prompt_extend"] is False and "enable_thinking" not in params
    assert batch.results[0].params["rewrite_status"] == "skipped" and not batch.results[0].actual_prompt


def test_an_edit_with_3_0_sends_direct(service, emu):
    (rec,) = service.edit(URLS[:1], "make the sky red", model="qwen-image-3.0", extend_mode="direct",
                          thinking=False).results
    params = sent(emu.calls("generation")[0])
    assert params["prompt_extend_mode"] == "direct" and params["enable_thinking"] is False
    assert rec.params["prompt_extend_mode"] == "direct"


# --- the emulator's own rules (what the service answers) -----------------------------------------
def test_the_emulator_refuses_agent_for_an_edit_and_a_bad_mode(emu):
    img = [data_uri(png(48, 32))]
    assert_error(post(emu, edit(img, model="qwen-image-3.0", prompt_extend_mode="agent")), 400, "InvalidParameter",
                 "text-to-image")
    assert post(emu, edit(img, model="qwen-image-3.0", prompt_extend_mode="direct")).status_code == 200
    assert post(emu, t2i(model="qwen-image-3.0", prompt_extend_mode="agent", enable_thinking=False)).status_code == 200
    order = emu.calls("generation")[-1].order
    assert order["prompt_extend_mode"] == "agent" and order["enable_thinking"] is False
    assert_error(post(emu, t2i(model="qwen-image-3.0", prompt_extend_mode="planner")), 400, "InvalidParameter")
    assert_error(post(emu, t2i(model="qwen-image-3.0", enable_thinking="yes")), 400, "InvalidParameter")
    # a model without them ignores them (assumed, like any parameter it does not know)
    assert post(emu, t2i(model="qwen-image-plus", prompt_extend_mode="agent")).status_code == 200
    assert emu.calls("generation")[-1].order["prompt_extend_mode"] is None


def test_the_emulator_refuses_a_negative_prompt_for_2_1_pro_and_takes_ten_references(emu):
    assert_error(post(emu, t2i(model="qwen-image-2.1-pro", negative_prompt="blurry")), 400, "InvalidParameter",
                 "negative_prompt")
    assert post(emu, t2i(model="qwen-image-2.1-pro")).status_code == 200
    img = data_uri(png(40, 30))
    r = post(emu, edit([img] * 10, model="qwen-image-2.1-pro"))
    assert r.status_code == 200, r.text
    assert_error(post(emu, edit([img] * 11, model="qwen-image-2.1-pro")), 400, "InvalidParameter")
    assert_error(post(emu, edit([img] * 4, model="qwen-image-3.0")), 400, "InvalidParameter")


def test_rewrite_status_in_the_emulators_replies(emu):
    out = post(emu, t2i(model="qwen-image-3.0")).json()["output"]
    assert out["rewrite_status"] == "success" and out["choices"][0]["message"]["content"][-1]["text"]
    assert post(emu, t2i(model="qwen-image-3.0", prompt_extend=False)).json()["output"]["rewrite_status"] == "skipped"
    assert "rewrite_status" not in post(emu, t2i(model="qwen-image-plus")).json()["output"]


# --- the 3.0 async path ----------------------------------------------------------------------------
def test_3_0_async_uses_the_image_generation_task_api_one_image_per_task(service, emu):
    batch = service.generate("a lighthouse", model="qwen-image-3.0", use_async=True, n=2, seed=5,
                             extend_mode="direct")
    assert len(batch.results) == 2 and not batch.failures
    creates = emu.calls("image_task_create")
    assert len(creates) == 2 and not emu.calls("task_create") and not emu.calls("generation")
    for call in creates:
        assert call.path.endswith(IMAGE_TASKS) and call.headers["x-dashscope-async"] == "enable"
        assert call.json["model"] == "qwen-image-3.0"
        assert call.json["input"]["messages"] == [{"role": "user", "content": [{"text": "a lighthouse"}]}]
        assert sent(call)["n"] == 1 and sent(call)["prompt_extend_mode"] == "direct"
    assert sorted(sent(c)["seed"] for c in creates) == [5, 6]
    assert emu.calls("task_get")
    for rec in batch.results:
        assert rec.params["task_id"] and rec.params["rewrite_status"] == "success" and rec.actual_prompt
        assert rec.params["endpoint"] == "async" and rec.file.is_file()


def test_3_0_async_edit_carries_its_images_and_legacy_async_stays_where_it_was(service, emu):
    (rec,) = service.edit(URLS[:2], "图1的猫坐在图2的沙发上", model="qwen-image-3.0-pro", use_async=True).results
    (call,) = emu.calls("image_task_create")
    content = call.json["input"]["messages"][0]["content"]
    assert [c.get("image") for c in content[:-1]] == URLS[:2] and rec.file.is_file()
    emu.clear()
    service.generate("a lighthouse", model="qwen-image", use_async=True)
    assert len(emu.calls("task_create")) == 1 and not emu.calls("image_task_create")
    with pytest.raises(ValidationError) as ei:
        service.edit(URLS[:1], "make it blue", model="qwen-image-edit-plus", use_async=True)
    assert ei.value.code == "Validation.Async"


def test_the_3_0_task_api_wants_the_async_header_and_its_own_models(emu):
    body = t2i(model="qwen-image-3.0")
    assert_error(post(emu, body, headers=AUTH, path=IMAGE_TASKS), 403, "AccessDenied")
    assert_error(post(emu, t2i(model="qwen-image-plus"), headers=ASYNC, path=IMAGE_TASKS), 400, "InvalidParameter")
    legacy = {"model": "qwen-image-3.0", "input": {"prompt": "a cat"}, "parameters": {}}
    assert_error(post(emu, legacy, headers=ASYNC, path="/services/aigc/text2image/image-synthesis"), 400,
                 "InvalidParameter")
    assert_error(post(emu, edit([data_uri(png())], model="qwen-image-3.0", prompt_extend_mode="agent"),
                      headers=ASYNC, path=IMAGE_TASKS), 400, "InvalidParameter")


def test_a_3_0_task_left_running_is_collected_with_its_rewrite_status(settings, emu):
    svc = ImageService(settings.with_(task_timeout=0.01, poll_schedule=(0.05,)))
    delay, emu.task_delay = emu.task_delay, 0.5
    try:
        batch = svc.generate("slow lighthouse", model="qwen-image-3.0", use_async=True, seed=3)
        assert batch.failures[0].code == "Task.Timeout"
        (pending,) = svc.store.pending()
        assert pending.params["task_id"] and "rewrite_status" not in pending.params
        import time
        time.sleep(0.6)
        (done,) = ImageService(settings).resume_pending()
        assert done.params["rewrite_status"] == "success" and done.params["task_id"] == pending.params["task_id"]
        assert done.actual_prompt and done.file.is_file()
    finally:
        emu.task_delay = delay


# --- the CLI, in process -----------------------------------------------------------------------------
@pytest.fixture
def cli(emu, monkeypatch, capsys):
    """``aliyun_image.cli.main`` against the emulator: returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_KEY)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--base-url", emu.base_url, "-q"])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_sends_extend_mode_and_thinking_to_a_model_that_takes_them(cli, emu):
    code, out, err = cli("generate", "a lighthouse", "--model", "qwen-image-3.0-pro", "--extend-mode", "agent",
                         "--thinking")
    assert code == 0, err
    params = sent(emu.calls("generation")[0])
    assert params["prompt_extend_mode"] == "agent" and params["enable_thinking"] is True
    code, out, err = cli("history", "--json")
    line = json.loads(out.splitlines()[0])
    assert line["rewrite_status"] == "success" and line["actual_prompt"]
    emu.clear()
    assert cli("generate", "a lighthouse", "--model", "qwen-image-3.0", "--no-thinking")[0] == 0
    assert sent(emu.calls("generation")[0])["enable_thinking"] is False


@pytest.mark.parametrize("argv, needle", [
    (("generate", "a cat", "--model", "qwen-image-plus", "--extend-mode", "direct"), "qwen-image-3.0-pro"),
    (("generate", "a cat", "--model", "z-image-turbo", "--thinking"), "enable_thinking"),
    (("edit", URLS[0], "make it blue", "--model", "qwen-image-3.0", "--extend-mode", "agent"), "direct"),
    (("fuse", f"{URLS[0]},{URLS[1]}", "图1的人物站在图3的场景里"), "slot 3"),
    (("fuse", f"{URLS[0]},{URLS[1]}", "image 1 inside picture 3", "--lang", "zh"), "第 3 个"),
])
def test_cli_refuses_before_sending(cli, emu, argv, needle):
    code, out, err = cli(*argv)
    assert code == 2 and needle in err and not out
    assert not emu.calls("generation") and not emu.calls("image_task_create")


def test_cli_thinking_flags_exclude_each_other_and_modes_are_checked(cli, emu):
    with pytest.raises(SystemExit) as ei:
        cli("generate", "a cat", "--model", "qwen-image-3.0", "--thinking", "--no-thinking")
    assert ei.value.code == 2
    with pytest.raises(SystemExit):
        cli("generate", "a cat", "--model", "qwen-image-3.0", "--extend-mode", "planner")
    assert not emu.calls("generation")


def test_cli_rewriting_off_notes_that_thinking_was_not_sent(cli, emu):
    code, _, err = cli("generate", "a cat", "--model", "qwen-image-3.0", "--no-extend", "--thinking")
    assert code == 0 and "not sent" in err
    assert "enable_thinking" not in sent(emu.calls("generation")[0])


def test_cli_async_with_3_0_and_ten_references_with_2_1_pro(cli, emu):
    code, out, err = cli("generate", "a lighthouse", "--model", "qwen-image-3.0", "--async", "-n", "2")
    assert code == 0, err
    assert len(out.splitlines()) == 2
    assert len(emu.calls("image_task_create")) == 2 and not emu.calls("generation")
    emu.clear()
    code, out, err = cli("fuse", ",".join(URLS[:10]), "图10的光线照在图1上", "--model", "qwen-image-2.1-pro",
                         "--negative", "blurry")
    assert code == 0, err
    (call,) = emu.calls("generation")
    assert len(call.json["input"]["messages"][0]["content"]) == 11 and "negative_prompt" not in sent(call)
    assert "negative prompt" in err  # the typed one was left out, and the user is told


def test_every_text_of_this_feature_reads_in_every_language():
    """The keys the parameters' code names (job.params, catalog.params, cli.help.params) exist in en, zh, ja."""
    import re
    from pathlib import Path

    from aliyun_image import i18n

    pkg = Path(catalog.__file__).resolve().parent.parent
    named: set[str] = set()
    for path in (pkg / "jobs.py", pkg / "catalog" / "spec.py", pkg / "cli" / "reports.py", pkg / "cli" / "commands.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r'["\']((?:job|catalog)\.params\.[a-z0-9_]+)["\']', text))
        named |= {"cli.help." + k for k in re.findall(r'_h\(lang, "(params\.[a-z0-9_]+)"', text)}
    named |= {"job.params.what_mode", "job.params.what_thinking", "catalog.params.note_2_1_turbo"}
    assert len(named) >= 14, sorted(named)
    for lang in i18n.LANGUAGES:
        table = i18n.catalogue(lang)
        assert not sorted(k for k in named if k not in table), lang


def test_a_recipe_read_back_keeps_the_rewriting_options_and_ten_references(service, emu):
    from aliyun_image.recipes import read_png_recipe

    (rec,) = service.fuse(URLS[:10], "图1到图10拼成一幅长卷", model="qwen-image-2.1-pro", extend_mode="direct",
                          thinking=False).results
    back = read_png_recipe(rec.file)
    assert back.params["prompt_extend_mode"] == "direct" and back.params["enable_thinking"] is False
    assert [i["url"] for i in back.inputs] == URLS[:10]
