"""Faults injected by the emulator (and real filesystems): each test checks the retries made, the
message shown in both languages, and that every image already downloaded is kept and indexed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from aliyun_image.config import Settings
from aliyun_image.errors import StorageError
from aliyun_image.generation.service import ImageService
from aliyun_image.storage.store import ResultStore

from .conftest import TEST_KEY

ROOT = Path(__file__).resolve().parent.parent


def kept(svc: ImageService, batch) -> None:
    """Every result reported as saved is indexed, on disk, and decodes; no half files remain."""
    for rec in batch.results:
        again = svc.store.get(rec.id)
        assert again.status == "done" and again.file.is_file()
        with Image.open(again.file) as im:
            im.load()
    assert svc.store.page()[1] >= len(batch.results)
    assert not any(p.name.split(".")[1] == str(os.getpid()) for p in (svc.store.root / ".partial").glob("*"))


def bilingual(err, *needles_en: str) -> None:
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.zh), err.zh
    for n in needles_en:
        assert n.lower() in err.en.lower(), (n, err.en)


def test_429_with_retry_after_then_success(service, emu):
    emu.fail(status=429, code="Throttling.RateQuota", message="Requests rate limit exceeded", times=2, retry_after=1)
    t0 = time.monotonic()
    batch = service.generate("a cat", n=3)
    assert len(batch.results) == 3 and not batch.failures
    assert len(emu.calls("generation")) == 5  # 3 requests + 2 retries
    assert time.monotonic() - t0 >= 1.0  # Retry-After was honoured (a lower bound, not a timing claim)
    kept(service, batch)


def test_429_exhausted_on_one_request_keeps_the_others(settings, emu):
    # Without the scheduler (task_limit 0) the client retries 429s itself; with it, see test_scheduler.py.
    service = ImageService(settings.with_(max_parallel=1, task_limit=0))  # sequential: the first takes all 4
    emu.fail(status=429, code="Throttling.RateQuota", message="rate", times=4, retry_after=0.01)
    batch = service.generate("a cat", n=3)
    assert len(batch.results) == 2 and len(batch.failures) == 1
    err = batch.failures[0]
    assert err.retries == 3
    bilingual(err, "rate limited", "3 automatic retries")
    assert "3" in err.zh
    kept(service, batch)


def test_burst_of_5xx(service, emu):
    for status, code in ((500, "InternalError"), (502, None), (503, "ModelUnavailable")):
        if code:
            emu.fail(status=status, code=code, times=1)
        else:
            emu.fail(status=502, body=b"<html>502 Bad Gateway</html>", content_type="text/html", times=1)
    batch = service.generate("a cat", n=2)
    assert len(batch.results) == 2 and len(emu.calls("generation")) == 5
    kept(service, batch)


def test_persistent_non_json_error(settings, emu):
    service = ImageService(settings.with_(max_parallel=1))
    emu.fail(status=502, body=b"<html><h1>502 Bad Gateway</h1></html>", content_type="text/html", times=4)
    batch = service.generate("a cat", n=2)
    assert len(batch.results) == 1
    err = batch.failures[0]
    assert err.status == 502 and err.retries == 3
    bilingual(err, "502 Bad Gateway", "retried 3 times")
    kept(service, batch)


def test_200_with_missing_fields(service, emu):
    emu.fault("missing_fields", times=1)
    batch = service.generate("a cat", n=2)
    assert len(batch.results) == 1
    bilingual(batch.failures[0], "cannot read")
    kept(service, batch)


def test_connection_reset_is_not_resent(service, emu):
    emu.fault("reset", times=1)
    batch = service.generate("a cat", n=2)
    assert len(batch.results) == 1 and len(emu.calls("generation")) == 2
    bilingual(batch.failures[0], "billed", "not retried")
    kept(service, batch)


def test_read_timeout_is_not_resent(settings, emu):
    svc = ImageService(settings.with_(read_timeout=0.4))
    emu.fault("hang", seconds=1.0, times=1)
    batch = svc.generate("a cat", n=2)
    assert len(batch.results) == 1 and len(emu.calls("generation")) == 2
    bilingual(batch.failures[0], "timed out", "billed")
    kept(svc, batch)


def test_slow_download_completes(service, emu):
    emu.download_fault("slow", seconds=1.0)
    batch = service.generate("a cat")
    assert len(batch.results) == 1
    kept(service, batch)


def test_truncated_download_is_retried(service, emu):
    emu.download_fault("truncate", times=2)
    batch = service.generate("a cat")
    assert len(batch.results) == 1 and len(emu.calls("download")) == 3
    kept(service, batch)


def test_truncated_every_time_stays_pending_and_resumes(service, emu):
    first = service.generate("a dog")
    emu.download_fault("truncate", times=4)
    batch = service.generate("a cat")
    assert not batch.results
    kept(service, first)
    err = batch.failures[0]
    assert err.code == "Download.Truncated" and err.retries == 3
    bilingual(err, "cut short", "download command")
    (pending,) = service.store.pending()
    assert pending.url and pending.url_expires > time.time()
    kept(service, batch)
    done = service.resume_pending()  # the network is fine again
    assert [r.id for r in done] == [pending.id] and done[0].file.is_file()


def test_expired_url(service, emu):
    emu.download_fault("expired")
    batch = service.generate("a cat")
    bilingual(batch.failures[0], "expired", "24 hours")
    assert service.store.page(status="expired")[1] == 1 and len(emu.calls("download")) == 1


@pytest.mark.parametrize("outcome,needle", [("FAILED", "model failed"), ("UNKNOWN", "expired")])
def test_async_task_failed_and_unknown(service, emu, outcome, needle):
    emu.task_outcome(outcome, code="InternalError.Algo", message="model failed")
    batch = service.generate("a lighthouse", model="qwen-image", use_async=True)
    bilingual(batch.failures[0], needle)
    assert not service.store.pending(), "a finished (failed) task is not left for resume"


def test_upload_policy_failure(settings, emu, tmp_path):
    svc = ImageService(settings.with_(upload="always"))
    src = tmp_path / "a.png"
    Image.new("RGB", (600, 600), "red").save(src)
    emu.fail("policy", status=500, code="InternalError", times=10)
    with pytest.raises(Exception) as ei:
        svc.edit([str(src)], "make it blue")
    assert ei.value.retries == 3 and not emu.calls("generation")
    bilingual(ei.value, "retried 3 times")


def test_oss_upload_rejected(settings, emu, tmp_path):
    svc = ImageService(settings.with_(upload="always"))
    src = tmp_path / "a.png"
    Image.new("RGB", (600, 600), "red").save(src)
    emu.policy_ttl = -1  # every policy is already expired when used
    try:
        with pytest.raises(Exception) as ei:
            svc.edit([str(src)], "make it blue")
    finally:
        emu.policy_ttl = 300.0
    bilingual(ei.value, "uploading the image failed")
    assert not emu.calls("generation")


# --- real filesystems: a full disk, a read-only folder ---------------------------------------------
@contextlib.contextmanager
def tmpfs(path: Path, size: str, ro: bool = False):
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs tmpfs mounts for these tests: {r.stderr!r}")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_disk_full_keeps_the_url_and_resumes_when_there_is_room(emu, tmp_path):
    with tmpfs(tmp_path / "small", "1m") as mnt:
        settings = Settings.from_env(base_url=emu.base_url, api_key=TEST_KEY, data_dir=mnt, fsync=False,
                                     backoff_base=0.01, backoff_max=0.02)
        svc = ImageService(settings)
        first = svc.generate("a cat", size="1:1")  # fits
        assert len(first.results) == 1
        filler = mnt / "filler"
        with open(filler, "wb") as fh:  # leave ~48 KB: enough for the index row, not for an image
            free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
            fh.write(b"\0" * max(0, free - 48 * 1024))
        batch = svc.generate("another cat", size="1:1")
        assert not batch.results
        err = batch.failures[0]
        assert isinstance(err, StorageError) and err.code == "Storage.DiskFull"
        bilingual(err, "disk is full", "results already saved are safe")
        assert first.results[0].file.is_file() and svc.store.get(first.results[0].id).status == "done"
        (pending,) = svc.store.pending()
        assert not list((mnt / ".partial").iterdir())
        filler.unlink()
        done = svc.resume_pending()
        assert [r.id for r in done] == [pending.id]
        svc.store.close()


def test_read_only_folder_message(emu, tmp_path, clean_env):
    with tmpfs(tmp_path / "ro", "1m", ro=True) as mnt:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_"))}
        env.update(PYTHONPATH=str(ROOT), DASHSCOPE_API_KEY=TEST_KEY, DASHSCOPE_HTTP_BASE_URL=emu.base_url)
        r = subprocess.run([sys.executable, "-m", "aliyun_image", "--data-dir", str(mnt / "data"), "generate", "cat"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 1 and "No permission to write" in r.stderr and "Traceback" not in r.stderr
        assert not emu.calls("generation"), "nothing is paid for when results could not be kept"


KILL_SCRIPT = """
import sys
from aliyun_image.config import Settings
from aliyun_image.generation.service import ImageService
svc = ImageService(Settings.from_env(base_url=sys.argv[1], api_key=sys.argv[2], data_dir=sys.argv[3]))
svc.generate("killed mid-download", n=2)
"""


def test_process_killed_mid_download(emu, tmp_path):
    """kill -9 while downloading: on restart no half file, the index is consistent, resume completes."""
    data = tmp_path / "data"
    emu.download_fault("slow", seconds=20, times=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, emu.base_url, TEST_KEY, str(data)], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            parts = list((data / ".partial").glob("*.part")) if (data / ".partial").exists() else []
            if len(parts) == 2:
                time.sleep(0.5)  # bytes are trickling in
                break
            time.sleep(0.05)
        else:
            pytest.fail("downloads never started")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    emu.clear()  # the network is healthy again
    store = ResultStore.open(data)
    assert not list((data / ".partial").iterdir()), "half files of a dead process are removed"
    pending = store.pending()
    assert len(pending) == 2 and all(p.url for p in pending)
    assert store.page()[1] == 0
    store.close()
    svc = ImageService(Settings.from_env(base_url=emu.base_url, api_key=TEST_KEY, data_dir=data))
    done = svc.resume_pending()
    assert len(done) == 2 and all(r.file.is_file() for r in done)
    assert svc.store.page()[1] == 2 and not svc.store.pending()
