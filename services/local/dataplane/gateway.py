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
bypassed), each replica with its own kept-alive connections (:mod:`.upstream`, our own
HTTP/1.1 client: aiohttp's cost the gateway a third of its CPU); ``http://HOST:PORT`` is
taken too (aiohttp, one shared pool), for a scoring server run by hand.

Its rooms (this module is the facade: listener, configuration, the request handlers):
``server.py`` (its HTTP/1.1 server: the request on its headers, then with its body),
``endpoints.py`` (auth and the traffic split of an endpoint), ``backends.py`` (a
deployment's replicas, their in-flight limits and the queue), ``forwarding.py`` (sending
to a replica, mirroring, the JSON error answer), ``upstream.py`` (HTTP/1.1 to a
replica's socket), ``stats.py`` (a deployment's counters),
``metrics.py`` (those counters as Prometheus text).

The control plane tells it what exists: :meth:`Gateway.set_endpoint` (auth and traffic
of an endpoint, from :class:`EndpointRoute`) and :meth:`Gateway.set_backends` (the
addresses of a deployment's ready replicas and its request settings, set by the pool driver).
Both swap a whole object in one assignment, so a traffic or replica change is atomic
for requests.

Behaviour, per request:

* auth: ``key`` mode takes ``Authorization: Bearer KEY`` with the primary or the
  secondary key (constant-time compare); ``aml_token`` mode a JWT signed with the
  endpoint's token secret (see ``services/scoring/host.py``, HS256 tokens); ``none`` takes anything. Otherwise 401
  with the reason in JSON. The ``Authorization`` header is never forwarded nor logged.
  An az ml ``--local`` endpoint (``EndpointAuth.owner_uid``) also takes a request with no
  ``Authorization`` header from a loopback socket of its owner's uid (:mod:`.peeruid`),
  as az ml's local endpoints take requests with no key; other users still need the key;
* ``azureml-model-deployment: NAME`` pins the request to that deployment (404 if the
  endpoint has none of that name); otherwise smooth weighted round robin (nginx's
  algorithm) over the traffic weights, which hits the exact ratio over every window of
  100 requests for integer percents;
* ``mirror_traffic``: a counter sends exactly that percent of the (unpinned) requests,
  also to the mirror deployment; its answers are dropped, at most ``mirror_limit``
  copies are in flight (more are dropped, counted);
* replicas: round robin among the deployment's ready replicas, at most
  ``max_concurrent_requests_per_instance`` requests in flight on each; beyond that a
  request waits up to ``max_queue_wait_ms`` in a FIFO queue, then 429. A request the
  queue could not serve in time (it is full, or the requests ahead of it need longer at
  the replicas' recent pace) is answered 429 at once, on its headers, before its body is
  read: a flooded deployment costs the gateway little and its neighbours keep their
  latency (``bench/endpoint_flood.py``). Every 429 says ``Retry-After``;
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

Per connection (:mod:`..connguard`, ``limits=``): complete headers within
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
import logging
import socket
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import aiohttp

from ...api.domain import RequestSettings
from ...api.errors import BackendError, Conflict
from ...drivers.base import EndpointRoute
from ...prometheus import CONTENT_TYPE
from ...scoring.host import new_request_id
from ..connguard import ConnectionGuard, ConnectionLimits
from .backends import Backend, Instance, QueueTimeout, client_session, expire
from .endpoints import RoutedEndpoint
from .forwarding import CLIENT_IDS, busy, error_response, fetch_swagger, mirror_send, start_forward
from .metrics import exposition, scrape_refusal
from .peeruid import peer_uid
from .server import Reply, Request, Server, text_reply
from .stats import DeploymentStats

DEFAULT_MAX_BODY = 5 * 1024 * 1024


#: the ``endpoint`` label of refusals for a name no endpoint has (not a valid endpoint name)
UNKNOWN_ENDPOINT = "(unknown)"


class _Scoring(NamedTuple):
    """A scoring request let through on its headers: where it goes."""

    backend: Backend
    rid: str
    mirror: Backend | None


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
        self._endpoints: dict[str, RoutedEndpoint] = {}
        self._backends: dict[str, dict[str, Backend]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._server: Server | None = None
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
        self._session = client_session(aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0))
        self._server = Server(self, self.connections, self.max_body_bytes)
        await self.connections.serve_protocol(self._server.factory, sock, backlog=1024)

    async def close(self) -> None:
        await self.connections.close()
        if self._server is not None:
            await self._server.close(grace=5.0)
            self._server = None
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
        self._endpoints[route.name] = RoutedEndpoint(route)

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
            backend = deps[deployment] = Backend(endpoint, deployment)
        self._close_instances(backend.configure(urls, settings))

    def _close_instances(self, instances: Iterable[Instance]) -> None:
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
                    expire(fut)
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
    # (the application of .server: head() on the headers, handle() with the body)
    def _refused(self, name: str, answer: Reply, *, count: bool = True) -> Reply:
        """``answer``, the gateway's own error answer to a request for endpoint ``name``,
        counted in the metrics by its status (``count``)."""
        if count:
            key = (name, answer.status)
            self._rejected[key] = self._rejected.get(key, 0) + 1
        return answer

    def head(self, req: Request) -> Reply | None:
        """The routes (module docstring) on the headers; HEAD as GET; 404, or 405 naming
        the method allowed. None: the body is read, then :meth:`handle`."""
        path, method = req.path, req.method
        allow = "GET, HEAD"
        if path.startswith("/api/v1/endpoint/"):
            name, _, rest = path[17:].partition("/")
            if name and rest == "score":
                if method == "POST":
                    return self._score(req, name)
                allow = "POST"
            elif name and rest == "swagger.json" and method in ("GET", "HEAD"):
                return self._swagger(req, name)
            elif not (name and rest == "swagger.json"):
                return text_reply(404, "404: Not Found")
        elif path == "/metrics" and method in ("GET", "HEAD"):
            return self._metrics(req)
        elif path == "/" and method in ("GET", "HEAD"):
            return text_reply(200, "Healthy")
        elif path not in ("/", "/metrics"):
            return text_reply(404, "404: Not Found")
        return text_reply(405, "405: Method Not Allowed", [("Allow", allow)])

    def handle(self, req: Request) -> Reply | Coroutine[Any, Any, Reply] | None:
        """A request :meth:`head` let through, with its body."""
        state = req.state
        if isinstance(state, _Scoring):
            return self._forward(req, state)
        return state()  # the swagger fetch

    def too_large(self, req: Request) -> Reply:
        state = req.state
        if isinstance(state, _Scoring):
            return self._too_large(state.backend.endpoint, state.rid)
        rid = req.headers.get("x-request-id") or new_request_id()
        return self._too_large("", rid)  # (not a scoring request: not counted)

    def _admit(self, req: Request, name: str, *, count: bool) -> tuple[str, RoutedEndpoint | Reply]:
        """The request id (the client's ``x-request-id``, else a new one) and the endpoint
        the request may use, or its 404 (no such endpoint) or 401 (its auth refused), on
        the headers alone (the body is not read before this check); a request let through
        marks its connection as a key holder's. ``count``: a refusal goes into the metrics."""
        headers = req.headers
        rid = headers.get("x-request-id") or new_request_id()
        ep = self._endpoints.get(name)
        if ep is None:
            answer = error_response(
                404,
                "EndpointNotFound",
                f"endpoint '{name}' not found",
                rid,
                fix="list endpoints with: modeldeck online-endpoint list",
            )
        elif (
            ep.mode != "none"
            and (reason := ep.authenticate(headers.get("authorization"))) is not None
            and not self._owners_own(req, ep)
        ):
            answer = error_response(401, "Unauthorized", reason, rid)
        else:
            if ep.mode != "none":
                ConnectionGuard.trust_connection(req.conn)
            return rid, ep
        # a name no endpoint has is counted under one label: counting each made-up name
        # would let any local user grow the table (and /metrics) without bound
        label = name if ep is not None else UNKNOWN_ENDPOINT
        return rid, self._refused(label, answer, count=count)

    def _owners_own(self, req: Request, ep: RoutedEndpoint) -> bool:
        """A request with no ``Authorization`` header to an az ml ``--local`` endpoint, on a
        connection from a socket of the endpoint owner's uid (:mod:`.peeruid`). The uid is
        asked of the kernel once per connection (a socket's owner does not change); a
        failed lookup is not remembered."""
        if ep.owner_uid is None or "authorization" in req.headers:
            return False
        conn = req.conn
        transport = conn.transport
        if transport is None:
            return False
        uid = conn.peer_uid
        if uid is None:
            peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
            uid = conn.peer_uid = peer_uid(peer, local)
        return uid is not None and uid == ep.owner_uid

    def _score(self, req: Request, name: str) -> Reply | None:
        """Admission of a scoring request on its headers: auth, size, deployment, shed."""
        rid, ep = self._admit(req, name, count=True)
        if isinstance(ep, Reply):
            return ep
        headers = req.headers
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large(name, rid)
        deps = self._backends.get(name)
        pinned = headers.get("azureml-model-deployment")
        mirror = None
        if pinned:
            backend = deps.get(pinned) if deps else None
            if backend is None:
                return self._refused(
                    name,
                    error_response(
                        404,
                        "DeploymentNotFound",
                        f"endpoint '{name}' has no deployment '{pinned}' (header azureml-model-deployment)",
                        rid,
                        fix=f"list its deployments with: modeldeck online-deployment list -e {name}",
                    ),
                )
        else:
            chosen = ep.pick()
            if chosen is None:
                return self._refused(
                    name,
                    error_response(
                        503,
                        "NoTraffic",
                        f"endpoint '{name}' sends no traffic to any deployment",
                        rid,
                        fix=f'set traffic, e.g.: modeldeck online-endpoint update -n {name} --traffic "blue=100"',
                    ),
                )
            backend = deps.get(chosen) if deps else None
            if backend is None:
                return self._refused(
                    name,
                    error_response(
                        503,
                        "NoReadyReplica",
                        f"deployment '{chosen}' has no ready replica",
                        rid,
                        chosen,
                    ),
                )
        if backend.overloaded():
            # shed on the headers: a flood of one deployment costs no body reads nor
            # queued connections, and leaves the gateway to its other endpoints
            return busy(backend, rid)
        if not pinned and ep.mirror_name is not None and deps is not None:
            mirror = ep.mirror_tick()  # (of the requests let through)
            if mirror is not None:
                mirror = deps.get(mirror)
        req.state = _Scoring(backend, rid, mirror)
        return None

    def _forward(self, req: Request, state: _Scoring) -> Coroutine[Any, Any, Reply] | None:
        body = req.body  # (within max_body_bytes: the server's check)
        headers = req.headers
        ctype = headers.get("content-type")
        if state.mirror is not None:
            self._mirror(state.mirror, body, ctype, state.rid)
        ids = {h: headers[h] for h in CLIENT_IDS if h in headers}
        assert self._session is not None
        return start_forward(
            self._session, state.backend, body, ctype, state.rid, ids, partial(req.conn.answer, req)
        )

    def _swagger(self, req: Request, name: str) -> Reply | None:
        """The endpoint's OpenAPI spec: a deployment's ``/swagger.json``, behind the same auth."""
        rid, ep = self._admit(req, name, count=False)
        if isinstance(ep, Reply):
            return ep
        headers = req.headers
        deps = self._backends.get(name) or {}
        pinned = headers.get("azureml-model-deployment")
        chosen = pinned or ep.busiest()
        if chosen is None:
            return error_response(
                503, "NoTraffic", f"endpoint '{name}' sends no traffic to any deployment", rid
            )
        backend = deps.get(chosen)
        if backend is None and pinned:
            return error_response(
                404,
                "DeploymentNotFound",
                f"endpoint '{name}' has no deployment '{pinned}' (header azureml-model-deployment)",
                rid,
            )
        if backend is None or not backend.instances:
            return error_response(
                503, "NoReadyReplica", f"deployment '{chosen}' has no ready replica", rid, chosen
            )
        ids = {h: headers[h] for h in CLIENT_IDS if h in headers}
        req.state = partial(self._fetch_swagger, backend, req.query, rid, ids)
        return None

    async def _fetch_swagger(
        self, backend: Backend, query: str, rid: str, ids: dict[str, str]
    ) -> Reply:
        inst = backend.try_acquire()
        if inst is None:
            try:
                inst = await backend.acquire(backend.settings.max_queue_wait_ms / 1000)
            except QueueTimeout:
                return error_response(
                    429,
                    "TooManyRequests",
                    f"deployment '{backend.name}' is busy",
                    rid,
                    backend.name,
                )
        assert self._session is not None
        return await fetch_swagger(self._session, backend, inst, query, rid, ids)

    def _too_large(self, name: str, rid: str) -> Reply:
        """413, counted under endpoint ``name`` (an empty name: not counted)."""
        return self._refused(
            name,
            error_response(
                413,
                "RequestEntityTooLarge",
                f"request body over the gateway's limit of {self.max_body_bytes} bytes",
                rid,
                fix="send a smaller body (split the batch), or raise the limit: "
                "MODELDECK_GATEWAY_MAX_BODY_MB (or gateway_max_body_mb under [daemon] in config.toml)"
                ", then modeldeck daemon stop",
            ),
            count=bool(name),
        )

    def _mirror(self, backend: Backend, body: bytes, ctype: str | None, rid: str) -> None:
        assert self._session is not None
        if len(self._mirror_tasks) >= self.mirror_limit:
            backend.stats.mirror_dropped += 1
            return
        inst = backend.try_acquire()
        if inst is None:
            backend.stats.mirror_dropped += 1
            return
        task = asyncio.create_task(mirror_send(self._session, backend, inst, body, ctype, rid))
        self._mirror_tasks.add(task)
        task.add_done_callback(self._mirror_tasks.discard)

    # ----------------------------------------------------------------- metrics
    def _metrics(self, req: Request) -> Reply:
        headers = req.headers
        rid = headers.get("x-request-id") or new_request_id()
        refusal = scrape_refusal(headers.get("authorization"), self.metrics_token, rid)
        if refusal is not None:
            return refusal
        ConnectionGuard.trust_connection(req.conn)
        return Reply(200, self.prometheus().encode(), [("Content-Type", CONTENT_TYPE)])

    def prometheus(self) -> str:
        """Prometheus text exposition (version 0.0.4) of every deployment's counters."""
        provided: list[str] = []
        for provider in list(self._metric_providers):
            try:
                provided.extend(provider())
            except Exception:  # a provider must not break the scrape
                continue
        backends = [b for deps in self._backends.values() for b in deps.values()]
        return exposition(backends, self._rejected, provided)
