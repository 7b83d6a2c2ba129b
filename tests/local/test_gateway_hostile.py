"""The gateway's HTTP/1.1 server (dataplane/server.py) against a hostile local user: on a
shared host any local user can reach the gateway's port. Real gateway, real replica, raw
sockets: what such a client sends must cost the gateway in proportion to it, stay within
the body limit however it is framed, and never reach a replica when it is not HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

from modeldeck.services.local.connguard import ConnectionLimits
from modeldeck.services.local.dataplane.gateway import Gateway
from modeldeck.services.local.dataplane.supervisor import Supervisor

from tests.local.test_gateway_http import ECHO, FAST, PATH, _answer
from tests.support import dataplane as dp

supervisor = dp.supervisor

LIMIT = 64 * 1024  # the gateway's max_body_bytes here
KEY = f"Authorization: Bearer {dp.PRIMARY}\r\n"


@contextlib.asynccontextmanager
async def _gateway(tmp_path: Path, sup: Supervisor) -> AsyncIterator[Gateway]:
    """A gateway (body limit LIMIT, headers given a minute) with endpoint ``ep`` (key auth)
    served by a real echo replica."""
    gw = Gateway("127.0.0.1", 0, max_body_bytes=LIMIT, limits=ConnectionLimits(header_timeout=60.0))
    await gw.start()
    try:
        code = dp.write_code(tmp_path, "echo", ECHO)
        replica = await dp.start_replica(sup, tmp_path, code, name="echo-0", deployment="echo")
        gw.set_backends("ep", "echo", [replica.address], FAST)
        gw.set_endpoint(dp.route(traffic={"echo": 100}, mode="key"))
        yield gw
    finally:
        await gw.close()


def _forwarded(gw: Gateway) -> int:
    stats = gw.stats("ep", "echo")
    assert stats is not None
    return stats.requests_total


async def _closed(reader: asyncio.StreamReader) -> bool:
    """The gateway closed the connection (after what it had sent)."""
    with contextlib.suppress(ConnectionError):  # (a reset after the answer: closed too)
        await asyncio.wait_for(reader.read(), 30)
    return True


async def _send_all(writer: asyncio.StreamWriter, pieces: list[bytes]) -> None:
    """Write ``pieces`` until done or the gateway closes (it may answer before the end)."""
    with contextlib.suppress(ConnectionError):
        for piece in pieces:
            writer.write(piece)
            await writer.drain()


async def _trickle_head(gw: Gateway, lines: int, piece: int = 100) -> tuple[float, bytes]:
    """A GET / whose head (``lines`` header lines of 8 kB, within the limits) is sent
    ``piece`` bytes at a time, each read by the gateway on its own: (this process's CPU
    seconds while it was sent, the status line of the answer)."""
    head = b"GET / HTTP/1.1\r\nHost: gw\r\n" + b"".join(
        b"X-Pad-%03d: %s\r\n" % (i, b"a" * 8000) for i in range(lines)
    )
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    cpu = time.process_time()
    for i in range(0, len(head), piece):
        writer.write(head[i : i + piece])
        await asyncio.sleep(0)  # (the gateway reads this piece before the next is sent)
    cpu = time.process_time() - cpu
    writer.write(b"\r\n")
    status, _, _ = await _answer(reader)
    writer.close()
    return cpu, status


async def test_headers_trickled_in_small_pieces_cost_the_gateway_in_proportion(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """Any local user, with no key, may send a head of up to ~800 kB (100 header lines
    of 8 kB) in 100-byte pieces. Each piece must not make the gateway copy and search
    again all it has read (quadratic: 800 kB cost it ~2.4 s of its one event loop's CPU
    per connection, against ~0.35 s for aiohttp's parser; a few connections starved every
    endpoint). Here 8 times the bytes must cost well under 16 times the CPU (a quadratic
    parse: ~30 times; the client's own share, in this process too, is linear)."""
    async with _gateway(tmp_path, supervisor) as gw:
        await _trickle_head(gw, 4)  # (warm up)
        small, status = await _trickle_head(gw, 12)
        assert status == b"HTTP/1.1 200 OK"
        big, status = await _trickle_head(gw, 96)
        assert status == b"HTTP/1.1 200 OK"  # a big head, within the limits, still served
        assert big < 16 * small, (small, big)


def _chunked_head() -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: gw\r\n{KEY}Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


async def test_a_chunked_body_cannot_grow_past_the_body_limit_in_the_gateway(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """A chunked body is held to max_body_bytes whatever its framing: one chunk that says
    it is huge (the gateway kept every byte of it while waiting for its end: memory
    without bound, and a copy of it all per read), a chunk size line that never ends,
    trailers that never end. The client gets 413 or 400 and the connection closes;
    nothing reaches the replica."""
    async with _gateway(tmp_path, supervisor) as gw:
        attacks = {
            "one huge chunk": (b"7fffffffffff\r\n", [b"x" * 16384] * 16, 413),
            "endless chunk size line": (b"1", [b"0" * 16384] * 16, 400),
            "endless trailers": (b"2\r\n{}\r\n0\r\n", [b"X-T: y\r\n" * 2048] * 16, 400),
        }
        for what, (start, rest, expected) in attacks.items():
            reader, writer = await asyncio.open_connection(gw.host, gw.port)
            sending = asyncio.create_task(_send_all(writer, [_chunked_head() + start, *rest]))
            status, headers, body = await _answer(reader)
            assert status.split(b" ")[1] == str(expected).encode(), what
            assert headers["connection"] == "close", what
            assert json.loads(body)["error"]["code"] in ("RequestEntityTooLarge", "BadRequest")
            assert await _closed(reader), what
            await sending
            writer.close()
        assert _forwarded(gw) == 0


async def test_numbers_that_are_not_ascii_digits_or_plain_hex_are_400(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """RFC 9112: Content-Length is ASCII digits, a chunk size hex digits, each chunk ends
    with CRLF; anything else is a framing the server must not guess (400 and close, as
    llhttp answered under aiohttp). Python's int() takes '٥' (Arabic-Indic five) as 5 and
    int(x, 16) takes '0x5', '+5', '5_0' and spaces. None of these reaches the replica."""
    async with _gateway(tmp_path, supervisor) as gw:
        body = b'{"a": 1}'
        by_length = f"POST {PATH} HTTP/1.1\r\nHost: gw\r\n{KEY}Content-Length: "
        bad = {
            "Arabic-Indic digits": (by_length + "\u0668\r\n\r\n").encode() + body,
            "fullwidth digits": (by_length + "\uff18\r\n\r\n").encode() + body,
            **{
                f"chunk size {size!r}": _chunked_head() + size + b"\r\n" + body + b"\r\n0\r\n\r\n"
                for size in (b"0x8", b"+8", b"0_8")
            },
            "chunk without its CRLF": _chunked_head() + b"8\r\n" + body + b"XX0\r\n\r\n",
        }
        await _each_refused(gw, bad)
        # the same request, framed right, is forwarded
        reader, writer = await asyncio.open_connection(gw.host, gw.port)
        writer.write(_chunked_head() + b"8\r\n" + body + b"\r\n0\r\n\r\n")
        status, _, answer = await _answer(reader)
        assert status == b"HTTP/1.1 200 OK" and json.loads(answer)["n"] == len(body)
        writer.close()


async def _each_refused(gw: Gateway, bad: dict[str, bytes]) -> None:
    """Each request of ``bad`` (on a connection of its own): 400, ``Connection: close``
    and closed; none reached the replica."""
    for what, request in bad.items():
        reader, writer = await asyncio.open_connection(gw.host, gw.port)
        writer.write(request)
        status, headers, _ = await _answer(reader)
        assert status == b"HTTP/1.1 400 Bad Request", what
        assert headers["connection"] == "close", what
        assert await _closed(reader), what
        writer.close()
    assert _forwarded(gw) == 0


async def test_framing_aiohttp_refused_is_refused_at_once(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """What llhttp (aiohttp's parser, the gateway's before its own) answered 400 and RFC
    9112 requires refused: a second Transfer-Encoding line ('chunked' then 'gzip' is
    'chunked, gzip': the body's end cannot be known), a second Host or none in HTTP/1.1
    (section 3.2), and lines ended by a bare LF, which the gateway took for an unfinished
    head: the client waited the header timeout for no answer. 400 and close, at once;
    nothing reaches the replica."""
    async with _gateway(tmp_path, supervisor) as gw:
        chunked = b"2\r\n{}\r\n0\r\n\r\n"
        bad = {
            "two Transfer-Encoding lines": _chunked_head().replace(
                b"\r\n\r\n", b"\r\nTransfer-Encoding: gzip\r\n\r\n"
            )
            + chunked,
            "two Host lines": _chunked_head().replace(b"Host: gw", b"Host: gw\r\nHost: x")
            + chunked,
            "no Host": _chunked_head().replace(b"Host: gw\r\n", b"") + chunked,
            "bare LF": b"GET / HTTP/1.1\nHost: gw\n\n",
            "bare LF after the request line": b"GET / HTTP/1.1\r\nHost: gw\n\n",
        }
        await _each_refused(gw, bad)


async def test_a_chunked_http_1_0_request_is_answered_then_its_connection_closed(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (1.0
    has no chunked coding; what sits between the client and the gateway may read it
    otherwise): the server answers it and closes the connection, even when the client
    asked to keep it alive. What follows on that connection is not read."""
    async with _gateway(tmp_path, supervisor) as gw:
        head = _chunked_head().replace(b"HTTP/1.1", b"HTTP/1.0")
        head = head.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n")
        reader, writer = await asyncio.open_connection(gw.host, gw.port)
        writer.write(head + b"2\r\n{}\r\n0\r\n\r\n" + b"GET / HTTP/1.0\r\n\r\n")
        status, headers, answer = await _answer(reader)
        assert status == b"HTTP/1.0 200 OK" and json.loads(answer)["n"] == 2
        assert headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 30) == b""  # no answer to the GET
        writer.close()
        assert _forwarded(gw) == 1


async def test_control_characters_in_header_values_are_400(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    """A header value may hold visible characters, spaces and tabs (RFC 9110 5.5); llhttp,
    the gateway's parser under aiohttp, refused other control characters. Taken, an
    ``x-request-id`` carrying ESC sequences went on to the replica (whose scoring script
    may log it: a terminal that shows those logs obeys them) and back to the client.
    400 and close; nothing reaches the replica."""
    async with _gateway(tmp_path, supervisor) as gw:
        body = b'{"a": 1}'

        def scoring(extra: str) -> bytes:
            head = f"POST {PATH} HTTP/1.1\r\nHost: gw\r\n{KEY}{extra}Content-Length: {len(body)}"
            return (head + "\r\n\r\n").encode() + body

        await _each_refused(
            gw,
            {
                "ESC in x-request-id": scoring("x-request-id: a\x1b[2Jb\r\n"),
                "BEL in Content-Type": scoring("Content-Type: application/json\x07\r\n"),
                "DEL in a header": scoring("x-other: a\x7fb\r\n"),
                "vertical tab": scoring("x-ms-client-request-id: a\x0bb\r\n"),
            },
        )
        # a tab inside a value, and bytes beyond ASCII (obs-text), are values like any other
        reader, writer = await asyncio.open_connection(gw.host, gw.port)
        writer.write(scoring("x-request-id: a\tb\r\nx-note: caf\u00e9\r\n"))
        status, headers, _ = await _answer(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert headers["x-request-id"] == "a\tb"
        writer.close()
