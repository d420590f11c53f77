"""The web app's launcher: ``aliyun-image-app`` or ``python app.py`` (see ``--help``).

With ``DASHSCOPE_API_KEY`` set it calls the real API; without, it starts in offline demo mode on
the built-in emulator. ``--hosted`` (automatic when ``SPACE_ID`` is set, as on a Hugging Face
Space) turns on the shared-demo safeguards: per-session keys and galleries, host-key limits.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from . import catalog, cli_spend
from .cli import detect_lang
from .errors import AliyunImageError, scrub

# Zero outbound traffic except to DashScope: set before Gradio (and huggingface_hub) are imported,
# which is why this module lives outside ``ui`` and imports it only inside :func:`main`.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class _Redacting:
    """A text stream that scrubs anything shaped like an API key before it reaches the log.

    Keys never travel as component values (see :mod:`aliyun_image.ui.handlers`), but Gradio prints
    the inputs of a malformed queue call and tracebacks verbatim: this is the last line of
    defence against a client that puts a key somewhere it does not belong.
    """

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text) if "sk-" in text else text)
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def redact_output() -> None:
    """Route stdout and stderr through :class:`_Redacting` (idempotent)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _Redacting):
            setattr(sys, name, _Redacting(stream))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; each has an environment variable for hosting platforms."""
    p = argparse.ArgumentParser(description="aliyun-image: Qwen-Image studio (Gradio)")
    p.add_argument("--host", help="interface to listen on (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--share", action="store_true", help="create a public Gradio share link")
    p.add_argument("--offline", action="store_true", help="always use the built-in emulator (no real API calls)")
    p.add_argument("--region", help="beijing (default), singapore or us")
    p.add_argument("--base-url", help="explicit DashScope base URL (overrides --region)")
    p.add_argument("--data-dir", help="results folder (default ./outputs or ALIYUN_IMAGE_DATA_DIR)")
    p.add_argument("--hosted", action="store_true", default=bool(os.environ.get("SPACE_ID")),
                   help="shared-demo mode (on automatically when SPACE_ID is set)")
    p.add_argument("--concurrency", type=int, default=_env_int("ALIYUN_IMAGE_CONCURRENCY", 64),
                   help="calls served at once (they wait on the network, not the CPU: a real generation "
                        "takes 10-60 s, so a shared demo needs many slots)")
    p.add_argument("--session-limit", type=int, default=_env_int("ALIYUN_IMAGE_SESSION_LIMIT", 10),
                   help="hosted: host-key images per visitor per hour (0 = unlimited)")
    p.add_argument("--total-limit", type=int, default=_env_int("ALIYUN_IMAGE_TOTAL_LIMIT", 100),
                   help="hosted: host-key images per hour for everyone (0 = unlimited)")
    p.add_argument("--demo-session-limit", type=int, default=_env_int("ALIYUN_IMAGE_DEMO_SESSION_LIMIT", 20),
                   help="hosted: offline-demo images per visitor per hour (0 = unlimited)")
    p.add_argument("--demo-total-limit", type=int, default=_env_int("ALIYUN_IMAGE_DEMO_TOTAL_LIMIT", 200),
                   help="hosted: offline-demo images per hour for everyone (0 = unlimited)")
    p.add_argument("--max-upload-mb", type=float, default=_env_float("ALIYUN_IMAGE_MAX_UPLOAD_MB", -1),
                   help="largest upload accepted, in MB (default 20 when hosted, none locally; 0 = none)")
    p.add_argument("--disk-budget-mb", type=float, default=_env_float("ALIYUN_IMAGE_DISK_BUDGET_MB", 2048),
                   help="hosted: results kept on disk, in MB; the oldest are deleted beyond it (0 = no limit)")
    p.add_argument("--max-sessions", type=int, default=_env_int("ALIYUN_IMAGE_MAX_SESSIONS", 1000),
                   help="hosted: browser sessions whose state is kept (15-75 KiB each); the least "
                        "recently used are dropped beyond it")
    p.add_argument("--retry-interval", type=float, default=_env_float("ALIYUN_IMAGE_RETRY_INTERVAL", 120),
                   help="seconds between retries of paid results not yet saved (full disk, network)")
    p.add_argument("--mcp", action="store_true", help="also serve generate/edit/fuse as MCP tools (needs gradio[mcp])")
    cli_spend.budget_args(p)  # hosted: the budgets cap the host key's bill, not visitors' own keys
    cli_spend.hosted_budget_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build and launch the app; returns an exit code."""
    args = parse_args(argv)
    redact_output()
    try:
        # Before the UI is imported: its model picker reads the catalogue, and a broken user file
        # (ALIYUN_IMAGE_MODELS) must get its message, not a traceback.
        catalog.models()
    except AliyunImageError as exc:
        print(exc.both(), file=sys.stderr)
        return exc.exit_code
    from .ui import AppContext, AppOptions, build_demo, launch_kwargs

    upload_mb = args.max_upload_mb if args.max_upload_mb >= 0 else (20.0 if args.hosted else 0.0)
    opts = AppOptions(hosted=args.hosted, offline=args.offline, region=args.region, base_url=args.base_url,
                      data_dir=args.data_dir, concurrency=max(1, args.concurrency),
                      session_limit=args.session_limit, total_limit=args.total_limit,
                      demo_session_limit=args.demo_session_limit, demo_total_limit=args.demo_total_limit,
                      max_upload_mb=upload_mb, disk_budget_mb=args.disk_budget_mb,
                      max_sessions=args.max_sessions, retry_interval=args.retry_interval,
                      settings_overrides={k: v for k, v in cli_spend.overrides(args).items() if v is not None})
    if opts.hosted:
        data = Path(args.data_dir or os.environ.get("ALIYUN_IMAGE_DATA_DIR") or "outputs").resolve()
        if not data.is_relative_to(Path.cwd().resolve()):
            # Outside the working dir Gradio could only return results via allowed_paths, which would
            # serve every visitor's files to anyone who guesses a path.
            print(f"Hosted mode needs the results folder inside the working directory (got {data}).",
                  file=sys.stderr)
            return 2
    try:
        ctx = AppContext.start(opts)
    except AliyunImageError as exc:
        print(exc.both(), file=sys.stderr)
        return exc.exit_code
    mcp = args.mcp
    if mcp and importlib.util.find_spec("mcp") is None:
        print('--mcp needs the MCP extra: pip install "gradio[mcp]"; starting without it.', file=sys.stderr)
        mcp = False
    # The run events carry concurrency_limit themselves (shared id "runs"): no demo.queue() call,
    # which would make Gradio rebuild its app once more at start-up.
    demo = build_demo(ctx)
    kwargs = launch_kwargs(ctx)
    if args.host:
        kwargs["server_name"] = args.host
    if args.port:
        kwargs["server_port"] = args.port
    try:
        # quiet: Gradio's own lines ("set `share=True` in `launch()`") do not apply to this app;
        # it says itself what runs where, and names its own --share flag.
        demo.launch(share=args.share, mcp_server=mcp, quiet=True, prevent_thread_lock=True, **kwargs)
        lines = startup_lines(ctx, str(demo.local_url), demo.share_url, detect_lang(None))
        print("\n".join(lines), flush=True)
        demo.block_thread()
    finally:
        ctx.close()
    return 0


def startup_lines(ctx, url: str, share_url: str | None, lang: str) -> list[str]:  # ctx: ui.AppContext
    """What ``python app.py`` prints once it listens: the mode, the results folder, the URL."""
    zh = lang == "zh"
    s = ctx.settings
    region = s.region_label(lang)
    if ctx.opts.offline or not ctx.host_key:
        mode = ("离线演示（内置模拟器生成替代图片；设置 DASHSCOPE_API_KEY 后使用真实模型）" if zh
                else "offline demo (stand-in images from the built-in emulator; set DASHSCOPE_API_KEY for the "
                     "real models)")
        if not ctx.opts.offline:
            mode += "；页面中填写的 Key 调用 " + region if zh else f"; a key typed in the page calls {region}"
    else:
        mode = f"真实调用，地域 {region}" if zh else f"live, region {region}"
    if ctx.opts.hosted:
        mode = ("共享演示（hosted）：" if zh else "hosted (shared demo): ") + mode
    lines = [("模式：" if zh else "Mode: ") + mode,
             ("结果保存在：" if zh else "Results folder: ") + str(Path(s.data_dir).resolve()),
             ("在浏览器中打开：" if zh else "Open in a browser: ") + url]
    if share_url:
        lines.append(("公开链接：" if zh else "Public link: ") + share_url)
    elif not ctx.opts.hosted:
        lines.append("如需公开链接，请加 --share 重新启动。" if zh else "For a public link, restart with --share.")
    return lines


if __name__ == "__main__":
    sys.exit(main())
