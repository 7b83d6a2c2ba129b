"""Daemon start: the drivers, routes and deployments come back from the records.

The management socket answers at once; each cluster is restored in the background by
its own operation (an unreachable cluster delays only its own endpoints). A Kubernetes
cluster first takes in what changed there meanwhile (:func:`.adopt.on_restore`); an
endpoint found deleted there by someone else is not revived. Deletions that were
running go on; every other deployment is applied again (its environment built first).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ...api.domain import ProvisioningState
from ...api.errors import Unreachable
from ...drivers.base import Progress
from . import adopt
from .operations import Work, message_of
from .store.deployments import DeploymentRow

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")


async def restore_all(engine: Engine) -> None:
    """Recreate every driver, route and deployment from the records (daemon start)."""
    interrupted = engine.store.fail_interrupted_operations()
    if interrupted:
        log.info("marked %d interrupted operation(s) as failed", interrupted)
    for row in engine.store.clusters():
        if row.state is ProvisioningState.DELETING and not engine.store.endpoints(row.spec.name):
            engine.store.delete_cluster(row.spec.name)  # its deletion was interrupted
            continue
        try:
            engine.drivers[row.spec.name] = engine.clusters.make_driver(row.spec)
            engine.driver_errors.pop(row.spec.name, None)
            if row.state is not ProvisioningState.SUCCEEDED:
                engine.store.update_cluster(
                    row.spec.name, state=ProvisioningState.SUCCEEDED, error=None
                )
        except Exception as exc:  # one broken cluster never stops the others
            log.warning("cluster %s: %s", row.spec.name, exc)
            engine.driver_errors[row.spec.name] = str(exc)
    # the socket answers at once; routes and replicas come back in the background,
    # one task per cluster (an unreachable cluster delays only its own endpoints)
    # the endpoints read once, not once a deployment
    cluster_of = {ep.name: ep.cluster for ep in engine.store.endpoints()}
    for d in engine.store.deployments():
        if cluster_of.get(d.endpoint) not in engine.drivers:
            continue
        if d.state is not ProvisioningState.DELETING:
            engine.store.set_deployment_state(d.endpoint, d.name, ProvisioningState.UPDATING)
    for name in list(engine.drivers):
        engine.operations.start("cluster.restore", name, _cluster_restorer(engine, name))
    engine.operations.spawn(engine.environments.prune_loop(), "env prune")


def _cluster_restorer(engine: Engine, cluster: str) -> Work:
    async def work(progress: Progress) -> None:
        driver = engine.drivers[cluster]

        # Kubernetes: what changed there meanwhile comes in first
        await adopt.on_restore(engine, cluster)
        endpoints = engine.store.endpoints(cluster)
        failed: list[str] = []
        for i, ep in enumerate(endpoints):
            progress(i / max(1, len(endpoints)), f"restoring endpoint {ep.name}")
            if ep.state is ProvisioningState.DELETING:
                engine.operations.start(
                    "endpoint.delete", ep.name, engine.endpoint_deleter(ep.name)
                )
                continue
            if adopt.gone(engine, ep):  # deleted on the cluster by someone else: not revived
                continue
            try:
                await driver.apply_endpoint(engine.route(ep))
            except Exception as exc:
                log.warning("endpoint %s: %s", ep.name, message_of(exc))
                engine.store.update_endpoint(ep.name, error=message_of(exc))
                for d in engine.store.deployments(ep.name):
                    engine.store.set_deployment_state(
                        ep.name, d.name, ProvisioningState.FAILED, message_of(exc)
                    )
                failed.append(ep.name)
                continue
            engine.store.update_endpoint(ep.name, state=ProvisioningState.SUCCEEDED, error=None)
            for d in engine.store.deployments(ep.name):
                if d.state is ProvisioningState.DELETING:
                    engine.operations.start(
                        "deployment.delete", f"{ep.name}/{d.name}", engine.deployments.deleter(d)
                    )
                else:
                    engine.operations.start(
                        "deployment.restore", f"{ep.name}/{d.name}", _deployment_restorer(engine, d)
                    )
        if failed:
            raise Unreachable(
                f"cluster '{cluster}': could not restore endpoint(s) " + ", ".join(failed),
                fix="check the cluster, then update the endpoints again",
            )

    return work


def _deployment_restorer(engine: Engine, d: DeploymentRow) -> Work:
    async def work(progress: Progress) -> None:
        if not d.code_dir:  # adopted from a Kubernetes cluster: it runs there, as it is
            await adopt.restore_adopted(engine, d)
            return
        key: str | None = None
        try:
            ep = engine.endpoint_row(d.endpoint)
            resolved = await engine.environments.resolve(d.spec, ep.cluster)
            key, python = await engine.environments.build(d.endpoint, d.name, resolved, progress)
            runtime = replace(engine.deployments.runtime_of(d), python=python, environment=resolved)
            await engine.driver_for_endpoint(d.endpoint).apply_deployment(
                d.endpoint, runtime, progress
            )
            engine.store.set_deployment_env(d.endpoint, d.name, key, python or "")
        except Exception as exc:
            if engine.store.deployment(d.endpoint, d.name) is not None:
                engine.store.set_deployment_state(
                    d.endpoint, d.name, ProvisioningState.FAILED, message_of(exc)
                )
            raise
        finally:
            engine.environments.release(key)
        if engine.store.deployment(d.endpoint, d.name) is not None:
            engine.store.set_deployment_state(d.endpoint, d.name, ProvisioningState.SUCCEEDED)

    return work
