"""CLI commands of the "nothing is lost" features: ``trash`` (list, ``--restore ID``, ``--empty``)
and ``recipe FILE`` (the recipe a PNG carries). Registered by :func:`aliyun_image.cli.commands.build_parser`.

Output like the rest of the CLI: data on stdout, messages on stderr, exit 2 for a bad argument or
file (nothing happened), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Settings
from ..i18n import t
from .terminal import tell

if TYPE_CHECKING:
    from ..storage import Record
    from ..storage import Trash

COMMANDS = ("trash", "recipe")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, lang: str = "en") -> None:
    """Add ``trash`` and ``recipe`` to the CLI's sub-commands (help texts in ``lang``)."""
    from ..storage import KEEP_DAYS

    def h(key: str, **params: object) -> str:
        return t(lang, "cli.help." + key, **params)

    tr = sub.add_parser("trash", help=h("trash", days=KEEP_DAYS), parents=[common])
    what = tr.add_mutually_exclusive_group()
    what.add_argument("--restore", type=int, metavar="ID", help=h("restore"))
    what.add_argument("--empty", action="store_true", help=h("empty"))
    tr.add_argument("--json", action="store_true", help=h("trash_json"))
    rc = sub.add_parser("recipe", help=h("recipe"), parents=[common])
    rc.add_argument("file", help=h("recipe_file"))
    rc.add_argument("--json", action="store_true", help=h("recipe_json"))


def run(args: argparse.Namespace, lang: str) -> int:
    """Run ``trash`` or ``recipe``; errors (AliyunImageError) propagate to the CLI's main."""
    return _recipe(args, lang) if args.command == "recipe" else _trash(args, lang)



def _recipe(args: argparse.Namespace, lang: str) -> int:
    from ..recipes import read_png_recipe

    recipe = read_png_recipe(args.file)
    if args.json:
        print(json.dumps(recipe.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(recipe.lines(lang)))
    return 0


def _trash(args: argparse.Namespace, lang: str) -> int:
    from ..storage import ResultStore
    from ..storage import KEEP_DAYS, Trash

    settings = Settings.from_env(data_dir=args.data_dir)
    store = ResultStore.open(settings.data_dir, fsync=settings.fsync)
    try:
        trash = Trash(store)
        if args.restore is not None:
            rec = trash.restore(args.restore)
            if rec is None:
                tell(lang, "cli.trash_not_found", id=args.restore)
                return 2
            print(rec.file or "")
            tell(lang, "cli.trash_restored", id=rec.id)
            return 0
        if args.empty:
            n = trash.empty()
            tell(lang, "cli.trash_emptied", n=n)
            return 0
        expired = trash.expire()
        if expired:
            tell(lang, "cli.trash_expired", n=expired, days=KEEP_DAYS)
        return _list(trash, args, lang)
    finally:
        store.close()


def _list(trash: Trash, args: argparse.Namespace, lang: str) -> int:
    from ..storage import KEEP_DAYS

    items = trash.items()
    for r in items:
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.updated))
        left = max(0, int((r.updated + KEEP_DAYS * 86400 - time.time()) // 86400))
        if args.json:
            print(json.dumps({"id": r.id, "task": r.task, "model": r.model, "prompt": r.prompt,
                              "trashed": when, "days_left": left, "file": str(trash.trashed_file(r))},
                             ensure_ascii=False))
        else:
            print(f"{r.id}\t{when}\t{r.task}\t{r.model}\t{r.prompt[:60]}")
    if not args.json:
        tell(lang, "cli.trash_total", n=len(items), days=KEEP_DAYS)
    return 0


def inputs_json(rec: Record, root: Path) -> list[dict]:
    """A record's inputs for ``history --json``: each as recorded, ``stored`` as a full path."""
    out = []
    for item in rec.inputs:
        entry = dict(item) if isinstance(item, dict) else {"name": str(item)}
        if entry.get("stored"):
            entry["stored"] = str(root / str(entry["stored"]))
        out.append(entry)
    return out
