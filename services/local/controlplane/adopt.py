"""Adoption: the records of an attached Kubernetes cluster rebuilt from what it runs.

What modeldeck makes on a cluster carries its labels, the endpoint's keys (Secret),
its traffic and mirror maps (HTTPRoute annotations) and each deployment's full spec
(``modeldeck.io/spec`` annotation on the Deployment). So a second operator (another
MODELDECK_HOME attaching the same cluster), or a workspace whose state was wiped,
adopts everything on ``cluster attach``, and afterwards a follower per cluster
(``watch=true`` on modeldeck's Deployments, HTTPRoutes and Secrets) keeps the
records in line with the cluster: traffic, keys, description, tags and new
endpoints/deployments made by someone else show up here too.

Rules:

* an endpoint whose name exists here on another cluster is skipped (a note says so);
* adopted records are marked: endpoints with the tag ``modeldeck.io/adopted``,
  deployments with an empty ``code_dir`` (the code lives on the cluster, not here:
  the daemon's restart leaves them running instead of re-applying them);
* a deployment whose model is not registered here keeps its model reference and
  says so in its ``error`` (it keeps running; updating it needs the model);
* a record in the middle of a local operation (not Succeeded, or changed while the
  cluster was read) is left alone: the next sync catches up;
* records are never deleted here: an object that disappeared from the cluster shows
  as an error on list/show (the live status says NotFound).

Secrets (keys, token secret) go to the 0600 database only; nothing here logs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...api.domain import (
    CodeConfiguration,
    DeploymentRole,
    DeploymentSpec,
    DriverKind,
    ProvisioningState,
    Resources,
    ResourceSet,
    from_dict,
    to_dict,
)
from ...api.errors import NotFound
from ...drivers.base import SharedCluster
from .admission import DRIVER_TIMEOUT_S
from .models import MODEL_REF_RE
from .operations import message_of
from .store.db import Store
from .store.deployments import DeploymentRow
from .store.endpoints import EndpointRow
from .store.history import ACTOR

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")

ADOPTED_TAG = "modeldeck.io/adopted"
#: How long one read of a cluster's state may take.
SYNC_TIMEOUT_S = 10.0
#: Pause after a change before reading the cluster again (changes come in bursts).
DEBOUNCE_S = 0.1
#: Longest time between two syncs of a followed cluster (a watch ends after this).
RESYNC_S = 60.0
#: the settings key of the endpoints found deleted on their cluster (see :class:`Following`)
_GONE_KEY = "adopt.gone_endpoints"


def _gone_error(cluster: str) -> str:
    return (
        f"the endpoint is no longer on cluster '{cluster}' (deleted there by someone else?): "
        "delete it here too (modeldeck online-endpoint delete), or create it again"
    )


class Following:
    """What adoption keeps beside the records, owned by the engine: one follower task per
    followed cluster, the resource versions of each cluster's last read (its follower
    waits for a change past them), and the endpoints found deleted on their cluster by
    someone else ("gone": not revived on the daemon's start; their record's error says
    why). Gone marks are kept in the store's settings, keyed by the endpoint's name and
    creation time (an endpoint made again under the same name is another one)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.versions: dict[str, dict[str, str]] = {}

    def _marks(self) -> list[list[Any]]:
        raw = self.store.get_setting(_GONE_KEY)
        if raw is None:
            # a workspace from before the marks: its gone endpoints carry the gone error
            marks = [
                [ep.name, ep.created_at]
                for ep in self.store.endpoints()
                if ep.error == _gone_error(ep.cluster)
            ]
            self.store.set_setting(_GONE_KEY, json.dumps(marks))
            return marks
        return list(json.loads(raw))

    def is_gone(self, ep: EndpointRow) -> bool:
        return [ep.name, ep.created_at] in self._marks()

    def set_gone(self, ep: EndpointRow, gone: bool) -> None:
        mark = [ep.name, ep.created_at]
        marks = [m for m in self._marks() if m != mark and self.store.endpoint(m[0]) is not None]
        self.store.set_setting(_GONE_KEY, json.dumps([*marks, mark] if gone else marks))


def _weights(traffic: dict[str, int]) -> dict[str, int]:
    """A traffic map without its 0 entries: a deployment at 0 and one a map does not name
    take the same traffic (the records list a new deployment at 0, the route may not)."""
    return {k: v for k, v in traffic.items() if v}


@contextlib.contextmanager
def _made_there(cluster: str, who: str | None) -> Iterator[None]:
    """Changes recorded meanwhile are by ``who`` on the cluster (when the object says)."""
    if not who:
        yield
        return
    token = ACTOR.set(f"{who} on cluster '{cluster}'")
    try:
        yield
    finally:
        ACTOR.reset(token)


def _is_kubernetes(engine: Engine, cluster: str) -> bool:
    row = engine.store.cluster(cluster)
    driver = engine.drivers.get(cluster)
    return (
        row is not None
        and row.spec.driver is DriverKind.KUBERNETES
        and driver is not None
        and isinstance(driver, SharedCluster)
    )


async def sync(
    engine: Engine, cluster: str, timeout: float = SYNC_TIMEOUT_S, *, restoring: bool = False
) -> list[str]:
    """Read the cluster's state and bring the records in line (adopting what is new).

    ``restoring``: the daemon is starting and has marked every deployment Updating; their
    records take the cluster's spec too (another operator may have updated them while this
    daemon was down: re-applying the old records would roll that back). Returns notes for the user (what was adopted, what was skipped and why). Raises
    when the cluster cannot be read (and marks it unhealthy for list/show)."""
    if not _is_kubernetes(engine, cluster):
        return []
    driver = engine.drivers[cluster]
    assert isinstance(driver, SharedCluster)  # _is_kubernetes
    before_eps = {e.name: e for e in engine.store.endpoints()}
    before_deps = {(d.endpoint, d.name): d for d in engine.store.deployments()}
    try:
        state = await asyncio.wait_for(driver.list_state(secrets=True), timeout)
    except TimeoutError:
        why = f"cluster did not answer within {timeout:g} s"
        engine.cluster_health[cluster] = why
        raise
    except Exception as exc:
        engine.cluster_health[cluster] = message_of(exc)
        raise
    engine.cluster_health.pop(cluster, None)
    async with engine.admission.lock:
        row = engine.store.cluster(cluster)
        if (
            engine.drivers.get(cluster) is not driver
            or row is None
            or row.state is ProvisioningState.DELETING
        ):  # detached (or being detached) meanwhile: adopt nothing
            return []
        # what changed on the cluster was changed there, not by whoever asked to read it
        token = ACTOR.set(f"someone on cluster '{cluster}'")
        try:
            notes = _reconcile(engine, cluster, state, before_eps, before_deps, restoring)
        finally:
            ACTOR.reset(token)
        # another workspace's rollouts there (the routes' modeldeck.io/rollout annotation)
        engine.rollouts.seen_on_cluster(cluster, state["endpoints"])
    engine.following.versions[cluster] = state.get("resource_versions") or {}
    return notes


def _reconcile(
    engine: Engine,
    cluster: str,
    state: dict[str, Any],
    before_eps: dict[str, EndpointRow],
    before_deps: dict[tuple[str, str], DeploymentRow],
    restoring: bool = False,
) -> list[str]:
    store = engine.store
    settled = (
        (ProvisioningState.SUCCEEDED, ProvisioningState.UPDATING)
        if restoring
        else (ProvisioningState.SUCCEEDED,)
    )
    notes: list[str] = []
    adopted_eps: list[str] = []
    ours: set[str] = set()  # endpoints of this cluster (adopted or already here)
    for name, info in sorted(state["endpoints"].items()):
        row = store.endpoint(name)
        if row is None:
            if name in before_eps:  # deleted here while the cluster was read
                continue
            if not info.get("primary_key"):
                notes.append(
                    f"endpoint '{name}' on cluster '{cluster}' has no keys Secret: not adopted "
                    "(recreate it, or delete what is left: cluster detach --delete-resources)"
                )
                continue
            store.insert_endpoint(
                EndpointRow(
                    name=name,
                    cluster=cluster,
                    auth_mode=info.get("auth_mode") or "key",
                    description=str(info.get("description") or ""),
                    tags={**(info.get("tags") or {}), ADOPTED_TAG: "true"},
                    traffic=dict(info["traffic"]),
                    mirror_traffic=dict(info["mirror_traffic"]),
                    control=None,
                    primary_key=info["primary_key"],
                    secondary_key=info.get("secondary_key") or "",
                    token_secret=info.get("token_secret") or "",
                    state=ProvisioningState.SUCCEEDED,
                    error=None,
                    created_at=time.time(),
                )
            )
            adopted_eps.append(name)
            ours.add(name)
            continue
        if row.cluster != cluster:
            notes.append(
                f"endpoint '{name}' on cluster '{cluster}' was not adopted: an endpoint of "
                f"that name exists here on cluster '{row.cluster}' (delete or rename it there, "
                "then attach again)"
            )
            continue
        ours.add(name)
        if (
            row.state is not ProvisioningState.SUCCEEDED
            or name in engine.admission.deleting
            or before_eps.get(name) != row  # changed here while the cluster was read
        ):
            continue
        changes: dict[str, Any] = {}
        if _weights(info["traffic"]) != _weights(row.traffic):
            changes["traffic"] = dict(info["traffic"])
        if _weights(info["mirror_traffic"]) != _weights(row.mirror_traffic):
            changes["mirror_traffic"] = dict(info["mirror_traffic"])
        if info.get("primary_key") and info["primary_key"] != row.primary_key:
            changes["primary_key"] = info["primary_key"]
        if info.get("secondary_key") and info["secondary_key"] != row.secondary_key:
            changes["secondary_key"] = info["secondary_key"]
        if info.get("described"):  # description and tags live with the endpoint there
            if info["description"] != row.description:
                changes["description"] = info["description"]
            tags = dict(info["tags"])
            if ADOPTED_TAG in row.tags:  # this workspace's own mark stays
                tags[ADOPTED_TAG] = row.tags[ADOPTED_TAG]
            if tags != row.tags:
                changes["tags"] = tags
        gone = engine.following.is_gone(row)
        if gone:
            changes["error"] = None
        # recorded as made by whoever changed the object there (its changed-by annotation)
        route = {k: changes.pop(k) for k in ("traffic", "mirror_traffic") if k in changes}
        for part, who in ((route, "route_changed_by"), (changes, "secret_changed_by")):
            if part:
                with _made_there(cluster, info.get(who)):
                    store.update_endpoint(name, **part)
        if gone:
            engine.following.set_gone(row, False)
    for row in store.endpoints(cluster):
        if (
            row.name not in state["endpoints"]
            and row.state is ProvisioningState.SUCCEEDED
            and row.name not in engine.admission.deleting
            and before_eps.get(row.name) == row
            and not engine.following.is_gone(row)
        ):
            store.update_endpoint(row.name, error=_gone_error(cluster))
            engine.following.set_gone(row, True)
    adopted_deps: list[str] = []
    for d in state["deployments"]:
        ep, name = d["endpoint"], d["name"]
        if ep not in ours or not name:
            continue
        existing = store.deployment(ep, name)
        spec, ref = _spec_of(d, ep, name)
        if existing is None:
            if (ep, name) in before_deps:  # deleted here while the cluster was read
                continue
            row = _deployment_row(engine, cluster, ep, name, spec, ref, time.time())
            store.upsert_deployment(row)
            adopted_deps.append(
                f"{ep}/{name}" + (" (model not registered here)" if row.error else "")
            )
            continue
        if (
            d.get("spec") is None
            or existing.state not in settled
            or (ep, name) in engine.admission.pending
            or before_deps.get((ep, name)) != existing
        ):
            continue
        if to_dict(replace(existing.spec, role=spec.role)) != to_dict(spec):
            # updated by another operator: the cluster's spec wins (its code is there)
            with _made_there(cluster, d.get("changed_by")):
                store.upsert_deployment(
                    _deployment_row(engine, cluster, ep, name, spec, ref, existing.created_at)
                )
    for ep_name in adopted_eps:
        # the control deployment: the one whose applied spec says so (none if ambiguous)
        controls = [
            d["name"]
            for d in state["deployments"]
            if d["endpoint"] == ep_name
            and d["name"]
            and (d.get("spec") or {}).get("role") == DeploymentRole.CONTROL.value
        ]
        if len(controls) == 1 and store.deployment(ep_name, controls[0]) is not None:
            store.update_endpoint(ep_name, control=controls[0])
    if adopted_eps:
        notes.append(f"adopted endpoint(s) from cluster '{cluster}': " + ", ".join(adopted_eps))
    if adopted_deps:
        notes.append(f"adopted deployment(s) from cluster '{cluster}': " + ", ".join(adopted_deps))
    if adopted_eps or adopted_deps:
        log.info(
            "cluster %s: adopted %d endpoint(s), %d deployment(s)",
            cluster,
            len(adopted_eps),
            len(adopted_deps),
        )
    return notes


def _deployment_row(
    engine: Engine,
    cluster: str,
    endpoint: str,
    name: str,
    spec: DeploymentSpec,
    ref: str,
    created_at: float,
) -> DeploymentRow:

    model_name, version, error = _model_of(engine, cluster, ref)
    return DeploymentRow(
        endpoint=endpoint,
        name=name,
        spec=spec,
        model_name=model_name,
        model_version=version,
        code_dir="",  # adopted: the code is on the cluster (its ConfigMap), not here
        state=ProvisioningState.SUCCEEDED,
        error=error,
        created_at=created_at,
        updated_at=time.time(),
    )


def _model_of(engine: Engine, cluster: str, ref: str) -> tuple[str, int, str | None]:
    """(model name, version, note when the model is not registered here)."""
    m = MODEL_REF_RE.match(ref.strip())
    model_name = m.group(1) if m else ref
    version = int(m.group(2)) if m and m.group(2) else 0
    model = engine.store.model(model_name, version or None) if m else None
    if model is not None:
        return model_name, model.version, None
    return (
        model_name,
        version,
        f"adopted from cluster '{cluster}': model '{ref}' is not registered in this "
        "workspace; the deployment keeps running, but updating it needs the model: "
        f"modeldeck model create --name {model_name}"
        + (f" --version {version}" if version else "")
        + " --path PATH",
    )


async def restore_adopted(engine: Engine, d: DeploymentRow) -> None:
    """Daemon start, for an adopted deployment (no code here): it is not re-applied; its
    record says whether the cluster still runs it."""
    ep = engine.store.endpoint(d.endpoint)
    if ep is None or engine.store.deployment(d.endpoint, d.name) is None:
        return
    try:
        await asyncio.wait_for(
            engine.driver(ep.cluster).deployment_status(d.endpoint, d.name), SYNC_TIMEOUT_S
        )
    except NotFound:
        engine.store.set_deployment_state(
            d.endpoint,
            d.name,
            ProvisioningState.FAILED,
            f"adopted deployment '{d.name}' is no longer on cluster '{ep.cluster}': create it "
            "again (modeldeck online-deployment create), or delete its record",
        )
        return
    except Exception:
        pass  # unreachable now: list/show say so from the live status
    _, _, note = _model_of(engine, ep.cluster, d.spec.model)
    engine.store.set_deployment_state(d.endpoint, d.name, ProvisioningState.SUCCEEDED, note)


def _spec_of(d: dict[str, Any], endpoint: str, name: str) -> tuple[DeploymentSpec, str]:
    """The deployment's spec from its annotation, or rebuilt from the Deployment object."""
    ref = d.get("model") or ""
    raw = d.get("spec")
    if raw is not None:
        try:
            spec = from_dict(DeploymentSpec, raw)
            spec = replace(spec, name=name, endpoint_name=endpoint)
            return spec, ref or spec.model
        except Exception:  # an annotation edited by hand: rebuild from the object
            log.info("deployment %s/%s: unreadable %s annotation", endpoint, name, "spec")
    from ...drivers.kubernetes.podsecurity import home_env

    container = d.get("container") or {}
    env = {e.get("name", ""): str(e.get("value", "")) for e in container.get("env") or []}
    ours = {(e["name"], e["value"]) for e in home_env({})}  # HOME on the pod's /tmp
    user_env = {
        k: v
        for k, v in env.items()
        if k
        and not k.startswith(("MODELDECK_", "AZUREML_"))
        and k not in ("PORT", "PYTHONUNBUFFERED")
        and (k, v) not in ours
    }
    from ...drivers.kubernetes import manifests as mf
    from ...drivers.kubernetes.metrics import cpu_cores, memory_bytes

    requests = (container.get("resources") or {}).get("requests") or {}
    limits = (container.get("resources") or {}).get("limits") or {}

    def rset(q: dict[str, str]) -> ResourceSet:
        return ResourceSet(
            cpu=cpu_cores(q["cpu"]) if q.get("cpu") else None,
            memory_gb=memory_bytes(q["memory"]) / 2**30 if q.get("memory") else None,
        )

    image = container.get("image")
    spec = DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model=ref or "unknown",
        code_configuration=CodeConfiguration(
            code="", scoring_script=env.get("AZUREML_ENTRY_SCRIPT", "score.py")
        ),
        instance_count=max(1, int(d.get("desired_replicas") or 1)),
        resources=Resources(requests=rset(requests), limits=rset(limits)),
        environment_variables=user_env,
        environment=None if image == mf.DEFAULT_IMAGE else image,
        runtime=env.get("MODELDECK_RUNTIME", "default"),
    )
    return spec, ref or "unknown"


# ---------------------------------------------------------------------------- following


def start_following(engine: Engine, cluster: str) -> None:
    """Keep the records of ``cluster`` in line with it (watch, then sync), until detached."""
    if not _is_kubernetes(engine, cluster):
        return
    followers = engine.following.tasks
    old = followers.get(cluster)
    if old is not None and not old.done():
        old.cancel()
    driver = engine.drivers[cluster]
    assert isinstance(driver, SharedCluster)  # _is_kubernetes
    followers[cluster] = engine.operations.spawn(
        _follow(engine, cluster, driver), f"follow {cluster}"
    )


def stop_following(engine: Engine, cluster: str) -> None:
    task = engine.following.tasks.pop(cluster, None)
    if task is not None:
        task.cancel()


async def _follow(engine: Engine, cluster: str, driver: SharedCluster) -> None:
    backoff = 1.0
    while engine.drivers.get(cluster) is driver:
        try:
            await sync(engine, cluster)
            backoff = 1.0
            await driver.wait_for_change(engine.following.versions.get(cluster, {}), RESYNC_S)
            await asyncio.sleep(DEBOUNCE_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("cluster %s: following its state: %s", cluster, message_of(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


async def refresh(engine: Engine, clusters: set[str]) -> None:
    """Sync the given Kubernetes clusters now (list/show); a failure marks the cluster
    unhealthy (list/show then show the records with the error) and is not raised."""

    async def one(cluster: str) -> None:
        with contextlib.suppress(Exception):
            await sync(engine, cluster, DRIVER_TIMEOUT_S)

    await asyncio.gather(*(one(c) for c in clusters if _is_kubernetes(engine, c)))


async def on_attach(engine: Engine, cluster: str) -> list[str]:
    """``cluster attach``: adopt what modeldeck runs there, then follow it. Notes for the
    user; a cluster that cannot be read now is still attached (the follower retries)."""
    try:
        notes = await sync(engine, cluster)
    except Exception as exc:
        notes = [f"could not read what modeldeck runs on cluster '{cluster}': {message_of(exc)}"]
    start_following(engine, cluster)
    return notes


async def on_restore(engine: Engine, cluster: str) -> None:
    """Daemon start: the records take in what changed on the cluster meanwhile (another
    operator's traffic, keys, deployments) before they are re-applied, then follow it."""
    try:
        await sync(engine, cluster, restoring=True)
    except Exception as exc:
        log.info("cluster %s: could not read its state: %s", cluster, message_of(exc))
    start_following(engine, cluster)


def gone(engine: Engine, ep: EndpointRow) -> bool:
    """Daemon start: True when the endpoint was found deleted on its cluster (by someone
    else); it is not re-created, and its deployments say why they are not restored."""
    if not engine.following.is_gone(ep):
        return False
    for d in engine.store.deployments(ep.name):
        if d.state is not ProvisioningState.DELETING:
            engine.store.set_deployment_state(ep.name, d.name, ProvisioningState.FAILED, ep.error)
    return True
