"""aliyun-image web app: ``python app.py`` (see ``--help``).

With ``DASHSCOPE_API_KEY`` set it calls the real API; without, it starts in offline demo mode on
the built-in emulator. ``--hosted`` (automatic when ``SPACE_ID`` is set, as on a Hugging Face
Space) turns on the shared-demo safeguards: per-session keys and galleries, host-key limits.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Zero outbound traffic except to DashScope: set before Gradio (and huggingface_hub) are imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


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
    p.add_argument("--mcp", action="store_true", help="also serve generate/edit/fuse as MCP tools (needs gradio[mcp])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build and launch the app; returns an exit code."""
    args = parse_args(argv)
    from aliyun_image.errors import AliyunImageError
    from aliyun_image.ui import AppContext, AppOptions, build_demo, launch_kwargs

    opts = AppOptions(hosted=args.hosted, offline=args.offline, region=args.region, base_url=args.base_url,
                      data_dir=args.data_dir, concurrency=max(1, args.concurrency),
                      session_limit=args.session_limit, total_limit=args.total_limit)
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
    if mcp:
        try:
            import mcp as _mcp  # noqa: F401
        except ImportError:
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
        demo.launch(share=args.share, mcp_server=mcp, **kwargs)
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
