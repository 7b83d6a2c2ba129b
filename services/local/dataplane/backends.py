"""Replicas as the gateway sees them: a deployment's ready replicas, the requests in
flight on each (at most ``max_concurrent_requests_per_instance``), round robin among them,
the FIFO queue of requests waiting for a free one (``max_queue_wait_ms``) and the test
that sheds a request on its headers when that queue could not serve it in time."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import aiohttp

from ...api.domain import RequestSettings
from .stats import DeploymentStats
from .upstream import UnixPool


class QueueTimeout(Exception):
    pass


def client_session(connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
    """A session as the hot path wants it: no cookies, no decompression, no extra headers."""
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


class Instance:
    """One replica: its address and, for ``unix:PATH``, its own kept-alive connections."""

    __slots__ = ("address", "base_url", "inflight", "limit", "pool")

    def __init__(self, address: str, limit: int) -> None:
        self.address = address
        self.limit = limit
        self.inflight = 0
        self.pool: UnixPool | None = None  # None: the gateway's shared aiohttp session
        if address.startswith("unix:"):
            # a replica's Unix socket (0700 directory): the connections are kept per replica
            self.pool = UnixPool(address[len("unix:") :])
            self.base_url = "http://replica"
        else:  # http://host:port, e.g. a scoring server run by hand
            self.base_url = address.rstrip("/")

    def close(self) -> Any:
        """Close its own connections (the coroutine to await, or None)."""
        if self.pool is not None:
            self.pool.close()
        return None


class Backend:
    """One deployment as the gateway sees it: its ready replicas and request settings."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.endpoint = endpoint
        self.name = name
        self.instances: list[Instance] = []
        self.rr = 0
        self.settings = RequestSettings()
        self.timeout_s = self.settings.request_timeout_ms / 1000
        self.waiters: deque[asyncio.Future[Instance]] = deque()
        self.max_waiters = 1000
        self.stats = DeploymentStats()
        self.stale: list[Instance] = []  # removed but with requests still in flight
        #: how long a replica takes to answer, seconds (moving average; 0: not known yet)
        self.service_s = 0.0
        #: the 429 answer's body and Retry-After, with the (replicas, settings) they say
        self.busy_answer: tuple[tuple[int, RequestSettings], bytes, str] | None = None
        #: requests sent by forwarding.Relay, oldest deadline first, and its one timer
        self.relays: deque[Any] = deque()
        self.relay_timer: asyncio.TimerHandle | None = None

    def configure(self, addresses: Sequence[str], settings: RequestSettings) -> list[Instance]:
        """Swap in the ready replicas; returns the instances dropped with nothing in flight
        (their connections are to be closed)."""
        limit = max(1, settings.max_concurrent_requests_per_instance)
        known = {i.address: i for i in self.instances}
        fresh: list[Instance] = []
        for address in addresses:
            inst = known.pop(address, None) or Instance(address, limit)
            inst.limit = limit
            fresh.append(inst)
        gone = [*self.stale, *known.values()]
        self.stale = [i for i in gone if i.inflight > 0]
        if settings != self.settings:
            self.settings = settings
            self.timeout_s = settings.request_timeout_ms / 1000
        self.max_waiters = max(100, 10 * limit * max(1, len(fresh)))
        self.instances = fresh  # one assignment: requests see the old set or the new one
        self._dispatch()
        return [i for i in gone if i.inflight <= 0]

    def all_instances(self) -> list[Instance]:
        return [*self.instances, *self.stale]

    @property
    def inflight(self) -> int:
        return sum(i.inflight for i in self.instances) + sum(i.inflight for i in self.stale)

    def observe(self, seconds: float) -> None:
        """A replica answered in ``seconds`` (for :meth:`overloaded`'s estimate)."""
        self.service_s += (seconds - self.service_s) * 0.2 if self.service_s else seconds

    def overloaded(self) -> bool:
        """No replica is free and a request queued now would wait past
        ``max_queue_wait_ms`` (the queue is full, or the requests ahead of it need longer
        at the replicas' recent pace): it is answered 429 at once, on its headers, instead
        of holding its connection and body until the wait runs out. False when there is
        no replica (the 503 is :func:`forward`'s)."""
        capacity = 0
        for inst in self.instances:
            if inst.inflight < inst.limit:
                return False
            capacity += inst.limit
        if not capacity:
            return False
        queued = len(self.waiters)
        if queued >= self.max_waiters:
            return True
        wait_s = self.settings.max_queue_wait_ms / 1000
        return wait_s <= 0 or queued * self.service_s > wait_s * capacity

    def try_acquire(self) -> Instance | None:
        instances = self.instances
        n = len(instances)
        start = self.rr
        for k in range(n):
            inst = instances[(start + k) % n]
            if inst.inflight < inst.limit:
                self.rr = (start + k + 1) % n
                inst.inflight += 1
                return inst
        return None

    async def acquire(self, wait_s: float) -> Instance:
        inst = self.try_acquire()
        if inst is not None:
            return inst
        if wait_s <= 0 or len(self.waiters) >= self.max_waiters:
            raise QueueTimeout
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Instance] = loop.create_future()
        self.waiters.append(fut)
        timer = loop.call_later(wait_s, expire, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(fut.result())  # handed over just as the client went away
            raise
        finally:
            timer.cancel()

    def release(self, inst: Instance) -> None:
        inst.inflight -= 1
        if self.waiters:
            self._dispatch()

    def _dispatch(self) -> None:
        waiters = self.waiters
        while waiters:
            fut = waiters[0]
            if fut.done():
                waiters.popleft()
                continue
            inst = self.try_acquire()
            if inst is None:
                return
            waiters.popleft()
            fut.set_result(inst)


def expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(QueueTimeout())
