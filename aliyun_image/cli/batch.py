"""The CLI's batches: ``batch FILE|-``, ``grid PROMPT --x ... --y ...`` and ``resume BATCH_ID``.

Like ``generate``: the stored files' paths on stdout (one per line; the grid image last), messages on
stderr, exit code 0 when every request of the batch is done, 1 when some failed, may have been billed,
still run or were not sent (the summary says which and what to do), 2 when refused before sending.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import AliyunImageError, ValidationError
from ..enums import Payer
from ..i18n import msg, render, t
from ..money import billing
from ..storage.batches import DONE
from .terminal import tell

COMMANDS = ("batch", "grid")


def _h(lang: str, key: str) -> str:
    return t(lang, "batch.help." + key)


def add_parsers(sub: Any, common: argparse.ArgumentParser, lang: str,
                image_args: Callable[..., None]) -> None:
    """Add ``batch`` and ``grid`` to the subparsers ``sub``; ``image_args`` adds generate's options."""
    b = sub.add_parser("batch", help=_h(lang, "batch"), parents=[common], epilog=t(lang, "batch_ux.dry_run_columns"))
    b.add_argument("file", help=_h(lang, "file"))
    b.add_argument("--var", action="append", metavar="NAME=V1,V2", help=_h(lang, "var"))
    _batch_args(b, lang, image_args)
    g = sub.add_parser("grid", help=_h(lang, "grid"), parents=[common])
    g.add_argument("prompt", help=_h(lang, "prompt"))
    g.add_argument("--x", required=True, metavar="NAME=V1,V2", help=_h(lang, "x"))
    g.add_argument("--y", metavar="NAME=V1,V2", help=_h(lang, "y"))
    _batch_args(g, lang, image_args)


def _batch_args(p: argparse.ArgumentParser, lang: str, image_args: Callable[..., None]) -> None:
    image_args(p, edit=False, lang=lang)
    p.add_argument("--new", action="store_true", help=_h(lang, "new"))
    p.add_argument("--zip", metavar="PATH", help=_h(lang, "zip"))
    p.add_argument("--inflight", type=int, help=_h(lang, "inflight"))
    p.add_argument("--json", action="store_true", help=_h(lang, "json"))


def resume_args(p: argparse.ArgumentParser, lang: str) -> None:
    """``resume [BATCH_ID]``: without an id, ``resume`` does what it always did."""
    p.add_argument("batch_id", nargs="?", help=_h(lang, "resume_id"))
    p.add_argument("--zip", metavar="PATH", help=_h(lang, "zip"))
    p.add_argument("--json", action="store_true", help=_h(lang, "json"))


def job_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options every request of the batch shares, from generate's flags (None: not given)."""
    return dict(model=args.model, best=args.best, size=args.size, n=args.n, seed=args.seed,
                negative="" if args.no_negative else args.negative, watermark=args.watermark,
                prompt_extend=True if args.extend else False if args.no_extend else None,
                use_async=args.use_async, extend_mode=args.extend_mode, thinking=args.thinking)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        raise ValidationError(msg("batch.file_unreadable", path=path), code="Validation.BatchFile") from None


def spec_of(args: argparse.Namespace) -> Any:
    """The batch spec of a ``batch`` or ``grid`` command line."""
    from ..generation.batch import Axis, BatchSpec
    from ..generation.grid import grid_spec

    if args.command == "grid":
        axes = [Axis.parse(a) for a in (args.x, args.y) if a]
        return grid_spec(args.prompt, axes, job_options(args))
    return BatchSpec(_read(args.file), tuple(Axis.parse(v) for v in args.var or []), job_options(args))


def run(args: argparse.Namespace, lang: str, backend: Callable[[argparse.Namespace], Any],
        progress: Callable[[str, bool], Any]) -> int:
    """``batch`` and ``grid`` (``backend``: the settings of the run; ``progress``: the progress line)."""
    from ..generation import ImageService
    from ..generation import batch as batches

    spec = spec_of(args)
    with backend(args) as settings:
        svc = ImageService(settings)
        if args.dry_run:  # the units the real run would send, their seeds included
            return _dry_run(svc, spec, batches.preview(svc, spec, new=args.new), args, lang)
        prepared = batches.prepare(svc, spec, new=args.new)
        _announce(svc, prepared, lang)
        outcome = _run_stored(svc, prepared.batch_id, args, lang, progress)
        grid_file = None
        if spec.kind == "grid" and outcome.settled:
            from ..generation.grid import make_grid

            grid_file = make_grid(svc, outcome, lang=lang)
        return _report(svc, outcome, args, lang, grid_file)


def _announce(svc: Any, prepared: Any, lang: str) -> None:
    """What the batch will do, before it sends anything."""
    from ..generation import batch as batches

    found = batches.find(svc, prepared.batch_id)
    assert found is not None
    _row, units = found
    missing = [u for u in units if u.state != DONE]
    if prepared.plan is not None:
        p = prepared.plan
        tell(lang, "batch.plan", items=len(p.items), requests=p.requests, images=p.images, cost=_cost(svc, p, lang))
        for note in p.notes:
            tell(lang, "cli.note", text=render(lang, note))
        tell(lang, "batch.started", id=prepared.batch_id)
    elif not missing:
        tell(lang, "batch.nothing_missing", id=prepared.batch_id)
    else:
        tell(lang, "batch.resuming", id=prepared.batch_id, missing=len(missing), requests=len(units))


def _cost(svc: Any, p: Any, lang: str) -> str:
    costs = " + ".join(c.head().render(lang) for c in p.costs()) or "-"
    if billing.paid_by(svc.settings, svc.settings.api_key) == Payer.OFFLINE:
        return t(lang, "batch.plan_free", cost=costs)
    return costs


def _seed(spec: Any, unit: Any, new: bool) -> int | None:
    """The seed ``unit`` will be sent with; None when ``--new`` draws it when the batch is stored."""
    from ..generation import batch as batches

    return None if new and not batches.seed_fixed(spec, unit) else unit.options.get("seed")


def _dry_run(svc: Any, spec: Any, p: Any, args: argparse.Namespace, lang: str) -> int:
    """The plan and its price; nothing is sent. Exit code 2 when a budget would refuse it.

    stdout stays machine-readable (the columns are in ``batch --help``): one line per request, tab
    separated, with the seed the real run sends (the same input finds the same batch and seeds),
    ``random`` where ``--new`` draws a new one."""
    from ..generation import batch as batches

    if args.json:
        units = [{"unit": u.pos + 1, "item": u.item + 1, "model": u.options.get("model"),
                  "size": u.options.get("size"), "seed": _seed(spec, u, args.new), "images": u.images,
                  "labels": u.labels, "prompt": u.prompt} for u in p.units]
        print(json.dumps({**p.as_dict(), "units": units, "sent": False}, ensure_ascii=False))
    else:
        for u in p.units:
            labels = " ".join(f"{k}={v}" for k, v in u.labels.items())
            seed = _seed(spec, u, args.new)
            print(f"{u.pos + 1}\t{u.options.get('model')}\t{u.options.get('size') or '-'}\t"
                  f"{'random' if seed is None else seed}\t{u.images}\t{labels}\t{u.prompt}")
        tell(lang, "batch.plan", items=len(p.items), requests=p.requests, images=p.images, cost=_cost(svc, p, lang))
        for note in p.notes:
            tell(lang, "cli.note", text=render(lang, note))
    try:
        batches.check_cost(svc, p, p.units, api_key=None, owner=None)
    except ValidationError as exc:
        print(exc.text(lang), file=sys.stderr)
        return 2
    tell(lang, "batch.sent_nothing")
    return 0


def _run_stored(svc: Any, batch_id: str, args: argparse.Namespace, lang: str,
                progress: Callable[[str, bool], Any]) -> Any:
    from ..generation import batch as batches

    found = batches.find(svc, batch_id)
    line = progress(lang, not args.quiet)
    line.start(sum(u.images for u in found[1]) if found else 0)
    try:
        return batches.run(svc, batch_id, on_event=line, inflight=getattr(args, "inflight", None))
    finally:
        line.end()


def _report(svc: Any, outcome: Any, args: argparse.Namespace, lang: str, extra: Path | None = None) -> int:
    """Paths (or JSON) on stdout, the summary on stderr, the zip; the exit code."""
    from ..generation import batch as batches

    zipped = batches.zip_batch(svc, outcome, args.zip) if getattr(args, "zip", None) else None
    if getattr(args, "json", False):
        data = outcome.as_dict()
        data.update(zip=str(zipped) if zipped else None, grid=str(extra) if extra else None)
        print(json.dumps(data, ensure_ascii=False))
    else:
        for rec in outcome.results:
            print(rec.file)
        if extra is not None:
            print(extra)
    for line in outcome.summary():
        print(render(lang, line), file=sys.stderr)
    if zipped is not None:
        tell(lang, "batch.zip", path=zipped)
    return 0 if outcome.complete else 1


def resume(args: argparse.Namespace, lang: str, backend: Callable[[argparse.Namespace], Any],
           progress: Callable[[str, bool], Any]) -> int:
    """``resume BATCH_ID``: make what is missing of a stored batch (never resending what may have been billed)."""
    from ..generation import ImageService
    from ..generation import batch as batches
    from ..generation.batch import BatchSpec

    with backend(args) as settings:
        svc = ImageService(settings)
        found = batches.find(svc, args.batch_id)
        if found is None:
            raise ValidationError(msg("batch.not_found", id=args.batch_id), code="Batch.NotFound")
        row, units = found
        missing = [u for u in units if u.state != DONE]
        if missing:
            tell(lang, "batch.resuming", id=row.id, missing=len(missing), requests=len(units))
        else:
            tell(lang, "batch.nothing_missing", id=row.id)
        outcome = _run_stored(svc, row.id, args, lang, progress)
        grid_file = None
        if BatchSpec.from_dict(row.spec).kind == "grid" and outcome.settled:
            from ..generation.grid import make_grid

            grid_file = make_grid(svc, outcome, lang=lang)
        return _report(svc, outcome, args, lang, grid_file)


def tell_unfinished(svc: Any, lang: str) -> None:
    """After a plain ``resume``: the batches that still have requests to make or collect."""
    from ..generation import batch as batches

    try:
        for row, left in batches.unfinished(svc):
            tell(lang, "batch.unfinished", id=row.id, kind=row.kind, left=left)
    except AliyunImageError:
        pass  # listing is a courtesy; the downloads above are what resume is for

