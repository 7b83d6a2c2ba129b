"""A webhook receiver on loopback, as a rollout's notifications reach one (Slack's, Teams'
incoming webhooks: a POST of JSON to a URL whose path is the secret): the rollout tests of
the CLI and the control plane listen with it.

    async with receiver("/T000/B000/secret") as hook:
        ...  # --webhook hook.url
    assert hook.posts[-1]["event"] == "promoted"
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Receiver:
    url: str
    #: the JSON bodies posted, in the order they came
    posts: list[dict[str, Any]] = field(default_factory=list)
    #: what each POST came with: (path, Content-Type)
    requests: list[tuple[str, str]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def receiver(path: str, status: int = 204) -> AsyncIterator[Receiver]:
    """Listen on 127.0.0.1 (a free port) for POSTs; answer ``status``; the URL ends with
    ``path``."""
    from aiohttp import web

    hook = Receiver("")

    async def receive(request: web.Request) -> web.Response:
        hook.requests.append((request.path, request.headers.get("Content-Type", "")))
        hook.posts.append(json.loads(await request.read()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield hook
    finally:
        await runner.cleanup()
