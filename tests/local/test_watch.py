"""``GET /v1/watch``: a long poll the control plane answers at the next recorded change
(what a dashboard awaits instead of polling: bench/propagation.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from modeldeck.services.api.domain import EndpointSpec


async def test_watch_answers_at_the_next_change_and_waits_while_nothing_changes(
    workspace: Any, h: Any
) -> None:
    await h.ensure_cluster(workspace)
    now = await workspace.watch(None)  # no revision given: at once
    started = time.monotonic()
    assert await workspace.watch(now, timeout=0.3) == now  # nothing changed: after the wait
    assert time.monotonic() - started >= 0.25

    waiting = asyncio.create_task(workspace.watch(now, timeout=20))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await h.wait(await workspace.create_endpoint(EndpointSpec(name="ep-watch", compute="myaks")))
    created = time.monotonic()
    revision = await asyncio.wait_for(waiting, 5)
    assert int(revision) > int(now)
    assert time.monotonic() - created < 1.0  # answered at the change, not at the timeout
