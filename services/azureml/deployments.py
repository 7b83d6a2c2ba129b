"""Online deployments: create, update, delete, why one failed, and their logs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..api import validation
from ..api.domain import (
    Deployment,
    DeploymentSpec,
    EndpointPatch,
    LogLine,
    OperationStatus,
)
from ..api.errors import (
    Conflict,
    NotFound,
)
from ..api.workspace import OperationHandle
from . import failures, mapping
from .arm import Lro
from .conflicts import ConflictCheck


class DeploymentRoom(ConflictCheck):
    """Deployments and their logs (uses AssetRoom for the body, EndpointRoom for traffic)."""

    _log_poll: float  # seconds between getLogs calls when following
    _last_errors: dict[tuple[str, str], str]  # (endpoint, deployment) -> why it failed
    #: (endpoint, deployment) -> GiB per instance (limit, else request), for metrics
    _memory_gib: dict[tuple[str, str], float]
    #: failures recorded by other processes (failures.py), read once per listing
    _failures: dict[str, str] | None

    def _to_deployment(
        self, endpoint: str, res: dict[str, Any], ep: dict[str, Any] | None
    ) -> Deployment:
        props = (ep or {}).get("properties") or {}
        name = str(res.get("name") or "")
        state = mapping.provisioning_state((res.get("properties") or {}).get("provisioningState"))
        error = None
        if state.value == "Failed":
            error = self._last_errors.get((endpoint, name)) or self._failure_of(endpoint, name)
        self._remember("deployment", f"{endpoint}/{name}", res)
        dep = mapping.deployment_to_domain(
            endpoint,
            res,
            traffic=props.get("traffic"),
            mirror_traffic=props.get("mirrorTraffic"),
            error=error,
        )
        res_set = dep.spec.resources
        mem = res_set.limits.memory_gb or res_set.requests.memory_gb
        if mem:
            self._memory_gib[(endpoint, name)] = float(mem)
        return dep

    async def list_deployments(self, endpoint: str | None = None) -> list[Deployment]:
        self._failures = None  # read again: another process may have recorded one
        if endpoint is not None:
            ep, items = await asyncio.gather(
                self._raw_endpoint(endpoint),
                self.arm.list_all(
                    f"{self._ep(endpoint)}/deployments", kind="endpoint", name=endpoint
                ),
            )
            return [self._to_deployment(endpoint, d, ep) for d in items]
        endpoints = await self._raw_endpoints()
        sem = asyncio.Semaphore(16)

        async def one(ep: dict[str, Any]) -> list[Deployment]:
            name = str(ep.get("name"))
            async with sem:
                try:
                    items = await self.arm.list_all(
                        f"{self._ep(name)}/deployments", kind="endpoint", name=name
                    )
                except NotFound:  # deleted meanwhile
                    return []
            return [self._to_deployment(name, d, ep) for d in items]

        results = await asyncio.gather(*(one(e) for e in endpoints), return_exceptions=True)
        out: list[Deployment] = []
        errors: list[BaseException] = []
        for r in results:
            if isinstance(r, BaseException):
                errors.append(r)
            else:
                out.extend(r)
        if (
            errors and not out
        ):  # one endpoint failing never hides the others; all failing is an error
            raise errors[0]
        return out

    async def get_deployment(self, endpoint: str, name: str) -> Deployment:
        self._failures = None
        ep, res = await asyncio.gather(
            self._raw_endpoint(endpoint),
            self.arm.get(self._dep(endpoint, name), kind="deployment", name=f"{endpoint}/{name}"),
        )
        return self._to_deployment(endpoint, res, ep)

    async def _deployment_body(self, spec: DeploymentSpec) -> dict[str, Any]:
        """The PUT body; a ``ManagedOnlineDeployment``'s when the endpoint has no compute."""
        endpoint, model_id, code_id, env_id, location = await asyncio.gather(
            self._raw_endpoint(spec.endpoint_name),
            self._model_id(spec.model),
            self._code_id(spec),
            self._environment_id(spec),
            self.location(),
        )
        return mapping.deployment_body(
            spec,
            model_id=model_id,
            code_id=code_id,
            environment_id=env_id,
            location=location,
            managed=not (endpoint.get("properties") or {}).get("compute"),
        )

    def _failure_of(self, endpoint: str, name: str) -> str:
        """Why it failed, as another process recorded it; else where to look."""
        if self._failures is None:
            self._failures = failures.load()
        known = failures.lookup(self._failures, self._dep(endpoint, name))
        if known:
            return known
        return (
            "provisioning Failed (ARM keeps the reason in the operation that failed, which "
            "this machine did not follow); see why the container did not start: "
            f"modeldeck online-deployment get-logs -e {endpoint} -n {name}"
        )

    def _remember_failure(self, endpoint: str, name: str) -> Callable[[Lro], None]:
        dep_id = self._dep(endpoint, name)

        def done(lro: Lro) -> None:
            if lro.status is OperationStatus.FAILED:
                self._last_errors[(endpoint, name)] = lro.message
                failures.record(dep_id, lro.message)
            else:
                self._last_errors.pop((endpoint, name), None)
                failures.record(dep_id, None)
            self._failures = None

        return done

    async def create_deployment(
        self,
        spec: DeploymentSpec,
        *,
        all_traffic: bool = False,
        skip_script_validation: bool = False,  # nothing parses the script before the PUT
    ) -> OperationHandle:
        validation.deployment_spec(spec)
        deps = await self._deployment_names(spec.endpoint_name)
        if spec.name in deps:
            raise Conflict.deployment_exists(spec.name, spec.endpoint_name)
        validation.deployment_count(deps, spec.name)
        body = await self._deployment_body(spec)
        target = f"{spec.endpoint_name}/{spec.name}"
        lro = await self._begin(
            "PUT", self._dep(spec.endpoint_name, spec.name), "deployment.create", target, json=body
        )
        lro.on_done = self._remember_failure(spec.endpoint_name, spec.name)
        if all_traffic:

            async def send_all() -> Lro:
                names = await self._deployment_names(spec.endpoint_name)
                full = {d: 0 for d in names}
                full[spec.name] = 100
                return await self._put_endpoint(
                    spec.endpoint_name, EndpointPatch(traffic=full), kind="endpoint.traffic"
                )

            lro.then = send_all
        return self._track(lro)

    async def update_deployment(
        self,
        spec: DeploymentSpec,
        *,
        if_revision: str | None = None,
        skip_script_validation: bool = False,  # as create_deployment's
    ) -> OperationHandle:
        validation.deployment_spec(spec)
        target = f"{spec.endpoint_name}/{spec.name}"
        path = self._dep(spec.endpoint_name, spec.name)
        current = await self.arm.get(path, kind="deployment", name=target)
        self._check_revision("deployment", target, current, if_revision)  # before any upload
        body = await self._deployment_body(spec)
        if if_revision:  # and again just before the PUT: the upload may have taken a while
            current = await self.arm.get(path, kind="deployment", name=target)
            self._check_revision("deployment", target, current, if_revision)
        lro = await self._begin(
            "PUT", self._dep(spec.endpoint_name, spec.name), "deployment.update", target, json=body
        )
        lro.on_done = self._remember_failure(spec.endpoint_name, spec.name)
        return self._track(lro)

    async def delete_deployment(self, endpoint: str, name: str) -> OperationHandle:
        target = f"{endpoint}/{name}"
        ep, _ = await asyncio.gather(
            self._raw_endpoint(endpoint),
            self.arm.get(self._dep(endpoint, name), kind="deployment", name=target),
        )
        props = ep.get("properties") or {}
        live = int((props.get("traffic") or {}).get(name) or 0)
        mirror = int((props.get("mirrorTraffic") or {}).get(name) or 0)
        if live or mirror:
            what = f"{live}% of live traffic" if live else f"{mirror}% of mirrored traffic"
            raise Conflict(
                f"deployment '{name}' takes {what} on endpoint '{endpoint}'",
                fix=f'move its traffic first: modeldeck online-endpoint update -n {endpoint} --traffic "..."',
            )
        lro = await self._begin("DELETE", self._dep(endpoint, name), "deployment.delete", target)
        dep_id = self._dep(endpoint, name)

        def gone(done: Lro) -> None:
            if done.status is OperationStatus.SUCCEEDED:
                self._last_errors.pop((endpoint, name), None)
                failures.record(dep_id, None)
                self._failures = None

        if lro.done:
            gone(lro)
        else:
            lro.on_done = gone
        return self._track(lro)

    async def _log_text(self, endpoint: str, name: str, tail: int, container: str) -> str:
        resp = await self.arm.request(
            "POST",
            f"{self._dep(endpoint, name)}/getLogs",
            json={"containerType": container, "tail": tail},
            kind="deployment",
            name=f"{endpoint}/{name}",
            retry_unsafe=True,
        )
        return str((resp.json() or {}).get("content") or "")

    async def get_logs(
        self,
        endpoint: str,
        name: str,
        *,
        lines: int = 100,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        """``getLogs`` has only ``tail``: ``since`` filters the last ``lines`` lines here by
        the timestamp a line starts with; a line without one is kept (its time is unknown).
        ``container`` is sent as ``containerType`` (az ml sends ``tail`` as given, 0 too);
        without one, the inference server's log, else (when it is empty: the server never
        started) the model download's, which says why."""
        validation.integer(lines, "lines", 0, 10000)
        wanted = validation.log_container(container)
        kind = mapping.LOG_CONTAINER_TYPES[wanted or "inference-server"]
        text = await self._log_text(endpoint, name, lines, kind)
        if wanted is None and lines and not text.strip():
            kind = mapping.LOG_CONTAINER_TYPES["storage-initializer"]
            text = await self._log_text(endpoint, name, lines, kind)
        out = mapping.log_lines(endpoint, name, text, container=kind, now=time.time())
        return [ln for ln in out if since is None or ln.ts >= since][-lines:] if lines else []

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
        """``since``, ``container``: as in ``get_logs``. Each poll asks for the same tail
        (``window``), so that the lines new since the last poll are what follows the overlap."""
        validation.integer(lines, "lines", 0, 10000)
        kind = mapping.LOG_CONTAINER_TYPES[
            validation.log_container(container) or "inference-server"
        ]
        window = max(lines, 200)
        seen = mapping.log_text_lines(await self._log_text(endpoint, name, window, kind))
        first = mapping.log_lines(endpoint, name, "\n".join(seen), container=kind, now=time.time())
        for line in first[-lines:] if lines else []:
            if since is None or line.ts >= since:
                yield line
        while follow:
            await asyncio.sleep(self._log_poll)
            current = mapping.log_text_lines(await self._log_text(endpoint, name, window, kind))
            fresh = mapping.new_tail(seen, current)
            seen = current
            if fresh:
                text = "\n".join(fresh)
                for line in mapping.log_lines(
                    endpoint, name, text, container=kind, now=time.time()
                ):
                    if since is None or line.ts >= since:
                        yield line
