"""The gateway under one endpoint's flood, and its own client to replicas: a deployment
whose queue cannot serve a request in time answers 429 with Retry-After on the request's
headers while its neighbours keep answering; a replica's answer framed by chunks or by
closing the connection comes through whole."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import aiohttp
from modeldeck.services.api.domain import RequestSettings
from modeldeck.services.local.dataplane.gateway import Gateway
from modeldeck.services.local.dataplane.supervisor import Supervisor

from tests.support import dataplane as dp

supervisor = dp.supervisor
gateway = dp.gateway
http = dp.http

ONE_AT_A_TIME = RequestSettings(
    request_timeout_ms=10000, max_concurrent_requests_per_instance=1, max_queue_wait_ms=2000
)


async def _post(
    http: aiohttp.ClientSession, gw: Gateway, endpoint: str, body: dict, done: list[str], label: str
) -> tuple[int, dict, str | None]:
    async with http.post(gw.scoring_uri(endpoint), data=json.dumps(body).encode()) as resp:
        payload = await resp.json(content_type=None)
        done.append(f"{label}:{resp.status}")
        return resp.status, payload, resp.headers.get("Retry-After")


async def _hold_and_queue(
    http: aiohttp.ClientSession, gw: Gateway, endpoint: str, done: list[str]
) -> tuple[asyncio.Future, list[asyncio.Future]]:
    """The deployment's pace learned (1.5 s an answer), its only slot held (6 s), and two
    requests queued (they wait 2 s, then 429): a third could not be served within
    max_queue_wait_ms=2000."""
    assert (await _post(http, gw, endpoint, {"sleep": 1.5}, done, "learn"))[0] == 200
    holding = asyncio.ensure_future(_post(http, gw, endpoint, {"sleep": 6}, done, "holding"))
    await dp.wait_for(lambda: gw.load(endpoint, "busy")[0] == 1, what="the slot taken")
    waiting = []
    for n in (1, 2):
        waiting.append(asyncio.ensure_future(_post(http, gw, endpoint, {}, done, "waiting")))
        await dp.wait_for(lambda n=n: gw.load(endpoint, "busy")[1] == n, what=f"{n} queued")
    return holding, waiting


async def test_a_flooded_endpoint_sheds_with_retry_after_while_its_neighbour_answers(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    for name in ("busy", "calm"):
        replica = await dp.start_replica(
            supervisor, tmp_path, dp.versioned(tmp_path, name), name=f"{name}-0", deployment="busy"
        )
        gateway.set_backends(name, "busy", [replica.address], ONE_AT_A_TIME)
        gateway.set_endpoint(dp.route(name, traffic={"busy": 100}))
    done: list[str] = []
    holding, waiting = await _hold_and_queue(http, gateway, "busy", done)
    # the flood cannot be served in time: 429 at once, with Retry-After
    flood = await asyncio.gather(
        *(_post(http, gateway, "busy", {}, done, "flood") for _ in range(10))
    )
    assert [status for status, _, _ in flood] == [429] * 10
    assert {retry for _, _, retry in flood} == {"2"}
    assert "max_queue_wait_ms=2000" in flood[0][1]["error"]["message"]
    # the neighbour answers meanwhile, while the flooded endpoint's slot is still held
    calm = [await _post(http, gateway, "calm", {}, done, "calm") for _ in range(3)]
    assert [status for status, _, _ in calm] == [200] * 3
    assert (await holding)[0] == 200
    await asyncio.gather(*waiting)
    # the flood was answered before the requests queued ahead of it gave up waiting
    assert done[1:] == ["flood:429"] * 10 + ["calm:200"] * 3 + ["waiting:429"] * 2 + ["holding:200"]
    assert gateway.stats("busy", "busy").codes[429] >= 10
    assert gateway.stats("calm", "busy").codes == {200: 3}


async def test_a_request_to_a_full_queue_is_refused_before_its_body_is_read(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    replica = await dp.start_replica(
        supervisor, tmp_path, dp.versioned(tmp_path, "busy"), name="busy-0", deployment="busy"
    )
    gateway.set_backends("ep", "busy", [replica.address], ONE_AT_A_TIME)
    gateway.set_endpoint(dp.route(traffic={"busy": 100}))
    done: list[str] = []
    holding, waiting = await _hold_and_queue(http, gateway, "ep", done)
    # headers and the start of a body that is never finished: answered all the same
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        b"POST /api/v1/endpoint/ep/score HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n"
        b"Content-Type: application/json\r\n\r\n" + b"[" * 100
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    writer.close()
    assert head.startswith(b"HTTP/1.1 429")
    assert b"Retry-After: 2" in head
    assert not holding.done()
    assert (await holding)[0] == 200
    await asyncio.gather(*waiting)


# --------------------------------------------------------------------------- the client


async def _replica_by_hand(path: str, answer: bytes) -> asyncio.AbstractServer:
    """A scoring server run by hand on a Unix socket that reads one request's head and
    body (by Content-Length) and sends ``answer`` as it is; with ``Connection: close``
    in it, it closes the connection after."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                break
        writer.close()

    return await asyncio.start_unix_server(serve, path)


async def test_answers_framed_by_chunks_or_by_closing_come_through_whole(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-ms-run-fn-exec-ms: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b'7\r\n{"part"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    closing = (
        b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        b"until the end"
    )
    with tempfile.TemporaryDirectory(prefix="md-up-") as tmp:
        servers = [
            await _replica_by_hand(f"{tmp}/chunked.sock", chunked),
            await _replica_by_hand(f"{tmp}/closing.sock", closing),
        ]
        try:
            gateway.set_backends("ep", "chunked", [f"unix:{tmp}/chunked.sock"], ONE_AT_A_TIME)
            gateway.set_backends("ep", "closing", [f"unix:{tmp}/closing.sock"], ONE_AT_A_TIME)
            gateway.set_endpoint(dp.route(traffic={"chunked": 50, "closing": 50}))
            for _ in range(3):  # kept alive, or connected again after the close
                for dep in ("chunked", "closing"):
                    async with http.post(
                        gateway.scoring_uri("ep"),
                        data=b"{}",
                        headers={"azureml-model-deployment": dep},
                    ) as resp:
                        text = await resp.text()
                        if dep == "chunked":
                            assert (resp.status, text) == (200, '{"part": 1}')
                            assert resp.headers["x-ms-run-fn-exec-ms"] == "3"
                            assert resp.headers["Content-Type"] == "application/json"
                        else:
                            assert (resp.status, text) == (201, "until the end")
        finally:
            for server in servers:
                server.close()
