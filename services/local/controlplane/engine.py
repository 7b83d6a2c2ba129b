"""The local control plane's logic: every Workspace operation, server side.

The engine owns the records (:mod:`.store`) and the rules
(:mod:`modeldeck.services.api.validation`); cluster drivers make the clusters match
the records. Everything is validated before anything changes: a refused request
leaves the records, the files and the running replicas as they were.

:class:`Engine` is the facade the management API calls, and holds what every room
shares (the store, the drivers and their health, lookups that raise NotFound, the
endpoint's route). The endpoints' CRUD lives here; the other jobs are rooms, each
one module: :mod:`.operations` (the operation tracker), :mod:`.admission` (the lock
and every check of a change), :mod:`.clusters`, :mod:`.models`, :mod:`.codestore`,
:mod:`.envstore` (environments), :mod:`.deployments`, :mod:`.access` (keys, tokens,
invoke), :mod:`.dryrun`, :mod:`.restore` (daemon start), :mod:`.rollouts` (progressive
rollouts, issue 14) and :mod:`.adopt` (Kubernetes adoption and following). Rooms reach each
other through the engine's public attributes, never its privates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...api import revisions, validation
from ...api.domain import (
    AuthMode,
    Cluster,
    ClusterSpec,
    Deployment,
    DeploymentSpec,
    Endpoint,
    EndpointKeys,
    EndpointPatch,
    EndpointSpec,
    EndpointToken,
    Environment,
    InvokeResult,
    KeyType,
    LogLine,
    MetricSample,
    MetricsHistory,
    MetricsReport,
    Model,
    ModelSpec,
    Operation,
    Probe,
    ProvisioningState,
    openapi_uri_for,
)
from ...api.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unreachable,
)
from ...drivers.base import (
    ClusterDriver,
    EndpointAuth,
    EndpointRoute,
    NotesMetrics,
    Progress,
    ScoresThroughApi,
)
from . import adopt, dryrun, managed
from .access import Access, new_key
from .admission import DRIVER_TIMEOUT_S, Admission
from .audit import Audit
from .clusters import Clusters
from .codestore import CodeStore
from .deployments import Deployments
from .envstore import EnvironmentStore
from .models import Models
from .operations import Operations, Work, message_of
from .restore import restore_all
from .rollouts import Rollouts
from .sampler import Sampler
from .store.db import Store
from .store.endpoints import EndpointRow
from .store.history import StaleRevision

log = logging.getLogger("modeldeck.daemon")

#: How long a route change (traffic, keys) may take on a cluster.
ROUTE_TIMEOUT_S = 60.0


class Engine:
    """Server-side implementation of the Workspace operations of the local workspace."""

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        *,
        gateway: Any = None,
        token_ttl_s: float = 3600.0,
        version: str = "",
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.gateway = gateway
        self.token_ttl_s = token_ttl_s
        self.version = version
        self.drivers: dict[str, ClusterDriver] = {}
        self.driver_errors: dict[str, str] = {}
        #: clusters whose last call failed (shown on their endpoints until one succeeds)
        self.cluster_health: dict[str, str] = {}
        #: model and code copies in progress: set one to stop that copy (daemon stop)
        self._copies: set[threading.Event] = set()
        # the rooms (each module says what it holds)
        self.operations = Operations(store)
        self.admission = Admission(self)
        self.following = adopt.Following(store)
        self.code = CodeStore(data_dir / "code", self._copies)
        self.models = Models(store, data_dir, self.admission, self._copies)
        self.environments = EnvironmentStore(self)
        self.clusters = Clusters(self)
        self.deployments = Deployments(self)
        self.access = Access(self)
        self.audit = Audit(self)
        self.sampler = Sampler(self)
        self.rollouts = Rollouts(self)

    # ================================================================== lifecycle
    async def restore(self) -> None:
        """Recreate every driver, route and deployment from the records (daemon start)."""
        self.audit.start()
        self.sampler.start()
        await restore_all(self)

    def cancel_copies(self) -> None:
        """Stop every model or code copy in progress (each removes its partial copy)."""
        for cancel in list(self._copies):
            cancel.set()

    async def close(self) -> None:
        self.cancel_copies()
        await self.rollouts.close()  # their records stay: the next start resumes them
        await self.audit.close()
        await self.sampler.close()
        await self.operations.close()
        for name, driver in list(self.drivers.items()):
            try:
                await driver.close()
            except Exception as exc:
                log.warning("closing cluster %s: %s", name, exc)
        await self.access.close()

    # ================================================================== operations
    async def wait_operation(self, op_id: str, after: int, timeout: float) -> tuple[Operation, int]:
        """The operation once it changed past revision ``after`` (or after ``timeout``)."""
        return await self.operations.wait(op_id, after, timeout)

    def get_operation(self, op_id: str) -> Operation:
        return self.operations.get(op_id)

    def list_operations(self) -> list[Operation]:
        return self.operations.list_all()

    # ================================================================== clusters
    def cluster_row(self, name: str) -> Any:
        row = self.store.cluster(name)
        if row is None:
            raise NotFound("cluster", name)
        return row

    def driver(self, cluster: str) -> ClusterDriver:
        driver = self.drivers.get(cluster)
        if driver is None:
            why = self.driver_errors.get(cluster, "its driver is not running")
            raise Unreachable(
                f"cluster '{cluster}' is not available: {why}",
                fix="check the cluster (modeldeck cluster show) and the daemon's log",
            )
        return driver

    def default_probe(self, cluster: str) -> Probe | None:
        """The probe that applies on ``cluster`` to a deployment that gives none."""
        driver = self.drivers.get(cluster)
        return None if driver is None else driver.default_probe

    def driver_for_endpoint(self, endpoint: str) -> ClusterDriver:
        ep = self.store.endpoint(endpoint)
        if ep is None:
            raise NotFound("endpoint", endpoint)
        return self.driver(ep.cluster)

    async def list_clusters(self) -> list[Cluster]:
        return await self.clusters.list_all()

    async def get_cluster(self, name: str) -> Cluster:
        return await self.clusters.get(name)

    async def create_cluster(self, spec: ClusterSpec) -> Operation:
        return await self.clusters.create(spec)

    async def attach_cluster(self, spec: ClusterSpec) -> Operation:
        return await self.clusters.attach(spec)

    async def detach_cluster(self, name: str, *, delete_resources: bool = False) -> Operation:
        return await self.clusters.detach(name, delete_resources=delete_resources)

    async def scale_cluster(self, name: str, agent_count: int) -> Operation:
        return await self.clusters.scale(name, agent_count)

    async def update_cluster(
        self, name: str, *, tags: dict[str, str], remove_tags: list[str]
    ) -> Cluster:
        return await self.clusters.update(name, tags=tags, remove_tags=remove_tags)

    async def delete_cluster(self, name: str) -> Operation:
        return await self.clusters.delete(name)

    # ================================================================== models
    def list_models(self, name: str | None = None) -> list[Model]:
        return self.models.list_all(name)

    def get_model(self, name: str, version: int | None = None) -> Model:
        return self.models.get(name, version)

    async def create_model(self, spec: ModelSpec) -> Model:
        return await self.models.create(spec)

    async def archive_model(self, name: str, version: int, *, archived: bool = True) -> Model:
        return self.models.archive(name, version, archived)

    async def delete_model(self, name: str, version: int) -> None:
        await self.models.delete(name, version)

    # ================================================================== revisions
    @staticmethod
    def revision_sent(if_revision: str | None) -> int | None:
        if if_revision is None:
            return None
        try:
            return int(str(if_revision))
        except ValueError:
            raise InvalidInput(
                "if_revision",
                if_revision,
                "is not a revision of this workspace (a whole number)",
                "send the revision of the record as you read it (its 'revision' field)",
            ) from None

    def stale(self, kind: str, target: str, sent: int, now: int) -> Conflict:
        """A Conflict naming what changed since revision ``sent``, and who changed it."""
        history = self.store.changes(kind, target, after=sent)
        by = list(dict.fromkeys(c.actor for c in history))
        change = revisions.merge(c.changed for c in history)
        endpoint, _, name = target.partition("/")
        if kind == "endpoint":
            fix = (
                f"see it now (modeldeck online-endpoint show -n {target}) and repeat your "
                "change on it; the CLI does that by itself when your change touches other fields"
            )
        else:
            fix = (
                f"see it now (modeldeck online-deployment show -e {endpoint} -n {name}) and "
                "repeat your change on it; the CLI does that by itself when your change touches "
                "other fields"
            )
        return revisions.stale(
            kind, name or target, sent=str(sent), now=str(now), change=change, by=by, fix=fix
        )

    # ================================================================== endpoints
    def endpoint_row(self, name: str) -> EndpointRow:
        row = self.store.endpoint(name)
        if row is None:
            raise NotFound("endpoint", name)
        return row

    def route(self, ep: EndpointRow) -> EndpointRoute:
        return EndpointRoute(
            name=ep.name,
            auth=EndpointAuth(
                mode=ep.auth_mode,
                primary_key=ep.primary_key,
                secondary_key=ep.secondary_key,
                token_secret=ep.token_secret,
                owner_uid=os.getuid() if ep.local else None,
            ),
            traffic=dict(ep.traffic),
            mirror_traffic=dict(ep.mirror_traffic),
            description=ep.description,
            tags={k: v for k, v in ep.tags.items() if k != adopt.ADOPTED_TAG},
        )

    async def apply_route(self, cluster: str, route: EndpointRoute) -> None:
        """Hand a route to the cluster's data plane, bounded (callers hold the admission lock)."""
        try:
            await asyncio.wait_for(self.driver(cluster).apply_endpoint(route), ROUTE_TIMEOUT_S)
        except TimeoutError:
            raise Unreachable(
                f"cluster '{cluster}' did not take the route of endpoint '{route.name}' within "
                f"{ROUTE_TIMEOUT_S:g} s; the records were not changed",
                fix="check the cluster (modeldeck cluster show), then repeat the command",
            ) from None

    def scoring_uri(self, ep: EndpointRow) -> str:
        driver = self.drivers.get(ep.cluster)
        if driver is None:
            return ""
        try:
            return driver.scoring_uri(ep.name)
        except Exception:
            return ""

    def _endpoint(self, ep: EndpointRow) -> Endpoint:
        error = ep.error
        why = self.driver_errors.get(ep.cluster) or self.cluster_health.get(ep.cluster)
        if why:
            error = f"cluster '{ep.cluster}' is not available: {why}"
        scoring_uri = self.scoring_uri(ep)
        source, note = "", None
        driver = self.drivers.get(ep.cluster)
        if isinstance(driver, ScoresThroughApi):
            source, note = driver.scoring_address()[1], driver.scoring_uri_note(ep.name)
        # a managed endpoint shows no compute, as az ml's do; managed_capacity names the record
        on_managed = self.admission.on_managed(ep.cluster)
        return Endpoint(
            name=ep.name,
            compute="" if on_managed else ep.cluster,
            kind="Managed" if on_managed else "K8s",
            managed_capacity=ep.cluster if on_managed else "",
            auth_mode=AuthMode.parse(ep.auth_mode),  # type: ignore[arg-type]
            scoring_uri=scoring_uri,
            openapi_uri=openapi_uri_for(scoring_uri),
            traffic=dict(ep.traffic),
            mirror_traffic=dict(ep.mirror_traffic),
            provisioning_state=ep.state,
            description=ep.description,
            tags=dict(ep.tags),
            control=ep.control,
            created_at=ep.created_at,
            error=error or note,
            revision=str(ep.revision),
            scoring_uri_source=source,
            local=ep.local,
        )

    async def list_endpoints(self) -> list[Endpoint]:

        # Kubernetes: traffic and keys as the cluster has them
        await adopt.refresh(self, set(self.drivers))
        return [self._endpoint(ep) for ep in self.store.endpoints()]

    async def get_endpoint(self, name: str) -> Endpoint:

        await adopt.refresh(self, {self.endpoint_row(name).cluster})
        return self._endpoint(self.endpoint_row(name))

    @staticmethod
    def new_endpoint_row(spec: EndpointSpec, key: Callable[[], str] = new_key) -> EndpointRow:
        """The record of a new endpoint (``key`` makes its keys; ``--dry-run``: placeholders)."""
        return EndpointRow(
            name=spec.name,
            cluster=spec.compute,
            auth_mode=spec.auth_mode.value,
            description=spec.description,
            tags=dict(spec.tags),
            traffic={},
            mirror_traffic={},
            control=None,
            primary_key=key(),
            secondary_key=key(),
            token_secret=key(),
            state=ProvisioningState.CREATING,
            error=None,
            created_at=time.time(),
            local=spec.local,
        )

    async def create_endpoint(self, spec: EndpointSpec) -> Operation:
        async with self.admission.lock:
            spec = self.admission.endpoint(spec)
            if not spec.compute:  # a managed online endpoint: this host's managed capacity
                spec = replace(spec, compute=managed.ensure(self))
            cluster = self.store.cluster(spec.compute)
            if cluster is None:
                names = [c.spec.name for c in self.store.clusters()]
                raise InvalidInput(
                    "compute",
                    spec.compute,
                    "is not a cluster of this workspace",
                    "create one (modeldeck cluster create --name NAME)"
                    + (f" or use one of: {', '.join(names)}" if names else ""),
                )
            if cluster.state is ProvisioningState.DELETING:
                raise Conflict(f"cluster '{spec.compute}' is being deleted")
            row = self.new_endpoint_row(spec)
            self.store.insert_endpoint(row)

        async def work(progress: Progress) -> None:
            progress(0.3, "configuring the route")
            try:
                await self.driver(row.cluster).apply_endpoint(self.route(row))
            except Exception as exc:
                self.store.update_endpoint(
                    row.name, state=ProvisioningState.FAILED, error=message_of(exc)
                )
                raise
            self.store.update_endpoint(row.name, state=ProvisioningState.SUCCEEDED, error=None)

        return self.operations.start("endpoint.create", spec.name, work)

    def live_deployments(self, endpoint: str) -> list[str]:
        return [
            d.name
            for d in self.store.deployments(endpoint)
            if d.state is not ProvisioningState.DELETING
        ]

    async def update_endpoint(
        self, name: str, patch: EndpointPatch, *, if_revision: str | None = None
    ) -> Operation:
        traffic, mirror_traffic, control = patch.traffic, patch.mirror_traffic, patch.control
        description, tags = patch.description, patch.tags
        sent = self.revision_sent(if_revision)
        async with self.admission.lock:
            ep = self.endpoint_row(name)
            if sent is not None and sent != ep.revision:
                raise self.stale("endpoint", name, sent, ep.revision)
            deps = self.live_deployments(name)
            new_traffic = dict(ep.traffic)
            if traffic is not None:
                new_traffic = validation.traffic(traffic, deps)
                # a full map: every deployment has a number, 0 when not given
                new_traffic = {d: new_traffic.get(d, 0) for d in deps}
            new_mirror = dict(ep.mirror_traffic)
            if mirror_traffic is not None:
                new_mirror = validation.mirror_traffic(mirror_traffic, new_traffic, deps)
            elif traffic is not None and new_mirror:
                validation.mirror_traffic(new_mirror, new_traffic, deps)
            if tags is not None:
                tags = validation.tags(tags)
            if description is not None:
                validation.description(description)
            new_control: str | bool | None = False
            if control is not None:
                if control == "":
                    new_control = None
                elif control not in deps:
                    raise InvalidInput.no_deployment("control", control, control, deps)
                else:
                    new_control = control
            new_row = replace(
                ep,
                traffic=new_traffic,
                mirror_traffic=new_mirror,
                description=ep.description if description is None else description,
                tags=dict(ep.tags) if tags is None else dict(tags),
            )
            # what the data plane keeps: traffic and mirror maps, and (Kubernetes: with the
            # endpoint on the cluster, for the other operators) its description and tags
            routing_changed = self.route(new_row) != self.route(ep)
            if routing_changed:
                # the data plane first: if it refuses, the records stay as they were; the
                # record as read is the base (a cluster keeps someone else's change since)
                await self.apply_route(
                    ep.cluster, replace(self.route(new_row), base=self.route(ep))
                )
            try:
                # compare-and-set against the record all the checks above were made on: a
                # change that landed meanwhile (outside admission) refuses this one
                self.store.update_endpoint(
                    name,
                    traffic=new_traffic if traffic is not None else None,
                    mirror_traffic=new_mirror if mirror_traffic is not None else None,
                    description=description,
                    tags=tags,
                    control=new_control,
                    if_revision=ep.revision,
                )
            except Exception as exc:
                if routing_changed:
                    with contextlib.suppress(Exception):
                        # the route of the record as it is now, not as this request read it
                        await self.apply_route(
                            ep.cluster,
                            replace(self.route(self.endpoint_row(name)), base=self.route(new_row)),
                        )
                if isinstance(exc, StaleRevision):
                    raise self.stale(
                        "endpoint", name, exc.sent if sent is None else sent, exc.now
                    ) from None
                raise
        shown = " ".join(f"{k}={v}" for k, v in new_traffic.items())
        return self.operations.done("endpoint.update", name, f"traffic {shown}".strip())

    async def delete_endpoint(self, name: str) -> Operation:
        async with self.admission.lock:
            ep = self.endpoint_row(name)
            if name in self.admission.deleting:
                raise Conflict(
                    f"endpoint '{name}' is already being deleted",
                    fix="watch it with: modeldeck online-endpoint show -n " + name,
                )
            with self.store.tx():
                self.store.update_endpoint(name, state=ProvisioningState.DELETING)
                for d in self.store.deployments(name):
                    self.store.set_deployment_state(name, d.name, ProvisioningState.DELETING)
            self.admission.deleting.add(name)
        return self.operations.start("endpoint.delete", ep.name, self.endpoint_deleter(name))

    def endpoint_deleter(self, name: str) -> Work:
        async def work(progress: Progress) -> None:
            self.admission.deleting.add(name)
            try:
                await self._delete_endpoint_now(name, progress)
            finally:
                self.admission.deleting.discard(name)

        return work

    async def _delete_endpoint_now(self, name: str, progress: Progress | None = None) -> None:
        ep = self.endpoint_row(name)
        driver = self.driver(ep.cluster)
        deps = self.store.deployments(name)
        for i, d in enumerate(deps):
            if progress is not None:
                progress(0.1 + 0.8 * i / max(1, len(deps)), f"deleting deployment {d.name}")
            await driver.delete_deployment(name, d.name)
        await driver.delete_endpoint(name)
        self.store.delete_endpoint(name)
        self.code.remove(name)

    def get_keys(self, name: str) -> EndpointKeys:
        return self.access.keys(name)

    async def regenerate_keys(self, name: str, key_type: KeyType) -> EndpointKeys:
        return await self.access.regenerate_keys(name, key_type)

    def get_token(self, name: str) -> EndpointToken:
        return self.access.token(name)

    async def invoke(
        self,
        name: str,
        body: bytes,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
        via: str | None = None,
    ) -> InvokeResult:
        return await self.access.invoke(
            name, body, deployment=deployment, headers=headers, timeout_s=timeout_s, via=via
        )

    # ================================================================== environments
    async def list_environments(self, name: str | None = None) -> list[Environment]:
        return await self.environments.list_all(name)

    async def get_environment(self, name: str, version: str | None = None) -> Environment:
        return await self.environments.get(name, version)

    async def create_environment(self, env: Environment) -> Environment:
        return await self.environments.create(env)

    async def archive_environment(self, name: str, version: str) -> Environment:
        return await self.environments.archive(name, version)

    async def prune_environments(self, older_than_s: float = 0.0) -> list[Environment]:
        return await self.environments.prune(older_than_s)

    # ================================================================== deployments
    async def list_deployments(self, endpoint: str | None = None) -> list[Deployment]:
        return await self.deployments.list_all(endpoint)

    async def get_deployment(self, endpoint: str, name: str) -> Deployment:
        return await self.deployments.get(endpoint, name)

    async def create_deployment(
        self,
        spec: DeploymentSpec,
        *,
        all_traffic: bool = False,
        skip_script_validation: bool = False,
    ) -> Operation:
        return await self.deployments.create(
            spec, all_traffic=all_traffic, script_check=not skip_script_validation
        )

    async def update_deployment(
        self,
        spec: DeploymentSpec,
        *,
        if_revision: str | None = None,
        skip_script_validation: bool = False,
    ) -> Operation:
        return await self.deployments.update(
            spec, if_revision=if_revision, script_check=not skip_script_validation
        )

    async def delete_deployment(self, endpoint: str, name: str) -> Operation:
        return await self.deployments.delete(endpoint, name)

    async def get_logs(
        self,
        endpoint: str,
        name: str,
        lines: int = 100,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        """``since`` (epoch seconds): only lines written at or after it; ``container``:
        ``validation.LOG_CONTAINERS``, refused by a driver that has no such container."""
        return await self.deployments.logs(endpoint, name, lines, since, container)

    def follow_logs(
        self,
        endpoint: str,
        name: str,
        lines: int = 100,
        since: float | None = None,
        container: str | None = None,
    ) -> AsyncIterator[LogLine]:
        return self.deployments.follow_logs(endpoint, name, lines, since, container)

    # ================================================================== dry run
    async def render_endpoint(self, spec: EndpointSpec) -> list[dict[str, Any]]:
        """``online-endpoint create --dry-run`` (:mod:`.dryrun`)."""
        return await dryrun.render_endpoint(self, spec)

    async def render_deployment(
        self,
        spec: DeploymentSpec,
        *,
        update: bool = False,
        all_traffic: bool = False,
        model: ModelSpec | None = None,
    ) -> list[dict[str, Any]]:
        """``online-deployment create|update --dry-run`` (:mod:`.dryrun`)."""
        return await dryrun.render_deployment(
            self, spec, update=update, all_traffic=all_traffic, model=model
        )

    # ================================================================== metrics
    async def get_metrics(self, endpoint: str | None = None) -> MetricsReport:
        """The samples, and endpoint -> why some of its metrics are missing (e.g. a cluster
        without the metrics server: CPU and memory are unavailable; said, not hidden)."""
        eps = [self.endpoint_row(endpoint)] if endpoint is not None else self.store.endpoints()
        by_cluster: dict[str, set[str]] = {}
        for ep in eps:
            by_cluster.setdefault(ep.cluster, set()).add(ep.name)
        notes: dict[str, str] = {}

        async def one(cluster: str, names: set[str]) -> list[MetricSample]:
            driver = self.drivers.get(cluster)
            if driver is None:
                return []
            try:
                samples = await asyncio.wait_for(
                    driver.metrics(endpoint if endpoint is not None else None), DRIVER_TIMEOUT_S
                )
            except Exception as exc:
                log.info("metrics of cluster %s: %s", cluster, message_of(exc))
                why = (
                    f"cluster '{cluster}' did not answer within {DRIVER_TIMEOUT_S:g} s"
                    if isinstance(exc, TimeoutError)
                    else message_of(exc)
                )
                notes.update(dict.fromkeys(names, f"no metrics from cluster '{cluster}': {why}"))
                return []
            if isinstance(driver, NotesMetrics) and driver.metrics_note:
                notes.update(dict.fromkeys(names, driver.metrics_note))
            return [s for s in samples if s.endpoint in names]

        results = await asyncio.gather(*(one(c, n) for c, n in by_cluster.items()))
        # one read of the deployments (all of them, or the one endpoint's), not one per endpoint:
        # the sampler asks every 10 s
        known = {(d.endpoint, d.name) for d in self.store.deployments(endpoint)}
        out = [s for group in results for s in group if (s.endpoint, s.deployment) in known]
        return MetricsReport(
            sorted(out, key=lambda s: (s.endpoint, s.deployment)), dict(sorted(notes.items()))
        )

    async def get_metrics_history(
        self, endpoint: str | None = None, deployment: str | None = None, window: str = "1h"
    ) -> MetricsHistory:
        """The history of one deployment, one endpoint's or all (:mod:`.sampler`); a
        deleted deployment's stays in its endpoint's until retention drops it, a deleted
        endpoint's is left out."""
        if endpoint is not None:
            if deployment is not None:
                self.deployments.row(endpoint, deployment)
            else:
                self.endpoint_row(endpoint)
            return await self.sampler.history(endpoint, deployment, window)
        history = await self.sampler.history(None, None, window)
        names = {e.name for e in self.store.endpoints()}
        return replace(history, points=[p for p in history.points if p.endpoint in names])
