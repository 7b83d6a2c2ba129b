"""The local workspace's gateway: one HTTP listener in front of every pool deployment.

Routes::

    POST /api/v1/endpoint/{name}/score   auth, split, pin, mirror, balance, forward
    GET  /api/v1/endpoint/{name}/swagger.json
                                         auth, then a deployment's /swagger.json (the
                                         endpoint's ``openapi_uri``, as on Azure ML)
    GET  /metrics                        Prometheus text of per-deployment counters
                                         (Authorization: Bearer METRICS_TOKEN; see below)
    GET  /                               health of the gateway itself

``/metrics`` is off (404) unless the gateway is given a ``metrics_token``, and then it
takes only ``Authorization: Bearer METRICS_TOKEN`` (constant-time compare; 401 without
it): request counts per endpoint and deployment are not for every user of a shared
host. The local daemon makes the token once and keeps it in
``STATE_DIR/metrics.token`` (0600; ``modeldeck daemon status`` names the file), so
the workspace's owner can scrape, e.g. Prometheus with ``authorization:
{credentials_file: ...}``. The dashboard and ``modeldeck online-deployment``
metrics do not use this route: they read the counters in-process, through the
control socket.

Replicas are reached by their address as the pool driver gives it: ``unix:PATH`` (a
replica's Unix socket, in a 0700 directory: the only way in, so keys cannot be
bypassed), each replica with its own connection pool; ``http://HOST:PORT`` is taken too
(one shared pool), for a scoring server run by hand.

The control plane tells it what exists: :meth:`Gateway.set_endpoint` (auth and traffic
of an endpoint, from :class:`EndpointRoute`) and :meth:`Gateway.set_backends` (the
addresses of a deployment's ready replicas and its request settings, set by the pool driver).
Both swap a whole object in one assignment, so a traffic or replica change is atomic
for requests.

Behaviour, per request:

* auth: ``key`` mode takes ``Authorization: Bearer KEY`` with the primary or the
  secondary key (constant-time compare); ``aml_token`` mode a JWT signed with the
  endpoint's token secret (see ``tokens.py``); ``none`` takes anything. Otherwise 401
  with the reason in JSON. The ``Authorization`` header is never forwarded nor logged;
* ``azureml-model-deployment: NAME`` pins the request to that deployment (404 if the
  endpoint has none of that name); otherwise smooth weighted round robin (nginx's
  algorithm) over the traffic weights, which hits the exact ratio over every window of
  100 requests for integer percents;
* ``mirror_traffic``: a counter sends exactly that percent of the (unpinned) requests,
  also to the mirror deployment; its answers are dropped, at most ``mirror_limit``
  copies are in flight (more are dropped, counted);
* replicas: round robin among the deployment's ready replicas, at most
  ``max_concurrent_requests_per_instance`` requests in flight on each; beyond that a
  request waits up to ``max_queue_wait_ms`` in a FIFO queue, then 429;
* ``request_timeout_ms`` -> 504 naming it; body over ``max_body_bytes`` -> 413;
  a replica that refuses or drops the connection before answering -> the request is
  tried once more on another replica, then 502;
* ``x-request-id`` is passed through (or made, uuid4) and returned, with
  ``azureml-model-deployment`` naming the deployment that answered;
  ``x-ms-client-request-id``/``x-ms-request-id`` go to the replica, and its ``x-ms-*``
  answer headers (the scoring host's, as azmlinfsrv's: request ids,
  ``x-ms-run-function-failed``, ``x-ms-run-fn-exec-ms``) come back;
* ``swagger.json``: the same auth; the pinned deployment, else the one with the most
  traffic (not the round robin: reading the spec does not shift the split); the query
  (``?version=3``) goes along.

Per deployment it records the request count, status codes, a latency histogram and a
bounded reservoir of recent latencies (p50/p95/p99), and requests per second.

Per connection (:mod:`.connguard`, ``limits=``): complete headers within
``header_timeout`` of connecting (or of the next request's first byte), kept-alive
connections closed after ``keepalive_timeout`` idle, request bodies cut off when they
trickle (``body_timeout``), at most ``max_connections_per_client`` per peer address and
``max_connections`` in all (the oldest idle connection makes room, one that passed the key
check last; else the new one waits up to a second for a slot, then 503 and close). The key is checked on the headers, before the body is
read; an answer given before the body is read (401, 404, 413) closes the connection.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import math
import socket
import time
import uuid
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from ...api.domain import RequestSettings
from ...api.errors import BackendError, Conflict
from ...drivers.base import EndpointRoute
from ...tokens import TokenError, verify_token
from ..connguard import ConnectionGuard, ConnectionLimits

DEFAULT_MAX_BODY = 5 * 1024 * 1024
#: the client's request ids that go on to the replica (azmlinfsrv echoes them)
_CLIENT_IDS = ("x-ms-client-request-id", "x-ms-request-id")
_RESERVOIR = 2048
_RATE_SLOTS = 64
#: histogram bucket upper bounds, seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _QueueTimeout(Exception):
    pass


# --------------------------------------------------------------------------- statistics


class DeploymentStats:
    """Counters of one deployment; cheap to update on every request."""

    __slots__ = (
        "_lat",
        "_lat_n",
        "_lat_ts",
        "_sec_err",
        "_sec_id",
        "_sec_req",
        "buckets",
        "codes",
        "errors_total",
        "latency_sum",
        "mirror_dropped",
        "requests_total",
        "started",
    )

    def __init__(self) -> None:
        self.requests_total = 0
        self.errors_total = 0
        self.codes: dict[int, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.mirror_dropped = 0
        self._lat = array("d", bytes(8 * _RESERVOIR))
        self._lat_ts = array("d", bytes(8 * _RESERVOIR))
        self._lat_n = 0
        self._sec_id = [-1] * _RATE_SLOTS
        self._sec_req = [0] * _RATE_SLOTS
        self._sec_err = [0] * _RATE_SLOTS
        self.started = time.monotonic()

    def record(self, status: int, latency_s: float, now: float) -> None:
        self.requests_total += 1
        codes = self.codes
        codes[status] = codes.get(status, 0) + 1
        error = status >= 500 or status == 429
        if error:
            self.errors_total += 1
        self.buckets[bisect_left(BUCKETS, latency_s)] += 1
        self.latency_sum += latency_s
        i = self._lat_n % _RESERVOIR
        self._lat[i] = latency_s
        self._lat_ts[i] = now
        self._lat_n += 1
        sec = int(now)
        slot = sec % _RATE_SLOTS
        if self._sec_id[slot] != sec:
            self._sec_id[slot] = sec
            self._sec_req[slot] = 0
            self._sec_err[slot] = 0
        self._sec_req[slot] += 1
        if error:
            self._sec_err[slot] += 1

    def percentiles(
        self, window_s: float = 60.0, now: float | None = None
    ) -> tuple[float | None, float | None, float | None]:
        """(p50, p95, p99) in ms over the recent latencies (last ``window_s`` s, at most 2048)."""
        now = time.monotonic() if now is None else now
        n = min(self._lat_n, _RESERVOIR)
        recent = sorted(self._lat[i] for i in range(n) if now - self._lat_ts[i] <= window_s)
        if not recent:
            return None, None, None

        def pick(q: float) -> float:
            return recent[min(len(recent) - 1, max(0, math.ceil(q * len(recent)) - 1))] * 1000.0

        return pick(0.50), pick(0.95), pick(0.99)

    def rate(self, window_s: int = 10, now: float | None = None) -> tuple[float, float]:
        """(requests per second, error rate 0..1) over the last ``window_s`` seconds."""
        now = time.monotonic() if now is None else now
        sec = int(now)
        window_s = max(1, min(window_s, _RATE_SLOTS - 1))
        requests = errors = 0
        for s in range(sec - window_s + 1, sec + 1):
            slot = s % _RATE_SLOTS
            if self._sec_id[slot] == s:
                requests += self._sec_req[slot]
                errors += self._sec_err[slot]
        span = min(float(window_s), max(now - self.started, 1e-3), (window_s - 1) + (now - sec))
        return requests / max(span, 1e-3), (errors / requests if requests else 0.0)


# --------------------------------------------------------------------------- backends


def _client_session(connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
    """A session as the hot path wants it: no cookies, no decompression, no extra headers."""
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


class _Instance:
    """One replica: its address and, for ``unix:PATH``, a session (connection pool) of its own."""

    __slots__ = ("address", "base_url", "inflight", "limit", "score_url", "session")

    def __init__(self, address: str, limit: int) -> None:
        self.address = address
        self.limit = limit
        self.inflight = 0
        self.session: aiohttp.ClientSession | None = None  # None: the gateway's shared one
        if address.startswith("unix:"):
            # a replica's Unix socket (0700 directory): the connections are kept per replica
            connector = aiohttp.UnixConnector(
                path=address[len("unix:") :], limit=0, keepalive_timeout=30.0
            )
            self.session = _client_session(connector)
            self.base_url = "http://replica"
        else:  # http://host:port, e.g. a scoring server run by hand
            self.base_url = address.rstrip("/")
        self.score_url = self.base_url + "/score"

    def close(self) -> Any:
        """Close its own connections (the coroutine to await, or None)."""
        session, self.session = self.session, None
        return session.close() if session is not None and not session.closed else None


class _Backend:
    """One deployment as the gateway sees it: its ready replicas and request settings."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.endpoint = endpoint
        self.name = name
        self.instances: list[_Instance] = []
        self.rr = 0
        self.settings = RequestSettings()
        self.timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_ms / 1000)
        self.waiters: deque[asyncio.Future[_Instance]] = deque()
        self.max_waiters = 1000
        self.stats = DeploymentStats()
        self.stale: list[_Instance] = []  # removed but with requests still in flight

    def configure(self, addresses: Sequence[str], settings: RequestSettings) -> list[_Instance]:
        """Swap in the ready replicas; returns the instances dropped with nothing in flight
        (their connections are to be closed)."""
        limit = max(1, settings.max_concurrent_requests_per_instance)
        known = {i.address: i for i in self.instances}
        fresh: list[_Instance] = []
        for address in addresses:
            inst = known.pop(address, None) or _Instance(address, limit)
            inst.limit = limit
            fresh.append(inst)
        gone = [*self.stale, *known.values()]
        self.stale = [i for i in gone if i.inflight > 0]
        if settings != self.settings:
            self.settings = settings
            self.timeout = aiohttp.ClientTimeout(total=settings.request_timeout_ms / 1000)
        self.max_waiters = max(100, 10 * limit * max(1, len(fresh)))
        self.instances = fresh  # one assignment: requests see the old set or the new one
        self._dispatch()
        return [i for i in gone if i.inflight <= 0]

    def all_instances(self) -> list[_Instance]:
        return [*self.instances, *self.stale]

    @property
    def inflight(self) -> int:
        return sum(i.inflight for i in self.instances) + sum(i.inflight for i in self.stale)

    def try_acquire(self) -> _Instance | None:
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

    async def acquire(self, wait_s: float) -> _Instance:
        inst = self.try_acquire()
        if inst is not None:
            return inst
        if wait_s <= 0 or len(self.waiters) >= self.max_waiters:
            raise _QueueTimeout
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_Instance] = loop.create_future()
        self.waiters.append(fut)
        timer = loop.call_later(wait_s, _expire, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(fut.result())  # handed over just as the client went away
            raise
        finally:
            timer.cancel()

    def release(self, inst: _Instance) -> None:
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


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(_QueueTimeout())


# --------------------------------------------------------------------------- endpoints


class _Endpoint:
    """An endpoint's auth and traffic split (immutable once built, except the SWRR state)."""

    def __init__(self, route: EndpointRoute) -> None:
        self.route = route
        self.name = route.name
        self.mode = str(route.auth.mode)
        self.keys = [route.auth.primary_key.encode(), route.auth.secondary_key.encode()]
        self.secret = route.auth.token_secret
        peers = sorted((n, int(w)) for n, w in route.traffic.items() if int(w) > 0)
        self.names = [n for n, _ in peers]
        self.weights = [w for _, w in peers]
        self.current = [0] * len(peers)
        self.total = sum(self.weights)
        mirror = [(n, int(p)) for n, p in route.mirror_traffic.items() if int(p) > 0]
        self.mirror_name, self.mirror_pct = mirror[0] if mirror else (None, 0)
        self.mirror_count = 0

    def pick(self) -> str | None:
        """Smooth weighted round robin (nginx): exact ratios, evenly interleaved."""
        n = len(self.weights)
        if n == 0:
            return None
        if n == 1:
            return self.names[0]
        current, weights = self.current, self.weights
        best = 0
        for i in range(n):
            current[i] += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= self.total
        return self.names[best]

    def busiest(self) -> str | None:
        """The deployment with the most traffic (ties: by name), without moving the split."""
        if not self.weights:
            return None
        return min(zip(self.weights, self.names, strict=True), key=lambda wn: (-wn[0], wn[1]))[1]

    def mirror_tick(self) -> str | None:
        """Exactly ``mirror_pct`` of every 100 requests, spread out (Bresenham)."""
        c = self.mirror_count
        self.mirror_count = c + 1
        if (c + 1) * self.mirror_pct // 100 > c * self.mirror_pct // 100:
            return self.mirror_name
        return None

    def authenticate(self, header: str | None) -> str | None:
        """None when allowed; else the reason (never echoes the credential)."""
        if self.mode == "none":
            return None
        what = "key" if self.mode == "key" else "token"
        if header is None:
            return f"missing Authorization header; send 'Authorization: Bearer <{what}>'"
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if (
            scheme.lower() != "bearer"
            or not credential
            or " " in credential
            or not credential.isascii()  # keys and tokens are ASCII; bad bytes arrive escaped
        ):
            return f"malformed Authorization header: expected 'Bearer <{what}>'"
        if self.mode == "key":
            given = credential.encode()
            ok_primary = hmac.compare_digest(given, self.keys[0])
            ok_secondary = hmac.compare_digest(given, self.keys[1])
            if ok_primary or ok_secondary:
                return None
            return (
                "invalid key; get the current keys with: "
                f"modeldeck online-endpoint get-credentials -n {self.name}"
            )
        try:
            verify_token(self.secret, credential, self.name)
        except TokenError as exc:
            return str(exc)
        return None


# --------------------------------------------------------------------------- the gateway


@dataclass(frozen=True)
class GatewayInfo:
    host: str
    port: int
    base_url: str


class Gateway:
    """One HTTP listener for every endpoint of the local pools. Create, ``await start()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        mirror_limit: int = 64,
        metrics_token: str | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.mirror_limit = mirror_limit
        self._endpoints: dict[str, _Endpoint] = {}
        self._backends: dict[str, dict[str, _Backend]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._mirror_tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Future[Any]] = set()
        self._rejected: dict[tuple[str, int], int] = {}
        self._metric_providers: list[Callable[[], Iterable[str]]] = []
        #: GET /metrics needs ``Bearer <this>``; None: the route answers 404 (off)
        self.metrics_token = metrics_token
        #: header/idle/body timeouts and connection bounds of the listener (connguard.py)
        self.connections = ConnectionGuard(
            limits or ConnectionLimits(),
            "gateway",
            logging.getLogger("modeldeck.gateway"),
            fix="retry later; close idle connections; the operator can raise "
            "MODELDECK_GATEWAY_MAX_CONNECTIONS(_PER_CLIENT)",
        )
        self.add_metrics_provider(self.connections.prometheus)

    # ----------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise Conflict(
                    f"gateway port {self.requested_port} on {self.host} is already in use",
                    fix=(
                        f"stop what listens there (ss -ltnp 'sport = :{self.requested_port}') "
                        "or give the gateway another port"
                    ),
                    port=self.requested_port,
                ) from exc
            raise BackendError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror}",
                fix="choose another gateway host or port",
            ) from exc
        sock.listen(1024)
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        sock = self._bind()
        self.port = int(sock.getsockname()[1])
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post("/api/v1/endpoint/{name}/score", self._score)
        app.router.add_get("/api/v1/endpoint/{name}/swagger.json", self._swagger)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._health)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=5.0
        )
        await self._runner.setup()
        await self.connections.serve_sock(self._runner, sock, backlog=1024)

    async def close(self) -> None:
        await self.connections.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._mirror_tasks):
            task.cancel()
        for deps in self._backends.values():
            for backend in deps.values():
                self._close_instances(backend.all_instances())
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- configuration
    def scoring_uri(self, endpoint: str) -> str:
        return f"{self.base_url}/api/v1/endpoint/{endpoint}/score"

    def openapi_uri(self, endpoint: str) -> str:
        return f"{self.base_url}/api/v1/endpoint/{endpoint}/swagger.json"

    def set_endpoint(self, route: EndpointRoute) -> None:
        """Create or replace an endpoint's auth, traffic and mirror (atomic)."""
        self._endpoints[route.name] = _Endpoint(route)

    def remove_endpoint(self, name: str) -> None:
        self._endpoints.pop(name, None)

    def endpoint_route(self, name: str) -> EndpointRoute | None:
        ep = self._endpoints.get(name)
        return ep.route if ep else None

    def set_backends(
        self, endpoint: str, deployment: str, urls: Sequence[str], settings: RequestSettings
    ) -> None:
        """The ready replicas of a deployment (their base URLs) and its request settings."""
        deps = self._backends.setdefault(endpoint, {})
        backend = deps.get(deployment)
        if backend is None:
            backend = deps[deployment] = _Backend(endpoint, deployment)
        self._close_instances(backend.configure(urls, settings))

    def _close_instances(self, instances: Iterable[_Instance]) -> None:
        for inst in instances:
            closing = inst.close()
            if closing is not None:
                task = asyncio.ensure_future(closing)
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    def remove_backends(self, endpoint: str, deployment: str) -> None:
        deps = self._backends.get(endpoint)
        if deps is not None:
            backend = deps.pop(deployment, None)
            if backend is not None:
                for fut in backend.waiters:
                    _expire(fut)
                self._close_instances(backend.all_instances())
            if not deps:
                del self._backends[endpoint]

    def backend_urls(self, endpoint: str, deployment: str) -> list[str]:
        """The addresses of a deployment's replicas in the gateway (internal: never shown)."""
        backend = self._backends.get(endpoint, {}).get(deployment)
        return [i.address for i in backend.instances] if backend else []

    async def drain(
        self, endpoint: str, deployment: str, urls: Iterable[str], timeout: float
    ) -> bool:
        """Wait until no request is in flight to ``urls`` (replicas taken out). False on timeout."""
        backend = self._backends.get(endpoint, {}).get(deployment)
        if backend is None:
            return True
        wanted = set(urls)
        deadline = time.monotonic() + timeout
        while True:
            busy = [
                i
                for i in (*backend.instances, *backend.stale)
                if i.address in wanted and i.inflight > 0
            ]
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    def stats(self, endpoint: str, deployment: str) -> DeploymentStats | None:
        backend = self._backends.get(endpoint, {}).get(deployment)
        return backend.stats if backend else None

    def load(self, endpoint: str, deployment: str) -> tuple[int, int, int]:
        """(requests in flight, requests queued, capacity of the ready replicas)."""
        backend = self._backends.get(endpoint, {}).get(deployment)
        if backend is None:
            return 0, 0, 0
        queued = sum(1 for f in backend.waiters if not f.done())
        capacity = sum(i.limit for i in backend.instances)
        return backend.inflight, queued, capacity

    def add_metrics_provider(self, provider: Callable[[], Iterable[str]]) -> None:
        """Extra Prometheus lines (e.g. replica CPU and memory from the pool driver)."""
        self._metric_providers.append(provider)

    def remove_metrics_provider(self, provider: Callable[[], Iterable[str]]) -> None:
        if provider in self._metric_providers:
            self._metric_providers.remove(provider)

    # ----------------------------------------------------------------- request path
    @staticmethod
    def _error(
        status: int,
        code: str,
        message: str,
        rid: str,
        deployment: str | None = None,
        fix: str | None = None,
    ) -> web.Response:
        error: dict[str, Any] = {"code": code, "message": message}
        if fix:
            error["fix"] = fix
        headers = {"x-request-id": rid}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="modeldeck"'
        return web.json_response({"error": error}, status=status, headers=headers)

    def _reject(self, endpoint: str, status: int) -> None:
        key = (endpoint, status)
        self._rejected[key] = self._rejected.get(key, 0) + 1

    def _admit(
        self, request: web.Request, name: str, rid: str, *, count: bool
    ) -> _Endpoint | web.Response:
        """The endpoint a request may use, or its 404 (no such endpoint) or 401 (its auth
        refused), on the headers alone (the body is not read before this check); a request
        let through marks its connection as a key holder's. ``count``: a refusal goes into
        the metrics."""
        ep = self._endpoints.get(name)
        if ep is None:
            if count:
                self._reject(name, 404)
            return self._error(
                404,
                "EndpointNotFound",
                f"endpoint '{name}' not found",
                rid,
                fix="list endpoints with: modeldeck online-endpoint list",
            )
        if ep.mode != "none":
            reason = ep.authenticate(request.headers.get("Authorization"))
            if reason is not None:
                if count:
                    self._reject(name, 401)
                return self._error(401, "Unauthorized", reason, rid)
            ConnectionGuard.trust(request)
        return ep

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="Healthy")

    async def _score(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        headers = request.headers
        rid = headers.get("x-request-id") or str(uuid.uuid4())
        ep = self._admit(request, name, rid, count=True)
        if isinstance(ep, web.Response):
            return ep
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            return self._too_large(name, rid)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(name, rid)
        deps = self._backends.get(name)
        pinned = headers.get("azureml-model-deployment")
        if pinned:
            backend = deps.get(pinned) if deps else None
            if backend is None:
                self._reject(name, 404)
                return self._error(
                    404,
                    "DeploymentNotFound",
                    f"endpoint '{name}' has no deployment '{pinned}' (header azureml-model-deployment)",
                    rid,
                    fix=f"list its deployments with: modeldeck online-deployment list -e {name}",
                )
        else:
            chosen = ep.pick()
            if chosen is None:
                self._reject(name, 503)
                return self._error(
                    503,
                    "NoTraffic",
                    f"endpoint '{name}' sends no traffic to any deployment",
                    rid,
                    fix=f'set traffic, e.g.: modeldeck online-endpoint update -n {name} --traffic "blue=100"',
                )
            backend = deps.get(chosen) if deps else None
            if backend is None:
                self._reject(name, 503)
                return self._error(
                    503,
                    "NoReadyReplica",
                    f"deployment '{chosen}' has no ready replica",
                    rid,
                    chosen,
                )
            if ep.mirror_name is not None and deps is not None:
                target = ep.mirror_tick()
                if target is not None:
                    self._mirror(deps.get(target), body, headers.get("Content-Type"), rid)
        ids = {h: headers[h] for h in _CLIENT_IDS if h in headers}
        return await self._forward(backend, body, headers.get("Content-Type"), rid, ids)

    async def _swagger(self, request: web.Request) -> web.Response:
        """The endpoint's OpenAPI spec: a deployment's ``/swagger.json``, behind the same auth."""
        name = request.match_info["name"]
        headers = request.headers
        rid = headers.get("x-request-id") or str(uuid.uuid4())
        ep = self._admit(request, name, rid, count=False)
        if isinstance(ep, web.Response):
            return ep
        deps = self._backends.get(name) or {}
        pinned = headers.get("azureml-model-deployment")
        chosen = pinned or ep.busiest()
        if chosen is None:
            return self._error(
                503, "NoTraffic", f"endpoint '{name}' sends no traffic to any deployment", rid
            )
        backend = deps.get(chosen)
        if backend is None and pinned:
            return self._error(
                404,
                "DeploymentNotFound",
                f"endpoint '{name}' has no deployment '{pinned}' (header azureml-model-deployment)",
                rid,
            )
        if backend is None or not backend.instances:
            return self._error(
                503, "NoReadyReplica", f"deployment '{chosen}' has no ready replica", rid, chosen
            )
        inst = backend.try_acquire()
        if inst is None:
            try:
                inst = await backend.acquire(backend.settings.max_queue_wait_ms / 1000)
            except _QueueTimeout:
                return self._error(
                    429, "TooManyRequests", f"deployment '{chosen}' is busy", rid, chosen
                )
        assert self._session is not None
        session = inst.session or self._session
        url = (
            inst.base_url
            + "/swagger.json"
            + (f"?{request.query_string}" if request.query_string else "")
        )
        fwd = {"x-request-id": rid, **{h: headers[h] for h in _CLIENT_IDS if h in headers}}
        try:
            async with session.get(url, headers=fwd, timeout=backend.timeout) as resp:
                payload = await resp.read()
                out = {"x-request-id": rid, "azureml-model-deployment": backend.name}
                out.update({k: v for k, v in resp.headers.items() if k.lower().startswith("x-ms-")})
                if "Content-Type" in resp.headers:
                    out["Content-Type"] = resp.headers["Content-Type"]
                return web.Response(body=payload, status=resp.status, headers=out)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._error(
                502,
                "BadGateway",
                f"deployment '{backend.name}' replica failed to answer: {type(exc).__name__}",
                rid,
                backend.name,
            )
        finally:
            backend.release(inst)

    def _too_large(self, name: str, rid: str) -> web.Response:
        self._reject(name, 413)
        return self._error(
            413,
            "RequestEntityTooLarge",
            f"request body over the gateway's limit of {self.max_body_bytes} bytes",
            rid,
            fix="send a smaller body (split the batch), or raise the limit: "
            "MODELDECK_GATEWAY_MAX_BODY_MB (or gateway_max_body_mb under [daemon] in config.toml)"
            ", then modeldeck daemon stop",
        )

    async def _forward(
        self,
        backend: _Backend,
        body: bytes,
        ctype: str | None,
        rid: str,
        ids: dict[str, str] | None = None,
    ) -> web.Response:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stats = backend.stats
        name = backend.name
        inst = backend.try_acquire()
        if inst is None:
            if not backend.instances:
                stats.record(503, loop.time() - t0, time.monotonic())
                return self._error(
                    503, "NoReadyReplica", f"deployment '{name}' has no ready replica", rid, name
                )
            settings = backend.settings
            try:
                inst = await backend.acquire(settings.max_queue_wait_ms / 1000)
            except _QueueTimeout:
                stats.record(429, loop.time() - t0, time.monotonic())
                return self._error(
                    429,
                    "TooManyRequests",
                    (
                        f"deployment '{name}' is busy: {len(backend.instances)} replica(s) x "
                        f"max_concurrent_requests_per_instance={settings.max_concurrent_requests_per_instance} "
                        f"in flight, and none freed within max_queue_wait_ms={settings.max_queue_wait_ms}"
                    ),
                    rid,
                    name,
                    fix="retry later, add replicas (instance_count / autoscale) or raise max_queue_wait_ms",
                )
        fwd_headers = {"x-request-id": rid}
        if ids:
            fwd_headers.update(ids)
        if ctype:
            fwd_headers["Content-Type"] = ctype
        shared = self._session
        assert shared is not None
        tries = 2
        while True:
            retry = False
            failure: Exception | None = None
            session = inst.session or shared
            try:
                async with session.post(
                    inst.score_url, data=body, headers=fwd_headers, timeout=backend.timeout
                ) as resp:
                    payload = await resp.read()
                    status = resp.status
                    rtype = resp.headers.get("Content-Type")
                    ms_headers = [
                        (k, v) for k, v in resp.headers.items() if k[:5].lower() == "x-ms-"
                    ]
            except TimeoutError:
                ms = backend.settings.request_timeout_ms
                stats.record(504, loop.time() - t0, time.monotonic())
                return self._error(
                    504,
                    "RequestTimeout",
                    f"deployment '{name}' did not answer within request_timeout_ms={ms}",
                    rid,
                    name,
                    fix="make run() faster or raise request_settings.request_timeout_ms",
                )
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
                tries -= 1
                retry = tries > 0
                failure = exc
            except aiohttp.ClientError as exc:
                failure = exc
            finally:
                backend.release(inst)
            if failure is None:
                break
            if retry:
                nxt = backend.try_acquire()
                if nxt is not None:
                    inst = nxt
                    continue
            stats.record(502, loop.time() - t0, time.monotonic())
            return self._error(
                502,
                "BadGateway",
                f"deployment '{name}' replica failed to answer: {type(failure).__name__}",
                rid,
                name,
            )
        stats.record(status, loop.time() - t0, time.monotonic())
        out_headers = {"x-request-id": rid, "azureml-model-deployment": name}
        out_headers.update(ms_headers)
        if rtype:
            out_headers["Content-Type"] = rtype
        return web.Response(body=payload, status=status, headers=out_headers)

    def _mirror(self, backend: _Backend | None, body: bytes, ctype: str | None, rid: str) -> None:
        if backend is None:
            return
        if len(self._mirror_tasks) >= self.mirror_limit:
            backend.stats.mirror_dropped += 1
            return
        inst = backend.try_acquire()
        if inst is None:
            backend.stats.mirror_dropped += 1
            return
        task = asyncio.create_task(self._mirror_send(backend, inst, body, ctype, rid))
        self._mirror_tasks.add(task)
        task.add_done_callback(self._mirror_tasks.discard)

    async def _mirror_send(
        self, backend: _Backend, inst: _Instance, body: bytes, ctype: str | None, rid: str
    ) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        headers = {"x-request-id": rid, "x-modeldeck-mirror": "1"}
        if ctype:
            headers["Content-Type"] = ctype
        status = 502
        session = inst.session or self._session
        assert session is not None
        try:
            for attempt in (1, 2):
                try:
                    async with session.post(
                        inst.score_url, data=body, headers=headers, timeout=backend.timeout
                    ) as resp:
                        await resp.read()
                        status = resp.status
                    break
                except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError):
                    status = 502  # nothing was answered: once more, on a stale connection
                    if attempt == 2:
                        break
        except TimeoutError:
            status = 504
        except aiohttp.ClientError:
            status = 502
        finally:
            backend.release(inst)
            backend.stats.record(status, loop.time() - t0, time.monotonic())

    # ----------------------------------------------------------------- metrics
    async def _metrics(self, request: web.Request) -> web.Response:
        rid = request.headers.get("x-request-id") or str(uuid.uuid4())
        token = self.metrics_token
        if not token:
            return self._error(
                404,
                "MetricsOff",
                "GET /metrics is off on this gateway",
                rid,
                fix="the local daemon serves it with a token: see metrics_token_file in "
                "modeldeck daemon status",
            )
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        given = given.strip()
        if (
            scheme.lower() != "bearer"
            or not given.isascii()  # bad bytes arrive escaped: they cannot be encoded
            or not hmac.compare_digest(given.encode(), token.encode())
        ):
            return self._error(
                401,
                "Unauthorized",
                "GET /metrics needs 'Authorization: Bearer <metrics token>'",
                rid,
                fix="the token is in the file named by metrics_token_file in "
                "modeldeck daemon status",
            )
        ConnectionGuard.trust(request)
        return web.Response(
            body=self.prometheus().encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    def prometheus(self) -> str:
        """Prometheus text exposition (version 0.0.4) of every deployment's counters."""
        out: list[str] = []
        now = time.monotonic()

        def lbl(ep: str, dep: str) -> str:
            return f'endpoint="{_esc(ep)}",deployment="{_esc(dep)}"'

        backends = [b for deps in self._backends.values() for b in deps.values()]
        out.append("# HELP modeldeck_requests_total Scoring requests answered, by status code.")
        out.append("# TYPE modeldeck_requests_total counter")
        for b in backends:
            for code, count in sorted(b.stats.codes.items()):
                out.append(
                    f'modeldeck_requests_total{{{lbl(b.endpoint, b.name)},code="{code}"}} {count}'
                )
        out.append("# HELP modeldeck_request_errors_total Requests answered 5xx or 429.")
        out.append("# TYPE modeldeck_request_errors_total counter")
        for b in backends:
            out.append(
                f"modeldeck_request_errors_total{{{lbl(b.endpoint, b.name)}}} {b.stats.errors_total}"
            )
        out.append(
            "# HELP modeldeck_request_duration_seconds Time from arrival at the gateway to the answer."
        )
        out.append("# TYPE modeldeck_request_duration_seconds histogram")
        for b in backends:
            s = b.stats
            base = lbl(b.endpoint, b.name)
            cumulative = 0
            for bound, count in zip(BUCKETS, s.buckets, strict=False):
                cumulative += count
                out.append(
                    f'modeldeck_request_duration_seconds_bucket{{{base},le="{bound:g}"}} {cumulative}'
                )
            cumulative += s.buckets[-1]
            out.append(
                f'modeldeck_request_duration_seconds_bucket{{{base},le="+Inf"}} {cumulative}'
            )
            out.append(f"modeldeck_request_duration_seconds_sum{{{base}}} {s.latency_sum:.6f}")
            out.append(f"modeldeck_request_duration_seconds_count{{{base}}} {s.requests_total}")
        out.append("# HELP modeldeck_request_latency_ms Recent latency percentiles (last 60 s).")
        out.append("# TYPE modeldeck_request_latency_ms gauge")
        for b in backends:
            for q, value in zip(
                ("0.5", "0.95", "0.99"), b.stats.percentiles(60.0, now), strict=True
            ):
                if value is not None:
                    out.append(
                        f'modeldeck_request_latency_ms{{{lbl(b.endpoint, b.name)},quantile="{q}"}} {value:.3f}'
                    )
        out.append("# HELP modeldeck_requests_in_flight Requests being answered now.")
        out.append("# TYPE modeldeck_requests_in_flight gauge")
        for b in backends:
            out.append(f"modeldeck_requests_in_flight{{{lbl(b.endpoint, b.name)}}} {b.inflight}")
        out.append("# HELP modeldeck_replicas_ready Replicas receiving requests.")
        out.append("# TYPE modeldeck_replicas_ready gauge")
        for b in backends:
            out.append(f"modeldeck_replicas_ready{{{lbl(b.endpoint, b.name)}}} {len(b.instances)}")
        out.append("# HELP modeldeck_mirror_dropped_total Mirror copies dropped (mirror busy).")
        out.append("# TYPE modeldeck_mirror_dropped_total counter")
        for b in backends:
            out.append(
                f"modeldeck_mirror_dropped_total{{{lbl(b.endpoint, b.name)}}} {b.stats.mirror_dropped}"
            )
        out.append("# HELP modeldeck_rejected_total Requests refused before reaching a deployment.")
        out.append("# TYPE modeldeck_rejected_total counter")
        for (ep, code), count in sorted(self._rejected.items()):
            out.append(f'modeldeck_rejected_total{{endpoint="{_esc(ep)}",code="{code}"}} {count}')
        provided: list[str] = []
        for provider in list(self._metric_providers):
            try:
                provided.extend(provider())
            except Exception:  # a provider must not break the scrape
                continue
        out.extend(_merge_families(provided))
        return "\n".join(out) + "\n"


def _merge_families(lines: Iterable[str]) -> list[str]:
    """One group per metric family: several pools provide the same families, and the text
    format allows one HELP and one TYPE per name, with all its samples together."""
    order: list[str] = []
    meta: dict[str, dict[str, str]] = {}
    samples: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith(("# HELP ", "# TYPE ")):
            parts = line.split(" ", 3)
            if len(parts) < 3:
                continue
            name = parts[2]
            meta.setdefault(name, {}).setdefault(parts[1], line)
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            samples.setdefault(name, []).append(line)
        else:
            continue
        if name not in order:
            order.append(name)
    out: list[str] = []
    for name in order:
        kinds = meta.get(name, {})
        out += [kinds[k] for k in ("HELP", "TYPE") if k in kinds]
        out += samples.get(name, [])
    return out


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
