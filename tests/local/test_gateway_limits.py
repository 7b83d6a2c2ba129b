"""The gateway's connection limits, on a real gateway over loopback with real replicas:
clients that send nothing, trickle headers or a body are closed; 2,000 idle connections
neither take the gateway down nor exhaust descriptors; beyond the bounds, 503."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from modeldeck.services.api.domain import RequestSettings
from modeldeck.services.local.connguard import ConnectionLimits
from modeldeck.services.local.dataplane.gateway import Gateway
from modeldeck.services.local.dataplane.supervisor import Supervisor

from tests.support import dataplane as dp

supervisor = dp.supervisor

FAST = RequestSettings(
    request_timeout_ms=10000, max_concurrent_requests_per_instance=8, max_queue_wait_ms=5000
)
AUTH = {"Authorization": f"Bearer {dp.PRIMARY}"}
FLOOD = 2000
TOKEN = "metrics-token-for-the-limits-tests-0123456789"


@pytest.fixture(scope="module", autouse=True)
def _descriptors() -> Iterator[None]:
    """Room for 2,000 client sockets and as many server-side ones in this one process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"needs a hard open files limit of {want} (ulimit -Hn is {hard})")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.asynccontextmanager
async def _gateway(**limits: float) -> AsyncIterator[Gateway]:
    gw = Gateway(
        "127.0.0.1",
        0,
        limits=ConnectionLimits(**limits),  # type: ignore[arg-type]
        metrics_token=TOKEN,
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.close()


async def _serve_blue(gw: Gateway, tmp_path: Path, sup: Supervisor, mode: str = "key") -> None:
    replica = await dp.start_replica(
        sup, tmp_path, dp.versioned(tmp_path, "blue"), name="blue-0", deployment="blue"
    )
    gw.set_backends("ep", "blue", [replica.address], FAST)
    gw.set_endpoint(dp.route(traffic={"blue": 100}, mode=mode))


async def _open(
    gw: Gateway, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(gw.host, gw.port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float = 30.0) -> bytes:
    """What the server sent until it closed (the timeout only guards against a hang)."""
    return await asyncio.wait_for(reader.read(), timeout)


def _request(body: bytes = b"{}", length: int | None = None, key: bool = True) -> bytes:
    head = (
        "POST /api/v1/endpoint/ep/score HTTP/1.1\r\nHost: gw\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        + (f"Authorization: Bearer {dp.PRIMARY}\r\n" if key else "")
        + "\r\n"
    )
    return head.encode() + body


async def _score_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """One request on an open connection; the status (the answer is read in full)."""
    writer.write(_request())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 30)
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _score_ok(http: aiohttp.ClientSession, gw: Gateway, n: int) -> list[tuple[int, str]]:
    out = []
    for _ in range(n):
        async with http.post(gw.scoring_uri("ep"), data=b"{}", headers=AUTH) as resp:
            body = await resp.json(content_type=None)
            out.append((resp.status, body.get("version", body)))
    return out


# --------------------------------------------------------------------------- timeouts


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    async with _gateway(header_timeout=0.3, keepalive_timeout=0.3) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        reader, writer = await _open(gw)
        assert await _closed_by_server(reader) == b""  # closed, nothing answered
        writer.close()
        assert gw.connections.totals["header"] == 1
        assert gw.connections.open_connections == 0

        # a kept-alive connection that goes quiet after an answer is closed too
        reader, writer = await _open(gw)
        assert await _score_raw(reader, writer) == 200
        assert await _closed_by_server(reader) == b""
        writer.close()
        assert gw.connections.totals["idle"] == 1


async def _cut_off(answer: asyncio.Future[bytes]) -> bytes:
    """What a trickling client read before the gateway closed on it: a close with bytes of
    the client's still in flight arrives as a reset, which is no answer either."""
    try:
        return await asyncio.wait_for(answer, 30)
    except ConnectionResetError:
        return b""


async def test_a_client_trickling_its_headers_is_closed(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    async with _gateway(header_timeout=0.5, keepalive_timeout=5) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        request = _request(b"{}")[:-4] + b"X-Pad: " + b"a" * 400 + b"\r\n\r\n"
        reader, writer = await _open(gw)
        answer = asyncio.ensure_future(reader.read())
        sent = 0
        with contextlib.suppress(ConnectionError):
            for byte in request:  # one byte every 50 ms: ~23 s for all, were it let through
                if answer.done():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                sent += 1
                await asyncio.sleep(0.05)
        assert await _cut_off(answer) == b""  # closed without an answer
        assert sent < len(request)
        writer.close()
        assert gw.connections.totals["header"] == 1


async def test_a_body_trickled_a_byte_at_a_time_is_cut_off(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    async with _gateway(header_timeout=5, body_timeout=0.5) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        reader, writer = await _open(gw)
        writer.write(_request(b"", length=1000))  # headers complete, then the body crawls
        answer = asyncio.ensure_future(reader.read())
        sent = 0
        with contextlib.suppress(ConnectionError):
            while not answer.done() and sent < 1000:
                writer.write(b" ")
                await writer.drain()
                sent += 1
                await asyncio.sleep(0.05)
        assert not (await _cut_off(answer)).startswith(b"HTTP/1.1 200")
        assert sent < 1000
        writer.close()
        assert gw.connections.totals["body"] == 1
        # a body that arrives at once is not affected
        reader, writer = await _open(gw)
        assert await _score_raw(reader, writer) == 200
        writer.close()


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("source", ["127.0.0.2", "127.0.0.1"], ids=["other", "same-address"])
async def test_2000_idle_connections_leave_the_gateway_answering(
    tmp_path: Path, supervisor: Supervisor, caplog: pytest.LogCaptureFixture, source: str
) -> None:
    # "same-address": as on a shared host, where every local user is 127.0.0.1
    caplog.set_level(logging.INFO)
    async with (
        _gateway(header_timeout=60, max_connections=1500, max_connections_per_client=1000) as gw,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        await _serve_blue(gw, tmp_path, supervisor)
        assert await _score_ok(http, gw, 3) == [(200, "blue")] * 3
        flood: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        failures: list[BaseException] = []
        for start in range(0, FLOOD, 250):  # 250 at a time
            batch = await asyncio.gather(
                *(_open(gw, source) for _ in range(start, min(start + 250, FLOOD))),
                return_exceptions=True,
            )
            for item in batch:
                if isinstance(item, BaseException):
                    failures.append(item)
                else:
                    flood.append(item)
        assert failures == []  # no connection refused, no EMFILE anywhere
        assert len(flood) == FLOOD
        during = await _score_ok(http, gw, 20)  # the endpoint of another user still answers
        assert during == [(200, "blue")] * 20
        await asyncio.sleep(0.2)  # let the evicted ones see their EOF
        open_now = [r for r, _ in flood if not r.at_eof()]
        assert len(open_now) <= 1000  # the per-client bound held
        assert gw.connections.open_connections <= 1500
        assert gw.connections.totals["evicted"] >= FLOOD - 1000
        for _, writer in flood:
            writer.close()
        await asyncio.sleep(0.1)
        after = await _score_ok(http, gw, 20)  # at once, not after a 30 s spell of 503
        assert after == [(200, "blue")] * 20
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert tracebacks == []
    guard_lines = [r for r in caplog.records if r.name == "modeldeck.gateway"]
    assert 1 <= len(guard_lines) <= 3  # the first eviction, then one summary
    assert "to make room" in guard_lines[0].getMessage()


async def test_beyond_the_bounds_with_every_connection_busy_the_answer_is_503(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    async with _gateway(
        header_timeout=30, body_timeout=30, max_connections=6, max_connections_per_client=4
    ) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        # an idle connection makes room for a new one of the same client
        idle = [await _open(gw, "127.0.0.2") for _ in range(4)]
        reader, writer = await _open(gw, "127.0.0.2")
        assert await _score_raw(reader, writer) == 200
        assert await _closed_by_server(idle[0][0]) == b""  # the oldest idle one made room
        for _, w in (*idle, (reader, writer)):
            w.close()
        await asyncio.sleep(0.1)

        async def busy(source: str) -> asyncio.StreamWriter:
            _, w = await _open(gw, source)
            w.write(_request(b"{", length=100))  # a request in progress: body on its way
            await w.drain()
            return w

        held = [await busy("127.0.0.2") for _ in range(4)]
        await asyncio.sleep(0.2)
        reader, writer = await _open(gw, "127.0.0.2")
        answer = await _closed_by_server(reader)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert b"Connection: close" in head
        error = json.loads(body)["error"]
        assert error["code"] == "TooManyConnections"
        assert "max_connections_per_client=4" in error["message"]
        writer.close()

        held += [await busy("127.0.0.3") for _ in range(2)]  # 6 in all: the total bound
        await asyncio.sleep(0.2)
        reader, writer = await _open(gw, "127.0.0.1")
        answer = await _closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"max_connections=6" in answer
        writer.close()
        assert gw.connections.totals["refused_client"] == 1
        assert gw.connections.totals["refused_total"] == 1

        held.pop().close()  # one finishes: room again, at once
        await asyncio.sleep(0.1)
        reader, writer = await _open(gw, "127.0.0.1")
        assert await _score_raw(reader, writer) == 200
        writer.close()
        for w in held:
            w.close()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gw.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as m,
        ):
            metrics = await m.text()
        assert 'modeldeck_gateway_connections_limited_total{reason="refused_client"} 1' in metrics
        assert 'modeldeck_gateway_connections_limited_total{reason="refused_total"} 1' in metrics


async def test_a_client_at_a_bound_of_one_keeps_exactly_one_connection(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    async with _gateway(header_timeout=30, max_connections=10, max_connections_per_client=1) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        opened = []
        for _ in range(3):  # each new one makes the previous (idle) one go
            opened.append(await _open(gw, "127.0.0.2"))
            await asyncio.sleep(0.1)
        assert await _closed_by_server(opened[0][0]) == b""
        assert await _closed_by_server(opened[1][0]) == b""
        assert gw.connections.open_connections == 1
        assert await _score_raw(*opened[2]) == 200  # the last one serves
        for _, writer in opened:
            writer.close()


async def test_a_keyless_flood_holding_more_than_the_bounds_never_denies_the_key_holder(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """Every local user is 127.0.0.1: an attacker without a key opens more connections than
    both bounds, each the headers of a 100 MB POST whose body then trickles. Each is answered
    401 at once and closed without reading the body, so none holds a slot; the owner's
    kept-alive connection (trusted: it passed the key check) is never the one evicted."""
    per_client, total = 16, 24
    async with _gateway(
        header_timeout=30,
        body_timeout=30,
        max_connections=total,
        max_connections_per_client=per_client,
    ) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        kept = await _open(gw)
        assert await _score_raw(*kept) == 200  # the owner's kept-alive connection
        stop = asyncio.Event()
        opened: list[int] = []
        answered: list[bytes] = []

        async def attacker(source: str) -> None:
            while not stop.is_set():
                try:
                    reader, writer = await _open(gw, source)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                opened.append(1)
                answer = asyncio.ensure_future(reader.read())  # until it closes
                try:
                    writer.write(_request(b"", length=100_000_000, key=False))
                    while not stop.is_set() and not answer.done():
                        writer.write(b"x" * 200)  # ~2 KB/s
                        await writer.drain()
                        await asyncio.sleep(0.1)
                    with contextlib.suppress(asyncio.TimeoutError):
                        answered.append(await asyncio.wait_for(answer, 5))
                except OSError:
                    pass
                finally:
                    answer.cancel()
                    writer.close()
                await asyncio.sleep(0.05)

        # more than the per-client bound from the owner's address, and more than the
        # total bound with another local address
        sources = ["127.0.0.1"] * (per_client + 8) + ["127.0.0.2"] * 12
        attackers = [asyncio.ensure_future(attacker(s)) for s in sources]
        owner: list[object] = []
        try:
            while len(opened) < len(sources):
                await asyncio.sleep(0.05)
            for _ in range(25):
                try:
                    owner.append(await _score_raw(*kept))  # the same kept-alive connection
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                    owner.append(f"kept-alive: {exc!r}")
                    kept[1].close()
                    kept = await _open(gw)
                reader, writer = await _open(gw)  # and a new connection each time
                try:
                    owner.append(await _score_raw(reader, writer))
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                    owner.append(f"new: {exc!r}")
                writer.close()
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*attackers, return_exceptions=True)
            kept[1].close()
        assert [s for s in owner if s != 200] == []
        assert len(owner) == 50
        # the attack was real: more connections than both bounds, every one refused 401
        assert len(opened) > total
        refused = [a for a in answered if a]  # (b"": evicted before its headers were read)
        assert all(a.startswith(b"HTTP/1.1 401") for a in refused)
        assert all(b"Connection: close" in a for a in refused)
        assert len(refused) > total
        assert gw.connections.totals["unread"] >= len(refused)
        assert gw.connections.totals["refused_client"] == 0
        assert gw.connections.totals["refused_total"] == 0


async def test_a_kept_alive_connection_that_passed_the_key_check_is_evicted_last(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    async with _gateway(header_timeout=30, max_connections=10, max_connections_per_client=4) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        kept = await _open(gw)
        assert await _score_raw(*kept) == 200  # the oldest connection, idle between requests
        others = []
        for _ in range(6):  # keyless requests that are answered and kept alive
            reader, writer = await _open(gw)
            writer.write(b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"Healthy"), 30)
            assert answer.startswith(b"HTTP/1.1 200")
            others.append((reader, writer))
        await asyncio.sleep(0.1)
        assert gw.connections.totals["evicted"] == 3
        assert await _score_raw(*kept) == 200  # still open: the keyless ones made room
        assert sum(r.at_eof() for r, _ in others) == 3
        for _, writer in (kept, *others):
            writer.close()


@pytest.mark.parametrize(
    ("path", "key", "length", "status"),
    [
        ("/api/v1/endpoint/ep/score", False, 1000, 401),
        ("/api/v1/endpoint/nope/score", True, 1000, 404),
        ("/api/v1/endpoint/ep/score", True, 10**9, 413),
    ],
    ids=["no-key", "no-endpoint", "too-large"],
)
async def test_a_refusal_before_the_body_closes_without_reading_it(
    tmp_path: Path, supervisor: Supervisor, path: str, key: bool, length: int, status: int
) -> None:
    async with _gateway(header_timeout=30, body_timeout=30) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        reader, writer = await _open(gw)
        auth = f"Authorization: Bearer {dp.PRIMARY}\r\n" if key else ""
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Length: {length}\r\n{auth}\r\n".encode()
            + b"x" * 100  # the body has begun and will not be finished
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(f"HTTP/1.1 {status}".encode())
        assert b"Connection: close" in head
        # no longer held against the bounds, and closed (not read for 10 s, then closed)
        assert gw.connections.open_connections == 0
        assert gw.connections.totals["unread"] == 1
        await _closed_by_server(reader)
        writer.close()
        # a kept-alive connection that passed the key check is not affected
        reader, writer = await _open(gw)
        assert [await _score_raw(reader, writer) for _ in range(3)] == [200] * 3
        assert gw.connections.open_connections == 1
        writer.close()


async def test_a_new_connection_over_a_bound_is_served_when_a_busy_one_ends(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    async with _gateway(header_timeout=30, body_timeout=30, max_connections_per_client=2) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        busy = []
        for _ in range(2):  # both with a request in progress: nothing to evict
            _, w = await _open(gw, "127.0.0.2")
            w.write(_request(b"{", length=100))
            await w.drain()
            busy.append(w)
        await asyncio.sleep(0.2)
        reader, writer = await _open(gw, "127.0.0.2")
        writer.write(_request())  # waits for a slot, its request unread meanwhile
        await writer.drain()
        await asyncio.sleep(0.2)
        busy.pop().close()  # a slot frees before the wait is over
        status_line = await asyncio.wait_for(reader.readline(), 30)
        assert status_line.startswith(b"HTTP/1.1 200")
        assert gw.connections.totals["refused_client"] == 0
        writer.close()
        for w in busy:
            w.close()


async def test_expect_100_continue_is_answered_only_when_the_body_is_wanted(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """curl sends ``Expect: 100-continue`` with a big body and waits for the go-ahead: a
    request refused on its headers (no key) gets its 401 without one, so its body is never
    sent; one let in gets ``100 Continue``, then its answer. Routes and methods the gateway
    does not serve are 404 and 405."""
    async with _gateway(header_timeout=30, body_timeout=30) as gw:
        await _serve_blue(gw, tmp_path, supervisor)
        body = json.dumps({"pad": "x" * 4000}).encode()
        for key, answers in (
            (False, [b"HTTP/1.1 401"]),
            (True, [b"HTTP/1.1 100", b"HTTP/1.1 200"]),
        ):
            reader, writer = await _open(gw)
            head = _request(body, key=key).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
            writer.write(head[: -len(body)])  # the headers alone: the body waits for 100
            await writer.drain()
            first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            assert first.startswith(answers[0])
            if key:
                writer.write(body)
                await writer.drain()
                second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                assert second.startswith(answers[1])
            writer.close()
        async with aiohttp.ClientSession() as http:
            for method, path, status in (
                ("GET", "/api/v1/endpoint/ep/score", 405),
                ("POST", "/metrics", 405),
                ("GET", "/api/v1/endpoint/ep/nothing", 404),
                ("GET", "/nothing", 404),
                ("HEAD", "/", 200),
            ):
                async with http.request(method, gw.base_url + path) as resp:
                    assert resp.status == status, (method, path)
