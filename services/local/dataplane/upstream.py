"""HTTP/1.1 to a replica's Unix socket: kept-alive connections, one request at a time on each.

The gateway's hot path, written for what it sends and what a replica answers instead of
through aiohttp's client (its request and response objects, URL and cookie handling and
tracing cost about as much CPU per request as the gateway's whole server side; the
profile of ``bench/gateway.py`` showed ``ClientSession._request`` at about a third of the
gateway's CPU). A request is its head and body written in one call; the answer is read by
``Content-Length``, ``Transfer-Encoding: chunked`` (``--runtime azmlinfsrv`` may stream)
or, without either, until the replica closes. A connection goes back to its pool only
after a whole answer that did not ask to close it; one cancelled or timed out mid-answer
is closed (its late answer must not reach the next request).

Errors: :class:`Unreachable` (cannot connect, or the connection ended before a whole
answer: the caller may try another replica) and :class:`BadAnswer` (not HTTP).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Protocol

#: an answer's head bigger than this is refused (the scoring host's own limit)
MAX_HEAD = 64 * 1024
#: a chunk size line (with its extensions) longer than this is refused (aiohttp's limit)
MAX_CHUNK_LINE = 8190
_HEX = b"0123456789abcdefABCDEF"
_NO_BODY = frozenset((204, 304))
#: the headers passed back to the gateway's client (of an answer read by aiohttp)
_PASSED = re.compile(
    r"\r\n(x-ms-[^:\s]*|content-type)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*(?=\r\n)", re.IGNORECASE
)

Headers = list[tuple[str, str]]


class Waiter(Protocol):
    """Where an answer goes: a future, or the gateway's callback (``forwarding.Relay``)."""

    def done(self) -> bool: ...
    def set_result(self, answer: Answer, /) -> None: ...
    def set_exception(self, exc: BaseException, /) -> None: ...


class Unreachable(Exception):
    """No connection, or it ended before a whole answer."""


class BadAnswer(Exception):
    """The replica answered something that is not HTTP/1.x."""


class Answer:
    """A replica's answer: its status, headers (as sent, bytes) and body."""

    __slots__ = ("body", "head", "passed", "status")

    def __init__(
        self, status: int, head: bytes, body: bytes, passed: Headers | None = None
    ) -> None:
        self.status = status
        self.head = head  # the header lines, each starting with CRLF, and a CRLF after
        self.body = body
        self.passed = passed  # passed_on(), when the head's parser picked them already

    def passed_on(self) -> Headers:
        """The headers the gateway passes back to its client: ``x-ms-*`` (the scoring
        host's request ids and run() figures) and the first ``Content-Type``, decoded as
        aiohttp decodes them (bytes that are not UTF-8 survive a round trip)."""
        if self.passed is not None:
            return self.passed
        out: Headers = []
        typed = False
        for name, value in _PASSED.findall(self.head.decode("utf-8", "surrogateescape")):
            if name[:5].lower() != "x-ms-":
                if typed:
                    continue
                typed = True
            out.append((name, value))
        return out


def _decoded(name: bytes, value: bytes) -> tuple[str, str]:
    return name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")


def head_of(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The header lines of an answer read by aiohttp, as :class:`Answer` keeps them."""
    return b"".join(b"\r\n" + k + b": " + v for k, v in headers) + b"\r\n"


def dechunk(buf: bytes | bytearray, pos: int, out: bytearray) -> tuple[int, bool]:
    """Decode the whole chunks of a chunked body from ``buf[pos:]`` into ``out``: (where
    decoding stopped, whether the body ended there, trailers included). ValueError on a
    bad chunk size line. Called again with more data from the position it returned.
    As RFC 9112 (and llhttp): a chunk size is hex digits only (int() would take '0x',
    '+', '_' and spaces), a chunk ends with CRLF; its size line and the trailers are
    bounded (``MAX_CHUNK_LINE``, ``MAX_HEAD``), as they are searched again on each call."""
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if len(buf) - pos > MAX_CHUNK_LINE:
                raise ValueError("chunk size line too long")
            return pos, False
        digits = bytes(buf[pos:end]).split(b";")[0].rstrip(b" \t")
        if not digits or digits.strip(_HEX):
            raise ValueError("bad chunk size")
        size = int(digits, 16)
        if size == 0:
            trailer = end + 2
            nxt = buf.find(b"\r\n", trailer)
            while nxt > trailer:  # trailers: skipped
                trailer = nxt + 2
                nxt = buf.find(b"\r\n", trailer)
            if nxt < 0:
                if len(buf) - end > MAX_HEAD:
                    raise ValueError("trailers too long")
                return pos, False
            return nxt + 2, True
        if len(buf) < end + 2 + size + 2:
            return pos, False
        if buf[end + 2 + size : end + 4 + size] != b"\r\n":
            raise ValueError("chunk not ended by CRLF")
        out += buf[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


class _Connection(asyncio.Protocol):
    """One connection to a replica; :meth:`exchange` sends a request and awaits its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: Waiter | None = None
        self.closed = False
        self.keep = True
        # the answer being read
        self._status = 0
        self._headers = b""
        self._passed: Headers = []
        self._head_end = -1
        self._length = -1  # -1: until close; -2: chunked
        self._chunks = bytearray()
        self._pos = 0

    # ----------------------------------------------------------------- protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing asked: not HTTP as we know it
            self.close()
            return
        self.buf += data
        self._parse()

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self._head_end >= 0 and self._length == -1:  # an answer delimited by the close
            self._finish(bytes(self.buf[self._head_end :]))
            return
        waiter.set_exception(Unreachable("the replica closed the connection before answering"))

    # ----------------------------------------------------------------- exchange
    def exchange(self, data: Iterable[bytes]) -> asyncio.Future[Answer]:
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.send(data, waiter)
        return waiter

    def send(self, data: Iterable[bytes], waiter: Waiter) -> None:
        """Write a request; its answer (or failure) goes to ``waiter``."""
        assert self.transport is not None and self.waiter is None
        self.waiter = waiter
        self._head_end = -1
        self._pos = 0
        self.transport.writelines(data)

    def close(self) -> None:
        self.closed = True
        self.keep = False
        if self.transport is not None:
            self.transport.close()

    # ----------------------------------------------------------------- parsing
    def _parse(self) -> None:
        try:
            if self._head_end < 0 and not self._head():
                return
            self._body()
        except BadAnswer as exc:
            self.keep = False
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(exc)

    def _head(self) -> bool:
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise BadAnswer("answer head too large")
                return False
            first = bytes(buf[: buf.find(b"\r\n")])
            parts = first.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise BadAnswer(f"not an HTTP answer: {first[:60]!r}")
            status = int(parts[1])
            if 100 <= status < 200:  # 100 Continue and the like: the answer follows
                del buf[: end + 4]
                continue
            break
        head = bytes(buf[len(first) : end + 2])  # CRLF name: value ... CRLF
        length = -1
        close = parts[0] == b"HTTP/1.0"
        passed: Headers = []
        typed = False
        for line in head[2:-2].split(b"\r\n"):  # one pass, no regex (a profile's 4 %)
            name, _, value = line.partition(b":")
            lname = name.lower()
            if lname.startswith(b"x-ms-"):  # most of a scoring host's answer
                passed.append(_decoded(name.rstrip(b" \t"), value.strip(b" \t")))
                continue
            lname = lname.rstrip(b" \t")
            value = value.strip(b" \t")
            if lname == b"content-length":
                if not value.isdigit():
                    raise BadAnswer("bad Content-Length")
                length = int(value)
            elif lname == b"transfer-encoding":
                if value.lower() == b"chunked":
                    length = -2
            elif lname == b"connection":
                low = value.lower()
                close = low == b"close" or (close and low != b"keep-alive")
            elif lname == b"content-type" and not typed:
                typed = True
                passed.append(_decoded(name.rstrip(b" \t"), value))
        if status in _NO_BODY:
            length = 0
        self._status = status
        self._headers = head
        self._passed = passed
        self._head_end = end + 4
        self._length = length
        self._pos = end + 4
        self._chunks = bytearray()
        self.keep = not close and length != -1
        return True

    def _body(self) -> None:
        buf, start, length = self.buf, self._head_end, self._length
        if length >= 0:
            if len(buf) < start + length:
                return
            body = bytes(buf[start : start + length])
            del buf[: start + length]
            self._finish(body)
        elif length == -2:
            self._chunked()
        # length == -1: until the replica closes (connection_lost finishes it)

    def _chunked(self) -> None:
        buf = self.buf
        try:
            pos, done = dechunk(buf, self._pos, self._chunks)
        except ValueError:
            raise BadAnswer("bad chunk size") from None
        if not done:
            self._pos = pos
            return
        del buf[:pos]
        self._finish(bytes(self._chunks))

    def _finish(self, body: bytes) -> None:
        waiter, self.waiter = self.waiter, None
        self._head_end = -1
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(self._status, self._headers, body, self._passed))


def request_bytes(
    method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
) -> tuple[bytes, bytes]:
    """A request to a replica as written: its head (a header whose value has a line break
    is left out) and body."""
    head = [f"{method} {target} HTTP/1.1\r\nHost: replica\r\nContent-Length: {len(body)}\r\n"]
    for name, value in headers:
        if "\r" not in value and "\n" not in value:
            head.append(f"{name}: {value}\r\n")
    head.append("\r\n")
    return "".join(head).encode("utf-8", "surrogateescape"), body


class UnixPool:
    """Kept-alive connections to one replica's Unix socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.idle: list[_Connection] = []
        self.closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        timeout_s: float,
    ) -> Answer:
        """Send one request and return its answer; TimeoutError past ``timeout_s`` (from
        before connecting). A timeout or a cancellation closes the connection."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = loop.call_later(timeout_s, expire)
        try:
            return await self._request(method, target, headers, body)
        except asyncio.CancelledError:
            if expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()

    async def _request(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Answer:
        data = request_bytes(method, target, headers, body)
        conn = self.take()
        if conn is None:
            conn = await self._connect()
        try:
            answer = await conn.exchange(data)
        except BaseException:
            conn.close()  # its answer, if one still comes, must not reach another request
            raise
        self.keep(conn)
        return answer

    def keep(self, conn: _Connection) -> None:
        """``conn`` after a whole answer: back to the idle ones, or closed."""
        if conn.keep and not conn.closed and not self.closed:
            self.idle.append(conn)
        else:
            conn.close()

    def take(self) -> _Connection | None:
        """An idle connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _connect(self) -> _Connection:
        if self.closed:
            raise Unreachable("the replica was removed")
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_unix_connection(_Connection, self.path)
        except OSError as exc:
            raise Unreachable(f"cannot connect to the replica: {exc.strerror or exc}") from exc
        return conn

    def close(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()
