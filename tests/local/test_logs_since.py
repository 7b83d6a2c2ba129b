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


async def test_a_container_on_a_pool_is_read_as_on_kubernetes(workspace, h) -> None:  # type: ignore[no-untyped-def]
    """az ml's ``--container`` (issue 12: was ignored, then refused on a pool): the
    scoring hosts' lines are ``inference-server`` (az ml's default container), what runs
    before them (the environment build's lines) ``storage-initializer``, as the
    Kubernetes driver reads its pods; an unknown one is refused; --lines 0 is none."""
    ws = workspace
    await h.make_endpoint(ws, "cont-ep")
    await h.wait(
        await ws.create_deployment(h.deployment("green", "cont-ep", code="green"), all_traffic=True)
    )
    assert (await ws.invoke("cont-ep", SAMPLE)).status == 200
    server = await ws.get_logs("cont-ep", "green", lines=500, container="inference-server")
    assert any(SCORED in line.text for line in server)
    assert server and all(line.replica.startswith("green-") for line in server)
    # this deployment runs in the host's Python: nothing ran before its scoring hosts
    assert await ws.get_logs("cont-ep", "green", container="storage-initializer") == []
    stream = ws.stream_logs("cont-ep", "green", follow=True, container="inference-server")
    first = await asyncio.wait_for(stream.__anext__(), 30)
    assert first.replica.startswith("green-")
    await stream.aclose()
    with pytest.raises(InvalidInput) as unknown:  # checked before it is sent
        await ws.get_logs("cont-ep", "green", container="sidecar")
    assert "inference-server" in str(unknown.value)
    assert await ws.get_logs("cont-ep", "green", lines=0) == []


def test_the_log_store_keeps_the_last_lines_a_reader_wants(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``keep`` (a pool's --container): the last N of the lines kept, however many other
    lines came after them, across a rotation; followers get only the kept new lines."""
    from modeldeck.services.local.dataplane.logstore import ENVIRONMENT, LogStore

    store = LogStore(tmp_path, max_bytes=4096, backups=3)
    log = store.log("ep", "blue")
    for i in range(5):
        log.write(ENVIRONMENT, "log", f"build step {i}")
    for i in range(120):  # more than a file holds: the build's lines are in a rotated one
        log.write("blue-0", "stdout", f"scoring {i}")
    assert len(log.files()) == 2 and "build step" not in log.files()[-1].read_text()
    build = lambda line: line.replica == ENVIRONMENT  # noqa: E731
    kept = store.read("ep", "blue", 3, keep=build)
    assert [line.text for line in kept] == ["build step 2", "build step 3", "build step 4"]
    assert [line.text for line in store.read("ep", "blue", 2)] == ["scoring 118", "scoring 119"]

    async def followed() -> list[str]:
        stream = store.follow("ep", "blue", 1, keep=build)
        got = [(await stream.__anext__()).text]
        log.write("blue-0", "stdout", "scoring 120")
        log.write(ENVIRONMENT, "log", "build step 5")
        got.append((await asyncio.wait_for(stream.__anext__(), 5)).text)
        await stream.aclose()
        return got

    assert asyncio.run(followed()) == ["build step 4", "build step 5"]
