"""Use cases end to end on the emulator: requests, fan-out, downloads, store, resume."""

import dataclasses
import logging
import sqlite3
import threading

import pytest
from PIL import Image

from aliyun_image.catalog import spec as catalog
from aliyun_image.errors import ValidationError
from aliyun_image.generation.service import ImageService
from aliyun_image.storage.store import NewResult

from .conftest import TEST_KEY


def _jpeg(path, size=(800, 600), color=(200, 80, 40)):
    Image.new("RGB", size, color).save(path, "JPEG")
    return str(path)


def test_generate_downloads_stores_and_embeds_recipe(service, emu):
    batch = service.generate("一只橘猫在阳光下打盹", seed=42, size="1:1")
    assert not batch.failures
    (rec,) = batch.results
    assert rec.status == "done" and rec.file.is_file()
    assert (rec.model, rec.seed, rec.size, rec.task) == ("qwen-image-plus", 42, "1328*1328", "t2i")
    assert rec.negative == catalog.DEFAULT_NEGATIVE and rec.request_id and rec.url and rec.url_expires
    with Image.open(rec.file) as im:
        assert im.size == (1328, 1328)
        assert im.text["parameters"].startswith("一只橘猫在阳光下打盹")
        assert "Seed: 42" in im.text["parameters"] and "qwen-image-plus" in im.text["parameters"]
        assert '"seed": 42' in im.text["aliyun-image"]
    (call,) = emu.calls("generation")
    p = call.json["parameters"]
    assert p == {"negative_prompt": catalog.DEFAULT_NEGATIVE, "size": "1328*1328", "prompt_extend": True,
                 "watermark": False, "seed": 42}


def test_best_quality_uses_max(service, emu):
    assert service.generate("a cat", best=True).results[0].model == "qwen-image-max"
    assert emu.calls("generation")[0].json["model"] == "qwen-image-max"


def test_fanout_for_fixed_n_models_concurrent_distinct_seeds(service, emu):
    emu.latency = 0.3
    events = []
    batch = service.generate("a cat", n=4, seed=100, on_event=events.append)
    assert len(batch.results) == 4 and not batch.failures
    calls = emu.calls("generation")
    assert sorted(c.json["parameters"]["seed"] for c in calls) == [100, 101, 102, 103]
    assert all("n" not in c.json["parameters"] for c in calls)
    results = [e for e in events if e.kind == "result"]
    assert [e.done for e in results] == [1, 2, 3, 4] and results[-1].total == 4
    assert len({r.file for r in batch.results}) == 4


def test_partial_failure_keeps_the_good_ones(service, emu):
    emu.fail(status=400, code="DataInspectionFailed", message="inappropriate", times=1)
    batch = service.generate("a cat", n=3)
    assert len(batch.results) == 2 and len(batch.failures) == 1
    assert batch.failures[0].code == "DataInspectionFailed"
    assert service.store.page()[1] == 2


def test_all_failed_raise_if_empty(service, emu):
    emu.fail(status=400, code="Arrearage", message="Access denied", times=5)
    batch = service.generate("a cat")
    with pytest.raises(Exception) as ei:
        batch.raise_if_empty()
    assert "top up" in ei.value.en.lower()


def test_missing_fields_reply(service, emu):
    emu.fault("missing_fields")
    batch = service.generate("a cat")
    assert batch.failures[0].code == "BadReply" and not batch.results


def test_edit_local_image_inline_and_output_follows_aspect(service, emu, tmp_path):
    src = _jpeg(tmp_path / "photo.jpg", (1200, 600))
    batch = service.edit([src], "把背景换成星空", n=2, seed=5)
    assert len(batch.results) == 2
    (call,) = emu.calls("generation")
    content = call.json["input"]["messages"][0]["content"]
    assert content[0]["image"].startswith("data:image/jpeg;base64,")
    assert content[-1] == {"text": "把背景换成星空"} and call.json["parameters"]["n"] == 2
    w, h = batch.results[0].width, batch.results[0].height
    assert abs(w / h - 2.0) < 0.1
    assert batch.results[0].inputs[0]["name"] == "photo.jpg" and batch.results[0].inputs[0]["sha256"]


def test_fuse_keeps_order_and_uploads_when_asked(settings, emu, tmp_path):
    svc = ImageService(settings.with_(upload="always"))
    paths = [_jpeg(tmp_path / f"{i}.jpg", color=(60 * i, 50, 50)) for i in range(1, 4)]
    batch = svc.fuse(paths, "图1的人物穿上图2的衣服，站在图3的场景里")
    assert len(batch.results) == 1
    assert len(emu.calls("policy")) == 1 and len(emu.calls("oss")) == 3  # one policy per call
    (call,) = emu.calls("generation")
    refs = [c["image"] for c in call.json["input"]["messages"][0]["content"][:-1]]
    assert all(r.startswith("oss://") for r in refs) and [r.rsplit("/", 1)[1][0] for r in refs] == ["1", "2", "3"]
    assert call.headers["x-dashscope-ossresourceresolve"] == "enable"


def test_fuse_needs_two_to_three(service, tmp_path):
    one = _jpeg(tmp_path / "a.jpg")
    with pytest.raises(ValidationError):
        service.fuse([one], "merge")
    with pytest.raises(ValidationError) as ei:
        service.fuse([one] * 4, "merge")
    assert "4" in ei.value.en


def test_async_model_stores_rewritten_prompt(service, emu):
    batch = service.generate("a lighthouse", model="qwen-image", use_async=True, seed=9)
    (rec,) = batch.results
    assert rec.actual_prompt and rec.actual_prompt != "a lighthouse"
    assert len(emu.calls("task_create")) == 1 and emu.calls("task_get")


def test_async_failed_task(service, emu):
    emu.task_outcome("FAILED", code="DataInspectionFailed", message="flagged")
    batch = service.generate("x", model="qwen-image", use_async=True)
    assert batch.failures[0].code == "DataInspectionFailed"


def test_expired_and_not_image_downloads(service, emu):
    emu.download_fault("expired")
    b = service.generate("a cat")
    assert b.failures[0].code == "Download.Expired"
    assert service.store.page(status="expired")[1] == 1
    emu.download_fault("not_image", times=10)
    b = service.generate("a dog")
    assert b.failures[0].code == "Download.NotImage"
    assert service.store.page(status="failed")[1] == 1
    assert not list((service.store.root / ".partial").iterdir())


def test_resume_after_crash(settings, emu):
    # A previous process recorded a result URL and died before downloading it.
    first = ImageService(settings)
    reply = first.client.generate(TEST_KEY, {"model": "qwen-image-plus", "input": {"messages": [
        {"role": "user", "content": [{"text": "resume me"}]}]}, "parameters": {"seed": 1}})
    url = reply.data["output"]["choices"][0]["message"]["content"][0]["image"]
    (rid,) = first.store.add_pending([NewResult("b", 0, "t2i", "qwen-image-plus", "resume me", "", {}, 1, [],
                                                reply.request_id, {}, None, url, None)])
    (first.store.root / ".partial" / f"{rid}.part").write_bytes(b"\x89PNG\r\n half")
    first.store.close()

    second = ImageService(settings)
    done = second.resume_pending()
    assert [r.id for r in done] == [rid] and done[0].file.is_file()
    assert second.store.get(rid).status == "done"


def test_no_key_is_refused_before_any_request(settings, emu):
    svc = ImageService(dataclasses.replace(settings, api_key=None))
    with pytest.raises(ValidationError) as ei:
        svc.generate("a cat")
    assert "DASHSCOPE_API_KEY" in ei.value.en and not emu.requests


def test_per_call_key_overrides_and_is_never_stored(settings, emu, caplog):
    caplog.set_level(logging.DEBUG)
    svc = ImageService(dataclasses.replace(settings, api_key=None))
    visitor_key = "sk-visitor-key-abcdef123456"
    batch = svc.generate("a cat", api_key=visitor_key, owner="session-1", n=2)
    assert len(batch.results) == 2
    assert all(c.headers["authorization"] == f"Bearer {visitor_key}" for c in emu.calls("generation"))
    db = sqlite3.connect(svc.store.root / "gallery.sqlite3")
    dump = "\n".join(db.iterdump())
    assert visitor_key not in dump
    for f in svc.store.root.rglob("*"):
        if f.is_file():
            assert visitor_key.encode() not in f.read_bytes(), f
    assert visitor_key not in caplog.text


def test_stream_yields_each_image_as_it_lands(service, emu):
    job = service.plan("t2i", "a cat", n=3)
    kinds = [ev.kind for ev in service.stream(job)]
    assert kinds.count("result") == 3 and kinds[-1] == "done"


def test_cancel_stops_remaining_requests(settings, emu):
    svc = ImageService(settings.with_(max_parallel=1))
    emu.latency = 1.0  # long next to delivering an event on a busy machine (parallel workers)
    cancel = threading.Event()
    seen = []

    def on_event(ev):
        seen.append(ev)
        if ev.kind == "result":  # stop after the first image (status events with counts come first)
            cancel.set()

    batch = svc.generate("a cat", n=4, on_event=on_event, cancel=cancel)
    assert len(batch.results) >= 1 and len(emu.calls("generation")) < 4
    assert any(f.code == "Cancelled" for f in batch.failures)


def test_download_command(service, emu, tmp_path):
    url = service.generate("a cat").results[0].url
    out = service.download_url(url, tmp_path / "out.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    folder = tmp_path / "folder"
    folder.mkdir()
    assert service.download_url(url, folder).parent == folder


def test_a_bug_in_one_request_does_not_lose_the_others(service, emu, monkeypatch):
    real = service.client.generate
    calls = []

    def flaky(key, body, **kw):
        calls.append(body["parameters"]["seed"])
        if body["parameters"]["seed"] == 11:
            raise ValueError("boom")  # not an AliyunImageError: a bug
        return real(key, body, **kw)

    monkeypatch.setattr(service.client, "generate", flaky)
    batch = service.generate("a cat", n=3, seed=10)
    assert len(batch.results) == 2 and [f.code for f in batch.failures] == ["Internal"]
    assert service.store.page()[1] == 2 and not service.store.pending()


def test_broken_progress_callback_does_not_undo_results(service, emu):
    def bad(ev):
        raise RuntimeError("callback bug")

    batch = service.generate("a cat", n=2, on_event=bad)
    assert len(batch.results) == 2 and not batch.failures


def test_storage_failure_hands_over_the_paid_urls(service, emu, monkeypatch):
    from aliyun_image.storage.diskspace import storage_error

    def fail(items):
        raise storage_error(service.store.root, OSError(28, "No space left on device"))

    monkeypatch.setattr(service.store, "add_pending", fail)
    batch = service.generate("a cat")
    (err,) = batch.failures
    assert err.code == "Storage.DiskFull" and "/results/" in err.en and "download" in err.en
    assert "/results/" in err.zh


def test_async_task_is_recorded_before_polling_and_resumed(settings, emu):
    """A process that dies while polling leaves the task recorded; resume collects it."""
    svc = ImageService(settings.with_(task_timeout=0.01, poll_schedule=(0.05,)))
    emu_delay = emu.task_delay
    emu.task_delay = 0.5
    try:
        batch = svc.generate("slow lighthouse", model="qwen-image", use_async=True, seed=3)
        assert batch.failures[0].code == "Task.Timeout" and "resume" in batch.failures[0].en
        (pending,) = svc.store.pending()
        assert pending.params["task_id"] and not pending.url
        import time
        time.sleep(0.6)
        done = ImageService(settings).resume_pending()
        assert len(done) == 1 and done[0].actual_prompt and done[0].file.is_file()
    finally:
        emu.task_delay = emu_delay


def test_partial_files_of_live_writers_survive_a_second_open(service, emu):
    """Opening the store from another process must not delete a download in progress."""
    import os
    (rid,) = service.store.add_pending([NewResult("b", 0, "t2i", "m", "p", "", {}, 1, [], "", {}, None,
                                                  "http://x/y.png", None)])
    with service.store.files.partial(rid) as fh:
        fh.write(b"half")
        from aliyun_image.storage.store import ResultStore
        ResultStore.open(service.store.root).close()  # e.g. `history` in another terminal
        assert os.path.exists(fh.name)
    dead = service.store.root / ".partial" / f"{rid}.999999999.deadbeef.part"
    dead.write_bytes(b"left by a killed process")
    ResultStore.open(service.store.root).close()
    assert not dead.exists()


def test_bad_keys_are_refused_before_sending(service, emu):
    for key in ("sk-abc def1234", "sk-abc\n123456", "sk-ａｂｃ123456"):
        with pytest.raises(ValidationError) as ei:
            service.generate("a cat", api_key=key)
        assert key not in ei.value.en + ei.value.zh
    assert not emu.calls("generation")


def test_download_command_refuses_non_images(service, emu, tmp_path):
    url = service.generate("a cat").results[0].url
    emu.download_fault("not_image", times=10)
    with pytest.raises(Exception) as ei:
        service.download_url(url, tmp_path / "x.png")
    assert getattr(ei.value, "code", "") == "Download.NotImage" and not (tmp_path / "x.png").exists()
