"""The gateway's HTTP/1.1 server: an :class:`asyncio.Protocol` per connection, no
per-request objects beyond the :class:`Request` and the :class:`Reply`.

It replaced aiohttp's server in the gateway: a profile of ``bench/gateway.py`` (no-op
script, 8 connections) put aiohttp's server side (its request, payload stream, response
and writer objects, a task per request) at 28 % of the gateway's CPU, more than the
gateway's own code. Here a request whose body came with its headers is parsed, admitted
and handed to the gateway in ``data_received``; the gateway answers in a callback
(:meth:`Connection.answer`) or returns a coroutine for what must wait (the queue, a
retry, the swagger fetch), which runs as a task.

What a client sees (as aiohttp served it): HTTP/1.1 and 1.0, keep-alive by the version's
rule and ``Connection``, pipelined requests answered in order, bodies by
``Content-Length`` or ``Transfer-Encoding: chunked``, ``Expect: 100-continue`` (the
``100 Continue`` is sent once the headers are accepted, else ``417``), ``HEAD`` answered
with the GET's headers and no body; a request line over
:data:`~..connguard.MAX_LINE_SIZE`, a header line over ``MAX_FIELD_SIZE``, more than
``MAX_HEADERS`` headers, or a request that is not HTTP/1.x is answered 400 and the
connection closed (counted ``malformed`` by the guard).

The application (:class:`App`) sees each request twice: :meth:`App.head` on its headers
(answer now, e.g. 401 or 413, or None to read the body), then :meth:`App.handle` with
the body. An answer given before the body was read closes the connection
(:meth:`~..connguard.Guarded._g_closing_unread`). Each connection is a
:class:`~..connguard.Guarded` of the listener's :class:`~..connguard.ConnectionGuard`.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import re
import time
from collections.abc import Coroutine
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import unquote

from ..connguard import MAX_FIELD_SIZE, MAX_HEADERS, MAX_LINE_SIZE, ConnectionGuard, Guarded
from .upstream import MAX_HEAD, dechunk

_log = logging.getLogger("modeldeck.gateway")
#: a head (request line and headers) longer than this cannot be within the limits
_MAX_HEAD = MAX_LINE_SIZE + MAX_HEADERS * (MAX_FIELD_SIZE + 2) + 4
#: pipelined bytes kept while a request is in progress before reading pauses
_MAX_AHEAD = 256 * 1024
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: what a head may not hold besides its CRLFs: NUL and the other control characters but the
#: tab (RFC 9110 5.5; llhttp refused them under aiohttp): a value the gateway forwards or
#: echoes (x-request-id) must not carry terminal escapes into a replica's log (~1.3 us)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: header names seen valid (as sent), lower-cased: most requests' names cost one lookup
_NAMES: dict[str, str] = {}
_REASONS = {s.value: s.phrase for s in http.HTTPStatus}


def _valid_name(name: str) -> str:
    """``name`` lower-cased, or "" when it is not a token."""
    if _TOKEN.fullmatch(name) is None:
        return ""
    lower = name.lower()
    if len(_NAMES) < 1024:
        _NAMES[name] = lower
    return lower


class Reply:
    """An answer: status, headers (name, value) and body."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ):
        self.status = status
        self.body = body
        self.headers = headers or []


def text_reply(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(
        status, text.encode(), [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])]
    )


def json_reply(status: int, value: Any, headers: list[tuple[str, str]]) -> Reply:
    return Reply(
        status,
        json.dumps(value).encode(),
        [("Content-Type", "application/json; charset=utf-8"), *headers],
    )


class Request:
    """One request: its line, headers (lower-case names, the first of each) and body."""

    __slots__ = ("body", "close", "conn", "headers", "method", "path", "query", "state", "version")

    def __init__(self, conn: Connection, method: str, target: str, version: str) -> None:
        self.conn = conn
        self.method = method
        self.version = version
        path, _, self.query = target.partition("?")
        self.path = unquote(path) if "%" in path else path
        self.headers: dict[str, str] = {}
        self.body = b""
        self.close = False
        self.state: Any = None  # the application's, between head() and handle()


class App(Protocol):
    def head(self, req: Request) -> Reply | None:
        """The answer on the headers alone, or None to read the body and :meth:`handle`."""

    def handle(self, req: Request) -> Reply | Coroutine[Any, Any, Reply] | None:
        """The answer, a coroutine that makes it, or None: ``req.conn.answer`` follows."""

    def too_large(self, req: Request) -> Reply:
        """A body past :attr:`Server.max_body`."""


class Server:
    """What a listener's connections share: the application, the guard, the body limit."""

    def __init__(self, app: App, guard: ConnectionGuard, max_body: int) -> None:
        self.app = app
        self.guard = guard
        self.max_body = max_body
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self._date = ""
        self._date_at = 0

    def factory(self) -> Connection:
        return Connection(self)

    def date(self) -> str:
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = formatdate(now, usegmt=True)
        return self._date

    async def close(self, grace: float = 5.0) -> None:
        """Close every connection, after the requests in progress end (up to ``grace``)."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(c.busy for c in self.connections):
            for conn in list(self.connections):
                if not conn.busy:
                    conn.force_close()
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.force_close()
        for task in list(self.tasks):
            task.cancel()


_IDLE, _BODY, _BUSY = 0, 1, 2


class Connection(Guarded, asyncio.Protocol):
    """One client connection of the gateway (see the module docstring)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf: bytes | bytearray = b""
        self.scanned = 0  # bytes of an incomplete head in buf searched for its end
        self.phase = _IDLE
        self.req: Request | None = None
        self.length = 0  # the body's Content-Length; -1: chunked
        self.parts: list[bytes] = []  # the body so far (Content-Length)
        self.have = 0
        self.chunks = bytearray()  # the body so far (chunked), decoded
        self.paused = False  # reading paused: pipelined requests ahead
        self.blocked = False  # writing paused: the client is not reading its answers
        self.parsing = False  # in _drain: answers given meanwhile leave the next to it
        #: the uid of the peer's socket, once asked (the gateway's keyless owner check)
        self.peer_uid: int | None = None
        self._g_init(server.guard)

    # ----------------------------------------------------------------- the guard's view
    @property
    def busy(self) -> bool:
        """A request is being answered (its body is in): a close waits for it."""
        return self.phase == _BUSY

    @property
    def _g_idle(self) -> bool:
        return self.phase == _IDLE and self.transport is not None

    def _g_reading(self) -> bool:
        return self.phase == _BODY

    def force_close(self) -> None:
        transport = self.transport
        if transport is not None:
            self.transport = None
            transport.close()

    # ----------------------------------------------------------------- protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._g_open(transport):
            self._g_serve(transport)

    def _g_serve(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        served = self.transport is not None
        self.transport = None
        if self._g_lost() and served and self.phase != _IDLE:
            self._g.count("vanished")  # the client went away mid-request
        self.server.connections.discard(self)
        self.buf = b""
        self.parts = []

    def _g_transport(self) -> asyncio.BaseTransport | None:
        return self._lingering if self._g_unread else self.transport

    _lingering: asyncio.BaseTransport | None = None

    def pause_writing(self) -> None:
        self.blocked = True

    def resume_writing(self) -> None:
        self.blocked = False
        transport = self.transport
        if transport is not None and self.phase == _IDLE:
            if self.paused:
                self.paused = False
                transport.resume_reading()
            self._drain()

    def data_received(self, data: bytes) -> None:
        if self._g_refused or self._g_unread or self.transport is None:
            return  # read and dropped until it closes
        self._g_in += len(data)
        if self.phase == _BODY:
            self._more(data)
            return
        buf = self.buf
        if not buf:
            self.buf = data
        elif type(buf) is bytearray:
            buf += data  # in place: a head sent in small pieces is not copied per piece
        else:
            self.buf = buf + data
        if self.phase == _IDLE:
            self._drain()
        elif len(self.buf) > _MAX_AHEAD and not self.paused:  # pipelined behind the request
            self.paused = True
            self.transport.pause_reading()

    # ----------------------------------------------------------------- parsing
    def _drain(self) -> None:
        """Start the requests in the buffer while the connection is free for them (a loop,
        not a recursion through answer(): a client may pipeline thousands)."""
        if self.parsing:
            return
        self.parsing = True
        try:
            while self.buf and self.phase == _IDLE and not self.blocked and self.transport:
                data, self.buf = self.buf, b""
                if not self._parse(data):
                    break
        finally:
            self.parsing = False

    def _parse(self, data: bytes | bytearray) -> bool:
        """Start the request at the front of ``data``; False: its headers are not all here.
        An incomplete head is kept in a bytearray that grows in place and is searched from
        where the last search ended (``scanned``): a head trickled in small pieces costs
        in proportion to its size, not its square."""
        pos = 0
        while data.startswith(b"\r\n", pos):
            pos += 2  # stray CRLF between requests
        scanned = self.scanned
        end = data.find(b"\r\n\r\n", scanned - 3 if scanned > pos + 3 else pos)
        if end < 0:
            line = data.find(b"\r\n", pos)
            if (line < 0 and len(data) - pos > MAX_LINE_SIZE) or len(data) - pos > _MAX_HEAD:
                self._malformed("request line or headers too long")
            elif data.find(b"\n\n", max(pos, self.scanned - 1)) >= 0 or (
                line < 0 and data.find(b"\n", max(pos, self.scanned)) >= 0
            ):  # lines ended by a bare LF: a head that would never end
                self._malformed("bare LF")
            else:
                self.buf = bytearray(data[pos:]) if pos or type(data) is bytes else data
                self.scanned = len(self.buf)
            return False
        self.scanned = 0
        if type(data) is bytearray:
            data = bytes(data)  # (once per request whose head came in pieces)
        try:
            req = self._head(data[pos:end].decode("utf-8", "surrogateescape"))
            length = self._length(req)
        except ValueError as exc:
            self._malformed(str(exc))
            return True
        self.req = req
        self.length = length
        start = end + 4
        reply = self.server.app.head(req)
        if reply is None:
            self.phase = _BODY
            if length > self.server.max_body:
                self.answer(req, self.server.app.too_large(req))
            elif length >= 0 and len(data) - start >= length:  # all of it came: no wait
                req.body = data[start : start + length] if length else b""
                self.phase = _BUSY
                self.buf = data[start + length :]
                self._handle(req)
            else:
                self.parts = []
                self.have = 0
                self.chunks = bytearray()
                if self._more(data[start:]):
                    self._continue(req)
            return True
        if length >= 0 and len(data) - start >= length:  # answered; its body is all here
            self.phase = _BUSY
            self.buf = data[start + length :]
        else:
            self.phase = _BODY  # answered before its body: the connection closes
        self.answer(req, reply)
        return True

    def _head(self, head: str) -> Request:
        lines = head.split("\r\n")
        line = lines[0]
        if len(line) > MAX_LINE_SIZE:
            raise ValueError("request line too long")
        parts = line.split(" ")
        if len(parts) != 3:
            raise ValueError("bad request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0") or _TOKEN.fullmatch(method) is None:
            raise ValueError("bad request line")
        if not target.startswith("/"):
            scheme, sep, rest = target.partition("://")
            if not sep or scheme.lower() not in ("http", "https"):
                raise ValueError("bad request target")
            target = "/" + rest.partition("/")[2]
        req = Request(self, method, target, version)
        if len(lines) > MAX_HEADERS + 1:
            raise ValueError("too many headers")
        if _CONTROL.search(head) or not head.count("\r") == head.count("\n") == len(lines) - 1:
            raise ValueError("bad character in headers")  # a bare CR or LF, a control
        headers = req.headers
        lengths = set()
        long = len(head) > MAX_FIELD_SIZE
        for line in lines[1:]:  # no regex per line: a profile's 4 % of the gateway
            if long and len(line) > MAX_FIELD_SIZE:
                raise ValueError("header line too long")
            raw, sep, value = line.partition(":")
            name = _NAMES.get(raw) or _valid_name(raw)
            if not sep or not name:
                raise ValueError("bad header line")
            if name not in headers:
                headers[name] = value.strip(" \t")
            elif name == "content-length":
                lengths.add(value.strip(" \t"))
            elif name in ("host", "transfer-encoding"):  # (RFC 9112 3.2, 6.3; as llhttp)
                raise ValueError(f"more than one {name}")
        if lengths and lengths != {headers["content-length"]}:
            raise ValueError("conflicting Content-Length")
        if "host" not in headers and version == "HTTP/1.1":
            raise ValueError("no Host")
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            req.close = "keep-alive" not in conn
        else:
            req.close = "close" in conn
        return req

    @staticmethod
    def _length(req: Request) -> int:
        """The body's length by ``Content-Length`` (0 without), -1: chunked."""
        headers = req.headers
        te = headers.get("transfer-encoding")
        if te is not None:
            if te.lower() != "chunked" or "content-length" in headers:
                raise ValueError("unsupported Transfer-Encoding")
            if req.version == "HTTP/1.0":
                req.close = True  # its framing is faulty: close after it (RFC 9112 6.1)
            return -1
        value = headers.get("content-length")
        if value is None:
            return 0
        if not (value.isascii() and value.isdigit()):  # (str.isdigit() takes '٥' as 5)
            raise ValueError("bad Content-Length")
        return int(value)

    def _more(self, data: bytes) -> bool:
        """More of the body; when it is whole, the request is handled. True while it is
        still arriving."""
        req = self.req
        assert req is not None
        length = self.length
        if length >= 0:
            self.parts.append(data)
            self.have += len(data)
            if self.have < length:
                return True
            whole = b"".join(self.parts)
            self.parts = []
            req.body, rest = whole[:length], whole[length:]
        else:
            buf = self.buf
            if type(buf) is not bytearray:
                buf = self.buf = bytearray(buf)
            buf += data  # in place: a chunk arriving in pieces is not copied per piece
            try:
                end, done = dechunk(buf, 0, self.chunks)
            except ValueError as exc:
                self._malformed(f"bad chunked body: {exc}")
                return False
            decoded, limit = len(self.chunks), self.server.max_body
            # the chunk still arriving counts too: one that says it is huge is not kept
            if decoded > limit or decoded + len(buf) - end > limit + MAX_HEAD:
                self.answer(req, self.server.app.too_large(req))
                return False
            if not done:
                del buf[:end]
                return True
            req.body = bytes(self.chunks)
            rest = bytes(buf[end:])
        self.chunks = bytearray()
        self.phase = _BUSY
        self.buf = rest
        self._handle(req)
        return False

    def _continue(self, req: Request) -> None:
        expect = req.headers.get("expect")
        if expect is None or req.version != "HTTP/1.1" or self.transport is None:
            return
        if expect.lower() != "100-continue":
            self.answer(req, text_reply(417, f"Unknown Expect: {expect}"))
        else:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _malformed(self, why: str) -> None:
        """400 and close: what follows cannot be told apart from the bad request."""
        self.server.guard.count("malformed")
        req = self.req = Request(self, "GET", "/", "HTTP/1.1")
        req.close = True
        error = {"code": "BadRequest", "message": f"malformed request: {why}"}
        if self.phase != _BODY:  # (a body still arriving: closed after a linger, answer())
            self.phase = _BUSY
        self.buf = b""
        self.answer(req, json_reply(400, {"error": error}, []))

    # ----------------------------------------------------------------- answering
    def _handle(self, req: Request) -> None:
        try:
            result = self.server.app.handle(req)
        except Exception:
            _log.exception("gateway: request failed")
            result = text_reply(500, "500 Internal Server Error")
        if result is None:
            return  # the application answers later
        if isinstance(result, Reply):
            self.answer(req, result)
            return
        task = asyncio.get_running_loop().create_task(result)
        self.server.tasks.add(task)
        task.add_done_callback(lambda t: self._done(req, t))

    def _done(self, req: Request, task: asyncio.Task[Reply]) -> None:
        self.server.tasks.discard(task)
        if task.cancelled():
            self.force_close()
            return
        exc = task.exception()
        if exc is not None:
            _log.error("gateway: request failed", exc_info=exc)
            self.answer(req, text_reply(500, "500 Internal Server Error"))
            return
        self.answer(req, task.result())

    def answer(self, req: Request, reply: Reply) -> None:
        """Write ``reply`` to ``req``; then the next request (or the close)."""
        if req is not self.req:
            return  # (a late answer on a connection that moved on or was closed)
        self.req = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        unread = self.phase == _BODY
        close = req.close or unread
        status = reply.status
        out = [
            f"{req.version} {status} {_REASONS.get(status, 'Unknown')}\r\n"
            f"Content-Length: {len(reply.body)}\r\nDate: {self.server.date()}\r\n"
        ]
        typed = False
        for name, value in reply.headers:
            if not typed and name.lower() == "content-type":
                typed = True
            out.append(f"{name}: {value}\r\n")
        if not typed:
            out.append("Content-Type: application/octet-stream\r\n")
        if close:
            out.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            out.append("Connection: keep-alive\r\n")
        out.append("\r\n")
        head = "".join(out).encode("utf-8", "surrogateescape")
        transport.write(head if req.method == "HEAD" else head + reply.body)
        self._g_answered()
        if unread:
            self.transport = None
            self._lingering = transport
            self._g_closing_unread(transport)
            return
        if close:
            self.force_close()
            return
        self.phase = _IDLE
        if self.blocked:  # the next request waits until the client reads (resume_writing)
            if not self.paused:
                self.paused = True
                transport.pause_reading()
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()
        self._drain()
