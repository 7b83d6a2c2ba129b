"""The management API of the local control plane: one route per Workspace method.

JSON in and out (``domain.to_dict``/``from_dict``); a typed error answers
``{"error": err.to_dict()}`` with ``err.http_status``. Served on the daemon's
Unix socket only (see :mod:`.daemon`).

Every request runs as its client (:data:`.store.history.ACTOR`): the ``X-Modeldeck-Actor`` header
the client sends (``alice@jump1 (ssh from 10.0.0.5)``), checked against the socket peer's
uid (``SO_PEERCRED``). A write may carry ``If-Match: REVISION`` (the record as read).

Over 600 lines: one route per Workspace method (some 45), kept in one table so the wire's
paths are read in one place; the work itself is the engine's rooms'.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import re
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from ...api.domain import (
    ClusterSpec,
    DeploymentSpec,
    EndpointPatch,
    EndpointSpec,
    Environment,
    KeyType,
    ModelSpec,
    from_dict,
    to_dict,
)
from ...api.errors import BackendError, InvalidInput, ModeldeckError, Unreachable
from ...api.revisions import ACTOR_HEADER
from ...api.rollouts import RolloutSpec
from .engine import Engine
from .store.history import ACTOR
from .watch import Changes

log = logging.getLogger("modeldeck.daemon")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024 * 1024


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(to_dict(data)), status=status, content_type="application/json"
    )


def _error(err: ModeldeckError) -> web.Response:
    return web.Response(
        text=json.dumps({"error": err.to_dict()}),
        status=err.http_status,
        content_type="application/json",
    )


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ModeldeckError as err:
            return _error(err)
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.path)
            return _error(BackendError(f"the control plane failed: {type(exc).__name__}: {exc}"))

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidInput("body", raw[:60].decode("utf-8", "replace"), "is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", data, "must be a JSON object")
    return data


async def _while_connected(request: web.Request, work: Awaitable[T], poll_s: float = 0.2) -> T:
    """Run ``work`` while the client is still connected; cancel it when the client goes
    away (an interrupted or timed-out CLI), so a long copy does not go on for nobody.

    The daemon runs without aiohttp's ``handler_cancellation`` (most handlers change
    records and must finish what they started); the few long ones opt in here.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_s)
            if done:
                return task.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                log.info("%s %s: the client went away; cancelling", request.method, request.path)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                # answered to nobody: aiohttp drops a response it cannot write, quietly
                raise Unreachable(f"the client went away; {request.method} {request.path} stopped")
    finally:
        if not task.done():  # the handler itself was cancelled (daemon stop)
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


_MISSING_RE = re.compile(r"missing \d+ required (?:positional|keyword-only) arguments?: (.*)")


def _parse(cls: type[T], data: Any, what: str) -> T:
    """Build a domain object from JSON, turning unknown fields and shape errors into
    InvalidInput."""
    if not isinstance(data, dict):
        raise InvalidInput(what, data, "must be a JSON object")
    _check_fields(cls, data, what)
    try:
        return from_dict(cls, data)
    except TypeError as exc:
        m = _MISSING_RE.search(str(exc))
        if m:
            fields = m.group(1).replace("'", "")
            raise InvalidInput(fields, None, "is required", f"give {fields}") from None
        raise InvalidInput(what, data, f"has a value of the wrong type ({exc})") from None
    except (ValueError, AttributeError, KeyError) as exc:
        raise InvalidInput(what, data, f"has an invalid value ({exc})") from None


def _check_fields(cls: type, data: dict[str, Any], what: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InvalidInput(
            f"{what}.{unknown[0]}",
            data[unknown[0]],
            f"is not a field of {what}",
            "known fields: " + ", ".join(sorted(names)),
        )


def _int_query(request: web.Request, key: str, default: int | None) -> int | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(key, raw, "must be a whole number") from None


def _float_query(request: web.Request, key: str) -> float | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(key, raw, "must be a number (epoch seconds)")
    return value


def _bool_query(request: web.Request, key: str) -> bool:
    return request.query.get(key, "").lower() in ("1", "true", "yes", "on")


def _peer_user(request: web.Request) -> str | None:
    """The user name of the process at the other end of the Unix socket (Linux)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", raw)
    except (OSError, struct.error):
        return None
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def actor_of(request: web.Request) -> str:
    """Who a request is for, as the audit history records it: ``user@host``.

    The user is the peer's uid (SO_PEERCRED), which the client cannot forge, and the host
    this one (a Unix socket's peer is local); the client's header (``alice@jump1 (ssh
    from 10.0.0.5)``) adds only what the kernel does not know, its SSH origin. A header
    naming another user is kept beside, as a claim. Without SO_PEERCRED: the header.
    """
    claimed = "".join(c for c in request.headers.get(ACTOR_HEADER, "") if c.isprintable())
    claimed = claimed.strip()[:120]
    peer = _peer_user(request)
    host = socket.gethostname()
    if peer is None:
        return claimed or f"unknown@{host}"
    user, _, rest = claimed.partition("@")
    if not claimed or user == peer:
        origin = rest.partition(" ")[2]  # "(ssh from 10.0.0.5)"
        return f"{peer}@{host}" + (f" {origin}" if origin else "")
    return f"{peer}@{host} (claimed {claimed})"  # a name the socket's owner is not


@web.middleware
async def _as_actor(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = ACTOR.set(actor_of(request))  # operations started here inherit it
    try:
        return await handler(request)
    finally:
        ACTOR.reset(token)


def _if_match(request: web.Request) -> str | None:
    """``If-Match: 7`` (or ``"7"``, as an ETag): the revision the client read."""
    raw = request.headers.get("If-Match")
    if raw is None or not raw.strip():
        return None
    return raw.strip().removeprefix("W/").strip('"')


def build_app(
    engine: Engine, *, stop: asyncio.Event, status: Callable[[], dict[str, Any]]
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_as_actor])
    r = app.router
    changes = Changes(engine.store)

    async def listen(_app: web.Application) -> None:
        changes.start()

    async def stop_listening(_app: web.Application) -> None:
        changes.close()

    app.on_startup.append(listen)
    app.on_cleanup.append(stop_listening)

    def route(method: str, path: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            r.add_route(method, path, _guard(fn))
            return fn

        return deco

    # -- daemon -----------------------------------------------------------------------
    @route("GET", "/v1/status")
    async def get_status(request: web.Request) -> web.StreamResponse:
        return _json(status())

    @route("GET", "/v1/watch")
    async def watch(request: web.Request) -> web.StreamResponse:
        """``?after=REV&wait=S``: answers once a change past revision REV is recorded, or
        after S seconds (at most 30), with ``{"revision": N}`` (``watch.py``)."""
        try:
            after = int(request.query.get("after", "0"))
            wait = float(request.query.get("wait", "25"))
        except ValueError:
            raise InvalidInput(
                "after/wait", dict(request.query), "must be a revision and seconds"
            ) from None
        revision = await _while_connected(request, changes.wait(after, wait))
        return _json({"revision": revision})

    @route("POST", "/v1/shutdown")
    async def shutdown(request: web.Request) -> web.StreamResponse:
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return _json({"stopping": True})

    # -- operations ---------------------------------------------------------------------
    @route("GET", "/v1/operations")
    async def list_operations(request: web.Request) -> web.StreamResponse:
        return _json(engine.list_operations())

    @route("GET", "/v1/operations/{id}")
    async def get_operation(request: web.Request) -> web.StreamResponse:
        """``?after=REV&wait=S``: a long poll that answers once the operation changed."""
        op_id = request.match_info["id"]
        after = _int_query(request, "after", None)
        if after is None:
            return _json(engine.get_operation(op_id))
        try:
            wait = float(request.query.get("wait", "1"))
        except ValueError:
            raise InvalidInput("wait", request.query.get("wait"), "must be seconds") from None
        op, rev = await engine.wait_operation(op_id, after, wait)
        return web.Response(
            text=json.dumps({**to_dict(op), "rev": rev}), content_type="application/json"
        )

    # -- clusters -----------------------------------------------------------------------
    @route("GET", "/v1/clusters")
    async def list_clusters(request: web.Request) -> web.StreamResponse:
        return _json(await engine.list_clusters())

    @route("POST", "/v1/clusters")
    async def create_cluster(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        return _json(await engine.create_cluster(_parse(ClusterSpec, data, "cluster")), 202)

    @route("POST", "/v1/clusters/attach")
    async def attach_cluster(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        return _json(await engine.attach_cluster(_parse(ClusterSpec, data, "cluster")), 202)

    @route("GET", "/v1/clusters/{name}")
    async def get_cluster(request: web.Request) -> web.StreamResponse:
        return _json(await engine.get_cluster(request.match_info["name"]))

    @route("PATCH", "/v1/clusters/{name}")
    async def update_cluster(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        tags, remove = data.get("tags") or {}, data.get("remove_tags") or []
        if not isinstance(remove, list):
            raise InvalidInput("remove_tags", remove, "must be a list of tag names")
        return _json(
            await engine.update_cluster(
                request.match_info["name"], tags=tags, remove_tags=[str(k) for k in remove]
            )
        )

    @route("POST", "/v1/clusters/{name}/scale")
    async def scale_cluster(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        if "agent_count" not in data:
            raise InvalidInput("agent_count", None, "is required", "pass --agent-count N")
        op = await engine.scale_cluster(request.match_info["name"], data["agent_count"])
        return _json(op, 202)

    @route("POST", "/v1/clusters/{name}/detach")
    async def detach_cluster(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        op = await engine.detach_cluster(
            request.match_info["name"], delete_resources=bool(data.get("delete_resources"))
        )
        return _json(op, 202)

    @route("DELETE", "/v1/clusters/{name}")
    async def delete_cluster(request: web.Request) -> web.StreamResponse:
        return _json(await engine.delete_cluster(request.match_info["name"]), 202)

    # -- models -------------------------------------------------------------------------
    @route("GET", "/v1/models")
    async def list_models(request: web.Request) -> web.StreamResponse:
        return _json(engine.list_models(request.query.get("name") or None))

    @route("POST", "/v1/models")
    async def create_model(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        spec = _parse(ModelSpec, data, "model")
        return _json(await _while_connected(request, engine.create_model(spec)), 201)

    @route("GET", "/v1/models/{name}")
    async def get_model(request: web.Request) -> web.StreamResponse:
        version = _int_query(request, "version", None)
        return _json(engine.get_model(request.match_info["name"], version))

    def _model_version(request: web.Request) -> int:
        try:
            return int(request.match_info["version"])
        except ValueError:
            raise InvalidInput(
                "version", request.match_info["version"], "must be a whole number"
            ) from None

    @route("POST", "/v1/models/{name}/{version}/archive")
    async def archive_model(request: web.Request) -> web.StreamResponse:
        archived = bool((await _body(request)).get("archived", True))
        return _json(
            await engine.archive_model(
                request.match_info["name"], _model_version(request), archived=archived
            )
        )

    @route("DELETE", "/v1/models/{name}/{version}")
    async def delete_model(request: web.Request) -> web.StreamResponse:
        version = _model_version(request)
        await engine.delete_model(request.match_info["name"], version)
        return _json({"deleted": True})

    # -- environments -------------------------------------------------------------------
    @route("GET", "/v1/environments")
    async def list_environments(request: web.Request) -> web.StreamResponse:
        return _json(await engine.list_environments(request.query.get("name") or None))

    @route("POST", "/v1/environments")
    async def create_environment(request: web.Request) -> web.StreamResponse:
        env = _parse(Environment, await _body(request), "environment")
        return _json(await engine.create_environment(env), 201)

    @route("POST", "/v1/environments/prune")
    async def prune_environments(request: web.Request) -> web.StreamResponse:
        return _json(await engine.prune_environments(0.0))

    @route("GET", "/v1/environments/{name}")
    async def get_environment(request: web.Request) -> web.StreamResponse:
        version = request.query.get("version") or None
        return _json(await engine.get_environment(request.match_info["name"], version))

    @route("POST", "/v1/environments/{name}/{version}/archive")
    async def archive_environment(request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return _json(await engine.archive_environment(info["name"], info["version"]))

    # -- endpoints ----------------------------------------------------------------------
    @route("GET", "/v1/endpoints")
    async def list_endpoints(request: web.Request) -> web.StreamResponse:
        return _json(await engine.list_endpoints())

    @route("POST", "/v1/endpoints")
    async def create_endpoint(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        return _json(await engine.create_endpoint(_parse(EndpointSpec, data, "endpoint")), 202)

    @route("GET", "/v1/endpoints/{name}")
    async def get_endpoint(request: web.Request) -> web.StreamResponse:
        return _json(await engine.get_endpoint(request.match_info["name"]))

    @route("PATCH", "/v1/endpoints/{name}")
    async def update_endpoint(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        allowed = {f.name for f in dataclasses.fields(EndpointPatch)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidInput(
                unknown[0],
                data[unknown[0]],
                "cannot be changed on an endpoint",
                "changeable: " + ", ".join(sorted(allowed)),
            )
        op = await engine.update_endpoint(
            request.match_info["name"],
            EndpointPatch(**data),  # as sent: the engine validates every field
            if_revision=_if_match(request),
        )
        return _json(op, 200)

    @route("DELETE", "/v1/endpoints/{name}")
    async def delete_endpoint(request: web.Request) -> web.StreamResponse:
        return _json(await engine.delete_endpoint(request.match_info["name"]), 202)

    @route("GET", "/v1/endpoints/{name}/keys")
    async def get_keys(request: web.Request) -> web.StreamResponse:
        return _json(engine.get_keys(request.match_info["name"]))

    @route("POST", "/v1/endpoints/{name}/keys/regenerate")
    async def regenerate_keys(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        raw = data.get("key_type", "primary")
        try:
            key_type = KeyType.parse(raw)
        except ValueError:
            raise InvalidInput(
                "key_type", raw, "must be primary or secondary", "--key-type primary"
            ) from None
        keys = await engine.regenerate_keys(request.match_info["name"], key_type)  # type: ignore[arg-type]
        return _json(keys)

    @route("GET", "/v1/endpoints/{name}/token")
    async def get_token(request: web.Request) -> web.StreamResponse:
        return _json(engine.get_token(request.match_info["name"]))

    @route("POST", "/v1/endpoints/{name}/invoke")
    async def invoke(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        try:
            body = base64.b64decode(data.get("body_b64") or "", validate=True)
        except ValueError:
            raise InvalidInput("body_b64", data.get("body_b64"), "is not base64") from None
        headers = data.get("headers") or {}
        if not isinstance(headers, dict):
            raise InvalidInput("headers", headers, "must map header names to values")
        result = await engine.invoke(
            request.match_info["name"],
            body,
            deployment=data.get("deployment") or None,
            headers={str(k): str(v) for k, v in headers.items()},
            via=data.get("via") or None,
        )
        return _json(
            {
                "status": result.status,
                "body_b64": base64.b64encode(result.body).decode("ascii"),
                "deployment": result.deployment,
                "request_id": result.request_id,
                "headers": result.headers,
                "via": result.via,
            }
        )

    # -- deployments --------------------------------------------------------------------
    @route("GET", "/v1/deployments")
    async def list_all_deployments(request: web.Request) -> web.StreamResponse:
        return _json(await engine.list_deployments(request.query.get("endpoint") or None))

    @route("GET", "/v1/endpoints/{e}/deployments")
    async def list_deployments(request: web.Request) -> web.StreamResponse:
        return _json(await engine.list_deployments(request.match_info["e"]))

    def _spec(data: dict[str, Any], endpoint: str, name: str | None) -> DeploymentSpec:
        spec_data = data.get("spec")
        if not isinstance(spec_data, dict):
            raise InvalidInput("spec", spec_data, "must be a JSON object (the deployment)")
        spec_data = {**spec_data, "endpoint_name": spec_data.get("endpoint_name") or endpoint}
        if name is not None:
            spec_data.setdefault("name", name)
        spec = _parse(DeploymentSpec, spec_data, "deployment")
        if spec.endpoint_name != endpoint:
            raise InvalidInput(
                "endpoint_name",
                spec.endpoint_name,
                f"does not match the endpoint in the request ('{endpoint}')",
            )
        if name is not None and spec.name != name:
            raise InvalidInput(
                "name", spec.name, f"does not match the deployment in the request ('{name}')"
            )
        return spec

    @route("POST", "/v1/endpoints/{e}/deployments")
    async def create_deployment(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        spec = _spec(data, request.match_info["e"], None)
        op = await engine.create_deployment(
            spec,
            all_traffic=bool(data.get("all_traffic")),
            skip_script_validation=bool(data.get("skip_script_validation")),
        )
        return _json(op, 202)

    @route("GET", "/v1/endpoints/{e}/deployments/{d}")
    async def get_deployment(request: web.Request) -> web.StreamResponse:
        return _json(await engine.get_deployment(request.match_info["e"], request.match_info["d"]))

    @route("PUT", "/v1/endpoints/{e}/deployments/{d}")
    async def update_deployment(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        spec = _spec(data, request.match_info["e"], request.match_info["d"])
        op = await engine.update_deployment(
            spec,
            if_revision=_if_match(request),
            skip_script_validation=bool(data.get("skip_script_validation")),
        )
        return _json(op, 202)

    @route("DELETE", "/v1/endpoints/{e}/deployments/{d}")
    async def delete_deployment(request: web.Request) -> web.StreamResponse:
        op = await engine.delete_deployment(request.match_info["e"], request.match_info["d"])
        return _json(op, 202)

    @route("GET", "/v1/endpoints/{e}/deployments/{d}/logs")
    async def logs(request: web.Request) -> web.StreamResponse:
        e, d = request.match_info["e"], request.match_info["d"]
        lines = _int_query(request, "lines", 100) or 0
        since = _float_query(request, "since")  # epoch seconds: only lines at or after it
        container = request.query.get("container") or None
        if not _bool_query(request, "follow"):
            return _json(await engine.get_logs(e, d, lines, since, container))
        stream = engine.follow_logs(e, d, lines, since, container)  # NotFound before the 200
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        try:
            async for line in stream:
                await resp.write((json.dumps(to_dict(line)) + "\n").encode())
        except ConnectionResetError:
            pass
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
        return resp

    # -- rollouts (issue 14: controlplane/rollouts.py) -----------------------------------
    @route("POST", "/v1/endpoints/{name}/rollout")
    async def start_rollout(request: web.Request) -> web.StreamResponse:
        data = {**await _body(request), "endpoint": request.match_info["name"]}
        return _json(await engine.rollouts.start(_parse(RolloutSpec, data, "rollout")), 201)

    @route("GET", "/v1/endpoints/{name}/rollout")
    async def get_rollout(request: web.Request) -> web.StreamResponse:
        """The endpoint's rollout in progress, else its last; ``null``: it never had one."""
        return _json(await engine.rollouts.get(request.match_info["name"]))

    @route("POST", "/v1/endpoints/{name}/rollout/{action}")
    async def control_rollout(request: web.Request) -> web.StreamResponse:
        """pause | resume | promote | abort; ``If-Match``: the rollout's revision read."""
        info = request.match_info
        return _json(
            await engine.rollouts.control(
                info["name"], info["action"], if_revision=_if_match(request)
            )
        )

    @route("GET", "/v1/rollouts")
    async def list_rollouts(request: web.Request) -> web.StreamResponse:
        return _json(await engine.rollouts.list())

    # -- rollouts on Azure ML workspaces, driven here (controlplane/cloudrollouts.py): each
    # request carries the workspace's settings ("workspace"), so the reads are POSTs too
    @route("POST", "/v1/azureml/rollouts/start")
    async def start_cloud_rollout(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        spec = _parse(RolloutSpec, data.get("rollout"), "rollout")
        return _json(await engine.rollouts.azureml.start(data.get("workspace"), spec), 201)

    @route("POST", "/v1/azureml/rollouts/get")
    async def get_cloud_rollout(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        return _json(engine.rollouts.azureml.get(data.get("workspace"), str(data.get("endpoint"))))

    @route("POST", "/v1/azureml/rollouts/list")
    async def list_cloud_rollouts(request: web.Request) -> web.StreamResponse:
        return _json(engine.rollouts.azureml.list((await _body(request)).get("workspace")))

    @route("POST", "/v1/azureml/rollouts/{action}")
    async def control_cloud_rollout(request: web.Request) -> web.StreamResponse:
        """``If-Match``: the rollout's revision read."""
        data = await _body(request)
        return _json(
            await engine.rollouts.azureml.control(
                data.get("workspace"),
                str(data.get("endpoint")),
                request.match_info["action"],
                if_revision=_if_match(request),
            )
        )

    # -- history ------------------------------------------------------------------------
    @route("GET", "/v1/history")
    async def history(request: web.Request) -> web.StreamResponse:
        """The audit history: ``?endpoint=NAME`` for an endpoint and its deployments."""
        return _json(engine.audit.history(request.query.get("endpoint") or None))

    # -- metrics ------------------------------------------------------------------------
    @route("GET", "/v1/metrics")
    async def metrics(request: web.Request) -> web.StreamResponse:
        """The samples; with ``?notes=1``, ``{"samples": [...], "missing": {endpoint: why}}``
        (why some metrics are missing, e.g. a cluster without the metrics server)."""
        report = await engine.get_metrics(request.query.get("endpoint") or None)
        return _json(report if _bool_query(request, "notes") else report.samples)

    @route("GET", "/v1/metrics/history")
    async def metrics_history(request: web.Request) -> web.StreamResponse:
        """``?endpoint=&deployment=&window=5m|1h|24h|7d``: the sampled history
        (``MetricsHistory``) of one deployment, one endpoint's or all, in its compact
        wire form (``MetricsHistory.to_wire``)."""
        q = request.query
        history = await engine.get_metrics_history(
            q.get("endpoint") or None, q.get("deployment") or None, q.get("window") or "1h"
        )
        return web.json_response(history.to_wire())

    # -- dry run ------------------------------------------------------------------------
    @route("POST", "/v1/render")
    async def render(request: web.Request) -> web.StreamResponse:
        """The manifests a create/update would apply, without applying them (--dry-run).

        ``{"endpoint": EndpointSpec}`` or ``{"deployment": DeploymentSpec, "update": bool,
        "all_traffic": bool, "model": ModelSpec | null}``."""
        data = await _body(request)
        if isinstance(data.get("endpoint"), dict):
            spec = _parse(EndpointSpec, data["endpoint"], "endpoint")
            return _json(await engine.render_endpoint(spec))
        dep = data.get("deployment")
        if not isinstance(dep, dict):
            raise InvalidInput(
                "body", data, "must hold an endpoint or a deployment", '{"deployment": {...}}'
            )
        model = data.get("model")
        objects = await engine.render_deployment(
            _parse(DeploymentSpec, dep, "deployment"),
            update=bool(data.get("update")),
            all_traffic=bool(data.get("all_traffic")),
            model=None if model is None else _parse(ModelSpec, model, "model"),
        )
        return _json(objects)

    return app
