"""Connection limits for the daemon's HTTP listeners: the gateway and the control socket.

aiohttp bounds what one request may be (request line, header sizes, header count) but not
how long a client may hold a connection nor how many it may hold: a client that connects
and sends nothing, or one header byte now and then, kept a connection (and a descriptor)
for an hour. :class:`ConnectionGuard` serves an aiohttp ``AppRunner`` through a request
handler of its own (the control socket), or the gateway's own server
(``dataplane/server.py``, each connection a :class:`Guarded`), and enforces, per listener (:class:`ConnectionLimits`, defaults in
brackets):

* ``header_timeout`` [10 s]: a new connection must deliver complete request headers
  within it of connecting; a kept-alive connection within it of the next request's first
  byte. A client that sends nothing, or trickles header bytes, is closed;
* ``keepalive_timeout`` [30 s]: a kept-alive connection on which no next request starts
  within it of the previous response is closed;
* ``body_timeout`` [30 s]: a request body still arriving is given this much, plus one
  second per KiB received (:data:`BODY_MIN_RATE`, as Apache's ``RequestReadTimeout``
  ``MinRate``), so a body trickled a byte at a time is cut off; a handler waiting for
  its own work (a slow replica, a long operation) is not limited here;
* ``max_connections_per_client`` [512 on the gateway, 64 on the control socket]: connections from one peer address
  (TCP) or one process (Unix socket: the peer's pid, from ``SO_PEERCRED``);
* ``max_connections`` [4096 on the gateway, 256 on the control socket]: all connections of the listener; the
  daemon also keeps it under half of what its descriptor limit leaves free
  (:func:`fd_budget`), so a flood never reaches ``EMFILE``.

Beyond a bound the oldest connection of that client (or of all) that has no request in
progress is closed to make room (on a shared host every local user is ``127.0.0.1``:
idle connections must not lock out the next real request), one that has passed the
listener's key or token check (:meth:`ConnectionGuard.trust`, called by the gateway) only
when every open connection has; when none can go, the new connection waits, its reading
paused, for one to end (up to ``_WAIT_S``, at most ``_MAX_WAITING`` of them), and is
then answered ``503`` with a short JSON body and ``Connection: close``, and closed.

A request answered while its body is still arriving (the gateway's 401, 404 or 413, given
on the headers) gets ``Connection: close`` and leaves the bounds at once: its connection
is shut for writing and what still arrives is dropped for at most a second
(``_LINGER_S``, at once beyond ``_MAX_LINGERING`` of them), instead of aiohttp reading
the rest for up to 10 s with the connection busy and so not evictable: else a client
without a key could hold every slot with big POSTs trickled slowly. Events are counted, not logged one by one: the first
refusal, eviction or stalled body of an interval is logged at once, and one summary line
per ``log_interval`` [60 s] counts the rest (header timeouts included; keep-alive closes
and clients that hung up, the normal course, alone make no line). Malformed requests
(answered 400 by aiohttp, or by the gateway's server) and clients that vanish mid-request are counted there instead of a
traceback each; ``EMFILE`` on accept likewise (:data:`ConnectionGuard.totals` has all).

The checks run in a sweep every ``min(timeouts) / 4`` (at most every second) over the
open connections; the request path only counts the bytes it reads.

Why this is one file (over 600 lines): it is one state machine. The request handler
subclass and the guard share each connection's state (the ``_g_*`` attributes) and its
bookkeeping (a connection is counted in the listener's and its client's tables, or waits
for a slot, and leaves them exactly once), which admission, eviction, the sweep and
``connection_lost`` keep together; split across modules, each part would reach into the
others' privates. A good part of the length is this docstring and the notes on races.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from ..prometheus import family

#: bytes per second a request body must average to earn more time than ``body_timeout``
BODY_MIN_RATE = 1024
#: request parsing limits, stated here so that they do not move with aiohttp's version
#: (before 3.14 it allowed 32768 header fields)
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
_SCAN = 512  # connections examined at most when looking for an idle one to close
_LINGER_S = 1.0  # a refused connection is read and dropped this long before it closes
_MAX_LINGERING = 64  # beyond this many, refused connections close at once
_WAIT_S = 1.0  # a new connection over a bound waits this long for a slot before the 503
_MAX_WAITING = 64  # beyond this many waiting, the 503 at once
_ACCEPT_EXHAUSTED = "socket.accept() out of system resource"
_OR_TRUSTED = " or kept alive by a client that passed the key check"
_now = time.monotonic


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how many connections one listener allows (see the module docstring)."""

    header_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    body_timeout: float = 30.0
    max_connections: int = 4096
    max_connections_per_client: int = 512
    log_interval: float = 60.0

    @property
    def sweep_interval(self) -> float:
        shortest = min(self.header_timeout, self.keepalive_timeout, self.body_timeout)
        return min(1.0, max(0.02, shortest / 4))


def fd_budget(reserve_share: int = 4, ceiling: int = 512) -> int:
    """Descriptors a listener may use: half of the soft limit left after a reserve (a
    quarter of the limit, at most ``ceiling``) for replicas' pipes, logs and the store;
    each gateway connection may need a second one towards a replica."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(32, (soft - min(ceiling, soft // reserve_share)) // 2)


def raise_fd_limit() -> tuple[int, int, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit: (before, after, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # e.g. macOS caps it at OPEN_MAX: keep what we have
        return soft, soft, hard
    return soft, target, hard


class Guarded:
    """What the guard keeps on each connection of its listeners (the ``_g_*`` attributes),
    and the steps every such connection takes: admission on connect, counting what it
    reads, closing after an answer given before its body was read, leaving the bounds
    when it ends. Two protocols use it: :class:`_Handler` (aiohttp's request handler, the
    control socket) and the gateway's own server (``dataplane/server.py``). A subclass
    says whether it waits for a request (:attr:`_g_idle`), whether a request body is
    still arriving (:meth:`_g_reading`), how it starts serving (:meth:`_g_serve`), and
    has ``force_close()`` (close it now)."""

    __slots__ = ()
    _g: ConnectionGuard
    _g_key: str
    _g_refused: bool
    _g_waiting: bool
    _g_unread: bool
    _g_trusted: bool
    _g_in: int
    _g_anchor: float
    _g_anchor_in: int
    _g_fresh: bool
    _g_first: float
    _g_body_at: float
    _g_body_in: int

    def _g_init(self, guard: ConnectionGuard) -> None:
        self._g = guard
        self._g_key = ""
        self._g_refused = False
        self._g_waiting = False  # over a bound, reading paused, until a connection ends
        self._g_unread = False  # answered before its body was read: closing
        self._g_trusted = False  # passed the listener's key or token check (see trust())
        self._g_in = 0  # bytes read on this connection
        self._g_anchor = 0.0  # when it connected, or when the previous response ended
        self._g_anchor_in = 0  # bytes read by then
        self._g_fresh = True  # no response yet
        self._g_first = 0.0  # when the sweep saw the next request's first byte
        self._g_body_at = 0.0  # when the sweep saw a body still arriving
        self._g_body_in = 0

    def _g_open(self, transport: asyncio.BaseTransport) -> bool:
        """On connect: True when it may serve now; False when it waits for a slot
        (``_g_admitted`` follows) or was refused (the 503 is on its way)."""
        refusal = self._g.admit(self, transport)
        if self._g_waiting:
            return False
        if refusal is not None:
            self._g_refused = True
            self._g.refuse(transport, refusal)
            return False
        return True

    def _g_admitted(self, transport: asyncio.BaseTransport) -> None:
        """A slot freed for a connection that waited: serve it, its reading resumed."""
        self._g_waiting = False
        self._g_serve(transport)
        assert isinstance(transport, asyncio.Transport)
        transport.resume_reading()

    def _g_serve(self, transport: asyncio.BaseTransport) -> None:
        """Serve the connection (admitted on connect, or after waiting for a slot)."""
        raise NotImplementedError

    def _g_lost(self) -> bool:
        """On connection_lost: leave the guard's tables; True when it had been served."""
        if self._g_waiting:
            self._g._waiting.pop(self, None)
            return False
        if self._g_refused:
            self._g.lingering -= 1
            return False
        if self._g_unread:
            self._g.lingering -= 1
            self._g._refused.discard(self._g_transport())
        self._g.forget(self)
        return True

    def _g_transport(self) -> asyncio.BaseTransport | None:
        return getattr(self, "transport", None)

    def _g_closing_unread(self, transport: asyncio.BaseTransport) -> None:
        """Answered while its body still arrives (``Connection: close`` sent): out of the
        bounds at once, shut for writing, what still comes dropped for a while."""
        self._g_unread = True
        self._g.forget(self)  # no longer counts against the bounds
        self._g.count("unread")
        self._g.linger(transport)

    def _g_answered(self) -> None:
        """After every response: the keep-alive wait starts now."""
        self._g_anchor = _now()
        self._g_anchor_in = self._g_in
        self._g_fresh = False
        self._g_first = 0.0

    @property
    def _g_idle(self) -> bool:
        """Waiting for a request (none in progress)."""
        raise NotImplementedError

    def _g_reading(self) -> bool:
        """A request's body is still arriving."""
        raise NotImplementedError


class _Handler(Guarded, RequestHandler):  # type: ignore[misc]
    """aiohttp's request handler, with what the guard needs to know about its connection."""

    __slots__ = (
        "_g",
        "_g_anchor",
        "_g_anchor_in",
        "_g_body_at",
        "_g_body_in",
        "_g_first",
        "_g_fresh",
        "_g_in",
        "_g_key",
        "_g_refused",
        "_g_trusted",
        "_g_unread",
        "_g_waiting",
    )

    def __init__(self, guard: ConnectionGuard, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._g_init(guard)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._g_open(transport):
            super().connection_made(transport)

    def _g_serve(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._g_refused or self._g_unread:
            return  # read and dropped until it closes
        self._g_in += len(data)
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._g_lost():
            super().connection_lost(exc)

    async def finish_response(
        self, request: Any, resp: Any, start_time: float | None
    ) -> tuple[Any, bool]:
        # An answer given while the body is still arriving (401, 404, 413 before reading
        # it) ends the connection: aiohttp would otherwise read and discard the rest for
        # up to 10 s (lingering) with the connection busy, so unevictable, and a client
        # without a key could hold every slot that way.
        unread = not request.content.is_eof()
        if unread:
            resp.force_close()  # "Connection: close" (when the head is not sent yet)
        result = await super().finish_response(request, resp, start_time)
        transport = self.transport
        if unread and transport is not None and not self._force_close:
            self._force_close = True  # no lingering read, no next request
            self._g_closing_unread(transport)
        return result

    def log_access(self, request: Any, response: Any, start: float | None) -> None:
        # called after every response: the keep-alive wait starts now
        self._g_answered()
        super().log_access(request, response, start)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            self._g.count("malformed")  # answered 400 by aiohttp; the client's mistake
            return
        gone = self.transport is None or self.transport.is_closing()
        if isinstance(exc, ConnectionError) and gone:
            self._g.count("vanished")  # the client (or the guard) closed mid-request
            return
        super().log_exception(*args, **kw)

    @property
    def _g_idle(self) -> bool:
        """Waiting for a request (none in progress): aiohttp's own keep-alive test."""
        waiter = getattr(self, "_waiter", None)
        return waiter is not None and not waiter.done()

    def _g_reading(self) -> bool:
        request = getattr(self, "_current_request", None)
        return request is not None and not request.content.is_eof()


_EVENTS = {
    "header": "closed {n} that sent no complete headers within header_timeout={header}s",
    "idle": "closed {n} idle past keepalive_timeout={keepalive}s",
    "body": "closed {n} whose body stalled (body_timeout={body}s)",
    "evicted": "closed {n} idle to make room",
    "refused_client": "refused {n} with 503 over max_connections_per_client={per_client}",
    "refused_total": "refused {n} with 503 over max_connections={total}",
    "accept_exhausted": "{n} accept() failures for lack of descriptors",
    "malformed": "answered {n} malformed requests 400",
    "unread": "closed {n} answered before their body was read (401, 404, 413)",
    "vanished": "{n} clients went away mid-request",
}
_ROUTINE = frozenset({"idle", "vanished"})
_NOTEWORTHY = ("body", "evicted", "refused_client", "refused_total", "accept_exhausted")


class ConnectionGuard:
    """Serve an aiohttp runner with :class:`ConnectionLimits`. ``await serve_sock(...)`` or
    ``serve_unix(...)``, then ``await close()`` before ``runner.cleanup()``."""

    def __init__(
        self,
        limits: ConnectionLimits,
        name: str,
        logger: logging.Logger | None = None,
        *,
        fix: str = "",
    ) -> None:
        self.limits = limits
        self.name = name
        self.log = logger or logging.getLogger("modeldeck.daemon")
        self.max_total = max(1, limits.max_connections)
        self.max_client = max(1, min(limits.max_connections_per_client, self.max_total))
        self._all: dict[Guarded, None] = {}  # insertion order: oldest first
        self._clients: dict[str, dict[Guarded, None]] = {}
        self.lingering = 0
        self._waiting: dict[Guarded, tuple[asyncio.Transport, str, float]] = {}
        self._waking = False
        self._refused: set[asyncio.BaseTransport] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._accept_fds: set[int] = set()  # listening sockets, for the EMFILE filter
        self._sweeper: asyncio.Task[None] | None = None
        self._counts: dict[str, int] = dict.fromkeys(_EVENTS, 0)
        self.totals: dict[str, int] = dict.fromkeys(_EVENTS, 0)
        self.peak = 0
        self._last_log = _now()
        self._quiet_until = 0.0
        self._fix = fix
        self._answers = {
            "refused_client": _refusal(
                f"too many connections from this client to the {name} "
                f"(max_connections_per_client={self.max_client}, each with a request in "
                f"progress{_OR_TRUSTED})",
                fix,
            ),
            "refused_total": _refusal(
                f"the {name} has too many connections open (max_connections="
                f"{self.max_total}, each with a request in progress{_OR_TRUSTED})",
                fix,
            ),
        }

    # ----------------------------------------------------------------- serving
    def _factory(self, runner: web.BaseRunner) -> Callable[[], _Handler]:
        server = runner.server
        if server is None:
            raise RuntimeError("call runner.setup() before serving it")
        loop = asyncio.get_running_loop()
        kwargs = {
            "loop": loop,
            "access_log": None,
            # a backstop only: the sweep closes idle connections first
            "keepalive_timeout": 2 * max(self.limits.keepalive_timeout, self.limits.header_timeout)
            + 1,
            "max_line_size": MAX_LINE_SIZE,
            "max_field_size": MAX_FIELD_SIZE,
            "max_headers": MAX_HEADERS,
        }
        return lambda: _Handler(self, server, **kwargs)

    async def serve_sock(self, runner: web.BaseRunner, sock: socket.socket, backlog: int) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._factory(runner), sock=sock, backlog=backlog)
        self._started(loop, server)

    async def serve_protocol(
        self, factory: Callable[[], asyncio.Protocol], sock: socket.socket, backlog: int
    ) -> None:
        """Serve ``sock`` with connections of ``factory``, each a :class:`Guarded`."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, sock=sock, backlog=backlog)
        self._started(loop, server)

    async def serve_unix(self, runner: web.BaseRunner, path: str, backlog: int = 128) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(self._factory(runner), path, backlog=backlog)
        self._started(loop, server)

    def _started(self, loop: asyncio.AbstractEventLoop, server: asyncio.AbstractServer) -> None:
        self._servers.append(server)
        if not self._accept_fds:
            _filter_accept_errors(loop, self, self._accept_fds)
        self._accept_fds.update(s.fileno() for s in server.sockets)
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def close(self) -> None:
        """Stop accepting and sweeping (the runner's cleanup closes the live connections)."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        self._accept_fds.clear()  # the filter passes everything on from now
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for transport in list(self._refused):
            transport.close()
        self._refused.clear()
        for transport, _kind, _since in list(self._waiting.values()):
            transport.close()
        self._waiting.clear()
        self._flush_log(force=True)

    @property
    def open_connections(self) -> int:
        return len(self._all)

    def prometheus(self, prefix: str = "modeldeck_gateway") -> list[str]:
        """Open connections and what the limits closed or refused, as Prometheus text."""
        out = [
            *family(f"{prefix}_connections", "gauge", "Connections open now."),
            f"{prefix}_connections {len(self._all)}",
            *family(
                f"{prefix}_connections_limited_total",
                "counter",
                "Connections closed or refused by the connection limits, by reason.",
            ),
        ]
        for reason in ("header", "idle", "body", "evicted", "refused_client", "refused_total"):
            out.append(
                f'{prefix}_connections_limited_total{{reason="{reason}"}} {self.totals[reason]}'
            )
        return out

    # ----------------------------------------------------------------- admission
    def admit(self, handler: Guarded, transport: asyncio.BaseTransport) -> bytes | None:
        """None when ``handler`` may serve (or waits for a slot: ``handler._g_waiting``,
        its reading paused); else the 503 to answer."""
        handler._g_key = _client_key(transport)
        kind = self._room(handler)
        if kind is None:
            return None
        if len(self._waiting) < _MAX_WAITING and isinstance(transport, asyncio.Transport):
            # every connection busy: those in progress without a key are answered on their
            # headers, so a slot is usually free within milliseconds
            transport.pause_reading()
            handler._g_waiting = True
            self._waiting[handler] = (transport, kind, _now())
            return None
        return self._refuse_event(kind, handler._g_key)

    def _room(self, handler: Guarded) -> str | None:
        """Count ``handler`` in, evicting an idle connection when a bound is reached;
        else the bound that refuses it."""
        key = handler._g_key
        mine = self._clients.get(key) or {}
        if len(mine) >= self.max_client and not self._evict(mine):
            return "refused_client"
        if len(self._all) >= self.max_total and not self._evict(self._all):
            return "refused_total"
        handler._g_anchor = _now()
        # (an eviction may have emptied and dropped this client's entry: fetch it again)
        self._clients.setdefault(key, {})[handler] = None
        self._all[handler] = None
        if len(self._all) > self.peak:
            self.peak = len(self._all)
        return None

    def _admit_waiting(self) -> None:
        self._waking = False
        for handler, (transport, _kind, _since) in list(self._waiting.items()):
            if transport.is_closing():
                del self._waiting[handler]
            elif self._room(handler) is None:
                del self._waiting[handler]
                handler._g_admitted(transport)

    def _refuse_event(self, kind: str, key: str) -> bytes:
        held = len(self._clients.get(key) or ()) if kind == "refused_client" else len(self._all)
        self.count(kind, detail=f"{held} open from {key}")
        return self._answers[kind]

    def refuse(self, transport: asyncio.BaseTransport, answer: bytes) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(answer)
        self.linger(transport)

    def linger(self, transport: asyncio.BaseTransport) -> None:
        """Close ``transport`` once its answer is out, outside the bounds; the caller
        drops what it still reads. ``connection_lost`` undoes the count."""
        assert isinstance(transport, asyncio.Transport)
        self.lingering += 1
        if self.lingering > _MAX_LINGERING or not transport.can_write_eof():
            transport.close()
            return
        # FIN after the answer, then read what the client still sends so that closing
        # does not reset the connection before it has read the 503
        transport.write_eof()
        self._refused.add(transport)
        asyncio.get_running_loop().call_later(_LINGER_S, self._end_linger, transport)

    def _end_linger(self, transport: asyncio.BaseTransport) -> None:
        self._refused.discard(transport)
        transport.close()

    @staticmethod
    def trust(request: web.BaseRequest) -> None:
        """Mark ``request``'s connection as having passed a key or token check: when a
        bound is reached it is closed only after every idle connection that never did."""
        handler = request.protocol
        if isinstance(handler, _Handler):
            ConnectionGuard.trust_connection(handler)

    @staticmethod
    def trust_connection(handler: Guarded) -> None:
        """:meth:`trust`, given the connection."""
        if not handler._g_trusted:
            handler._g_trusted = True
            handler._g._promote(handler)

    def _promote(self, handler: Guarded) -> None:
        # to the young end of the pools: the eviction scan (oldest first, at most _SCAN)
        # meets the untrusted ones first
        if self._all.pop(handler, False) is None:
            self._all[handler] = None
        mine = self._clients.get(handler._g_key)
        if mine is not None and mine.pop(handler, False) is None:
            mine[handler] = None

    def _evict(self, pool: dict[Guarded, None]) -> bool:
        """Close the oldest connection of ``pool`` that has no request in progress,
        preferring one that has sent nothing at all, then one that never completed a
        request, then a kept-alive one between requests that never passed a key check;
        a trusted one (:meth:`trust`) only when no connection that never passed one is
        open (a client without the key can then only wait for its own to finish: 503).
        False when there is none."""
        victim: Guarded | None = None
        best = 4
        untrusted = False
        for n, handler in enumerate(pool):
            if n >= _SCAN:
                break
            untrusted = untrusted or not handler._g_trusted
            if handler._g_fresh and handler._g_in == 0:
                rank = 0  # (it may not even have been read from yet)
            elif handler._g_idle:
                rank = 3 if handler._g_trusted else 1 if handler._g_fresh else 2
            else:
                continue
            if rank < best:
                victim, best = handler, rank
                if rank == 0:
                    break
        if victim is None or (best == 3 and untrusted):
            return False
        self._drop(victim)
        victim.force_close()
        self.count("evicted")
        return True

    def _drop(self, handler: Guarded) -> None:
        if self._waiting and not self._waking:
            self._waking = True  # a slot may be free: admit who waits, once per loop turn
            asyncio.get_running_loop().call_soon(self._admit_waiting)
        self._all.pop(handler, None)
        mine = self._clients.get(handler._g_key)
        if mine is not None:
            mine.pop(handler, None)
            if not mine:
                del self._clients[handler._g_key]

    def forget(self, handler: Guarded) -> None:
        self._drop(handler)

    # ----------------------------------------------------------------- timeouts
    async def _sweep_forever(self) -> None:
        interval = self.limits.sweep_interval
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep()
            except Exception:  # never let the guard die: it is what keeps the daemon up
                self.log.exception("%s: connection sweep failed", self.name)

    def sweep(self, now: float | None = None) -> None:
        now = _now() if now is None else now
        limits = self.limits
        header, keepalive, body = (
            limits.header_timeout,
            limits.keepalive_timeout,
            limits.body_timeout,
        )
        expired: list[tuple[Guarded, str]] = []
        for handler in self._all:
            if handler._g_idle:
                handler._g_body_at = 0.0
                if handler._g_fresh:
                    if now >= handler._g_anchor + header:
                        expired.append((handler, "header"))
                elif handler._g_in == handler._g_anchor_in:
                    if now >= handler._g_anchor + keepalive:
                        expired.append((handler, "idle"))
                elif not handler._g_first:
                    handler._g_first = now
                elif now >= handler._g_first + header:
                    expired.append((handler, "header"))
                continue
            if not handler._g_reading():
                handler._g_body_at = 0.0  # working on it, or answering: not ours to time
            elif not handler._g_body_at:
                handler._g_body_at = now
                handler._g_body_in = handler._g_in
            elif (
                now
                >= handler._g_body_at + body + (handler._g_in - handler._g_body_in) / BODY_MIN_RATE
            ):
                expired.append((handler, "body"))
        for handler, kind in expired:
            self._drop(handler)
            handler.force_close()
            self.count(kind)
        for handler, (transport, kind, since) in list(self._waiting.items()):
            if now >= since + _WAIT_S:
                del self._waiting[handler]
                handler._g_waiting = False
                handler._g_refused = True
                transport.resume_reading()  # (read and dropped while the 503 lingers)
                self.refuse(transport, self._refuse_event(kind, handler._g_key))
        self._flush_log(now=now)

    # ----------------------------------------------------------------- rate-limited log
    def count(self, kind: str, detail: str = "") -> None:
        self._counts[kind] += 1
        self.totals[kind] += 1
        if kind in _NOTEWORTHY and _now() >= self._quiet_until:
            # the first of an interval at once; the rest in the summary
            self._quiet_until = _now() + self.limits.log_interval
            self.log.warning(
                "%s: %s%s; further connection events are summarized every %gs",
                self.name,
                self._describe({kind: 1}),
                f" ({detail})" if detail else "",
                self.limits.log_interval,
            )
            self._counts[kind] -= 1

    def _describe(self, counts: dict[str, int]) -> str:
        limits = self.limits
        values = {
            "header": f"{limits.header_timeout:g}",
            "keepalive": f"{limits.keepalive_timeout:g}",
            "body": f"{limits.body_timeout:g}",
            "per_client": self.max_client,
            "total": self.max_total,
        }
        parts = [_EVENTS[k].format(n=n, **values) for k, n in counts.items() if n]
        return "; ".join(parts)

    def _flush_log(self, now: float | None = None, force: bool = False) -> None:
        now = _now() if now is None else now
        if not force and now - self._last_log < self.limits.log_interval:
            return
        self._last_log = now
        counts = {k: n for k, n in self._counts.items() if n}
        self._counts = dict.fromkeys(_EVENTS, 0)
        if not set(counts) - _ROUTINE:
            return  # keep-alive closes and clients that hung up: the normal course
        level = logging.WARNING if any(k in _NOTEWORTHY for k in counts) else logging.INFO
        self.log.log(
            level,
            "%s connections in the last %gs: %s; open now %d (peak %d)",
            self.name,
            self.limits.log_interval,
            self._describe(counts),
            len(self._all),
            self.peak,
        )


def _refusal(message: str, fix: str) -> bytes:
    error: dict[str, str] = {"code": "TooManyConnections", "message": message}
    if fix:
        error["fix"] = fix
    body = json.dumps({"error": error}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_PEERCRED = struct.Struct("3i")


def _client_key(transport: asyncio.BaseTransport) -> str:
    """The peer's address (TCP), or its process (Unix socket)."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    sock = transport.get_extra_info("socket")
    opt = getattr(socket, "SO_PEERCRED", None)
    if sock is not None and opt is not None:
        with contextlib.suppress(OSError):
            pid, _uid, _gid = _PEERCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, opt, _PEERCRED.size)
            )
            return f"pid {pid}"
    return "local"


def _filter_accept_errors(
    loop: asyncio.AbstractEventLoop, guard: ConnectionGuard, fds: set[int]
) -> None:
    """Count ``EMFILE`` on accept for the summary instead of a traceback each time
    (asyncio retries the accept a second later by itself)."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        sock = context.get("socket")
        if context.get("message") == _ACCEPT_EXHAUSTED and sock is not None:
            with contextlib.suppress(OSError, ValueError):
                if sock.fileno() in fds:
                    guard.count("accept_exhausted")
                    return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
