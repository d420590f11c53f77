"""``python -m aliyun_image``: generate, edit, fuse, download, history, resume, models, check, emulator.

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

from . import __version__, catalog, keycheck
from .backends import backend_settings
from .config import REGIONS, Settings, check_key, region_names
from .errors import EN, ZH, AliyunImageError, ApiError, unexpected, validation
from .keycheck import KeyCheck
from .kinds import EventKind
from .summary import Outcome, terminal_summary


GLOBAL_DEFAULTS = {"region": None, "base_url": None, "data_dir": None, "timeout": None, "retries": None,
                   "lang": None, "offline": False, "quiet": False}


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

    sub.add_parser("resume", help="finish downloads cut short by a crash (while URLs are valid)", parents=[common])
    m = sub.add_parser("models", help="list models: status, regions, limits, prices", parents=[common])
    m.add_argument("--json", action="store_true", help="everything the catalogue says, as JSON")

    c = sub.add_parser("check", help="which region is this key for? (one free request per region)",
                       parents=[common])
    c.add_argument("--json", action="store_true", help="the per-region results as JSON")
    # Advanced: point a region at another base URL (a proxy, or an emulator in tests).
    c.add_argument("--region-base", action="append", metavar="REGION=URL", help=argparse.SUPPRESS)

    em = sub.add_parser("emulator", help="run the local DashScope emulator on 127.0.0.1", parents=[common])
    em.add_argument("--host", default="127.0.0.1")
    em.add_argument("--port", type=int, default=8765)
    em.add_argument("--latency", type=float, default=0.0, help="seconds added to each generation")
    em.add_argument("--key", action="append", help="accepted API key (repeatable; default: any sk-...)")
    return p


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
                            read_timeout=args.timeout, max_retries=args.retries,
                            upload=getattr(args, "upload", None))


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
        _resume_earlier(svc, lang)
        for zh, en in job.notes:
            _say(lang, "提示：" + zh, "Note: " + en)
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
        return 0 if not batch.failures else 1


def _history(args: argparse.Namespace, lang: str) -> int:
    from .store import ResultStore

    settings = Settings.from_env(data_dir=args.data_dir)
    store = ResultStore.open(settings.data_dir, fsync=settings.fsync)
    recs, total = store.page(offset=args.offset, limit=args.limit, query=args.search, task=args.task,
                             model=args.model)
    for r in recs:
        if args.json:
            print(json.dumps({"id": r.id, "task": r.task, "model": r.model, "prompt": r.prompt, "seed": r.seed,
                              "size": r.size, "file": str(r.file), "created": r.created,
                              "request_id": r.request_id}, ensure_ascii=False))
        else:
            print(f"{r.id}\t{r.task}\t{r.model}\t{r.size}\t{r.seed}\t{r.file}\t{r.prompt[:60]}")
    if not args.json:
        _say(lang, f"共 {total} 条", f"{total} in total")
    return 0


def _rule_info(rule: catalog.SizeRule) -> dict:
    """A size rule as plain data (``models --json``)."""
    info: dict = {"kind": rule.kind, "default": rule.default,
                  "presets": [{"ratio": o.ratio, "size": o.value} for o in rule.presets]}
    if rule.kind == "sides":
        info.update(min_side=rule.min_side, max_side=rule.max_side)
    if rule.kind == "pixels":
        info.update(min_pixels=rule.min_pixels, max_pixels=rule.max_pixels)
    return info


def model_info(spec: catalog.ModelSpec) -> dict:
    """Everything the catalogue says about one model, as plain data (``models --json``)."""
    return {
        "id": spec.name, "display": spec.title, "family": spec.family, "status": spec.status,
        "verified": spec.verified, "unverified": sorted(spec.unverified),
        "tasks": sorted(spec.tasks), "endpoints": list(spec.endpoints), "regions": list(spec.regions),
        "sizes": {task: _rule_info(spec.size_rule(task)) for task in sorted(spec.tasks)},
        "n": [spec.n_min, spec.n_max], "prompt_max": spec.prompt_max, "negative_max": spec.negative_max,
        "images": [spec.images_min, spec.images_max] if spec.does(catalog.EDIT) else None,
        "params": sorted(spec.params), "prompt_extend_default": spec.prompt_extend_default,
        # Prices only where the catalogue has them: an absent region stays absent, never guessed.
        "currency": spec.currency, "price": dict(spec.price), "price_extend": dict(spec.price_extend),
        "best": spec.best, "alias_of": spec.alias_of, "snapshot_of": spec.snapshot_of,
        "snapshots": list(spec.snapshots), "note_zh": spec.note_zh, "note_en": spec.note_en,
        "source": spec.source, "checked": spec.checked,
    }


def _size_text(rule: catalog.SizeRule, task: str, lang: str) -> str:
    """One size rule in words: what may be asked for, and the default."""
    zh = lang == ZH
    presets = ", ".join(f"{o.value} ({o.ratio})" for o in rule.presets)
    if rule.kind == "fixed":
        what = (f"可选 {presets}" if zh else f"one of {presets}")
    elif rule.kind == "sides":
        what = (f"宽和高各 {rule.min_side}–{rule.max_side} 像素" if zh
                else f"width and height each {rule.min_side}-{rule.max_side} px")
    elif rule.kind == "pixels":
        lo, hi = catalog.pixels_label(rule.min_pixels), catalog.pixels_label(rule.max_pixels)
        what = f"总像素 {lo} 至 {hi}" if zh else f"total pixels {lo} to {hi}"
    elif rule.kind == "none":
        what = "不能指定（跟随输入图片）" if zh else "none (follows the input image)"
    else:
        what = "不检查" if zh else "not checked"
    if rule.kind != "fixed" and presets:
        what += (f"；预设 {presets}" if zh else f"; presets {presets}")
    if rule.default:
        default = rule.default
    elif task == catalog.EDIT:
        default = "跟随最后一张输入图" if zh else "follows the last input image"
    else:
        default = "由服务决定" if zh else "chosen by the service"
    return f"{what}；默认 {default}" if zh else f"{what}; default {default}"


def _price_text(spec: catalog.ModelSpec, lang: str) -> str:
    """Price per image in each region the catalogue prices; "price unknown" where it has none."""
    zh = lang == ZH
    parts = []
    for region in spec.regions or sorted(spec.price):
        name = region_names(region)[0 if zh else 1]
        off = spec.price.get(region)
        if off is None:
            parts.append(f"{name} 价格未知" if zh else f"{name} price unknown")
            continue
        on = spec.price_extend.get(region)
        if on is None:
            parts.append(f"{name} {off:g} {spec.currency}")
        else:  # prompt rewriting changes the price (z-image-turbo): both, never one guessed
            parts.append(f"{name} {off:g} {spec.currency}（改写关闭）/ {on:g}（改写开启）" if zh
                         else f"{name} {off:g} {spec.currency} (rewriting off) / {on:g} (rewriting on)")
    if not parts:
        return "价格未知" if zh else "price unknown"
    return ("每张 " if zh else "per image: ") + ("；" if zh else "; ").join(parts)


def _model_lines(spec: catalog.ModelSpec, lang: str) -> list[str]:
    """The text block of ``models`` for one model."""
    zh = lang == ZH
    status = spec.status + ("" if spec.verified else ", unverified")
    head = f"{spec.name}  [{status}; {'+'.join(sorted(spec.tasks))}; {'/'.join(spec.endpoints)}]"
    regions = ", ".join(spec.regions) or "-"
    n = f"{spec.n_min}" if spec.n_min == spec.n_max else f"{spec.n_min}-{spec.n_max}"
    if spec.negative_max:
        negative = f"反向提示词 ≤ {spec.negative_max} 字" if zh else f"negative ≤ {spec.negative_max} chars"
    else:
        negative = "不支持反向提示词" if zh else "no negative prompt"
    limits = f"n {n}; " + (f"提示词 ≤ {spec.prompt_max} 字" if zh else f"prompt ≤ {spec.prompt_max} chars")
    limits += f"; {negative}"
    if spec.does(catalog.EDIT):
        limits += (f"; 输入图片 {spec.images_min}-{spec.images_max} 张" if zh
                   else f"; input images {spec.images_min}-{spec.images_max}")
    lines = [head, f"    {'地域' if zh else 'regions'}: {regions}", f"    {_price_text(spec, lang)}",
             f"    {'限制' if zh else 'limits'}: {limits}"]
    for task in sorted(spec.tasks):
        lines.append(f"    {task} {'尺寸' if zh else 'size'}: {_size_text(spec.size_rule(task), task, lang)}")
    partly = sorted(spec.unverified - {"*"})
    if partly:
        lines.append(f"    {'未核实' if zh else 'unverified'}: {', '.join(partly)}")
    if spec.snapshots:
        lines.append(f"    {'快照' if zh else 'snapshots'}: {', '.join(spec.snapshots)}")
    note = spec.note_zh if zh else spec.note_en
    if note:
        lines.append(f"    {note}")
    return lines


def _models(args: argparse.Namespace, lang: str) -> int:
    specs = list(catalog.models().values())
    if args.json:
        print(json.dumps([model_info(s) for s in specs], ensure_ascii=False, indent=1))
        return 0
    for spec in specs:
        print("\n".join(_model_lines(spec, lang)))
    return 0


# --- check: which region is this key for? ----------------------------------------------------
_STATUS_WORDS = {"valid": ("有效", "valid"), "invalid": ("无效", "invalid"),
                 "unreachable": ("无法连接", "unreachable"), "error": ("出错", "error")}


def _region_bases(pairs: list[str] | None) -> dict[str, str] | None:
    """``["beijing=http://...", ...]`` -> ``{"beijing": "http://..."}``; None when not given."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise validation(f"--region-base 应写成 地域=URL（收到“{pair}”）",
                             f"--region-base takes REGION=URL (got '{pair}')", code="Config.RegionBase")
        out[name.strip().lower()] = url.strip()
    return out


def _check_lines(result: KeyCheck, lang: str) -> list[str]:
    """The per-region table of ``check``: status, latency, models offered (or why not valid)."""
    zh = lang == ZH
    lines = []
    for r in result.results:
        word = _STATUS_WORDS.get(r.status, (r.status, r.status))[0 if zh else 1]
        ms = f"{r.latency_ms} ms" if r.latency_ms is not None else "-"
        lines.append(f"{r.region:<12} {word:<12} {ms:>8}  {r.label(lang)}  {r.base_url}")
        if r.valid:
            models = ", ".join(r.models) or ("（目录中无）" if zh else "(none in the catalogue)")
            lines.append(f"    {'可用模型' if zh else 'models'}: {models}")
        else:
            lines.append(f"    {r.detail_zh if zh else r.detail_en}")
    return lines


def _check(args: argparse.Namespace, lang: str) -> int:
    bases = _region_bases(args.region_base)
    with _backend(args) as settings:
        key = check_key(settings.api_key, settings)
        if bases is None and args.offline:
            bases = {"beijing": settings.base_url}  # the offline emulator plays Beijing
        result = keycheck.check_key(key, bases, timeout=args.timeout or keycheck.DEFAULT_TIMEOUT,
                                    retries=keycheck.DEFAULT_RETRIES if args.retries is None else args.retries,
                                    workspace=settings.workspace)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    else:
        print("\n".join(_check_lines(result, lang)))
    if result.region is None:
        if any(r.status == keycheck.INVALID for r in result.results):
            _say(lang, "这个 Key 在能连上的地域中都无效。请从百炼控制台重新复制 Key。",
                 "No region that answered accepts the key. Copy it again from the Bailian console.")
        else:
            _say(lang, "没有地域给出回答，无法判断 Key 是否有效。请检查网络或代理设置后重试。",
                 "No region answered, so the key could not be checked. Check the network or proxy and try again.")
        return ApiError.exit_code
    zh, en = region_names(result.region)
    _say(lang, f"这个 Key 属于{zh}地域。", f"The key belongs to the {en} region.")
    if settings.region_known and settings.region != result.region and not args.offline:
        # --region does not override a base URL that was given, so name the base URL too.
        base = REGIONS[result.region][0] if result.region in REGIONS else ""
        how_zh = f"--region {result.region}" + (f"（或 Base URL {base}）" if base else "")
        how_en = f"--region {result.region}" + (f" (or the base URL {base})" if base else "")
        _say(lang, f"注意：当前设置指向{region_names(settings.region)[0]}地域；请使用 {how_zh}。",
             f"Note: the settings point at {region_names(settings.region)[1]}; use {how_en}.")
    return 0

def _emulator(args: argparse.Namespace, lang: str) -> int:
    from .emulator import Emulator

    emu = Emulator(host=args.host, port=args.port, api_keys=set(args.key) if args.key else None,
                   latency=args.latency)
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


def _download(args: argparse.Namespace) -> int:
    from .service import ImageService

    with _backend(args) as settings:
        print(ImageService(settings).download_url(args.url, args.path))
    return 0


def _resume(args: argparse.Namespace, lang: str) -> int:
    from .service import ImageService

    def show(ev) -> None:  # service.Event
        if ev.error:
            print(ev.error.text(lang), file=sys.stderr)

    with _backend(args) as settings:
        recs = ImageService(settings).resume_pending(on_event=show)
    for r in recs:
        print(r.file)
    return 0


def _dispatch(args: argparse.Namespace, lang: str) -> int:
    """Run the command; errors propagate to :func:`main`."""
    if args.command in ("generate", "edit", "fuse"):
        return _run_images(args, lang)
    if args.command == "download":
        return _download(args)
    if args.command == "history":
        return _history(args, lang)
    if args.command == "resume":
        return _resume(args, lang)
    if args.command == "models":
        return _models(args, lang)
    if args.command == "check":
        return _check(args, lang)
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
