"""`python app.py --mcp`: the three public endpoints as MCP tools (needs the gradio[mcp] extra).

Skipped where `mcp` is not installed (the extra downgrades pydantic, so the default test
environment does not carry it). Run it with: pip install "gradio[mcp]" && bash scripts/test.sh -k mcp
"""

import asyncio

import pytest

from .appserver import launch

pytestmark = pytest.mark.slow  # launches the app in a subprocess

mcp = pytest.importorskip("mcp")
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402 - only when mcp is installed


def test_mcp_tools_generate(tmp_path):
    app = launch(["--offline", "--mcp"], tmp_path / "data")
    try:
        async def go():
            async with streamablehttp_client(f"{app.url}gradio_api/mcp/") as (r, w, _), \
                    mcp.ClientSession(r, w) as s:
                await s.initialize()
                names = sorted(t.name for t in (await s.list_tools()).tools)
                res = await s.call_tool("generate", {"prompt": "一只橘猫", "n": 2, "seed": 7,
                                                     "size": "1328*1328"})
                return names, res
        names, res = asyncio.run(go())
    finally:
        app.stop()
    assert names == ["edit", "fuse", "generate"]
    text = " ".join(getattr(c, "text", "") for c in res.content)
    assert text.count(".png") >= 2 and "Seed 7, 8" in text
