"""The small things a CLI user notices (issue 10 §6): sizes written with x, "n 1", an empty resume,
ISO times in history, a refused download host, singular/plural, and the missing-key message."""

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from aliyun_image.cli import commands as cli
from aliyun_image.errors import plural
from aliyun_image.generation.outcome import Outcome, page_summary, terminal_summary

from .conftest import TEST_KEY
from .conftest import run_cli as run  # in-process: the subprocess is not the point here


def test_a_size_written_with_x_is_read_as_w_star_h(clean_env, tmp_path):
    src = tmp_path / "in.png"
    Image.new("RGB", (800, 600), "teal").save(src)
    r = run(["--offline", "edit", str(src), "make it blue", "--size", "1024x1024"], data_dir=clean_env)
    assert r.returncode == 0, r.stderr
    assert "Read size '1024x1024' as 1024*1024" in r.stderr
    with Image.open(r.stdout.strip()) as im:
        assert im.size == (1024, 1024)


def test_models_says_n_1_for_one_image_models():
    r = run(["models"])
    assert r.returncode == 0
    block = r.stdout.split("qwen-image-plus ", 1)[1].split("\n\n", 1)[0]
    assert "n 1;" in block and "n 1-1" not in r.stdout


def test_resume_says_when_there_is_nothing_to_resume(clean_env):
    r = run(["--offline", "resume"], data_dir=clean_env)
    assert r.returncode == 0 and r.stdout == ""
    assert "Nothing to resume" in r.stderr
    zh = run(["--offline", "--lang", "zh", "resume"], data_dir=clean_env)
    assert "没有需要补全的下载" in zh.stderr


@pytest.mark.parametrize("locale, said", [("ja_JP.UTF-8", "合計 0 件"), ("zh_CN.UTF-8", "共 0 条"),
                                           ("en_US.UTF-8", "0 in total"), ("C.UTF-8", "0 in total")])
def test_the_locale_picks_the_cli_language(monkeypatch, capsys, locale, said):
    for var in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", locale)
    assert cli.main(["history"]) == 0
    assert capsys.readouterr().err == said + "\n"


def test_lang_flag_wins_over_the_locale_and_help_follows_it(monkeypatch, capsys):
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert cli.main(["--lang", "ja", "history"]) == 0
    assert capsys.readouterr().err == "合計 0 件\n"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--lang=ja", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "画像生成" in out and "メッセージの言語" in out and "text-to-image" not in out
    with pytest.raises(SystemExit):
        cli.main(["--help"])  # the locale: Chinese
    assert "文生图" in capsys.readouterr().out


def test_history_json_has_iso_timestamps_and_the_number(clean_env):
    assert run(["--offline", "generate", "a lighthouse", "-q"], data_dir=clean_env).returncode == 0
    h = run(["history", "--json"], data_dir=clean_env)
    (row,) = [json.loads(line) for line in h.stdout.splitlines()]
    when = datetime.fromisoformat(row["created"])
    assert when.tzinfo is not None and "T" in row["created"]
    assert isinstance(row["created_unix"], float) and abs(when.timestamp() - row["created_unix"]) < 1


def test_a_refused_download_host_exits_2(clean_env):
    r = run(["download", "https://evil.example.com/x.png"], {"DASHSCOPE_API_KEY": TEST_KEY}, clean_env)
    assert r.returncode == 2, r.stderr
    assert "Refused to download from evil.example.com" in r.stderr and "Traceback" not in r.stderr
    assert not (Path(clean_env) / "downloads").exists() or not any((Path(clean_env) / "downloads").iterdir())


def test_one_character_over_is_singular(clean_env):
    r = run(["--offline", "generate", "a" * 801], data_dir=clean_env)
    assert r.returncode == 2 and "Remove 1 character." in r.stderr
    r = run(["--offline", "generate", "a" * 802], data_dir=clean_env)
    assert "Remove 2 characters." in r.stderr


def test_missing_key_names_the_variable_not_the_ui(clean_env, emu):
    for lang, ui in (("en", "in the UI"), ("zh", "界面")):
        r = run(["--lang", lang, "generate", "cat"], {"DASHSCOPE_HTTP_BASE_URL": emu.base_url}, clean_env)
        assert r.returncode == 2 and "DASHSCOPE_API_KEY" in r.stderr and ui not in r.stderr


def test_plural():
    assert [plural(n, "character") for n in (0, 1, 2)] == ["characters", "character", "characters"]


class _Rec:
    def __init__(self, seed):
        self.seed, self.actual_prompt = seed, None


def test_the_page_lists_each_distinct_seed_once_the_terminal_each_file_seed():
    """An edit with n=2 makes two images from one request, hence one seed: the page says it once,
    the terminal keeps one seed per printed path."""
    o = Outcome(3, "qwen-image-edit-plus", [_Rec(1568957608), _Rec(1568957608), _Rec(7)], [])  # type: ignore[list-item]
    page = page_summary(o, "en")
    assert "Seed 1568957608, 7." in page and page.count("1568957608") == 1
    assert "种子 1568957608, 7。" in page_summary(o, "zh")
    assert terminal_summary(o, "en")[0] == "model qwen-image-edit-plus, seed 1568957608, 1568957608, 7"


@pytest.mark.slow
def test_app_start_prints_mode_results_folder_url_and_our_share_flag(tmp_path):
    from .appserver import launch

    app = launch([], tmp_path / "data", env_extra={"LANG": "C.UTF-8"}, fresh_process=True)  # python app.py itself
    try:
        deadline = time.monotonic() + 60
        while "Open in a browser" not in app.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = app.log.read_text()
    finally:
        app.stop()
    assert "Mode: offline demo" in text and f"Results folder: {(tmp_path / 'data').resolve()}" in text
    assert f"Open in a browser: {app.url}" in text
    assert "restart with --share" in text and "share=True" not in text and "launch()" not in text


_KEY_CALLS = {  # how the CLI's and the run's modules name catalogue keys: pattern -> key prefix
    r'\bmsg\("([\w.]+)"': "", r'\bt\([\w.]+, "([\w.]+)"': "", r'\btell\(lang, "([\w.]+)"': "",
    r'_h\(lang, "(\w+)"': "cli.help.", r'\bh\("(\w+)"': "cli.help.", r'_help\(lang, "(\w+)"': "cli.help.",
    r'\brow\("(\w+)"': "cli.plan.", r'\bsay\("(\w+)"': "cli.models.", r'\blabel\("(\w+)"': "run.recipe.",
    r'\btext\(lang, [\'"](\w+)': "run.", r'_bad\("(\w+)"': "run.",
}


@pytest.mark.parametrize("lang", ["en", "zh", "ja"])
def test_every_help_text_is_in_the_catalogue(capsys, lang):
    from aliyun_image.cli import webapp

    commands = [[], ["generate"], ["edit"], ["fuse"], ["download"], ["history"], ["spend"], ["resume"], ["models"],
                ["trash"], ["recipe"], ["check"], ["emulator"]]
    for command in commands:
        with pytest.raises(SystemExit):
            cli.main(["--lang", lang, *command, "--help"])
        out = capsys.readouterr().out
        assert "cli.help." not in out and "usage:" in out, (command, out)
    with pytest.raises(SystemExit):
        webapp.parse_args(["--help"], lang)
    assert "cli.help." not in capsys.readouterr().out


def test_a_reader_that_goes_away_is_not_an_error(tmp_path):
    """``history --json | head -1``: the pipe closes before the CLI is done writing. It stops quietly with
    a pipe's exit status instead of reporting "something unexpected went wrong (BrokenPipeError)"."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "ALIYUN_IMAGE_"))}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the CLI writes its first line
    try:
        p = subprocess.run([sys.executable, "-m", "aliyun_image", "models"], stdout=write, stderr=subprocess.PIPE,
                           env={**env, "ALIYUN_IMAGE_DATA_DIR": str(tmp_path)}, cwd=Path(__file__).parent.parent,
                           text=True, timeout=120)
    finally:
        os.close(write)
    assert p.returncode == 141 and p.stderr == "", p.stderr
