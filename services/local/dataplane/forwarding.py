"""Forwarding to replicas: a scoring request to a free replica of its deployment (or the
queue, 429, 504, one retry on another replica, 502), a mirror copy whose answer is
dropped, a deployment's ``/swagger.json``; and the JSON error answer every route gives."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web

from .backends import Backend, Instance, QueueTimeout

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
        settings = backend.settings
        try:
            inst = await backend.acquire(settings.max_queue_wait_ms / 1000)
        except QueueTimeout:
            return answer(
                429,
                "TooManyRequests",
                (
                    f"deployment '{name}' is busy: {len(backend.instances)} replica(s) x "
                    f"max_concurrent_requests_per_instance={settings.max_concurrent_requests_per_instance} "
                    f"in flight, and none freed within max_queue_wait_ms={settings.max_queue_wait_ms}"
                ),
                fix="retry later, add replicas (instance_count / autoscale) or raise max_queue_wait_ms",
            )
    fwd_headers = {"x-request-id": rid}
    if ids:
        fwd_headers.update(ids)
    if ctype:
        fwd_headers["Content-Type"] = ctype
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
                ms_headers = [(k, v) for k, v in resp.headers.items() if k[:5].lower() == "x-ms-"]
        except TimeoutError:
            ms = backend.settings.request_timeout_ms
            return answer(
                504,
                "RequestTimeout",
                f"deployment '{name}' did not answer within request_timeout_ms={ms}",
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
        return answer(
            502,
            "BadGateway",
            f"deployment '{name}' replica failed to answer: {type(failure).__name__}",
        )
    stats.record(status, loop.time() - t0, time.monotonic())
    out_headers = {"x-request-id": rid, "azureml-model-deployment": name}
    out_headers.update(ms_headers)
    if rtype:
        out_headers["Content-Type"] = rtype
    return web.Response(body=payload, status=status, headers=out_headers)


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
    session = inst.session or shared
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


async def fetch_swagger(
    shared: aiohttp.ClientSession,
    backend: Backend,
    inst: Instance,
    query: str,
    rid: str,
    ids: dict[str, str],
) -> web.Response:
    """A replica's ``/swagger.json`` (with the query, e.g. ``?version=3``); releases ``inst``."""
    session = inst.session or shared
    url = inst.base_url + "/swagger.json" + (f"?{query}" if query else "")
    fwd = {"x-request-id": rid, **ids}
    try:
        async with session.get(url, headers=fwd, timeout=backend.timeout) as resp:
            payload = await resp.read()
            out = {"x-request-id": rid, "azureml-model-deployment": backend.name}
            out.update({k: v for k, v in resp.headers.items() if k.lower().startswith("x-ms-")})
            if "Content-Type" in resp.headers:
                out["Content-Type"] = resp.headers["Content-Type"]
            return web.Response(body=payload, status=resp.status, headers=out)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return error_response(
            502,
            "BadGateway",
            f"deployment '{backend.name}' replica failed to answer: {type(exc).__name__}",
            rid,
            backend.name,
        )
    finally:
        backend.release(inst)
