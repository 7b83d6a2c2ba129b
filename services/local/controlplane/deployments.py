"""The deployments of the local workspace: their records, status, rollouts and logs.

A create or update passes :meth:`.admission.Admission.deployment` under the admission
lock, copies the code (:mod:`.codestore`), and records the change; the rollout runs as an
operation (environment built first, then the driver's ``apply_deployment``). A failed
update leaves the previous version serving and its record as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...api import validation
from ...api.domain import (
    Deployment,
    DeploymentRole,
    DeploymentSpec,
    LogLine,
    Operation,
    ProvisioningState,
)
from ...api.errors import Conflict, ModeldeckError, NotFound, Unreachable
from ...drivers.base import DeploymentRuntime, DeploymentStatus, Progress
from . import adopt
from .admission import DRIVER_TIMEOUT_S, reserved_instances
from .operations import Work, message_of
from .store.deployments import DeploymentRow
from .store.endpoints import EndpointRow
from .store.history import ACTOR, StaleRevision

if TYPE_CHECKING:
    from .engine import Engine


class Deployments:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def runtime_of(self, d: DeploymentRow) -> DeploymentRuntime:
        model = self.store.model(d.model_name, d.model_version)
        if model is None:
            raise NotFound("model", f"{d.model_name}:{d.model_version}")
        return DeploymentRuntime(spec=d.spec, model=model, code_dir=d.code_dir)

    def _deployment(self, d: DeploymentRow, ep: EndpointRow, status: Any) -> Deployment:
        role = DeploymentRole.CONTROL if ep.control == d.name else DeploymentRole.TREATMENT
        ready, desired, error = 0, reserved_instances(d.spec), d.error
        if d.spec.scale_settings.type == "target_utilization":
            desired = d.spec.scale_settings.min_instances
        if isinstance(status, DeploymentStatus):
            ready, desired = status.ready_replicas, status.desired_replicas
            error = error or status.error
        elif isinstance(status, str):
            error = error or status
        state, revision = d.state, d.revision
        if (
            state is ProvisioningState.FAILED
            and isinstance(status, DeploymentStatus)
            and 0 < status.desired_replicas <= status.ready_replicas
            and status.error is None
        ):
            # a first version that failed its rollout but came up on a later retry: the
            # control plane's own change, not the reader's
            state, error = ProvisioningState.SUCCEEDED, None
            token = ACTOR.set("the control plane (a retried rollout)")
            try:
                revision = self.store.set_deployment_state(d.endpoint, d.name, state) or revision
            finally:
                ACTOR.reset(token)
        spec = replace(d.spec, role=role)
        default = self.engine.default_probe(ep.cluster)
        if default is not None:  # a probe not given reads as what applies (az ml prints it)
            spec = replace(
                spec,
                liveness_probe=spec.liveness_probe or default,
                readiness_probe=spec.readiness_probe or default,
            )
        return Deployment(
            spec=spec,
            provisioning_state=state,
            ready_replicas=ready,
            desired_replicas=desired,
            traffic=int(ep.traffic.get(d.name, 0)),
            mirror_traffic=int(ep.mirror_traffic.get(d.name, 0)),
            error=error,
            created_at=d.created_at,
            updated_at=d.updated_at,
            revision=str(revision),
        )

    async def _status(self, cluster: str, d: DeploymentRow) -> DeploymentStatus | str | None:
        try:
            driver = self.engine.driver(cluster)
            status = await asyncio.wait_for(
                driver.deployment_status(d.endpoint, d.name), DRIVER_TIMEOUT_S
            )
        except TimeoutError:
            why = f"cluster '{cluster}' did not answer within {DRIVER_TIMEOUT_S:g} s"
            self.engine.cluster_health[cluster] = why
            return why
        except Unreachable as exc:
            self.engine.cluster_health[cluster] = exc.message
            return exc.message
        except NotFound as exc:
            self.engine.cluster_health.pop(cluster, None)
            if d.state is ProvisioningState.CREATING:
                return None  # not applied yet: nothing to say
            return message_of(exc)
        except Exception as exc:
            return message_of(exc)
        self.engine.cluster_health.pop(cluster, None)
        return status

    async def list_all(self, endpoint: str | None = None) -> list[Deployment]:

        clusters = (
            {self.engine.endpoint_row(endpoint).cluster} if endpoint else set(self.engine.drivers)
        )
        # Kubernetes: traffic, keys, new deployments from the cluster
        await adopt.refresh(self.engine, clusters)
        if endpoint is not None:
            eps = {endpoint: self.engine.endpoint_row(endpoint)}
        else:
            eps = {e.name: e for e in self.store.endpoints()}
        rows = [d for name in eps for d in self.store.deployments(name)]
        statuses = await asyncio.gather(*(self._status(eps[d.endpoint].cluster, d) for d in rows))
        return [
            self._deployment(d, eps[d.endpoint], s) for d, s in zip(rows, statuses, strict=True)
        ]

    def row(self, endpoint: str, name: str) -> DeploymentRow:
        self.engine.endpoint_row(endpoint)
        d = self.store.deployment(endpoint, name)
        if d is None:
            raise NotFound.deployment(name, endpoint)
        return d

    async def get(self, endpoint: str, name: str) -> Deployment:

        await adopt.refresh(self.engine, {self.engine.endpoint_row(endpoint).cluster})
        d = self.row(endpoint, name)
        ep = self.engine.endpoint_row(endpoint)
        return self._deployment(d, ep, await self._status(ep.cluster, d))

    async def create(
        self, spec: DeploymentSpec, *, all_traffic: bool = False, script_check: bool = True
    ) -> Operation:
        async with self.engine.admission.lock:
            admitted = await self.engine.admission.deployment(
                spec, update=False, script_check=script_check
            )
            spec, ep, _, model, code = admitted
            resolved = await self.engine.environments.resolve(spec, ep.cluster)
            code_dir = await self.engine.code.copy(ep.name, spec.name, code)
            stored = admitted.stored(code_dir, self.engine.default_probe(ep.cluster))
            now = time.time()
            row = DeploymentRow(
                endpoint=ep.name,
                name=spec.name,
                spec=stored,
                model_name=model.name,
                model_version=model.version,
                code_dir=code_dir,
                state=ProvisioningState.CREATING,
                error=None,
                created_at=now,
                updated_at=now,
            )
            with self.store.tx():
                self.store.upsert_deployment(row)
                if spec.role is DeploymentRole.CONTROL:
                    self.store.update_endpoint(ep.name, control=spec.name)
                if ep.traffic:
                    # keep the full map: the new deployment takes 0 until it is given some
                    self.store.update_endpoint(ep.name, traffic={**ep.traffic, spec.name: 0})

        async def work(progress: Progress) -> None:
            key: str | None = None
            try:
                key, python = await self.engine.environments.build(
                    ep.name, spec.name, resolved, progress
                )
                runtime = DeploymentRuntime(
                    spec=stored, model=model, code_dir=code_dir, python=python, environment=resolved
                )
                driver = self.engine.driver(ep.cluster)
                await driver.apply_deployment(ep.name, runtime, progress)
                self.store.set_deployment_env(ep.name, spec.name, key, python or "")
            except Exception as exc:
                self.store.set_deployment_state(
                    ep.name, spec.name, ProvisioningState.FAILED, message_of(exc)
                )
                raise
            finally:
                self.engine.environments.release(key)
            self.store.set_deployment_state(ep.name, spec.name, ProvisioningState.SUCCEEDED)
            if all_traffic:
                progress(0.95, f"sending all traffic to {spec.name}")
                async with self.engine.admission.lock:
                    cur = self.engine.endpoint_row(ep.name)
                    deps = self.engine.live_deployments(ep.name)
                    traffic = {d: (100 if d == spec.name else 0) for d in deps}
                    mirror = {k: v for k, v in cur.mirror_traffic.items() if k != spec.name}
                    new = replace(cur, traffic=traffic, mirror_traffic=mirror)
                    await self.engine.apply_route(
                        ep.cluster, replace(self.engine.route(new), base=self.engine.route(cur))
                    )
                    self.store.update_endpoint(ep.name, traffic=traffic, mirror_traffic=mirror)

        return self.engine.operations.start("deployment.create", f"{ep.name}/{spec.name}", work)

    async def update(
        self, spec: DeploymentSpec, *, if_revision: str | None = None, script_check: bool = True
    ) -> Operation:
        sent = self.engine.revision_sent(if_revision)
        async with self.engine.admission.lock:
            if sent is not None:
                row = self.row(spec.endpoint_name, spec.name)
                if sent != row.revision:
                    raise self.engine.stale(
                        "deployment", f"{row.endpoint}/{row.name}", sent, row.revision
                    )
            admitted = await self.engine.admission.deployment(
                spec, update=True, script_check=script_check
            )
            spec, ep, old, model, code = admitted
            assert old is not None
            resolved = await self.engine.environments.resolve(spec, ep.cluster)
            code_dir = await self.engine.code.copy(ep.name, spec.name, code)
            stored = admitted.stored(code_dir, self.engine.default_probe(ep.cluster))
            try:
                with self.store.tx():
                    # compare-and-set: the record the checks were made on (or the one the
                    # client read), in the transaction that marks it Updating
                    self.store.set_deployment_state(
                        ep.name,
                        spec.name,
                        ProvisioningState.UPDATING,
                        if_revision=old.revision if sent is None else sent,
                        spec_before=old.spec,
                        spec_after=stored,
                    )
                    if spec.role is DeploymentRole.CONTROL and ep.control != spec.name:
                        self.store.update_endpoint(ep.name, control=spec.name)
            except StaleRevision as exc:
                if code_dir != old.code_dir:
                    self.engine.code.prune(ep.name, spec.name, keep=old.code_dir)
                raise self.engine.stale("deployment", exc.target, exc.sent, exc.now) from None
            self.engine.admission.pending[(ep.name, spec.name)] = stored

        async def work(progress: Progress) -> None:
            # the spec as the records had it is the base: a cluster keeps what someone else
            # changed since in other fields, and refuses a change to the same one (Conflict)
            key: str | None = None
            try:
                # a failed build fails the operation here: the previous version keeps serving
                key, python = await self.engine.environments.build(
                    ep.name, spec.name, resolved, progress
                )
                runtime = DeploymentRuntime(
                    spec=stored,
                    model=model,
                    code_dir=code_dir,
                    base=old.spec,
                    python=python,
                    environment=resolved,
                )
                await self.engine.driver(ep.cluster).apply_deployment(ep.name, runtime, progress)
            except Exception:
                # the previous spec and its replicas stay as they were
                if self.store.deployment(ep.name, spec.name) is not None:
                    self.store.set_deployment_state(
                        ep.name,
                        spec.name,
                        old.state,
                        old.error,
                        spec_before=stored,  # recorded as rolled back
                        spec_after=old.spec,
                    )
                if code_dir != old.code_dir:
                    self.engine.code.prune(ep.name, spec.name, keep=old.code_dir)
                raise
            else:
                self.store.upsert_deployment(
                    replace(
                        old,
                        spec=stored,
                        model_name=model.name,
                        model_version=model.version,
                        code_dir=code_dir,
                        state=ProvisioningState.SUCCEEDED,
                        error=None,
                        updated_at=time.time(),
                    ),
                    spec_before=stored,  # the history has the change since it was marked
                )
                self.engine.code.prune(ep.name, spec.name, keep=code_dir)
                self.store.set_deployment_env(ep.name, spec.name, key, python or "")
            finally:
                self.engine.environments.release(key)
                self.engine.admission.pending.pop((ep.name, spec.name), None)

        return self.engine.operations.start("deployment.update", f"{ep.name}/{spec.name}", work)

    async def delete(self, endpoint: str, name: str) -> Operation:
        async with self.engine.admission.lock:
            d = self.row(endpoint, name)
            ep = self.engine.endpoint_row(endpoint)
            live = int(ep.traffic.get(name, 0))
            mirror = int(ep.mirror_traffic.get(name, 0))
            if live or mirror:
                what = f"{live}% of live traffic" if live else f"{mirror}% mirrored traffic"
                others = [x for x in ep.traffic if x != name]
                raise Conflict(
                    f"deployment '{name}' still takes {what} of endpoint '{endpoint}'",
                    fix=(
                        "move its traffic first, e.g. modeldeck online-endpoint update "
                        f'--name {endpoint} --traffic "{name}=0'
                        + (f' {others[0]}=100"' if others else '"')
                        if live
                        else f"remove the mirror first: modeldeck online-endpoint update "
                        f'--name {endpoint} --mirror-traffic "{name}=0"'
                    ),
                )
            if d.state is ProvisioningState.DELETING:
                raise Conflict(f"deployment '{name}' is already being deleted")
            if d.state in (ProvisioningState.CREATING, ProvisioningState.UPDATING):
                raise Conflict(
                    f"deployment '{name}' is {d.state.value.lower()}; wait until that operation "
                    "ends, then delete it",
                    fix=f"watch it with: modeldeck online-deployment show -e {endpoint} -n {name}",
                )
            self.store.set_deployment_state(endpoint, name, ProvisioningState.DELETING)
        return self.engine.operations.start(
            "deployment.delete", f"{endpoint}/{name}", self.deleter(d)
        )

    def deleter(self, d: DeploymentRow) -> Work:
        async def work(progress: Progress) -> None:
            progress(0.2, f"stopping {d.name}")
            await self.engine.driver_for_endpoint(d.endpoint).delete_deployment(d.endpoint, d.name)
            async with self.engine.admission.lock:
                ep = self.store.endpoint(d.endpoint)
                if ep is None:
                    self.store.delete_deployment(d.endpoint, d.name)
                else:
                    new = replace(
                        ep,
                        traffic={k: v for k, v in ep.traffic.items() if k != d.name},
                        mirror_traffic={k: v for k, v in ep.mirror_traffic.items() if k != d.name},
                        control=None if ep.control == d.name else ep.control,
                    )
                    # the record and the endpoint's maps change in one transaction
                    self.store.remove_deployment(d.endpoint, d.name, new)
                    with contextlib.suppress(ModeldeckError):
                        await self.engine.apply_route(
                            ep.cluster, replace(self.engine.route(new), base=self.engine.route(ep))
                        )
            self.engine.code.remove(d.endpoint, d.name)

        return work

    async def logs(
        self,
        endpoint: str,
        name: str,
        lines: int = 100,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        """``since`` (epoch seconds): only lines written at or after it."""
        lines, since, container = self._log_request(endpoint, name, lines, since, container)
        driver = self.engine.driver_for_endpoint(endpoint)
        return await driver.read_logs(endpoint, name, lines, since=since, container=container)

    def follow_logs(
        self,
        endpoint: str,
        name: str,
        lines: int = 100,
        since: float | None = None,
        container: str | None = None,
    ) -> AsyncIterator[LogLine]:
        lines, since, container = self._log_request(endpoint, name, lines, since, container)
        return self.engine.driver_for_endpoint(endpoint).follow_logs(
            endpoint, name, lines, since=since, container=container
        )

    def _log_request(
        self, endpoint: str, name: str, lines: int, since: float | None, container: str | None
    ) -> tuple[int, float | None, str | None]:
        """A logs request checked: the deployment exists, and lines, since and container."""
        self.row(endpoint, name)
        return (
            validation.integer(lines, "lines", 0, 100_000),
            None if since is None else validation.number(since, "since", 0),
            validation.log_container(container),
        )
