"""Make (or reuse) the virtualenvs of the MCP test and print their Python interpreters.

Usage: python scripts/mcp_env.py [server] [client]   (both when none is named)

- ``server``: the app with Gradio's ``mcp`` extra (requirements-mcp.txt), which downgrades
  pydantic, so it cannot live beside the app's own environment;
- ``client``: the official ``mcp`` SDK (requirements-mcp-client.txt), a version Gradio's extra
  does not allow beside it.

Each lives under ``~/.cache/aliyun-image-mcp-venv/`` (or ``$ALIYUN_IMAGE_MCP_VENVS``) in a folder
named after a hash of its requirement files and this Python, so a change of requirements makes a
new one and an unchanged one is reused (a no-op of a few milliseconds). A lock keeps parallel test
workers from building the same one twice; a half-built one (an interrupted install) is rebuilt.
Only the package index is reached, with pip.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVS = {"server": "requirements-mcp.txt", "client": "requirements-mcp-client.txt"}
DONE = ".complete"


def cache_root() -> Path:
    """Where the virtualenvs are kept."""
    given = os.environ.get("ALIYUN_IMAGE_MCP_VENVS")
    return Path(given) if given else Path.home() / ".cache" / "aliyun-image-mcp-venv"


def _requirement_text(path: Path) -> str:
    """The file and, inline, the files it includes with ``-r``: the hash covers all of them."""
    out = []
    for line in path.read_text().splitlines():
        m = re.match(r"\s*-r\s+(\S+)", line)
        out.append(_requirement_text(path.parent / m.group(1)) if m else line)
    return "\n".join(out)


def venv_dir(name: str) -> Path:
    """The folder of virtualenv ``name`` for the current requirements and this Python."""
    text = _requirement_text(ROOT / ENVS[name]) + "\n" + sys.version
    return cache_root() / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def python_of(folder: Path) -> Path:
    return folder / "bin" / "python"


def ensure(name: str) -> Path:
    """The interpreter of virtualenv ``name``, built first if needed."""
    folder = venv_dir(name)
    if (folder / DONE).is_file():
        return python_of(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it: wait, then reuse
        if not (folder / DONE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
            subprocess.run([str(python_of(folder)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-r", str(ROOT / ENVS[name])], check=True, stdout=sys.stderr)
            (folder / DONE).write_text("")
    return python_of(folder)


def main(argv: list[str]) -> int:
    names = argv or list(ENVS)
    unknown = [n for n in names if n not in ENVS]
    if unknown:
        print(f"unknown environment {unknown}; choose from {list(ENVS)}", file=sys.stderr)
        return 2
    for name in names:
        print(ensure(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
