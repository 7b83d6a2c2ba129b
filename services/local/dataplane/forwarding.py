"""Forwarding to replicas: a scoring request to a free replica of its deployment (or the
queue, 429, 504, one retry on another replica, 502), a mirror copy whose answer is
dropped, a deployment's ``/swagger.json``; and the JSON error answer every route gives."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from .backends import Backend, Instance, QueueTimeout
from .server import Reply, json_reply
from .upstream import Answer, BadAnswer, Unreachable, _Connection, head_of, request_bytes

#: the client's request ids that go on to the replica (azmlinfsrv echoes them)
CLIENT_IDS = ("x-ms-client-request-id", "x-ms-request-id")


def error_response(
    status: int,
    code: str,
    message: str,
    rid: str,
    deployment: str | None = None,
    fix: str | None = None,
) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message}
    if fix:
        error["fix"] = fix
    headers = [("x-request-id", rid)]
    if deployment:
        headers.append(("azureml-model-deployment", deployment))
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="modeldeck"'))
    return json_reply(status, {"error": error}, headers)


def busy(backend: Backend, rid: str, waited_s: float = 0.0) -> Reply:
    """429: no replica of ``backend`` freed within ``max_queue_wait_ms`` (``waited_s``:
    how long this request waited; 0 when it was shed on its headers, the queue being
    full or too slow: :meth:`Backend.overloaded`), counted in its stats; ``Retry-After``
    says when the queue may have room (whole seconds, at least 1). Under a flood this is
    most answers: the body is made once per replica count and settings."""
    settings = backend.settings
    backend.stats.record(429, waited_s, time.monotonic())
    key = (len(backend.instances), settings)
    cached = backend.busy_answer
    if cached is None or cached[0] != key:
        error = {
            "code": "TooManyRequests",
            "message": (
                f"deployment '{backend.name}' is busy: {key[0]} replica(s) x "
                f"max_concurrent_requests_per_instance={settings.max_concurrent_requests_per_instance} "
                f"in flight, and none freed within max_queue_wait_ms={settings.max_queue_wait_ms}"
            ),
            "fix": "retry later, add replicas (instance_count / autoscale) or raise max_queue_wait_ms",
        }
        retry = str(max(1, math.ceil(settings.max_queue_wait_ms / 1000)))
        cached = backend.busy_answer = (key, json.dumps({"error": error}).encode(), retry)
    headers = [
        ("x-request-id", rid),
        ("azureml-model-deployment", backend.name),
        ("Content-Type", "application/json; charset=utf-8"),
        ("Retry-After", cached[2]),
    ]
    return Reply(429, cached[1], headers)


def _headers_to_replica(rid: str, ctype: str | None, ids: dict[str, str] | None) -> dict[str, str]:
    headers = {"x-request-id": rid}
    if ids:
        headers.update(ids)
    if ctype:
        headers["Content-Type"] = ctype
    return headers


def start_forward(
    shared: aiohttp.ClientSession,
    backend: Backend,
    body: bytes,
    ctype: str | None,
    rid: str,
    ids: dict[str, str],
    reply_to: Callable[[Reply], None],
) -> Coroutine[Any, Any, Reply] | None:
    """Forward a scoring request: with a free replica that has an idle connection, sent
    now and answered to ``reply_to`` from the replica's answer (:class:`Relay`: no task);
    else the coroutine :func:`forward` that does it (queue, connect), to be run."""
    inst = backend.try_acquire()
    if inst is not None and inst.pool is not None:
        conn = inst.pool.take()
        if conn is not None:
            headers = _headers_to_replica(rid, ctype, ids)
            data = request_bytes("POST", "/score", headers.items(), body)
            Relay(shared, backend, inst, conn, rid, reply_to, (body, ctype, ids)).send(data)
            return None
    return forward(shared, backend, body, ctype, rid, ids, inst=inst)


class Relay:
    """One request sent to an idle connection of a free replica: the connection's
    answer comes here (it is the connection's waiter) and goes to the client with no
    task in between. A replica that drops the connection before answering: the request
    is tried once more (:func:`forward`, on another free replica); past
    ``request_timeout_ms``: 504; not HTTP: 502. :func:`forward` is the same in a coroutine."""

    __slots__ = (
        "again",
        "backend",
        "conn",
        "deadline",
        "finished",
        "inst",
        "reply_to",
        "rid",
        "shared",
        "t0",
        "timer",
    )

    def __init__(
        self,
        shared: aiohttp.ClientSession,
        backend: Backend,
        inst: Instance,
        conn: _Connection,
        rid: str,
        reply_to: Callable[[Reply], None],
        again: tuple[bytes, str | None, dict[str, str]],
    ) -> None:
        self.backend, self.inst, self.conn = backend, inst, conn
        self.rid, self.reply_to = rid, reply_to
        self.shared, self.again = shared, again  # for the retry
        self.finished = False

    def send(self, data: tuple[bytes, bytes]) -> None:
        """Write the request, then arm its deadline: the replica starts on it meanwhile
        (nothing the replica does can reach this relay before the loop runs again)."""
        loop = asyncio.get_running_loop()
        backend = self.backend
        self.t0 = loop.time()
        self.conn.send(data, self)
        self.deadline = self.t0 + backend.timeout_s
        # the deployment's requests in flight, in the order their time runs out, with
        # one timer for the first (a timer per request: 3 us of the ~28 us it costs)
        due = backend.relays
        if due and due[-1].deadline > self.deadline:  # the timeout was shortened meanwhile
            self.timer: asyncio.TimerHandle | None = loop.call_at(self.deadline, self._expire)
        else:
            self.timer = None
            due.append(self)
            if backend.relay_timer is None:
                backend.relay_timer = loop.call_at(self.deadline, _expire_due, backend)

    def done(self) -> bool:
        return self.finished

    def _end(self) -> float:
        """Done: the replica's slot freed; the seconds since sent."""
        self.finished = True
        self._drop_deadline()
        self.backend.release(self.inst)
        return asyncio.get_running_loop().time() - self.t0

    def _drop_deadline(self) -> None:
        """(finished) its timer cancelled; the finished relays at the front of the
        deployment's deadlines dropped."""
        if self.timer is not None:
            self.timer.cancel()
        due = self.backend.relays
        while due and due[0].finished:
            due.popleft()

    def set_result(self, answer: Answer) -> None:
        """The answer to the client first; what only the gateway reads (its deadline
        dropped, the deployment's pace and stats) after it is written. The replica's
        slot and connection are freed before: the client's next pipelined request,
        started by the answer, may take them."""
        if self.finished:
            return
        self.finished = True
        backend, inst = self.backend, self.inst
        took = asyncio.get_running_loop().time() - self.t0
        assert inst.pool is not None
        inst.pool.keep(self.conn)
        backend.release(inst)
        try:
            headers = _answer_headers(answer, self.rid, backend.name)
            self.reply_to(Reply(answer.status, answer.body, headers))
        finally:
            self._drop_deadline()
            backend.observe(took)
            backend.stats.record(answer.status, took, time.monotonic())

    def set_exception(self, exc: BaseException) -> None:
        if self.finished:
            return
        self.conn.close()  # its answer, if one still comes, must not reach another request
        took = self._end()
        backend = self.backend
        if isinstance(exc, Unreachable):
            nxt = backend.try_acquire()
            if nxt is not None:
                body, ctype, ids = self.again
                retry = forward(
                    self.shared, backend, body, ctype, self.rid, ids, inst=nxt, tries=1, t0=self.t0
                )
                task = asyncio.ensure_future(retry)
                _retries.add(task)
                task.add_done_callback(self._retried)
                return
        backend.stats.record(502, took, time.monotonic())
        message = f"deployment '{backend.name}' replica failed to answer: {exc}"
        self.reply_to(error_response(502, "BadGateway", message, self.rid, backend.name))

    def _retried(self, task: asyncio.Task[Reply]) -> None:
        _retries.discard(task)
        if not task.cancelled() and task.exception() is None:
            self.reply_to(task.result())

    def _expire(self) -> None:
        if self.finished:
            return
        self.conn.close()  # a late answer must not reach the next request
        took = self._end()
        backend = self.backend
        backend.stats.record(504, took, time.monotonic())
        self.reply_to(_timeout(backend, self.rid))


_retries: set[asyncio.Task[Reply]] = set()


def _expire_due(backend: Backend) -> None:
    """The deployment's first deadline came: 504 to every relay whose time ran out; the
    timer again for the next one."""
    backend.relay_timer = None
    due = backend.relays
    loop = asyncio.get_running_loop()
    now = loop.time()
    while due:
        relay = due[0]
        if relay.finished:
            due.popleft()
        elif relay.deadline <= now:
            due.popleft()
            relay._expire()
        else:
            backend.relay_timer = loop.call_at(relay.deadline, _expire_due, backend)
            return


def _timeout(backend: Backend, rid: str) -> Reply:
    ms = backend.settings.request_timeout_ms
    return error_response(
        504,
        "RequestTimeout",
        f"deployment '{backend.name}' did not answer within request_timeout_ms={ms}",
        rid,
        backend.name,
        fix="make run() faster or raise request_settings.request_timeout_ms",
    )


async def forward(
    shared: aiohttp.ClientSession,
    backend: Backend,
    body: bytes,
    ctype: str | None,
    rid: str,
    ids: dict[str, str] | None = None,
    *,
    inst: Instance | None = None,
    tries: int = 2,
    t0: float | None = None,
) -> Reply:
    """Forward in a coroutine: wait in the queue for a replica (unless ``inst`` is one
    already taken), send, one retry on another replica if it was unreachable."""
    loop = asyncio.get_running_loop()
    t0 = loop.time() if t0 is None else t0
    stats = backend.stats
    name = backend.name

    def answer(status: int, code: str, message: str, fix: str | None = None) -> Reply:
        """The gateway's own answer, counted in the deployment's stats."""
        stats.record(status, loop.time() - t0, time.monotonic())
        return error_response(status, code, message, rid, name, fix=fix)

    if inst is None:
        inst = backend.try_acquire()
    if inst is None:
        if not backend.instances:
            return answer(503, "NoReadyReplica", f"deployment '{name}' has no ready replica")
        try:
            inst = await backend.acquire(backend.settings.max_queue_wait_ms / 1000)
        except QueueTimeout:
            return busy(backend, rid, loop.time() - t0)
    fwd_headers = _headers_to_replica(rid, ctype, ids)
    while True:
        retry = False
        failure: Exception | None = None
        sent = loop.time()
        try:
            reply = await exchange(shared, backend, inst, "POST", "/score", fwd_headers, body)
            backend.observe(loop.time() - sent)
        except TimeoutError:
            stats.record(504, loop.time() - t0, time.monotonic())
            return _timeout(backend, rid)
        except Unreachable as exc:
            tries -= 1
            retry = tries > 0
            failure = exc
        except BadAnswer as exc:
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
        return answer(
            502,
            "BadGateway",
            f"deployment '{name}' replica failed to answer: {failure}",
        )
    stats.record(reply.status, loop.time() - t0, time.monotonic())
    return Reply(reply.status, reply.body, _answer_headers(reply, rid, name))


def _answer_headers(reply: Answer, rid: str, deployment: str) -> list[tuple[str, str]]:
    """What goes back to the client of a replica's answer: its ``x-ms-*`` headers and
    ``Content-Type``, with the request id and the deployment that answered."""
    return [("x-request-id", rid), ("azureml-model-deployment", deployment), *reply.passed_on()]


async def exchange(
    shared: aiohttp.ClientSession,
    backend: Backend,
    inst: Instance,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
) -> Answer:
    """One request to ``inst`` within the deployment's ``request_timeout_ms`` (else
    TimeoutError): over its own kept-alive Unix socket connections, or, for an
    ``http://`` replica, the gateway's shared aiohttp session. Raises :class:`Unreachable`
    (not connected, or dropped before a whole answer) or :class:`BadAnswer`."""
    if inst.pool is not None:
        return await inst.pool.request(method, target, headers.items(), body, backend.timeout_s)
    async with asyncio.timeout(backend.timeout_s):
        try:
            async with shared.request(
                method, inst.base_url + target, data=body or None, headers=headers
            ) as resp:
                payload = await resp.read()
                return Answer(resp.status, head_of(list(resp.raw_headers)), payload)
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
            raise Unreachable(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise BadAnswer(type(exc).__name__) from exc


async def mirror_send(
    shared: aiohttp.ClientSession,
    backend: Backend,
    inst: Instance,
    body: bytes,
    ctype: str | None,
    rid: str,
) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    headers = {"x-request-id": rid, "x-modeldeck-mirror": "1"}
    if ctype:
        headers["Content-Type"] = ctype
    status = 502
    try:
        for attempt in (1, 2):
            try:
                status = (
                    await exchange(shared, backend, inst, "POST", "/score", headers, body)
                ).status
                break
            except Unreachable:
                status = 502  # nothing was answered: once more, on a stale connection
                if attempt == 2:
                    break
    except TimeoutError:
        status = 504
    except BadAnswer:
        status = 502
    finally:
        backend.release(inst)
        backend.stats.record(status, loop.time() - t0, time.monotonic())


async def fetch_swagger(
    shared: aiohttp.ClientSession,
    backend: Backend,
    inst: Instance,
    query: str,
    rid: str,
    ids: dict[str, str],
) -> Reply:
    """A replica's ``/swagger.json`` (with the query, e.g. ``?version=3``); releases ``inst``."""
    target = "/swagger.json" + (f"?{query}" if query else "")
    fwd = {"x-request-id": rid, **ids}
    try:
        reply = await exchange(shared, backend, inst, "GET", target, fwd)
    except (Unreachable, BadAnswer, TimeoutError) as exc:
        return error_response(
            502,
            "BadGateway",
            f"deployment '{backend.name}' replica failed to answer: {exc or type(exc).__name__}",
            rid,
            backend.name,
        )
    finally:
        backend.release(inst)
    return Reply(reply.status, reply.body, _answer_headers(reply, rid, backend.name))
