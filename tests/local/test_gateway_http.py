"""The gateway's own HTTP/1.1 server (dataplane/server.py), on the wire, against a real
gateway and a real replica: malformed requests, pipelining, chunked bodies, HTTP/1.0."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from modeldeck.services.api.domain import RequestSettings
from modeldeck.services.local.connguard import MAX_FIELD_SIZE, MAX_LINE_SIZE
from modeldeck.services.local.dataplane.gateway import Gateway
from modeldeck.services.local.dataplane.supervisor import Supervisor

from tests.support import dataplane as dp

supervisor = dp.supervisor
gateway = dp.gateway

FAST = RequestSettings(
    request_timeout_ms=10000, max_concurrent_requests_per_instance=8, max_queue_wait_ms=5000
)
#: answers with the length and the ends of the body it was given, and sleeps on request
ECHO = """
import json, time
def init():
    pass
def run(raw_data):
    data = json.loads(raw_data)
    time.sleep(float(data.get("sleep", 0)))
    return {"n": len(raw_data), "head": raw_data[:12], "tail": raw_data[-12:]}
"""
PATH = "/api/v1/endpoint/ep/score"


async def _serve_echo(gw: Gateway, tmp_path: Path, sup: Supervisor) -> None:
    code = dp.write_code(tmp_path, "echo", ECHO)
    replica = await dp.start_replica(sup, tmp_path, code, name="echo-0", deployment="echo")
    gw.set_backends("ep", "echo", [replica.address], FAST)
    gw.set_endpoint(dp.route(traffic={"echo": 100}))


def _post(body: bytes, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return (
        f"POST {PATH} {version}\r\nHost: gw\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One answer: its status line, headers (lower-case names) and body."""
    status = (await asyncio.wait_for(reader.readline(), 30)).rstrip()
    headers: dict[str, str] = {}
    while (line := await asyncio.wait_for(reader.readline(), 30)) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def test_a_malformed_request_is_answered_400_and_its_connection_closed(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway
) -> None:
    await _serve_echo(gateway, tmp_path, supervisor)
    bad = [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: gw\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : gw\r\n\r\n",  # space before the colon
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /" + b"a" * MAX_LINE_SIZE + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Big: " + b"a" * MAX_FIELD_SIZE + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
        _post(b"{}").replace(b"Content-Length: 2", b"Content-Length: two"),
        _post(b"{}", "Content-Length: 3\r\n"),  # two lengths that disagree
    ]
    for request in bad:
        reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
        writer.write(request + _post(b"{}"))  # what follows the bad one is not read
        status, headers, body = await _answer(reader)
        assert status == b"HTTP/1.1 400 Bad Request", request[:60]
        assert headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "BadRequest"
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed, nothing more
        writer.close()
    assert gateway.connections.totals["malformed"] == len(bad)


async def test_pipelined_requests_are_answered_in_order(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway
) -> None:
    await _serve_echo(gateway, tmp_path, supervisor)
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    # the first takes longest: its answer still comes first
    first, second = b'{"sleep": 0.3, "i": 1}', b'{"i": 2}'
    writer.write(
        _post(first, "x-request-id: one\r\n")
        + _post(second, "x-request-id: two\r\n")
        + b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n"
    )
    answers = [await _answer(reader) for _ in range(3)]
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert [a[1].get("x-request-id") for a in answers[:2]] == ["one", "two"]
    assert json.loads(answers[0][2])["head"] == first.decode()[:12]
    assert json.loads(answers[1][2])["n"] == len(second)
    assert answers[2][2] == b"Healthy"
    # a client that sends thousands before reading any: answered in order once it reads
    # (meanwhile the gateway stops reading it when its answers back up)
    many = 3000
    writer.write(b"".join(b"GET /?n=%d HTTP/1.1\r\nHost: gw\r\n\r\n" % i for i in range(many)))
    await asyncio.sleep(0.5)
    health = [await _answer(reader) for _ in range(many)]
    assert {(status, body) for status, _, body in health} == {(b"HTTP/1.1 200 OK", b"Healthy")}
    writer.write(_post(b'{"i": 3}'))
    assert json.loads((await _answer(reader))[2])["n"] == len(b'{"i": 3}')
    writer.close()


async def test_a_chunked_body_is_forwarded_whole(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway
) -> None:
    await _serve_echo(gateway, tmp_path, supervisor)
    body = json.dumps({"pad": "x" * 100_000, "end": "the end"}).encode()
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\n\r\n".encode()
    )
    for i in range(0, len(body), 3000):  # in pieces that straddle the chunk boundaries
        piece = body[i : i + 3000]
        chunk = b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
        writer.write(chunk[:1000])
        await writer.drain()
        writer.write(chunk[1000:])
    writer.write(b"0\r\nX-Trailer: yes\r\n\r\n")
    status, _, answer = await _answer(reader)
    assert status == b"HTTP/1.1 200 OK"
    echoed = json.loads(answer)
    assert echoed["n"] == len(body)
    assert echoed["tail"] == body.decode()[-12:]
    writer.write(_post(b"{}"))  # the connection is still good for the next request
    assert (await _answer(reader))[0] == b"HTTP/1.1 200 OK"
    writer.close()


async def test_http_1_0_closes_unless_kept_alive(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway
) -> None:
    await _serve_echo(gateway, tmp_path, supervisor)
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(_post(b"{}", version="HTTP/1.0"))
    status, headers, _ = await _answer(reader)
    assert status == b"HTTP/1.0 200 OK"
    assert headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 30) == b""
    writer.close()

    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    for _ in range(2):
        writer.write(_post(b"{}", "Connection: keep-alive\r\n", version="HTTP/1.0"))
        status, headers, _ = await _answer(reader)
        assert status == b"HTTP/1.0 200 OK"
        assert headers["connection"] == "keep-alive"
    writer.write(b"HEAD / HTTP/1.1\r\nHost: gw\r\n\r\n")  # HEAD: GET's headers, no body
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 7\r\n" in head
    writer.write(b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert (await _answer(reader))[2] == b"Healthy"  # (no body came after HEAD's head)
    writer.close()


async def test_requests_on_kept_alive_replica_connections_time_out_and_late_answers_go_nowhere(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway
) -> None:
    """Requests sent on the replica's kept-alive connections (answered by callback, one
    timer per deployment) each get their 504 at request_timeout_ms; the late answers do
    not reach the requests sent after them."""
    await _serve_echo(gateway, tmp_path, supervisor)
    quick = RequestSettings(
        request_timeout_ms=400, max_concurrent_requests_per_instance=8, max_queue_wait_ms=5000
    )
    gateway.set_backends("ep", "echo", gateway.backend_urls("ep", "echo"), quick)
    clients = [await asyncio.open_connection(gateway.host, gateway.port) for _ in range(4)]

    async def score(i: int, body: bytes) -> tuple[bytes, dict[str, str], bytes]:
        reader, writer = clients[i]
        writer.write(_post(body, f"x-request-id: r{i}\r\n"))
        return await _answer(reader)

    warm = await asyncio.gather(*(score(i, b"{}") for i in range(4)))  # 4 kept-alive upstream
    assert [a[0] for a in warm] == [b"HTTP/1.1 200 OK"] * 4
    slow = await asyncio.gather(*(score(i, b'{"sleep": 1.5, "pad": %d}' % i) for i in range(3)))
    for status, headers, body in slow:
        assert status == b"HTTP/1.1 504 Gateway Timeout"
        assert "request_timeout_ms=400" in json.loads(body)["error"]["message"]
        assert headers["azureml-model-deployment"] == "echo"
    after = await asyncio.gather(*(score(i, b'{"i": %d}' % i) for i in range(4)))
    for i, (status, headers, body) in enumerate(after):
        assert status == b"HTTP/1.1 200 OK"
        assert headers["x-request-id"] == f"r{i}"
        assert json.loads(body)["head"] == f'{{"i": {i}}}'[:12]  # its own answer
    for _, writer in clients:
        writer.close()


async def test_pipelined_requests_to_a_one_slot_replica_each_find_it_free(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway
) -> None:
    """A replica that takes one request at a time, no queue: requests pipelined on one
    connection are each started when the one before is answered, and find its slot and
    connection free (the relay frees them before it writes the answer; its figures follow
    the write): all 200, all counted in the deployment's stats."""
    code = dp.write_code(tmp_path, "echo", ECHO)
    replica = await dp.start_replica(supervisor, tmp_path, code, name="echo-0", deployment="echo")
    one = RequestSettings(
        request_timeout_ms=10000, max_concurrent_requests_per_instance=1, max_queue_wait_ms=0
    )
    gateway.set_backends("ep", "echo", [replica.address], one)
    gateway.set_endpoint(dp.route(traffic={"echo": 100}))
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    n = 5
    writer.write(b"".join(_post(b'{"i": %d}' % i, f"x-request-id: r{i}\r\n") for i in range(n)))
    answers = [await _answer(reader) for _ in range(n)]
    assert [(a[0], a[1]["x-request-id"]) for a in answers] == [
        (b"HTTP/1.1 200 OK", f"r{i}") for i in range(n)
    ]
    stats = gateway.stats("ep", "echo")
    assert stats is not None and stats.codes[200] == n and not stats.codes.get(429)
    writer.close()
