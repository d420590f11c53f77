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

from .. import catalog
from . import spend as cli_spend
from .. import i18n
from ..errors import AliyunImageError, scrub
from ..i18n import t

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

    Keys never travel as component values (see :mod:`aliyun_image.ui.run_handlers`), but Gradio prints
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


def parse_args(argv: list[str] | None = None, lang: str | None = None) -> argparse.Namespace:
    """Command-line flags (help in ``lang``, default the locale's); each has an environment variable
    for hosting platforms."""
    lang = lang or i18n.from_locale()

    def h(key: str) -> str:
        return t(lang, "cli.help." + key)

    p = argparse.ArgumentParser(description=h("app_description"))
    p.add_argument("--host", help=h("app_host"))
    p.add_argument("--port", type=int, help=h("app_port"))
    p.add_argument("--share", action="store_true", help=h("app_share"))
    p.add_argument("--offline", action="store_true", help=h("app_offline"))
    p.add_argument("--region", help=h("region"))
    p.add_argument("--base-url", help=h("app_base_url"))
    p.add_argument("--data-dir", help=h("app_data_dir"))
    p.add_argument("--hosted", action="store_true", default=bool(os.environ.get("SPACE_ID")), help=h("app_hosted"))
    p.add_argument("--concurrency", type=int, default=_env_int("ALIYUN_IMAGE_CONCURRENCY", 64),
                   help=h("app_concurrency"))
    p.add_argument("--session-limit", type=int, default=_env_int("ALIYUN_IMAGE_SESSION_LIMIT", 10),
                   help=h("app_session_limit"))
    p.add_argument("--total-limit", type=int, default=_env_int("ALIYUN_IMAGE_TOTAL_LIMIT", 100),
                   help=h("app_total_limit"))
    p.add_argument("--demo-session-limit", type=int, default=_env_int("ALIYUN_IMAGE_DEMO_SESSION_LIMIT", 20),
                   help=h("app_demo_session_limit"))
    p.add_argument("--demo-total-limit", type=int, default=_env_int("ALIYUN_IMAGE_DEMO_TOTAL_LIMIT", 200),
                   help=h("app_demo_total_limit"))
    p.add_argument("--max-upload-mb", type=float, default=_env_float("ALIYUN_IMAGE_MAX_UPLOAD_MB", -1),
                   help=h("app_max_upload_mb"))
    p.add_argument("--disk-budget-mb", type=float, default=_env_float("ALIYUN_IMAGE_DISK_BUDGET_MB", 2048),
                   help=h("app_disk_budget_mb"))
    p.add_argument("--max-sessions", type=int, default=_env_int("ALIYUN_IMAGE_MAX_SESSIONS", 1000),
                   help=h("app_max_sessions"))
    p.add_argument("--retry-interval", type=float, default=_env_float("ALIYUN_IMAGE_RETRY_INTERVAL", 120),
                   help=h("app_retry_interval"))
    p.add_argument("--mcp", action="store_true", help=h("app_mcp"))
    cli_spend.budget_args(p, lang)  # hosted: the budgets cap the host key's bill, not visitors' own keys
    cli_spend.hosted_budget_args(p, lang)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build and launch the app; returns an exit code."""
    lang = i18n.from_locale()  # the person at the terminal: the locale (the page follows each browser)
    args = parse_args(argv, lang)
    redact_output()
    try:
        # Before the UI is imported: its model picker reads the catalogue, and a broken user file
        # (ALIYUN_IMAGE_MODELS) must get its message, not a traceback.
        catalog.models()
    except AliyunImageError as exc:
        print(exc.text(lang), file=sys.stderr)
        return exc.exit_code
    from ..ui import AppContext, AppOptions, build_demo, launch_kwargs

    upload_mb = args.max_upload_mb if args.max_upload_mb >= 0 else (20.0 if args.hosted else 0.0)
    opts = AppOptions(hosted=args.hosted, offline=args.offline, region=args.region, base_url=args.base_url,
                      data_dir=args.data_dir, concurrency=max(1, args.concurrency),
                      session_limit=args.session_limit, total_limit=args.total_limit,
                      demo_session_limit=args.demo_session_limit, demo_total_limit=args.demo_total_limit,
                      max_upload_mb=upload_mb, disk_budget_mb=args.disk_budget_mb,
                      max_sessions=args.max_sessions, retry_interval=args.retry_interval,
                      settings_overrides={k: v for k, v in cli_spend.overrides(args).items() if v is not None})
    # Hosted results may live outside the working dir (a Space's /data): Gradio copies them into its
    # cache from there, and its file route is closed to that folder (ui.layout.launch_kwargs, HttpGuard).
    try:
        ctx = AppContext.start(opts)
    except AliyunImageError as exc:
        print(exc.text(lang), file=sys.stderr)
        return exc.exit_code
    mcp = args.mcp
    if mcp and importlib.util.find_spec("mcp") is None:
        print(t(lang, "cli.app.mcp_missing"), file=sys.stderr)
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
        if mcp and getattr(demo, "mcp_error", None):  # Gradio says it only when not quiet
            print(t(lang, "cli.app_mcp.failed", error=str(demo.mcp_error).removeprefix("Error launching MCP server: ")),
                  file=sys.stderr)
        lines = startup_lines(ctx, str(demo.local_url), demo.share_url, lang)
        print("\n".join(lines), flush=True)
        demo.block_thread()
    finally:
        ctx.close()
    return 0


def startup_lines(ctx, url: str, share_url: str | None, lang: str) -> list[str]:  # ctx: ui.AppContext
    """What ``python app.py`` prints once it listens: the mode, the results folder, the URL."""
    s = ctx.settings
    region = s.region_label(lang)
    if ctx.opts.offline or not ctx.host_key:
        mode = t(lang, "cli.app.mode_offline")
        if not ctx.opts.offline:
            mode = t(lang, "cli.app.mode_page_key", mode=mode, region=region)
    else:
        mode = t(lang, "cli.app.mode_live", region=region)
    if ctx.opts.hosted:
        mode = t(lang, "cli.app.mode_hosted", mode=mode)
    lines = [t(lang, "cli.app.mode", mode=mode),
             t(lang, "cli.app.results_folder", path=Path(s.data_dir).resolve()),
             t(lang, "cli.app.open_browser", url=url)]
    if share_url:
        lines.append(t(lang, "cli.app.public_link", url=share_url))
    elif not ctx.opts.hosted:
        lines.append(t(lang, "cli.app.share_hint"))
    return lines


if __name__ == "__main__":
    sys.exit(main())
