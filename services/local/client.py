"""The local workspace, client side: the Workspace API over the control plane's Unix socket.

Light to import (httpx and the domain types only): the CLI's cold start is measured.
The daemon is started on the first call when it does not answer (``autostart``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from .. import paths, profiles
from ..api import domain, revisions, validation
from ..api.domain import (
    DriverKind,
    Endpoint,
    EndpointKeys,
    EndpointPatch,
    EndpointSpec,
    EndpointToken,
    KeyType,
    from_dict,
    to_dict,
)
from ..api.errors import (
    BackendError,
    InvalidInput,
    ModeldeckError,
    Unreachable,
    error_from_dict,
)
from ..api.workspace import OperationHandle, Workspace

if TYPE_CHECKING:  # imported by the calls that use them: not on every command's way (cold
    # start; domain.X imports X's group on first use)
    from ..api.domain import (
        ChangeHistory,
        Cluster,
        ClusterSpec,
        Deployment,
        DeploymentSpec,
        Environment,
        InvokeResult,
        LogLine,
        MetricsHistory,
        MetricsReport,
        Model,
        ModelSpec,
        Operation,
    )
    from ..api.rollouts import Rollout, RolloutSpec

T = TypeVar("T")
_BASE = "http://modeldeck"


class _Body(httpx.AsyncByteStream):
    """A response body read from the socket as it arrives (log streams never end)."""

    def __init__(
        self,
        conn: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        read_timeout: float | None,
    ) -> None:
        self._conn = conn
        self._reader = reader
        self._writer = writer
        self._timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import h11

        while True:
            event = await _next_event(self._conn, self._reader, self._timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def _next_event(conn: Any, reader: asyncio.StreamReader, timeout: float | None) -> Any:
    import h11

    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            # h11's own words ("peer unexpectedly closed ...") say nothing to a user
            raise httpx.RemoteProtocolError(
                "the connection closed before the answer was complete"
            ) from None
        if event is not h11.NEED_DATA:
            return event
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("the control plane did not answer in time") from None
        except OSError as exc:  # ConnectionResetError: the control plane died
            raise httpx.ReadError(exc.strerror or type(exc).__name__) from None
        conn.receive_data(chunk)


class UnixTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over the daemon's Unix socket with asyncio streams and h11.

    httpx's own transport would import anyio and build a TLS context on the first
    request; neither is needed to talk to a local socket, and the CLI's cold start
    is measured. One connection per request: the socket is local and cheap.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import h11

        timeouts = request.extensions.get("timeout") or {}
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.path), timeouts.get("connect", 5.0)
            )
        except (OSError, TimeoutError) as exc:
            raise httpx.ConnectError(f"{self.path}: {exc}", request=request) from None
        try:
            conn = h11.Connection(our_role=h11.CLIENT)
            body = await request.aread()
            headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"connection"]
            headers.append((b"Connection", b"close"))
            data = conn.send(
                h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
            )
            if body:
                data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
            try:
                writer.write(data)
                await writer.drain()
            except OSError as exc:  # BrokenPipeError, ConnectionResetError: it died
                raise httpx.WriteError(exc.strerror or type(exc).__name__) from None
            read_timeout = timeouts.get("read")
            while True:
                event = await _next_event(conn, reader, read_timeout)
                if isinstance(event, h11.Response):
                    break
                if isinstance(event, h11.ConnectionClosed):
                    raise httpx.RemoteProtocolError("the control plane closed the connection")
        except BaseException:
            writer.close()
            raise
        return httpx.Response(
            status_code=event.status_code,
            headers=[(bytes(k), bytes(v)) for k, v in event.headers],
            stream=_Body(conn, reader, writer, read_timeout),
            request=request,
        )


def _dropped(
    method: str, path: str, *, following: bool = False, refused: bool = False
) -> Unreachable:
    """The control plane closed the connection in the middle of a command, or (``refused``)
    no longer answers between two of its requests: it died (a crash, kill -9, the OOM killer)
    or was stopped. Said once, with where to look; never the socket library's words."""
    from .controlplane.daemon import log_path

    log = log_path()
    what = "while following the logs" if following else f"mid-command ({method} {path})"
    verb = "stopped answering" if refused else "closed the connection"
    return Unreachable(
        f"the local control plane {verb} {what}; it may have crashed: see its log, {log}",
        fix="check it with: modeldeck daemon status (the next command starts it again); "
        + (
            "repeat the command"
            if method == "GET"
            else "check whether the change was made (show / list) before you repeat it"
        ),
        log=str(log),
    )


def _q(name: str) -> str:
    return quote(str(name), safe="")


def _log_params(lines: int, since: float | None, container: str | None) -> dict[str, str]:
    """The query of ``GET .../logs``; a container is checked here before it is sent."""
    params = {"lines": str(lines)}
    if since is not None:
        params["since"] = repr(float(since))
    container = validation.log_container(container)
    if container is not None:
        params["container"] = container
    return params


def _if_match(revision: str | None) -> dict[str, str] | None:
    """The revision a change was computed from: refused with Conflict if it is stale."""
    return {"If-Match": str(revision)} if revision else None


class LocalWorkspace(Workspace):
    """A client of the local control plane (``modeldeck serve``)."""

    kind = "local"

    def __init__(self, name: str = "local", *, autostart: bool = True, **settings: Any) -> None:
        super().__init__(name)
        self.autostart = autostart
        self.settings = settings  # unknown profile settings are kept, not used
        #: pause between two polls of an operation (each poll waits for a change itself)
        self.poll_interval = float(settings.get("poll_interval", 0.01))
        self.long_poll_s = float(settings.get("long_poll", 1.0))
        self._client: httpx.AsyncClient | None = None
        self._socket: Path | None = None
        self._start_lock = asyncio.Lock()

    # ------------------------------------------------------------------ transport
    @property
    def socket_path(self) -> Path:
        if self._socket is None:
            state = paths.state_dir()
            paths.check_tree(state)  # a socket others could have replaced is never used
            self._socket = state / "modeldeck.sock"
        return self._socket

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=UnixTransport(str(self.socket_path)),
                base_url=_BASE,
                timeout=httpx.Timeout(300.0, connect=5.0),
                trust_env=False,
                # who makes the changes this client sends (recorded with each revision)
                headers={revisions.ACTOR_HEADER: revisions.client_actor()},
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _start_daemon(self, exc: Exception) -> None:
        if not self.autostart:
            raise Unreachable(
                f"the modeldeck control plane does not answer on {self.socket_path} ({exc})",
                fix="start it with: modeldeck serve (or modeldeck daemon status to check)",
            ) from None
        from .controlplane.daemon import ensure_daemon

        async with self._start_lock:  # concurrent first calls start one daemon, not several
            await asyncio.to_thread(ensure_daemon)

    async def _send(
        self, method: str, path: str, *, start: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One request; a control plane that does not answer is started, unless ``start`` is
        false (a command's next request to the control plane that answered its first one:
        one started now would only say it lost the command's work)."""
        client = self._http()
        try:
            return await client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            if not start:
                raise _dropped(method, path, refused=True) from None
            await self._start_daemon(exc)  # nothing was sent: safe to send again
        except httpx.TimeoutException:
            raise Unreachable(
                f"the control plane did not answer {method} {path} in time",
                fix="check it with: modeldeck daemon status (its log names what it is doing)",
            ) from None
        except (httpx.TransportError, OSError):
            raise _dropped(method, path) from None
        try:
            return await client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise Unreachable(
                f"the control plane does not answer on {self.socket_path}: {exc}",
                fix="check it with: modeldeck daemon status",
            ) from None
        except (httpx.TransportError, OSError):
            raise _dropped(method, path) from None

    @staticmethod
    def _raise_for(resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        try:
            data = resp.json()
        except (ValueError, json.JSONDecodeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise error_from_dict(data["error"])
        raise BackendError(
            f"the control plane answered {resp.status_code}: {resp.text[:200]}",
        )

    async def _call(self, method: str, path: str, *, start: bool = True, **kwargs: Any) -> Any:
        resp = await self._send(method, path, start=start, **kwargs)
        self._raise_for(resp)
        return resp.json()

    def _handle(self, data: Any) -> OperationHandle:
        op = from_dict(domain.Operation, data)
        rev = 0

        async def poll(op_id: str) -> Operation:
            # a long poll: the control plane answers as soon as the operation changes.
            # One that stopped between two polls is not started again: a new one would only
            # answer that it lost the operation (Failed: interrupted, exit 1), where the
            # command says what happened, with its log (Unreachable, exit 6), as when it
            # stops during a poll
            nonlocal rev
            answer = await self._call(
                "GET",
                f"/v1/operations/{_q(op_id)}",
                start=False,
                params={"after": str(rev), "wait": str(self.long_poll_s)},
            )
            rev = int(answer.pop("rev", rev))
            return from_dict(domain.Operation, answer)

        return OperationHandle(op, poll, interval=self.poll_interval)

    def capabilities(self) -> frozenset[str]:
        caps = super().capabilities()
        import importlib.util

        if importlib.util.find_spec("kubernetes") is None:  # attach needs the official client
            caps = caps - {"cluster.attach"}
        return caps

    # ------------------------------------------------------------------ daemon
    async def status(self) -> dict[str, Any]:
        """The control plane's pid, version, gateway URL and uptime."""
        return dict(await self._call("GET", "/v1/status"))

    # ------------------------------------------------------------------ clusters
    async def list_clusters(self) -> list[Cluster]:
        return [from_dict(domain.Cluster, c) for c in await self._call("GET", "/v1/clusters")]

    async def get_cluster(self, name: str) -> Cluster:
        return from_dict(domain.Cluster, await self._call("GET", f"/v1/clusters/{_q(name)}"))

    async def create_cluster(self, spec: ClusterSpec) -> OperationHandle:
        validation.cluster_spec(spec)
        return self._handle(await self._call("POST", "/v1/clusters", json=to_dict(spec)))

    async def attach_cluster(self, spec: ClusterSpec) -> OperationHandle:
        spec = replace(spec, driver=DriverKind.KUBERNETES)
        validation.cluster_spec(spec)
        return self._handle(await self._call("POST", "/v1/clusters/attach", json=to_dict(spec)))

    async def detach_cluster(self, name: str, *, delete_resources: bool = False) -> OperationHandle:
        data = await self._call(
            "POST",
            f"/v1/clusters/{_q(name)}/detach",
            json={"delete_resources": delete_resources},
        )
        return self._handle(data)

    async def update_cluster(
        self,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        remove_tags: list[str] | None = None,
    ) -> Cluster:
        data = await self._call(
            "PATCH",
            f"/v1/clusters/{_q(name)}",
            json={"tags": dict(tags or {}), "remove_tags": list(remove_tags or [])},
        )
        return from_dict(domain.Cluster, data)

    async def scale_cluster(self, name: str, agent_count: int) -> OperationHandle:
        validation.integer(agent_count, "agent_count", 1, 100)
        data = await self._call(
            "POST", f"/v1/clusters/{_q(name)}/scale", json={"agent_count": agent_count}
        )
        return self._handle(data)

    async def delete_cluster(self, name: str) -> OperationHandle:
        return self._handle(await self._call("DELETE", f"/v1/clusters/{_q(name)}"))

    # ------------------------------------------------------------------ models
    async def list_models(self, name: str | None = None) -> list[Model]:
        params = {"name": name} if name else None
        return [
            from_dict(domain.Model, m) for m in await self._call("GET", "/v1/models", params=params)
        ]

    async def get_model(self, name: str, version: int | None = None) -> Model:
        params = {"version": str(version)} if version is not None else None
        return from_dict(
            domain.Model, await self._call("GET", f"/v1/models/{_q(name)}", params=params)
        )

    async def create_model(self, spec: ModelSpec) -> Model:
        if validation.is_remote_asset(spec.path):  # no "assets.remote": files of this machine
            raise validation.remote_refused("path", spec.path, self.kind)
        validation.model_spec(spec)
        spec = replace(spec, path=os.path.abspath(spec.path))
        return from_dict(domain.Model, await self._call("POST", "/v1/models", json=to_dict(spec)))

    async def archive_model(self, name: str, version: int, *, archived: bool = True) -> Model:
        path = f"/v1/models/{_q(name)}/{int(version)}/archive"
        return from_dict(domain.Model, await self._call("POST", path, json={"archived": archived}))

    async def delete_model(self, name: str, version: int) -> None:
        await self._call("DELETE", f"/v1/models/{_q(name)}/{int(version)}")

    # ------------------------------------------------------------------ environments
    async def list_environments(self, name: str | None = None) -> list[Environment]:
        params = {"name": name} if name else None
        data = await self._call("GET", "/v1/environments", params=params)
        return [from_dict(domain.Environment, e) for e in data]

    async def get_environment(self, name: str, version: str | None = None) -> Environment:
        params = {"version": str(version)} if version is not None else None
        data = await self._call("GET", f"/v1/environments/{_q(name)}", params=params)
        return from_dict(domain.Environment, data)

    async def create_environment(self, env: Environment) -> Environment:
        data = await self._call("POST", "/v1/environments", json=to_dict(env))
        return from_dict(domain.Environment, data)

    async def archive_environment(self, name: str, version: str) -> Environment:
        path = f"/v1/environments/{_q(name)}/{_q(str(version))}/archive"
        return from_dict(domain.Environment, await self._call("POST", path))

    async def prune_environments(self) -> list[Environment]:
        data = await self._call("POST", "/v1/environments/prune")
        return [from_dict(domain.Environment, e) for e in data]

    # ------------------------------------------------------------------ endpoints
    async def list_endpoints(self) -> list[Endpoint]:
        return [from_dict(Endpoint, e) for e in await self._call("GET", "/v1/endpoints")]

    async def get_endpoint(self, name: str) -> Endpoint:
        return from_dict(Endpoint, await self._call("GET", f"/v1/endpoints/{_q(name)}"))

    async def create_endpoint(self, spec: EndpointSpec) -> OperationHandle:
        if isinstance(spec.compute, str) and spec.compute.startswith("azureml:"):
            spec = replace(spec, compute=validation.strip_azureml(spec.compute))
        validation.endpoint_spec(spec)
        if not spec.compute and not self._managed_capacity():
            raise await self._name_a_cluster()
        return self._handle(await self._call("POST", "/v1/endpoints", json=to_dict(spec)))

    def _managed_capacity(self) -> bool:
        """The profile's ``managed_capacity`` (default true): whether an endpoint without
        compute runs on this host's managed capacity; false for a workspace meant for
        Kubernetes, where it must name a cluster."""
        value = self.settings.get("managed_capacity", True)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise InvalidInput(
                f"workspaces.{self.name}.managed_capacity",
                value,
                "must be true or false",
                f"edit {profiles.config_file()}",
            )
        return value

    async def _name_a_cluster(self) -> InvalidInput:
        """The refusal of an endpoint without compute where the profile turned the managed
        capacity off: the clusters it may name, and how."""
        clusters = [c.name for c in await self.list_clusters() if not c.managed]
        where = (
            "the clusters of this workspace: " + ", ".join(clusters)
            if clusters
            else "this workspace has no cluster yet: attach one (modeldeck compute attach "
            "--name NAME --kube-context CONTEXT)"
        )
        name = clusters[0] if clusters else "NAME"
        return InvalidInput(
            "compute",
            "",
            f"is required: workspace '{self.name}' runs each endpoint on a cluster it names, "
            f"not on this host's managed capacity (managed_capacity = false in "
            f"{profiles.config_file()}); {where}",
            f"name one: --set compute={name}, or compute: azureml:{name} in the YAML",
        )

    async def update_endpoint(
        self, name: str, patch: EndpointPatch, *, if_revision: str | None = None
    ) -> OperationHandle:
        body = patch.changes()
        traffic, mirror_traffic = patch.traffic, patch.mirror_traffic
        if traffic is not None:
            # numbers and total here; which deployments exist, the control plane checks
            body["traffic"] = validation.traffic(
                traffic, list(traffic) if hasattr(traffic, "keys") else []
            )
        if mirror_traffic is not None:
            known = list(mirror_traffic) if hasattr(mirror_traffic, "keys") else []
            body["mirror_traffic"] = validation.mirror_traffic(mirror_traffic, traffic or {}, known)
        if patch.description is not None:
            body["description"] = validation.description(patch.description)
        if patch.tags is not None:
            body["tags"] = validation.tags(patch.tags)
        data = await self._call(
            "PATCH", f"/v1/endpoints/{_q(name)}", json=body, headers=_if_match(if_revision)
        )
        return self._handle(data)

    async def delete_endpoint(self, name: str) -> OperationHandle:
        return self._handle(await self._call("DELETE", f"/v1/endpoints/{_q(name)}"))

    async def get_keys(self, name: str) -> EndpointKeys:
        return from_dict(EndpointKeys, await self._call("GET", f"/v1/endpoints/{_q(name)}/keys"))

    async def regenerate_keys(self, name: str, key_type: KeyType) -> EndpointKeys:
        kt = KeyType.parse(key_type).value
        data = await self._call(
            "POST", f"/v1/endpoints/{_q(name)}/keys/regenerate", json={"key_type": kt}
        )
        return from_dict(EndpointKeys, data)

    async def get_token(self, name: str) -> EndpointToken:
        return from_dict(EndpointToken, await self._call("GET", f"/v1/endpoints/{_q(name)}/token"))

    async def invoke(
        self,
        name: str,
        body: bytes,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        via: str | None = None,
    ) -> InvokeResult:
        if isinstance(body, str):
            body = body.encode()
        data = await self._call(
            "POST",
            f"/v1/endpoints/{_q(name)}/invoke",
            json={
                "body_b64": base64.b64encode(body).decode("ascii"),
                "deployment": deployment,
                "headers": headers or {},
                **({"via": via} if via else {}),
            },
        )
        return domain.InvokeResult(
            status=int(data["status"]),
            body=base64.b64decode(data.get("body_b64") or ""),
            deployment=data.get("deployment"),
            request_id=data.get("request_id"),
            headers=dict(data.get("headers") or {}),
            via=data.get("via"),
        )

    # ------------------------------------------------------------------ deployments
    async def list_deployments(self, endpoint: str | None = None) -> list[Deployment]:
        if endpoint is not None:
            data = await self._call("GET", f"/v1/endpoints/{_q(endpoint)}/deployments")
        else:
            data = await self._call("GET", "/v1/deployments")
        return [from_dict(domain.Deployment, d) for d in data]

    async def get_deployment(self, endpoint: str, name: str) -> Deployment:
        data = await self._call("GET", f"/v1/endpoints/{_q(endpoint)}/deployments/{_q(name)}")
        return from_dict(domain.Deployment, data)

    @staticmethod
    def _prepare(spec: DeploymentSpec) -> DeploymentSpec:
        validation.deployment_spec(spec)
        code = spec.code_configuration.code
        if code:
            spec = replace(
                spec,
                code_configuration=domain.CodeConfiguration(
                    code=os.path.abspath(code),
                    scoring_script=spec.code_configuration.scoring_script,
                ),
            )
        return spec

    async def create_deployment(
        self,
        spec: DeploymentSpec,
        *,
        all_traffic: bool = False,
        skip_script_validation: bool = False,
    ) -> OperationHandle:
        spec = self._prepare(spec)
        body = {"spec": to_dict(spec), "all_traffic": all_traffic}
        data = await self._call(
            "POST",
            f"/v1/endpoints/{_q(spec.endpoint_name)}/deployments",
            json={**body, "skip_script_validation": skip_script_validation},
        )
        return self._handle(data)

    async def update_deployment(
        self,
        spec: DeploymentSpec,
        *,
        if_revision: str | None = None,
        skip_script_validation: bool = False,
    ) -> OperationHandle:
        spec = self._prepare(spec)
        data = await self._call(
            "PUT",
            f"/v1/endpoints/{_q(spec.endpoint_name)}/deployments/{_q(spec.name)}",
            json={"spec": to_dict(spec), "skip_script_validation": skip_script_validation},
            headers=_if_match(if_revision),
        )
        return self._handle(data)

    async def delete_deployment(self, endpoint: str, name: str) -> OperationHandle:
        data = await self._call("DELETE", f"/v1/endpoints/{_q(endpoint)}/deployments/{_q(name)}")
        return self._handle(data)

    async def get_logs(
        self,
        endpoint: str,
        name: str,
        *,
        lines: int = 100,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        params = _log_params(lines, since, container)
        data = await self._call(
            "GET", f"/v1/endpoints/{_q(endpoint)}/deployments/{_q(name)}/logs", params=params
        )
        return [from_dict(domain.LogLine, x) for x in data]

    async def stream_logs(
        self,
        endpoint: str,
        name: str,
        *,
        lines: int = 100,
        follow: bool = True,
        since: float | None = None,
        container: str | None = None,
    ) -> AsyncIterator[LogLine]:
        if not follow:
            got = await self.get_logs(endpoint, name, lines=lines, since=since, container=container)
            for line in got:
                yield line
            return
        path = f"/v1/endpoints/{_q(endpoint)}/deployments/{_q(name)}/logs"
        params = {**_log_params(lines, since, container), "follow": "1"}
        client = self._http()
        for attempt in (0, 1):
            try:
                async with client.stream(
                    "GET", path, params=params, timeout=httpx.Timeout(None, connect=5.0)
                ) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        self._raise_for(resp)
                    async for text in resp.aiter_lines():
                        if text.strip():
                            yield from_dict(domain.LogLine, json.loads(text))
                return
            except httpx.ConnectError as exc:
                if attempt:
                    raise Unreachable(f"the control plane does not answer: {exc}") from None
                await self._start_daemon(exc)
            except (httpx.TransportError, OSError):
                raise _dropped("GET", path, following=True) from None

    # ------------------------------------------------------------------ changes
    async def watch(self, after: str | None = None, timeout: float = 25.0) -> str | None:
        """``GET /v1/watch``: a long poll the control plane answers at the next change."""
        params = {"after": after or "0", "wait": str(timeout if after is not None else 0)}
        data = await self._call("GET", "/v1/watch", params=params)
        return str(data["revision"])

    # ------------------------------------------------------------------ metrics
    async def get_metrics(self, endpoint: str | None = None) -> MetricsReport:
        params = {"notes": "1", **({"endpoint": endpoint} if endpoint else {})}
        data = await self._call("GET", "/v1/metrics", params=params)
        if isinstance(data, list):  # a control plane from before ?notes=1
            data = {"samples": data}
        return from_dict(domain.MetricsReport, data)

    async def get_metrics_history(
        self, endpoint: str | None = None, deployment: str | None = None, *, window: str = "1h"
    ) -> MetricsHistory:
        params = {"window": validation.metrics_window(window)[0]}
        params.update({k: v for k, v in (("endpoint", endpoint), ("deployment", deployment)) if v})
        data = await self._call("GET", "/v1/metrics/history", params=params)
        return domain.MetricsHistory.from_wire(data)

    # ------------------------------------------------------------------ dry run
    async def render_manifests(
        self,
        spec: EndpointSpec | DeploymentSpec,
        *,
        update: bool = False,
        all_traffic: bool = False,
        model: ModelSpec | None = None,
    ) -> list[dict]:
        if isinstance(spec, EndpointSpec):
            body: dict[str, Any] = {"endpoint": to_dict(spec)}
        else:
            if model is not None:
                model = replace(model, path=os.path.abspath(model.path))
            body = {
                "deployment": to_dict(self._prepare(spec)),
                "update": update,
                "all_traffic": all_traffic,
                "model": None if model is None else to_dict(model),
            }
        return list(await self._call("POST", "/v1/render", json=body))

    # ------------------------------------------------------------------ rollouts
    async def start_rollout(self, spec: RolloutSpec) -> Rollout:
        from ..api.rollouts import Rollout, validate_spec

        body = to_dict(validate_spec(spec))  # the input rules here; the endpoint's, there
        del body["endpoint"]
        data = await self._call("POST", f"/v1/endpoints/{_q(spec.endpoint)}/rollout", json=body)
        return from_dict(Rollout, data)

    async def get_rollout(self, endpoint: str) -> Rollout | None:
        from ..api.rollouts import Rollout

        data = await self._call("GET", f"/v1/endpoints/{_q(endpoint)}/rollout")
        return None if data is None else from_dict(Rollout, data)

    async def list_rollouts(self) -> list[Rollout]:
        from ..api.rollouts import Rollout

        return [from_dict(Rollout, r) for r in await self._call("GET", "/v1/rollouts")]

    async def control_rollout(
        self, endpoint: str, action: str, *, if_revision: str | None = None
    ) -> Rollout:
        from ..api.rollouts import Rollout

        data = await self._call(
            "POST",
            f"/v1/endpoints/{_q(endpoint)}/rollout/{_q(action)}",
            headers=_if_match(if_revision),
        )
        return from_dict(Rollout, data)

    # -- the rollouts this daemon drives on an Azure ML workspace (``where``: its settings,
    # no credential; controlplane/cloudrollouts.py). POST: each carries the coordinates.
    async def start_cloud_rollout(self, where: dict[str, Any], spec: RolloutSpec) -> Rollout:
        from ..api.rollouts import Rollout, validate_spec

        body = {"workspace": where, "rollout": to_dict(validate_spec(spec))}
        return from_dict(Rollout, await self._call("POST", "/v1/azureml/rollouts/start", json=body))

    async def get_cloud_rollout(self, where: dict[str, Any], endpoint: str) -> Rollout | None:
        from ..api.rollouts import Rollout

        body = {"workspace": where, "endpoint": endpoint}
        data = await self._call("POST", "/v1/azureml/rollouts/get", json=body)
        return None if data is None else from_dict(Rollout, data)

    async def list_cloud_rollouts(self, where: dict[str, Any]) -> list[Rollout]:
        from ..api.rollouts import Rollout

        data = await self._call("POST", "/v1/azureml/rollouts/list", json={"workspace": where})
        return [from_dict(Rollout, r) for r in data]

    async def control_cloud_rollout(
        self, where: dict[str, Any], endpoint: str, action: str, *, if_revision: str | None = None
    ) -> Rollout:
        from ..api.rollouts import Rollout

        data = await self._call(
            "POST",
            f"/v1/azureml/rollouts/{_q(action)}",
            json={"workspace": where, "endpoint": endpoint},
            headers=_if_match(if_revision),
        )
        return from_dict(Rollout, data)

    # ------------------------------------------------------------------ operations
    async def get_history(self, endpoint: str | None = None) -> ChangeHistory:
        params = {"endpoint": endpoint} if endpoint else None
        return from_dict(
            domain.ChangeHistory, await self._call("GET", "/v1/history", params=params)
        )

    async def get_operation(self, op_id: str) -> Operation:
        return from_dict(domain.Operation, await self._call("GET", f"/v1/operations/{_q(op_id)}"))

    async def list_operations(self) -> list[Operation]:
        return [from_dict(domain.Operation, o) for o in await self._call("GET", "/v1/operations")]


__all__ = ["LocalWorkspace", "ModeldeckError"]
