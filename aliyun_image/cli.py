"""``python -m aliyun_image``: generate, edit, fuse, download, history, spend, resume, models, check, emulator.

Prints saved file paths on stdout (one per line), messages on stderr. Exit codes: 0 success,
2 usage or validation error (nothing was sent), 1 API, network or storage error (including
partial success: the paths that were saved are still printed). Never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from . import __version__, cli_reports, cli_spend
from .backends import backend_settings
from .config import Settings
from .errors import EN, ZH, AliyunImageError, unexpected
from .kinds import EventKind
from . import cli_keep
from .summary import Outcome, terminal_summary


GLOBAL_DEFAULTS = {"region": None, "base_url": None, "data_dir": None, "timeout": None, "retries": None,
                   "task_limit": None, "lang": None, "offline": False, "quiet": False}


def detect_lang(explicit: str | None = None) -> str:
    """``zh`` when asked for or when the locale is Chinese, else ``en``."""
    if explicit:
        return ZH if explicit.lower().startswith("zh") else EN
    for var in ("ALIYUN_IMAGE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        val = os.environ.get(var, "")
        if val:
            return ZH if val.lower().startswith("zh") else EN
    return EN


def _common_image_args(p: argparse.ArgumentParser, *, edit: bool) -> None:
    p.add_argument("-n", type=int, default=1, help="number of images (1-6; fanned out for n=1 models)")
    p.add_argument("--size", help="W*H (e.g. 1328*1328), an aspect like 16:9, or auto")
    p.add_argument("--max", action="store_true", dest="best", help="best quality: use the Max model")
    p.add_argument("--model", help="explicit model or dated snapshot (see `models`)")
    p.add_argument("--seed", help="0-2147483647; default random (the seed used is printed)")
    neg = p.add_mutually_exclusive_group()
    neg.add_argument("--negative", help="negative prompt (default: the product's standard one)")
    neg.add_argument("--no-negative", action="store_true", help="send no negative prompt")
    p.add_argument("--no-extend", action="store_true", help="turn prompt rewriting off")
    p.add_argument("--watermark", action="store_true", help="add the Qwen-Image watermark")
    if edit:
        p.add_argument("--upload", choices=["auto", "always", "never"],
                       help="temporary OSS upload of local images (auto: only when large)")
    else:
        p.add_argument("--async", action="store_true", dest="use_async",
                       help="use the async task API (qwen-image, qwen-image-plus)")
    cli_spend.add_cost_args(p)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    # Global flags are accepted before or after the command (`generate cat -q` and `-q generate cat`):
    # a parent parser with SUPPRESS defaults, so a flag given in either place wins; see GLOBAL_DEFAULTS.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--region", help="beijing (default), singapore or us")
    common.add_argument("--base-url", help="explicit API base URL (overrides DASHSCOPE_HTTP_BASE_URL and --region)")
    common.add_argument("--data-dir", help="where results go (default ./outputs or ALIYUN_IMAGE_DATA_DIR)")
    common.add_argument("--timeout", type=float, help="read timeout for one API call, seconds")
    common.add_argument("--retries", type=int, help="retries on 429/5xx and connection failures")
    common.add_argument("--task-limit", type=int,
                        help="tasks at once per key and model to start with (default 2; 0 = no queueing)")
    common.add_argument("--lang", choices=["zh", "en"], help="message language (default from the locale)")
    common.add_argument("--offline", action="store_true",
                        help="use a local emulator instead of DashScope (stand-in images, no key needed)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p = argparse.ArgumentParser(prog="python -m aliyun_image", parents=[common],
                                description="Qwen-Image on Alibaba Cloud Bailian (DashScope): generate, edit, fuse.")
    p.add_argument("--version", action="version", version=f"aliyun-image {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("generate", help="text-to-image", parents=[common])
    g.add_argument("prompt")
    _common_image_args(g, edit=False)

    for name, helptext in (("edit", "edit 1-3 images"), ("fuse", "fuse 2-3 images in order")):
        e = sub.add_parser(name, help=helptext, parents=[common])
        e.add_argument("images", help="comma-separated URLs or local paths (1-3; order = 图1, 图2, 图3)")
        e.add_argument("instruction")
        _common_image_args(e, edit=True)

    d = sub.add_parser("download", help="download a result URL", parents=[common])
    d.add_argument("url")
    d.add_argument("path", nargs="?", help="file or folder (default: <data dir>/downloads/)")

    h = sub.add_parser("history", help="list stored results, newest first", parents=[common])
    h.add_argument("--limit", type=int, default=20)
    h.add_argument("--offset", type=int, default=0)
    h.add_argument("--search", help="text in the prompt")
    h.add_argument("--task", choices=["t2i", "edit", "fuse"])
    h.add_argument("--model")
    h.add_argument("--json", action="store_true", help="one JSON object per line")

    cli_spend.register(sub, common)
    sub.add_parser("resume", help="finish downloads cut short by a crash (while URLs are valid)", parents=[common])
    m = sub.add_parser("models", help="list models: status, regions, limits, prices", parents=[common])
    m.add_argument("--json", action="store_true", help="everything the catalogue says, as JSON")
    cli_keep.add_parsers(sub, common)  # trash, recipe

    c = sub.add_parser("check", help="which region is this key for? (one free request per region)",
                       parents=[common])
    c.add_argument("--json", action="store_true", help="the per-region results as JSON")
    # Advanced: point a region at another base URL (a proxy, or an emulator in tests).
    c.add_argument("--region-base", action="append", metavar="REGION=URL", help=argparse.SUPPRESS)

    _emulator_parser(sub.add_parser("emulator", help="run the local DashScope emulator on 127.0.0.1",
                                    parents=[common]))
    return p


def _emulator_parser(em: argparse.ArgumentParser) -> None:
    """The ``emulator`` command's own flags."""
    em.add_argument("--host", default="127.0.0.1")
    em.add_argument("--port", type=int, default=8765)
    em.add_argument("--latency", type=float, default=0.0, help="seconds added to each generation")
    em.add_argument("--image-latency", type=float, default=0.0, help="seconds added per image of a generation")
    em.add_argument("--key", action="append", help="accepted API key (repeatable; default: any sk-...)")
    em.add_argument("--account-limit", type=int, help="tasks in flight per key before 429 Throttling.RateQuota")
    em.add_argument("--limit-retry-after", type=float, help="Retry-After seconds sent with those 429s")


class Progress:
    """One updating line on stderr when it is a terminal; silent otherwise."""

    def __init__(self, lang: str, enabled: bool):
        self.lang = lang
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, ev) -> None:  # service.Event
        if not self.enabled:
            return
        if ev.kind == EventKind.STATUS and ev.text:
            msg = ev.text[0] if self.lang == ZH else ev.text[1]
        elif ev.kind in (EventKind.RESULT, EventKind.FAILURE) and ev.total:
            msg = (f"已完成 {ev.done}/{ev.total}" if self.lang == ZH else f"{ev.done}/{ev.total} done")
        else:
            return
        sys.stderr.write("\r\033[K" + msg)
        sys.stderr.flush()

    def start(self, total: int) -> None:
        """Show the first line before the (possibly long) request."""
        if self.enabled:
            sys.stderr.write(f"{'生成中' if self.lang == ZH else 'Working'} 0/{total}…")
            sys.stderr.flush()

    def end(self) -> None:
        """Clear the line."""
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _backend(args: argparse.Namespace) -> contextlib.AbstractContextManager[Settings]:
    """Settings for this run; with --offline, an in-process emulator serves as DashScope."""
    return backend_settings(args.offline, region=args.region, base_url=args.base_url, data_dir=args.data_dir,
                            read_timeout=args.timeout, max_retries=args.retries, task_limit=args.task_limit,
                            upload=getattr(args, "upload", None), **cli_spend.overrides(args))


_REF_START = re.compile(r"^\s*(?:https?://|oss://|data:|file://|[/~.]|[A-Za-z]:[\\/])", re.IGNORECASE)
_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|bmp|tiff?|webp|gif)\s*$", re.IGNORECASE)


def split_images(text: str) -> list[str]:
    """Split the comma-separated IMAGES argument without breaking ``data:`` URIs or URLs with commas.

    A piece starts a new image only if it looks like one (a scheme, a path, an existing file or an
    image file name); anything else was a comma inside the previous reference.
    """
    out: list[str] = []
    for piece in text.split(","):
        starts = _REF_START.match(piece) or _IMAGE_EXT.search(piece) or os.path.exists(piece.strip())
        if out and not starts:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return [p.strip() for p in out if p.strip()]


def _resume_earlier(svc, lang: str) -> None:  # ImageService
    """The "next start" of the CLI: finish downloads an earlier run left pending (crash, Ctrl+C)."""
    if not svc.store.pending():
        return
    for rec in svc.resume_pending():
        _say(lang, f"已补全之前中断的下载：{rec.file}", f"Completed an earlier interrupted download: {rec.file}")


def _say(lang: str, zh: str, en: str) -> None:
    print(zh if lang == ZH else en, file=sys.stderr)


def _run_images(args: argparse.Namespace, lang: str) -> int:
    from .service import ImageService

    with _backend(args) as settings:
        svc = ImageService(settings)
        negative = "" if args.no_negative else args.negative
        opts = dict(model=args.model, best=args.best, size=args.size, n=args.n, seed=args.seed,
                    negative=negative, prompt_extend=not args.no_extend, watermark=args.watermark)
        if args.command == "generate":
            job = svc.plan("t2i", args.prompt, use_async=args.use_async, **opts)
        else:
            job = svc.plan(args.command, args.instruction, split_images(args.images), **opts)
        if args.dry_run:
            return cli_spend.dry_run(svc, job, lang)
        _resume_earlier(svc, lang)
        for note in job.notes:
            _say(lang, "提示：" + note.render(ZH), "Note: " + note.render(lang))
        progress = Progress(lang, not args.quiet)
        progress.start(job.n)
        try:
            batch = svc.run(job, on_event=progress)
        finally:
            progress.end()
        for rec in batch.results:
            print(rec.file)
        outcome = Outcome(job.n, job.model, batch.results, batch.failures)
        for line in terminal_summary(outcome, lang, quiet=args.quiet):
            print(line, file=sys.stderr)
        cost = cli_spend.cost_line(svc, job, batch, lang)
        if cost:
            print(cost, file=sys.stderr)
        return 0 if not batch.failures else 1


def _history(args: argparse.Namespace, lang: str) -> int:
    from .ledger import record_cost
    from .store import ResultStore

    settings = Settings.from_env(data_dir=args.data_dir)
    store = ResultStore.open(settings.data_dir, fsync=settings.fsync)
    recs, total = store.page(offset=args.offset, limit=args.limit, query=args.search, task=args.task,
                             model=args.model)
    for r in recs:
        if args.json:
            print(json.dumps({"id": r.id, "task": r.task, "model": r.model, "prompt": r.prompt, "seed": r.seed,
                              "size": r.size, "file": str(r.file), "created": iso_time(r.created),
                              "created_unix": r.created, "request_id": r.request_id,
                              "inputs": cli_keep.inputs_json(r, store.root), "cost": record_cost(r)},
                             ensure_ascii=False))
        else:
            print(f"{r.id}\t{r.task}\t{r.model}\t{r.size}\t{r.seed}\t{r.file}\t{r.prompt[:60]}")
    if not args.json:
        _say(lang, f"共 {total} 条", f"{total} in total")
    return 0


def _emulator(args: argparse.Namespace, lang: str) -> int:
    from .emulator import Emulator

    emu = Emulator(host=args.host, port=args.port, api_keys=set(args.key) if args.key else None,
                   latency=args.latency, image_latency=args.image_latency, task_limit=args.account_limit,
                   limit_retry_after=args.limit_retry_after)
    try:
        emu.start()
    except (OSError, OverflowError) as exc:
        _say(lang, f"无法在 {args.host}:{args.port} 启动模拟器（{type(exc).__name__}）。"
                   "端口可能已被占用或无效，请换一个 --port。",
             f"Cannot start the emulator on {args.host}:{args.port} ({type(exc).__name__}). The port may be in use "
             "or invalid; pick another --port.")
        return 1
    _say(lang, f"DashScope 模拟器运行于 {emu.base_url}（Ctrl+C 停止）\n"
               f"  export DASHSCOPE_HTTP_BASE_URL={emu.base_url}",
         f"DashScope emulator at {emu.base_url} (Ctrl+C to stop)\n"
         f"  export DASHSCOPE_HTTP_BASE_URL={emu.base_url}")
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


def iso_time(ts: float) -> str:
    """A timestamp as ISO 8601 in local time with its UTC offset (``2026-11-25T13:04:05+08:00``)."""
    return datetime.fromtimestamp(ts, timezone.utc).astimezone().isoformat(timespec="seconds")


def _download(args: argparse.Namespace, lang: str) -> int:
    from .service import ImageService

    with _backend(args) as settings:
        try:
            print(ImageService(settings).download_url(args.url, args.path))
        except AliyunImageError as exc:
            if exc.code != "Download.HostNotAllowed":
                raise
            # A refused host is a usage error: nothing was fetched, the URL has to change.
            print(exc.text(lang), file=sys.stderr)
            return 2
    return 0


def _resume(args: argparse.Namespace, lang: str) -> int:
    from .service import ImageService

    def show(ev) -> None:  # service.Event
        if ev.error:
            print(ev.error.text(lang), file=sys.stderr)

    with _backend(args) as settings:
        svc = ImageService(settings)
        recs = svc.resume_pending(on_event=show)
        if not recs and not svc.store.pending():
            _say(lang, "没有需要补全的下载：没有中断未完成的结果。",
                 "Nothing to resume: no download was left unfinished.")
    for r in recs:
        print(r.file)
    return 0


def _dispatch(args: argparse.Namespace, lang: str) -> int:
    """Run the command; errors propagate to :func:`main`."""
    if args.command in ("generate", "edit", "fuse"):
        return _run_images(args, lang)
    if args.command == "download":
        return _download(args, lang)
    if args.command == "history":
        return _history(args, lang)
    if args.command == "resume":
        return _resume(args, lang)
    if args.command == "spend":
        return cli_spend.spend(args, lang)
    if args.command == "models":
        return cli_reports.models(args, lang)
    if args.command == "check":
        return cli_reports.check(args, lang, _backend)
    if args.command in cli_keep.COMMANDS:
        return cli_keep.run(args, lang)
    return _emulator(args, lang)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    lang = detect_lang(args.lang)
    try:
        return _dispatch(args, lang)
    except AliyunImageError as exc:
        print(exc.text(lang), file=sys.stderr)
        # Missing or refused key (not a malformed one, which has its own code): offline mode helps.
        if exc.code == "InvalidApiKey" and not args.offline:
            _say(lang, "提示：没有 Key 也可以先用 --offline 试用（本地模拟器生成替代图片）。",
                 "Tip: try it without a key with --offline (stand-in images from the local emulator).")
        return exc.exit_code
    except KeyboardInterrupt:
        _say(lang, "已中断。已保存的结果不受影响；已付费但未下载完的结果会在下次运行时自动补全（或运行 resume）。",
             "Interrupted. Saved results are safe; paid results not yet downloaded are completed on the next "
             "run (or run `resume`).")
        return 130
    except Exception as exc:  # the CLI's last resort: one clear line, never a traceback
        logging.getLogger(__name__).debug("unexpected", exc_info=True)
        print(unexpected(exc).text(lang), file=sys.stderr)
        return 1
