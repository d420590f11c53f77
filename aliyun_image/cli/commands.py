"""``python -m aliyun_image``: generate, edit, fuse, batch, grid, download, history, spend, resume, models, check,
emulator (batch and grid: :mod:`.batch`).

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

from .. import __version__, catalog, i18n
from . import batch as cli_batch, reports as cli_reports, spend as cli_spend, trash_recipe
from ..runtime import backend_settings
from ..config import PLACES, Settings
from ..errors import AliyunImageError, unexpected
from ..i18n import t
from ..enums import EventKind
from ..generation import Outcome, note_text, terminal_summary
from .terminal import tell


GLOBAL_DEFAULTS = {"region": None, "base_url": None, "data_dir": None, "timeout": None, "retries": None,
                   "task_limit": None, "lang": None, "offline": False, "quiet": False}


def _h(lang: str, key: str, **params: object) -> str:
    """An argparse help text from the catalogue."""
    return t(lang, "cli.help." + key, **params)


def _common_image_args(p: argparse.ArgumentParser, *, edit: bool, lang: str) -> None:
    p.add_argument("-n", type=int, default=1, help=_h(lang, "n"))
    p.add_argument("--size", help=_h(lang, "size"))
    p.add_argument("--max", action="store_true", dest="best", help=_h(lang, "max"))
    p.add_argument("--model", help=_h(lang, "model"))
    p.add_argument("--seed", help=_h(lang, "seed"))
    neg = p.add_mutually_exclusive_group()
    neg.add_argument("--negative", help=_h(lang, "negative"))
    neg.add_argument("--no-negative", action="store_true", help=_h(lang, "no_negative"))
    # Neither flag: rewriting follows the model's catalogue default (off for z-image-turbo, where on
    # doubles the price).
    ext = p.add_mutually_exclusive_group()
    ext.add_argument("--extend", action="store_true", help=t(lang, "money.tier.help_extend"))
    ext.add_argument("--no-extend", action="store_true", help=_h(lang, "no_extend"))
    _rewriting_args(p, lang)
    p.add_argument("--watermark", action="store_true", help=_h(lang, "watermark"))
    if edit:
        p.add_argument("--upload", choices=["auto", "always", "never"], help=_h(lang, "upload"))
    # Edits too: the 3.0 line's async task API takes the messages body, input images included.
    p.add_argument("--async", action="store_true", dest="use_async", help=_h(lang, "async"))
    cli_spend.add_cost_args(p, lang)


def _rewriting_args(p: argparse.ArgumentParser, lang: str) -> None:
    """``--extend-mode`` and ``--thinking`` / ``--no-thinking``: left out, nothing is sent (the model's
    default); given for a model that does not take them, the job refuses them before sending."""
    def takers(param: str) -> str:
        return catalog.listing(catalog.takers(param)).render(lang) or "-"

    p.add_argument("--extend-mode", choices=list(catalog.PROMPT_EXTEND_MODES),
                   help=_h(lang, "params.extend_mode", models=takers("prompt_extend_mode")))
    think = p.add_mutually_exclusive_group()
    think.add_argument("--thinking", action="store_true", default=None,
                       help=_h(lang, "params.thinking", models=takers("enable_thinking")))
    think.add_argument("--no-thinking", action="store_false", dest="thinking", help=_h(lang, "params.no_thinking"))


def build_parser(lang: str | None = None) -> argparse.ArgumentParser:
    """The argument parser, its help in ``lang`` (default: the locale's language; exposed for tests and docs)."""
    lang = lang or i18n.from_locale()
    # Global flags are accepted before or after the command (`generate cat -q` and `-q generate cat`):
    # a parent parser with SUPPRESS defaults, so a flag given in either place wins; see GLOBAL_DEFAULTS.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--region", help=_h(lang, "region"))
    common.add_argument("--base-url", help=_h(lang, "base_url"))
    common.add_argument("--data-dir", help=_h(lang, "data_dir"))
    common.add_argument("--timeout", type=float, help=_h(lang, "timeout"))
    common.add_argument("--retries", type=int, help=_h(lang, "retries"))
    common.add_argument("--task-limit", type=int, help=_h(lang, "task_limit"))
    common.add_argument("--lang", choices=list(i18n.LANGUAGES), help=_h(lang, "lang"))
    common.add_argument("--offline", action="store_true", help=_h(lang, "offline"))
    common.add_argument("-q", "--quiet", action="store_true", help=_h(lang, "quiet"))
    p = argparse.ArgumentParser(prog="python -m aliyun_image", parents=[common], description=_h(lang, "description"))
    p.add_argument("--version", action="version", version=f"aliyun-image {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("generate", help=_h(lang, "generate"), parents=[common])
    g.add_argument("prompt")
    _common_image_args(g, edit=False, lang=lang)

    for name in ("edit", "fuse"):
        e = sub.add_parser(name, help=_h(lang, name), parents=[common])
        e.add_argument("images", help=f'{_h(lang, "images")} {t(lang, "lineage.cli_images")}')
        e.add_argument("instruction")
        _common_image_args(e, edit=True, lang=lang)

    d = sub.add_parser("download", help=_h(lang, "download"), parents=[common])
    d.add_argument("url")
    d.add_argument("path", nargs="?", help=_h(lang, "download_path"))

    h = sub.add_parser("history", help=_h(lang, "history"), parents=[common])
    h.add_argument("--limit", type=int, default=20)
    h.add_argument("--offset", type=int, default=0)
    h.add_argument("--search", help=_h(lang, "search"))
    h.add_argument("--task", choices=["t2i", "edit", "fuse"])
    h.add_argument("--model")
    h.add_argument("--json", action="store_true", help=_h(lang, "json_lines"))

    cli_spend.register(sub, common, lang)
    cli_batch.resume_args(sub.add_parser("resume", help=_h(lang, "resume"), parents=[common]), lang)
    cli_batch.add_parsers(sub, common, lang, _common_image_args)  # batch, grid
    m = sub.add_parser("models", help=_h(lang, "models"), parents=[common])
    m.add_argument("--json", action="store_true", help=_h(lang, "models_json"))
    trash_recipe.add_parsers(sub, common, lang)  # trash, recipe

    c = sub.add_parser("check", help=_h(lang, "check"), parents=[common])
    c.add_argument("--json", action="store_true", help=_h(lang, "check_json"))
    # Advanced: point a region at another base URL (a proxy, or an emulator in tests).
    c.add_argument("--region-base", action="append", metavar="REGION=URL", help=argparse.SUPPRESS)

    _emulator_parser(sub.add_parser("emulator", help=_h(lang, "emulator"), parents=[common]), lang)
    return p


def _emulator_parser(em: argparse.ArgumentParser, lang: str) -> None:
    """The ``emulator`` command's own flags."""
    em.add_argument("--host", default="127.0.0.1")
    em.add_argument("--port", type=int, default=8765)
    em.add_argument("--latency", type=float, default=0.0, help=_h(lang, "latency"))
    em.add_argument("--image-latency", type=float, default=0.0, help=_h(lang, "image_latency"))
    em.add_argument("--key", action="append", help=_h(lang, "key"))
    em.add_argument("--account-limit", type=int, help=_h(lang, "account_limit"))
    em.add_argument("--limit-retry-after", type=float, help=_h(lang, "limit_retry_after"))
    em.add_argument("--plays", default="beijing", choices=PLACES, metavar="PLACE",
                    help=t(lang, "platform.plays", places=", ".join(PLACES)))


class Progress:
    """One updating line on stderr when it is a terminal; silent otherwise."""

    def __init__(self, lang: str, enabled: bool):
        self.lang = lang
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, ev) -> None:  # service.Event
        if not self.enabled:
            return
        if ev.kind == EventKind.STATUS and ev.text:
            line = ev.text.render(self.lang)
        elif ev.kind in (EventKind.RESULT, EventKind.FAILURE) and ev.total:
            line = t(self.lang, "cli.progress", done=ev.done, total=ev.total)
        else:
            return
        sys.stderr.write("\r\033[K" + line)
        sys.stderr.flush()

    def start(self, total: int) -> None:
        """Show the first line before the (possibly long) request."""
        if self.enabled:
            sys.stderr.write(t(self.lang, "cli.working", done=0, total=total))
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


_REF_START = re.compile(r"^\s*(?:https?://|oss://|data:|file://|[/~.]|[A-Za-z]:[\\/]|#\d+\s*$)", re.IGNORECASE)
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
        tell(lang, "cli.resumed_earlier", file=rec.file)



def _run_images(args: argparse.Namespace, lang: str) -> int:
    from ..generation import ImageService

    with _backend(args) as settings:
        svc = ImageService(settings)
        negative = "" if args.no_negative else args.negative
        opts = dict(model=args.model, best=args.best, size=args.size, n=args.n, seed=args.seed,
                    negative=negative, watermark=args.watermark,
                    prompt_extend=True if args.extend else False if args.no_extend else None,
                    use_async=args.use_async, extend_mode=args.extend_mode, thinking=args.thinking)
        if args.command == "generate":
            job = svc.plan("t2i", args.prompt, **opts)
        else:
            job = svc.plan(args.command, args.instruction, split_images(args.images), **opts)
        if args.dry_run:
            return cli_spend.dry_run(svc, job, lang)
        _resume_earlier(svc, lang)
        for note in job.notes:
            tell(lang, "cli.note", text=note_text(lang, note))
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
    from ..money import record_cost
    from ..storage import ResultStore

    settings = Settings.from_env(data_dir=args.data_dir)
    store = ResultStore.open(settings.data_dir, fsync=settings.fsync)
    recs, total = store.page(offset=args.offset, limit=args.limit, query=args.search, task=args.task,
                             model=args.model)
    parents = _history_parents(store, recs) if args.json else {}
    for r in recs:
        if args.json:
            print(json.dumps({"id": r.id, "task": r.task, "model": r.model, "prompt": r.prompt, "seed": r.seed,
                              "size": r.size, "file": str(r.file), "created": iso_time(r.created),
                              "created_unix": r.created, "request_id": r.request_id,
                              "actual_prompt": r.actual_prompt, "rewrite_status": r.params.get("rewrite_status"),
                              "inputs": trash_recipe.inputs_json(r, store.root), "cost": record_cost(r),
                              "parents": parents.get(r.id, []), "batch_id": r.batch_id},
                             ensure_ascii=False))
        else:
            print(f"{r.id}\t{r.task}\t{r.model}\t{r.size}\t{r.seed}\t{r.file}\t{r.prompt[:60]}")
    if not args.json:
        tell(lang, "cli.history_total", total=total)
    return 0


def _history_parents(store, recs: list) -> dict[int, list[dict]]:  # ResultStore, Records
    """Each listed result's direct parents as ``[{"id", "relation"}...]`` (a fusion's in slot order; a batch
    item's with ``position`` and ``batch``): ``history --json``'s ``parents``."""
    links = store.records.parents_of([r.id for r in recs])
    return {rid: [link.as_json() for link in found] for rid, found in links.items()}


def _emulator(args: argparse.Namespace, lang: str) -> int:
    from ..emulator import Emulator

    emu = Emulator(host=args.host, port=args.port, api_keys=set(args.key) if args.key else None,
                   latency=args.latency, image_latency=args.image_latency, task_limit=args.account_limit,
                   limit_retry_after=args.limit_retry_after, region=args.plays)
    try:
        emu.start()
    except (OSError, OverflowError) as exc:
        tell(lang, "cli.emulator_failed", host=args.host, port=args.port, error=type(exc).__name__)
        return 1
    tell(lang, "cli.emulator_running", url=emu.base_url)
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
    from ..generation import ImageService

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
    from ..generation import ImageService

    if getattr(args, "batch_id", None):
        return cli_batch.resume(args, lang, _backend, Progress)

    def show(ev) -> None:  # service.Event
        if ev.error:
            print(ev.error.text(lang), file=sys.stderr)

    with _backend(args) as settings:
        svc = ImageService(settings)
        recs = svc.resume_pending(on_event=show)
        if not recs and not svc.store.pending():
            tell(lang, "cli.resume_nothing")
        cli_batch.tell_unfinished(svc, lang)
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
    if args.command in cli_batch.COMMANDS:
        return cli_batch.run(args, lang, _backend, Progress)
    if args.command == "spend":
        return cli_spend.spend(args, lang)
    if args.command == "models":
        return cli_reports.models(args, lang)
    if args.command == "check":
        return cli_reports.check(args, lang, _backend)
    if args.command in trash_recipe.COMMANDS:
        return trash_recipe.run(args, lang)
    return _emulator(args, lang)


def _lang_flag(argv: Sequence[str]) -> str | None:
    """The value of ``--lang`` in ``argv`` (before parsing: the parser's help needs it), if given."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # The language is known before parsing, so --help and argparse's refusals read like the rest.
    args = build_parser(i18n.from_locale(_lang_flag(argv))).parse_args(argv)
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    lang = i18n.from_locale(args.lang)
    try:
        return _dispatch(args, lang)
    except AliyunImageError as exc:
        print(exc.text(lang), file=sys.stderr)
        # Missing or refused key (not a malformed one, which has its own code): offline mode helps.
        if exc.code == "InvalidApiKey" and not args.offline:
            tell(lang, "cli.tip_offline")
        return exc.exit_code
    except KeyboardInterrupt:
        tell(lang, "cli.interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``history --json | head``): that is not an error to report. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again, and exit as a piped tool does.
        with contextlib.suppress(OSError, ValueError):  # a stdout without a descriptor has nothing to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # the CLI's last resort: one clear line, never a traceback
        logging.getLogger(__name__).debug("unexpected", exc_info=True)
        print(unexpected(exc).text(lang), file=sys.stderr)
        return 1
