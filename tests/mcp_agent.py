"""An MCP agent for tests/test_mcp.py, run by the MCP client's own virtualenv (scripts/mcp_env.py
client): the official ``mcp`` SDK over streamable HTTP, as agents connect to ``python app.py --mcp``.

Usage: python tests/mcp_agent.py URL < steps.json > results.json

Each step is ``{"list": true}`` or ``{"tool": NAME, "args": {...}}``, with optional ``"headers"``
(sent with that step's HTTP requests: the key header, a forged X-Forwarded-For) and
``"local_address"`` (the loopback address to connect from, e.g. 127.0.0.3), and ``"progress"``
(ask for progress notifications, which makes Gradio's bridge take another path). Each step is its
own connection, as separate agents would make. Results, one per step: the tools (name, required,
properties) or the call's ``is_error`` and content (``{"type": "image", "mime", "data"}`` with
base64 data, or ``{"type": "text", "text"}``).
"""

import asyncio
import json
import sys

import httpx2
import mcp
from mcp.client.streamable_http import streamable_http_client


async def step(url: str, s: dict) -> dict:
    transport = httpx2.AsyncHTTPTransport(local_address=s["local_address"]) if s.get("local_address") else None
    async with httpx2.AsyncClient(headers=s.get("headers") or {}, timeout=120, transport=transport) as http, \
            streamable_http_client(url, http_client=http) as (read, write), mcp.ClientSession(read, write) as session:
        await session.initialize()
        if s.get("list"):
            tools = (await session.list_tools()).tools
            return {"tools": [{"name": t.name, "description": t.description,
                               "required": t.input_schema.get("required", []),
                               "properties": sorted(t.input_schema.get("properties", {}))} for t in tools]}
        notes: list[str] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            notes.append(message or "")

        res = await session.call_tool(s["tool"], s.get("args") or {},
                                      progress_callback=progress if s.get("progress") else None)
        content = [{"type": "image", "mime": c.mime_type, "data": c.data} if c.type == "image"
                   else {"type": c.type, "text": getattr(c, "text", "")} for c in res.content]
        return {"is_error": bool(res.is_error), "content": content, "progress": notes}


async def main() -> None:
    url, steps = sys.argv[1], json.load(sys.stdin)
    json.dump([await step(url, s) for s in steps], sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
