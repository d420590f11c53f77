"""The gallery store: atomic writes, crash recovery, paging, search, delete."""

import io
import os
import sqlite3
import time

import pytest
from PIL import Image

from aliyun_image.errors import StorageError
from aliyun_image.storage.store import NewResult, ResultStore


def _new(prompt="一只橘猫", task="t2i", model="qwen-image-plus", owner=None, idx=0):
    return NewResult(batch_id="b1", idx=idx, task=task, model=model, prompt=prompt, negative="neg",
                     params={"size": "1328*1328"}, seed=42, inputs=[], request_id="rid",
                     usage={"image_count": 1}, actual_prompt=None, url="http://h/x.png",
                     url_expires=time.time() + 3600, owner=owner)


def _png_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, "PNG")
    return buf.getvalue()


def _save(store, rid):
    with store.files.partial(rid) as fh:
        fh.write(_png_bytes())
        return store.commit_file(rid, fh, width=16, height=16)


def test_pending_then_done(tmp_path):
    store = ResultStore.open(tmp_path)
    (rid,) = store.add_pending([_new()])
    rec = store.get(rid)
    assert rec.status == "pending" and rec.url and rec.url_expires and rec.file is None
    done = _save(store, rid)
    assert done.status == "done" and done.file.is_file() and done.bytes > 0
    assert done.file.parent.parent.name == "images"
    assert not list((tmp_path / ".partial").iterdir())


def test_partial_file_removed_when_download_fails(tmp_path):
    store = ResultStore.open(tmp_path)
    (rid,) = store.add_pending([_new()])
    with pytest.raises(RuntimeError), store.files.partial(rid) as fh:
        fh.write(b"half")
        raise RuntimeError("connection lost")
    assert not list((tmp_path / ".partial").iterdir())
    assert store.get(rid).status == "pending"  # still recorded, to be resumed


def test_crash_recovery(tmp_path):
    store = ResultStore.open(tmp_path)
    a, b, c = store.add_pending([_new(idx=i) for i in range(3)])
    _save(store, a)
    # b: a half download left behind by a killed process
    (tmp_path / ".partial" / f"{b}.part").write_bytes(b"\x89PNG half")
    # c: file renamed into place but the process died before the row update
    rec_c = store.get(c)
    (tmp_path / rec_c.path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rec_c.path).write_bytes(_png_bytes())
    store.close()

    again = ResultStore.open(tmp_path)
    assert not list((tmp_path / ".partial").iterdir()), "half files are removed at start"
    assert again.get(a).status == "done"
    assert again.get(b).status == "pending"
    assert again.get(c).status == "done"
    os.unlink(again.get(a).file)
    again.close()
    third = ResultStore.open(tmp_path)
    assert third.get(a).status == "missing", "a row never points at a missing file as done"


def test_paging_search_filters_and_newest_first(tmp_path):
    store = ResultStore.open(tmp_path)
    ids = store.add_pending([_new(prompt=f"cat {i}" if i % 2 else f"dog {i}", idx=i,
                                  task="t2i" if i < 6 else "edit",
                                  model="qwen-image-plus" if i < 6 else "qwen-image-edit-plus") for i in range(10)])
    for rid in ids:
        _save(store, rid)
    page, total = store.page(limit=4)
    assert total == 10 and [r.id for r in page] == ids[::-1][:4]
    page2, _ = store.page(offset=8, limit=4)
    assert len(page2) == 2
    cats, n = store.page(query="cat")
    assert n == 5 and all("cat" in r.prompt for r in cats)
    assert store.page(task="edit")[1] == 4
    assert store.page(model="qwen-image-plus", query="dog")[1] == 3
    assert store.page(query="100%")[1] == 0  # LIKE wildcards are escaped
    assert set(store.records.models()) == {"qwen-image-plus", "qwen-image-edit-plus"}


def test_owner_isolation_and_delete(tmp_path):
    store = ResultStore.open(tmp_path)
    a, b = store.add_pending([_new(owner="alice"), _new(owner="bob", idx=1)])
    ra, _ = _save(store, a), _save(store, b)
    assert store.page(owner="alice")[1] == 1
    assert store.get(a, owner="bob") is None
    assert not store.delete(a, owner="bob")
    assert store.delete(a, owner="alice")
    assert store.get(a) is None and not ra.file.exists()


def test_no_api_key_columns(tmp_path):
    ResultStore.open(tmp_path).close()
    cols = [r[1] for r in sqlite3.connect(tmp_path / "gallery.sqlite3").execute("PRAGMA table_info(results)")]
    assert not any("key" in c.lower() for c in cols)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_dir_message(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(StorageError) as ei:
        ResultStore.open(ro / "data")
    assert "permission" in ei.value.en.lower()


def test_data_dir_is_a_file_gives_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError) as ei:
        ResultStore.open(blocker)
    assert ei.value.zh and ei.value.en and str(blocker) in ei.value.en


def test_ids_are_never_reused_after_delete(tmp_path):
    store = ResultStore.open(tmp_path)
    a, b = store.add_pending([_new(idx=0), _new(idx=1)])
    _save(store, b)
    store.delete(b)
    (c,) = store.add_pending([_new(idx=2)])
    assert c > b, "a new result never takes a deleted one's id (ids name files and links)"
