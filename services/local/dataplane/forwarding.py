"""Forwarding to replicas: a scoring request to a free replica of its deployment (or the
queue, 429, 504, one retry on another replica, 502), a mirror copy whose answer is
dropped, a deployment's ``/swagger.json``; and the JSON error answer every route gives."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import aiohttp
from aiohttp import web

from .backends import Backend, Instance, QueueTimeout
from .upstream import Answer, BadAnswer, Unreachable, head_of

#: the client's request ids that go on to the replica (azmlinfsrv echoes them)
CLIENT_IDS = ("x-ms-client-request-id", "x-ms-request-id")


def error_response(
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


def busy(backend: Backend, rid: str, waited_s: float = 0.0) -> web.Response:
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
    headers = {
        "x-request-id": rid,
        "azureml-model-deployment": backend.name,
        "Content-Type": "application/json; charset=utf-8",
        "Retry-After": cached[2],
    }
    return web.Response(body=cached[1], status=429, headers=headers)


async def forward(
    shared: aiohttp.ClientSession,
    backend: Backend,
    body: bytes,
    ctype: str | None,
    rid: str,
    ids: dict[str, str] | None = None,
) -> web.Response:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stats = backend.stats
    name = backend.name

    def answer(status: int, code: str, message: str, fix: str | None = None) -> web.Response:
        """The gateway's own answer, counted in the deployment's stats."""
        stats.record(status, loop.time() - t0, time.monotonic())
        return error_response(status, code, message, rid, name, fix=fix)

    inst = backend.try_acquire()
    if inst is None:
        if not backend.instances:
            return answer(503, "NoReadyReplica", f"deployment '{name}' has no ready replica")
        try:
            inst = await backend.acquire(backend.settings.max_queue_wait_ms / 1000)
        except QueueTimeout:
            return busy(backend, rid, loop.time() - t0)
    fwd_headers = {"x-request-id": rid}
    if ids:
        fwd_headers.update(ids)
    if ctype:
        fwd_headers["Content-Type"] = ctype
    tries = 2
    while True:
        retry = False
        failure: Exception | None = None
        sent = loop.time()
        try:
            reply = await exchange(shared, backend, inst, "POST", "/score", fwd_headers, body)
            backend.observe(loop.time() - sent)
        except TimeoutError:
            ms = backend.settings.request_timeout_ms
            return answer(
                504,
                "RequestTimeout",
                f"deployment '{name}' did not answer within request_timeout_ms={ms}",
                fix="make run() faster or raise request_settings.request_timeout_ms",
            )
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
    return web.Response(
        body=reply.body, status=reply.status, headers=_answer_headers(reply, rid, name)
    )


def _answer_headers(reply: Answer, rid: str, deployment: str) -> dict[str, str]:
    """What goes back to the client of a replica's answer: its ``x-ms-*`` headers and
    ``Content-Type``, with the request id and the deployment that answered."""
    out = {"x-request-id": rid, "azureml-model-deployment": deployment}
    out.update(reply.passed_on())
    return out


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
) -> web.Response:
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
    return web.Response(
        body=reply.body, status=reply.status, headers=_answer_headers(reply, rid, backend.name)
    )
