"""Attacks on the endpoints added with the result actions, kept inputs, trash and cost line, through a
launched hosted app and the raw queue / un-queued routes (what a hostile visitor of the shared demo can
send). Each test here failed on the code it was written against; see the docstrings."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .appserver import launch
from .test_hosted_safety import _fn_index, _gen_data, _join, _listen

pytestmark = pytest.mark.slow  # launches the app in a subprocess


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Hosted offline demo; its temp files (zips, Gradio's cache) under the test's own folder."""
    root = tmp_path_factory.mktemp("attack")
    (root / "tmp").mkdir()
    app = launch(["--hosted"], root / "outputs", cwd=root, env_extra={"TMPDIR": str(root / "tmp")})
    try:
        yield app
    finally:
        app.stop()


def test_repeated_zip_of_the_same_results_does_not_fill_the_disk(demo):
    """``/download_matching`` (and ``/download_run``) write a new zip of up to 200 originals per call,
    kept ten minutes in the app's zip folder and copied again into Gradio's cache (kept six hours
    when hosted), outside the disk budget. A visitor who asks for the same zip over and over, or a
    script, fills the server's disk: 8 calls here leave 8+ copies of one zip."""
    visitor = f"zipper-{uuid.uuid4().hex[:8]}"
    gen, match = _fn_index(demo, "generate"), _fn_index(demo, "download_matching")
    event = _join(demo, visitor, gen, _gen_data("zip flood cat", n=4))
    assert _listen(demo, visitor, {event})[event]["success"]
    temp = [demo.data_dir.parent / "tmp", demo.data_dir.parent / "gradio-tmp"]
    start = sum(_du(p) for p in temp)
    sizes = []
    for _ in range(8):
        event = _join(demo, visitor, match, ["", "", ""])
        done = _listen(demo, visitor, {event})[event]
        assert done["success"], done
        sizes.append(Path(done["output"]["data"][0]["path"]).stat().st_size)
    grown = sum(_du(p) for p in temp) - start
    # One zip made twice (the app's copy and Gradio's cached copy) is what the same request needs.
    assert grown <= 2 * max(sizes) + 4096, f"8 identical zips of {max(sizes)} bytes left {grown} bytes"
