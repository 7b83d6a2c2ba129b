"""The rollout scenario of issue 14's acceptance, shared by tests/local/test_rollout_acceptance.py
and bench/rollout_analysis.py: an endpoint whose control (``blue``) always answers and whose
treatment (``green``) fails 3 requests in 10 once a flag file exists (tests/support/flaky), on
a real daemon's pool; a bounded wait on the rollout's record; a webhook receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from modeldeck.services.api.domain import Endpoint, EndpointKeys
from modeldeck.services.api.rollouts import Rollout, RolloutSpec
from modeldeck.services.api.workspace import Workspace
from modeldeck.services.local.client import LocalWorkspace

from tests.local.conftest import deployment, make_endpoint, wait

FLAKY = Path(__file__).resolve().parent / "flaky"
#: the deployment variable naming the flag file (tests/support/flaky/score.py)
FLAG_VAR = "MODELDECK_TEST_FAIL_FLAG"
CONTROL, TREATMENT = "blue", "green"
STEPS = (10, 25, 50, 100)
MIN_REQUESTS = 10  # the load (40-50 requests a second) brings that many at 10% in 2-3 s


def acceptance_spec(endpoint: str, interval_s: float) -> RolloutSpec:
    """green over blue in :data:`STEPS`. The p95 check is loosened (5 x): two replicas of one
    script on a shared 2-core host differ in p95 by chance, and the acceptance is about the
    error rate and the state machine."""
    return RolloutSpec(
        endpoint=endpoint,
        to=TREATMENT,
        from_=CONTROL,
        steps=STEPS,
        interval_s=interval_s,
        min_requests=MIN_REQUESTS,
        max_p95_ratio=5.0,
    )


async def flaky_pair(
    ws: LocalWorkspace, endpoint: str, flag: Path
) -> tuple[Endpoint, EndpointKeys]:
    """``endpoint`` (on the cluster myaks, made if missing): blue with all the traffic, green
    with none and the flag file ``flag``; one replica each, at most 4 requests in flight on
    it (the load sends at most 3: never a 429)."""
    await make_endpoint(ws, endpoint)
    code = str(FLAKY)
    blue = deployment(CONTROL, endpoint, code=code)
    green = deployment(TREATMENT, endpoint, code=code, environment_variables={FLAG_VAR: str(flag)})
    await wait(await ws.create_deployment(blue, all_traffic=True))
    await wait(await ws.create_deployment(green))
    return await ws.get_endpoint(endpoint), await ws.get_keys(endpoint)


async def rollout_until(
    ws: Workspace,
    endpoint: str,
    predicate: Callable[[Rollout], bool],
    timeout: float = 90.0,
    what: str = "",
) -> Rollout:
    """The endpoint's rollout once ``predicate`` holds (polled every 20 ms; the bound only
    guards against a hang)."""
    deadline = time.monotonic() + timeout
    rollout = None
    while True:
        rollout = await ws.get_rollout(endpoint)
        if rollout is not None and predicate(rollout):
            return rollout
        if time.monotonic() > deadline:
            raise AssertionError(f"rollout not {what or predicate} within {timeout:g} s: {rollout}")
        await asyncio.sleep(0.02)


def finished(rollout: Rollout) -> bool:
    return not rollout.state.active


@contextlib.asynccontextmanager
async def webhook_receiver(
    path: str = "hooks/secret-token", answer: dict | None = None
) -> AsyncIterator[tuple[str, list]]:
    """A webhook receiver on loopback (a real HTTP server) whose path holds a secret, as
    Slack's do: its URL and the JSON bodies posted to it, in the order received. ``answer``
    (read at each post, so a test may change it) sets the reply: ``status`` (204) and
    ``delay`` in seconds (0). A body that is not ``application/json`` is refused (415)."""
    from aiohttp import web

    posts: list[dict] = []
    answer = answer if answer is not None else {}

    async def receive(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.Response(status=415, text=f"not JSON: {request.content_type}")
        posts.append(await request.json())
        await asyncio.sleep(float(answer.get("delay", 0.0)))
        return web.Response(status=int(answer.get("status", 204)))

    app = web.Application()
    app.router.add_post(f"/{path}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/{path}", posts
    finally:
        await runner.cleanup()
