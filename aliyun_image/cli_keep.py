"""CLI commands of the "nothing is lost" features: ``trash`` (list, ``--restore ID``, ``--empty``)
and ``recipe FILE`` (the recipe a PNG carries). Registered by :func:`aliyun_image.cli.build_parser`.

Output like the rest of the CLI: data on stdout, messages on stderr, exit 2 for a bad argument or
file (nothing happened), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .errors import ZH

if TYPE_CHECKING:
    from .store import Record
    from .trash import Trash

COMMANDS = ("trash", "recipe")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``trash`` and ``recipe`` to the CLI's sub-commands."""
    tr = sub.add_parser("trash", help="deleted results: list, restore, empty (emptied after 30 days)",
                        parents=[common])
    what = tr.add_mutually_exclusive_group()
    what.add_argument("--restore", type=int, metavar="ID", help="bring result ID back into the gallery")
    what.add_argument("--empty", action="store_true", help="delete everything in the trash for good")
    tr.add_argument("--json", action="store_true", help="list as one JSON object per line")
    rc = sub.add_parser("recipe", help="print the recipe a PNG carries (this app's or A1111 parameters)",
                        parents=[common])
    rc.add_argument("file", help="a PNG file")
    rc.add_argument("--json", action="store_true", help="the recipe as JSON")


def run(args: argparse.Namespace, lang: str) -> int:
    """Run ``trash`` or ``recipe``; errors (AliyunImageError) propagate to the CLI's main."""
    return _recipe(args, lang) if args.command == "recipe" else _trash(args, lang)


def _say(lang: str, zh: str, en: str) -> None:
    print(zh if lang == ZH else en, file=sys.stderr)


def _recipe(args: argparse.Namespace, lang: str) -> int:
    from .recipe_read import read_png_recipe

    recipe = read_png_recipe(args.file)
    if args.json:
        print(json.dumps(recipe.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(recipe.lines(lang)))
    return 0


def _trash(args: argparse.Namespace, lang: str) -> int:
    from .store import ResultStore
    from .trash import KEEP_DAYS, Trash

    settings = Settings.from_env(data_dir=args.data_dir)
    store = ResultStore.open(settings.data_dir, fsync=settings.fsync)
    try:
        trash = Trash(store)
        if args.restore is not None:
            rec = trash.restore(args.restore)
            if rec is None:
                _say(lang, f"回收站中没有 #{args.restore}。运行 trash 查看回收站内容。",
                     f"#{args.restore} is not in the trash. Run `trash` to see what is.")
                return 2
            print(rec.file or "")
            _say(lang, f"已恢复 #{rec.id}。", f"Restored #{rec.id}.")
            return 0
        if args.empty:
            n = trash.empty()
            _say(lang, f"已永久删除回收站中的 {n} 个结果。", f"Deleted {n} result(s) from the trash for good.")
            return 0
        expired = trash.expire()
        if expired:
            _say(lang, f"已清除回收站中超过 {KEEP_DAYS} 天的 {expired} 个结果。",
                 f"Emptied {expired} result(s) older than {KEEP_DAYS} days from the trash.")
        return _list(trash, args, lang)
    finally:
        store.close()


def _list(trash: Trash, args: argparse.Namespace, lang: str) -> int:
    from .trash import KEEP_DAYS

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
        _say(lang, f"回收站中共 {len(items)} 个结果（删除 30 天后自动清除；trash --restore ID 恢复）",
             f"{len(items)} in the trash (emptied 30 days after deletion; trash --restore ID brings one back)")
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
