"""``get_logs`` / ``stream_logs`` with ``since``: a pool deployment's lines from a moment on,
through the real daemon (the Workspace API, its HTTP query, the engine, the pool's log)."""

from __future__ import annotations

import asyncio

import pytest
from modeldeck.services.api.errors import InvalidInput

pytestmark = pytest.mark.e2e

SAMPLE = b'{"data": [[1, 2, 3, 4]]}'
SCORED = "green: scoring"


async def test_since_keeps_only_the_lines_written_from_then_on(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.make_endpoint(ws, "since-ep")
    await h.wait(
        await ws.create_deployment(
            h.deployment("green", "since-ep", code="green"), all_traffic=True
        )
    )
    assert (await ws.invoke("since-ep", SAMPLE)).status == 200  # a line before the moment
    before = await ws.get_logs("since-ep", "green", lines=500)
    assert any(SCORED in line.text for line in before)
    # the moment: just after every line written so far (line times have microseconds)
    moment = max(line.ts for line in before) + 1e-5

    assert (await ws.invoke("since-ep", SAMPLE)).status == 200  # a line after it
    after = await ws.get_logs("since-ep", "green", lines=500, since=moment)
    # the second request's line, not the first one's
    assert sum(SCORED in line.text for line in after) == 1
    assert all(line.ts >= moment for line in after)
    everything = await ws.get_logs("since-ep", "green", lines=500)
    assert sum(SCORED in line.text for line in everything) == 2  # without since: both

    # --lines still bounds it: the last line since the moment
    last = await ws.get_logs("since-ep", "green", lines=1, since=moment)
    assert last == after[-1:]

    # following from the moment: the old lines are not replayed, new ones come
    stream = ws.stream_logs("since-ep", "green", lines=500, follow=True, since=moment)
    seen = []

    async def read_two_scored() -> None:
        async for line in stream:
            seen.append(line)
            if sum(SCORED in x.text for x in seen) == 2:
                return

    reader = asyncio.ensure_future(read_two_scored())
    await asyncio.sleep(0.2)
    assert (await ws.invoke("since-ep", SAMPLE)).status == 200  # a third line, followed
    await asyncio.wait_for(reader, 30)
    await stream.aclose()
    assert seen and all(line.ts >= moment for line in seen)
    assert sum(SCORED in line.text for line in seen) == 2  # the 2nd and 3rd, not the 1st

    # a moment that is not a number is refused by name, on the wire too
    with pytest.raises(InvalidInput) as bad:
        await ws.get_logs("since-ep", "green", since=float("nan"))
    assert bad.value.field == "since"
    with pytest.raises(InvalidInput) as negative:
        await ws.get_logs("since-ep", "green", since=-1.0)
    assert negative.value.field == "since"


async def test_a_container_the_pool_does_not_have_is_refused_not_ignored(workspace, h) -> None:  # type: ignore[no-untyped-def]
    """az ml's ``--container``: a pool keeps one log per deployment and has no storage
    initializer; asking for a container says so (through the wire), and --lines 0 is none."""
    ws = workspace
    await h.make_endpoint(ws, "cont-ep")
    await h.wait(
        await ws.create_deployment(h.deployment("green", "cont-ep", code="green"), all_traffic=True)
    )
    for container in ("storage-initializer", "inference-server"):
        with pytest.raises(InvalidInput) as refused:
            await ws.get_logs("cont-ep", "green", container=container)
        assert refused.value.field == "container" and container in str(refused.value)
        assert "local pool" in str(refused.value)
        stream = ws.stream_logs("cont-ep", "green", follow=True, container=container)
        with pytest.raises(InvalidInput):
            await stream.__anext__()
    with pytest.raises(InvalidInput) as unknown:  # checked before it is sent
        await ws.get_logs("cont-ep", "green", container="sidecar")
    assert "inference-server" in str(unknown.value)
    assert await ws.get_logs("cont-ep", "green", lines=0) == []
