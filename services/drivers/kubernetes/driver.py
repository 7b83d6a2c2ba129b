"""The ``kubernetes`` cluster driver: deployments on a cluster reached through the kubeconfig.

The local control plane instantiates it as ``KubernetesDriver(spec, data_dir=...)``
and calls it through :class:`~modeldeck.services.drivers.base.ClusterDriver`. What it
makes (see :mod:`.manifests`) carries modeldeck's labels, so state and status are
read back from the cluster with label selectors: two operators see the same
truth, and nothing is lost if the local state is wiped.

Writes are server-side apply under the field manager ``modeldeck`` (with
``force``: modeldeck owns these objects), except the HTTPRoute, which is read,
changed and replaced. What two operators' control planes can both write (the
HTTPRoute, the keys Secret, the Deployment) is written under the resourceVersion
just read, after a field-by-field check against what this control plane last knew
(:mod:`.concurrency`): someone else's change is kept (merged) or, when this write
changes the same field, refused with ``Conflict`` naming the field and who changed
it; never overwritten silently. A 409 is retried against the fresh object.

Beyond the ABC, the engine/CLI can use: :attr:`identity`, :meth:`attach_check`,
:meth:`render_endpoint` / :meth:`render_deployment` (``--dry-run -o yaml``),
:meth:`list_managed`, :meth:`delete_resources` (``detach --delete-resources``),
:meth:`list_state`, :meth:`why_not_ready`, :meth:`events`, :meth:`watch_deployments`
and :attr:`metrics_note`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ...api.domain import (
    ClusterSpec,
    DeploymentSpec,
    LogLine,
    MetricSample,
    from_dict,
    to_dict,
)
from ...api.errors import (
    BackendError,
    Conflict,
    ModeldeckError,
    NotFound,
)
from ..base import (
    ChecksAttach,
    ClusterDriver,
    DeploymentRuntime,
    DeploymentStatus,
    Identified,
    Namespaced,
    NotesMetrics,
    Progress,
    RendersManifests,
    SharedCluster,
)
from . import concurrency as cc
from . import logs as logs_mod
from . import manifests as mf
from . import metrics as metrics_mod
from .client import KubeApi
from .endpoints import EndpointObjects
from .errors import (
    METRICS_SERVER_INSTALL,
    Call,
)
from .kubeconfig import load_context
from .resources import OWNED_KINDS

log = logging.getLogger(__name__)


FAILING_WAIT_REASONS = (
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "ErrImageNeverPull",
)


class RolloutFailed(BackendError):
    """A rollout that cannot become ready; the previous replicas keep serving."""


class KubernetesDriver(
    EndpointObjects,
    ClusterDriver,
    Namespaced,
    Identified,
    ChecksAttach,
    RendersManifests,
    NotesMetrics,
    SharedCluster,
):
    def __init__(
        self,
        spec: ClusterSpec,
        *,
        data_dir: Path,
        rollout_timeout: float = 900.0,
        poll_interval: float = 1.0,
        crashloop_restarts: int = 2,
        schedule_grace: float = 120.0,
        request_timeout: tuple[float, float] = (5.0, 30.0),
        concurrency: int = 8,
        attempts: int = 5,
        max_backoff: float = 8.0,
    ) -> None:
        super().__init__(spec)
        self.data_dir = data_dir
        self.ctx = load_context(spec.kube_context)
        self.namespace = spec.namespace or self.ctx.namespace
        self.api = KubeApi(
            self.ctx,
            spec.name,
            concurrency=concurrency,
            timeout=request_timeout,
            attempts=attempts,
            max_backoff=max_backoff,
        )
        self.gateway = mf.GatewayRef.from_tags(spec.tags)
        self.rollout_timeout = rollout_timeout
        self.poll_interval = poll_interval
        self.crashloop_restarts = crashloop_restarts
        self.schedule_grace = schedule_grace
        self._gateway_api: bool = False
        self._gateway_url: str | None = None
        self._scrapes: dict[tuple[str, str], tuple[float, metrics_mod.Scrape]] = {}
        #: Set when the metrics server is missing: CPU/memory are unavailable, and why.
        self.metrics_note: str | None = None
        #: (kind, name) -> the fields of the object as this control plane knows them (its
        #: own last write, or what it first listed): the base of the next write's check.
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}

    # ------------------------------------------------------------------ identity

    @property
    def identity(self) -> tuple[str, str]:
        """(API server URL, namespace): the engine refuses a second attachment of the same."""
        return (self.ctx.server, self.namespace)

    # ------------------------------------------------------------------ deployments

    async def _app_files(self, runtime: DeploymentRuntime) -> mf.AppFiles:
        def collect() -> mf.AppFiles:
            env = runtime.environment
            build = None if env is None else mf.environment_build(env)
            return mf.collect_files(runtime.spec, runtime.model, runtime.code_dir, build)

        return await asyncio.to_thread(collect)

    async def render_deployment(self, endpoint: str, runtime: DeploymentRuntime) -> list[dict]:
        """The deployment's manifests (ConfigMap, pip Secret, Deployment, Service, HPA), for
        ``--dry-run`` (the Secret's values redacted)."""
        app = await self._app_files(runtime)
        return mf.deployment_objects(
            self.namespace, endpoint, runtime.spec, app, runtime.model.ref, redact=True
        )

    async def apply_deployment(
        self, endpoint: str, runtime: DeploymentRuntime, progress: Progress
    ) -> None:
        spec = runtime.spec
        progress(0.0, f"preparing the manifests of '{spec.name}'")
        if await self._get_or_none("Secret", mf.secret_name(endpoint)) is None:
            raise NotFound(
                "endpoint",
                endpoint,
                message=f"endpoint '{endpoint}' has no keys Secret on cluster '{self.spec.name}'",
                fix="create (or update) the endpoint first: modeldeck online-endpoint create",
            )
        app = await self._app_files(runtime)
        model_ref = runtime.model.ref
        if app.environment is not None:
            progress(
                0.01,
                f"environment {app.environment.key[:12]}: {len(app.environment.lines)} line(s) "
                "for the pods' init container to build",
            )

        def render(fields: dict[str, Any] | None = None) -> list[dict]:
            """The objects of the spec, with ``fields`` (merged with someone else's) over it."""
            s = spec
            if fields is not None:
                d = to_dict(spec)
                d.update({k: v for k, v in fields.items() if k in d and k != "code_configuration"})
                s = from_dict(DeploymentSpec, d)
            return mf.deployment_objects(self.namespace, endpoint, s, app, model_ref)

        objects = render()
        obj_name = mf.deployment_name(endpoint, spec.name)
        previous, previous_hpa = await asyncio.gather(
            self._get_or_none("Deployment", obj_name),
            self._get_or_none("HorizontalPodAutoscaler", obj_name),
        )
        what = f"deployment '{spec.name}' of endpoint '{endpoint}'"
        fix = (
            f"read it again (modeldeck online-deployment show -e {endpoint} -n {spec.name} shows "
            "the other change) and make your change on top of it"
        )
        mine = cc.deployment_fields(next(o for o in objects if o["kind"] == "Deployment"))
        seen = self._seen.get(("Deployment", obj_name))
        base = None
        if runtime.base is not None:  # the spec before this change, as the caller had it
            base = cc.spec_fields(to_dict(runtime.base))
            base["app"] = (seen or mine)["app"]  # its files are not here: only ours are
        if previous is not None:  # checked before anything is written (ConfigMap included)
            now = cc.deployment_fields(previous)
            known = seen if base is None else base
            merged = self._merge_or_refuse(
                known,
                now,
                mine,
                obj=previous,
                what=what,
                fix=fix,
                unmergeable=cc.DEPLOYMENT_UNMERGEABLE,
            )
            if merged != mine:  # someone else changed other fields: keep them
                objects = render(merged)
        applied: dict[str, dict] = {}
        for i, obj in enumerate(objects):
            progress(
                0.05 + 0.1 * i / len(objects), f"applying {obj['kind']} {obj['metadata']['name']}"
            )
            if obj["kind"] == "Deployment":
                applied[obj["kind"]] = await self._apply_guarded(
                    obj,
                    cc.deployment_fields,
                    lambda f: next(o for o in render(f) if o["kind"] == "Deployment"),
                    what,
                    fix,
                    view=mine,
                    base=base,
                    unmergeable=cc.DEPLOYMENT_UNMERGEABLE,
                )
            else:
                applied[obj["kind"]] = await self._apply(obj)
        if not mf.autoscaled(spec.scale_settings):
            await self._delete("HorizontalPodAutoscaler", mf.deployment_name(endpoint, spec.name))
        progress(0.2, "applied; waiting for the new replicas")
        generation = int(applied["Deployment"]["metadata"].get("generation") or 1)
        at_least = spec.scale_settings.min_instances if mf.autoscaled(spec.scale_settings) else 0
        try:
            await self._wait_rollout(endpoint, spec.name, generation, progress, at_least=at_least)
        except RolloutFailed as exc:
            if previous is None:
                raise  # a first version: nothing to go back to; its pods show why
            progress(0.97, f"rolling '{spec.name}' back to the previous version")
            raise await self._roll_back(endpoint, spec.name, previous, previous_hpa, exc) from exc
        keep = applied["ConfigMap"]["metadata"]["name"]
        for cm in await self._list("ConfigMap", mf.selector(endpoint, spec.name)):
            if cm["metadata"]["name"] != keep:
                await self._delete("ConfigMap", cm["metadata"]["name"])
        if "Secret" not in applied:  # no pip credentials any more: none left on the cluster
            await self._delete("Secret", mf.pip_secret_name(endpoint, spec.name))
        await self._update_route(endpoint, None, None, create=False)
        progress(1.0, f"'{spec.name}' is ready")

    async def _roll_back(
        self,
        endpoint: str,
        name: str,
        previous: dict,
        previous_hpa: dict | None,
        failure: RolloutFailed,
    ) -> RolloutFailed:
        """Put the Deployment (and HPA) back as they were before a failed update, as
        ``kubectl rollout undo`` does: the previous ReplicaSet's template is applied again, so
        the controller scales the failing new ReplicaSet down while the previous replicas
        (never taken down: ``maxUnavailable: 0``) keep serving. Returns the error to raise."""
        obj_name = mf.deployment_name(endpoint, name)
        self._seen[("Deployment", obj_name)] = cc.deployment_fields(previous)
        body = _reapplicable(previous)
        if previous_hpa is not None:
            body["spec"].pop("replicas", None)  # the HPA owns the replica count
        try:
            await self._apply(body)
            if previous_hpa is not None:
                await self._apply(_reapplicable(previous_hpa))
            else:
                await self._delete("HorizontalPodAutoscaler", obj_name)
            volumes = previous["spec"]["template"]["spec"].get("volumes") or []
            keep = {(v.get("configMap") or {}).get("name") for v in volumes}
            for cm in await self._list("ConfigMap", mf.selector(endpoint, name)):
                if cm["metadata"]["name"] not in keep:
                    await self._delete("ConfigMap", cm["metadata"]["name"])
        except ModeldeckError as exc:
            return RolloutFailed(
                f"update of deployment '{name}' of endpoint '{endpoint}' failed and could not "
                f"be rolled back ({exc.message}): {failure.message}",
                fix="roll it back by hand: kubectl -n "
                f"{self.namespace} rollout undo deployment/{obj_name}; the previous replicas "
                "keep serving until then",
            )
        ready = int((previous.get("status") or {}).get("readyReplicas") or 0)
        return RolloutFailed(
            f"update of deployment '{name}' of endpoint '{endpoint}' was rolled back to the "
            f"previous version ({ready} replica(s) of it kept serving): {failure.message}",
            fix="fix the cause and update the deployment again",
            rolled_back=True,
        )

    async def _wait_rollout(
        self, endpoint: str, name: str, generation: int, progress: Progress, *, at_least: int = 0
    ) -> None:
        """Until the new ReplicaSet is fully ready (as ``kubectl rollout status``), or a failure.

        ``at_least``: with an HPA, the Deployment starts at 1 replica until the HPA scales it
        to its minimum; the rollout is done when that many are ready.
        """
        feed = _ChangeFeed(self, mf.selector(endpoint, name))
        try:
            await self._follow_rollout(endpoint, name, generation, progress, at_least, feed)
        finally:
            await feed.close()

    async def _follow_rollout(
        self,
        endpoint: str,
        name: str,
        generation: int,
        progress: Progress,
        at_least: int,
        feed: _ChangeFeed,
    ) -> None:
        obj_name = mf.deployment_name(endpoint, name)
        sel = feed.selector
        started = time.monotonic()
        scheduling_since: float | None = None
        while True:
            feed.clear()  # what changes from here on wakes the wait at the end
            # lists (not a GET): their resourceVersions are where the watches start
            deps_raw, pods_raw = await asyncio.gather(
                self._list_raw("Deployment", sel), self._list_raw("Pod", sel)
            )
            feed.start(
                {
                    "Deployment": (deps_raw.get("metadata") or {}).get("resourceVersion"),
                    "Pod": (pods_raw.get("metadata") or {}).get("resourceVersion"),
                }
            )
            dep = next(
                (d for d in deps_raw.get("items") or [] if d["metadata"]["name"] == obj_name),
                None,
            )
            if dep is None:
                raise NotFound(
                    "deployment",
                    f"{endpoint}/{name}",
                    message=f"deployment '{name}' of endpoint '{endpoint}' was deleted from "
                    f"cluster '{self.spec.name}' during its rollout",
                )
            st = dep.get("status") or {}
            gen = int(dep["metadata"].get("generation") or generation)
            desired = max(int((dep.get("spec") or {}).get("replicas", 1)), at_least)
            updated = int(st.get("updatedReplicas") or 0)
            total = int(st.get("replicas") or 0)
            available = int(st.get("availableReplicas") or 0)
            ready = int(st.get("readyReplicas") or 0)
            observed = int(st.get("observedGeneration") or 0) >= max(gen, generation)
            done = observed and updated >= desired and total <= updated and available >= desired
            if not observed:
                updated = ready = 0  # the status still describes the previous generation
            frac = min(updated, ready) / desired if desired else 1.0
            building = _building(pods_raw.get("items") or [])
            progress(
                0.2 + 0.75 * (1.0 if done else min(frac, 0.99)),
                (
                    f"{ready}/{desired} new replicas ready"
                    if observed
                    else "waiting for the rollout to start"
                )
                + (f"; building the environment in {building} pod(s)" if building else ""),
            )
            if done:
                return
            for cond in st.get("conditions") or []:
                if (
                    cond.get("type") == "Progressing"
                    and cond.get("reason") == "ProgressDeadlineExceeded"
                ):
                    raise RolloutFailed(
                        f"deployment '{name}' of endpoint '{endpoint}' did not progress: "
                        f"{cond.get('message', '')}",
                        fix="see why with: modeldeck online-deployment get-logs",
                    )
            failure, scheduling = await self._failure(endpoint, name, pods_raw.get("items") or [])
            if failure:
                raise RolloutFailed(
                    f"deployment '{name}' of endpoint '{endpoint}' cannot become ready: {failure}",
                    fix="fix the cause (see: modeldeck online-deployment get-logs), then update "
                    "the deployment again",
                )
            if scheduling:
                scheduling_since = scheduling_since or time.monotonic()
                if time.monotonic() - scheduling_since > self.schedule_grace:
                    raise RolloutFailed(
                        f"deployment '{name}' of endpoint '{endpoint}' cannot be scheduled: "
                        f"{scheduling}",
                        fix="lower resources.requests, or add nodes to the cluster",
                    )
            else:
                scheduling_since = None
            if time.monotonic() - started > self.rollout_timeout:
                raise RolloutFailed(
                    f"deployment '{name}' of endpoint '{endpoint}' was not ready after "
                    f"{self.rollout_timeout:g} s ({ready}/{desired} ready)",
                    fix="see why with: modeldeck online-deployment get-logs",
                )
            # FailedScheduling comes as Events, not as a change of the pod: look again in time
            await feed.wait(min(5.0, max(self.poll_interval * 5, self.schedule_grace / 2)))

    async def _failure(
        self, endpoint: str, name: str, pods: list[dict] | None = None
    ) -> tuple[str | None, str | None]:
        """(a failure that will not heal, a scheduling problem) of the deployment's pods."""
        if pods is None:
            pods = await self._list("Pod", mf.selector(endpoint, name))
        scheduling: str | None = None
        for pod in pods:
            pname = pod["metadata"]["name"]
            init = await self._init_failure(pod)
            if init:
                return init, None
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                reason = waiting.get("reason") or ""
                if reason in FAILING_WAIT_REASONS:
                    return f"pod {pname}: {reason}: {waiting.get('message', '')}".strip(), None
                if (
                    reason == "CrashLoopBackOff"
                    and int(cs.get("restartCount") or 0) >= self.crashloop_restarts
                ):
                    previous = await self._previous_log(pname)
                    return (
                        f"pod {pname}: CrashLoopBackOff (restarted {cs.get('restartCount')} times)"
                        + (f"; previous container's log:\n{previous}" if previous else ""),
                        None,
                    )
            if (pod.get("status") or {}).get("phase") == "Pending":
                for ev in await self.events(pod_name=pname):
                    if ev["reason"] == "FailedScheduling":
                        scheduling = f"pod {pname}: FailedScheduling: {ev['message']}"
        return None, scheduling

    async def _previous_log(self, pod: str, lines: int = 20) -> str:
        try:
            got = await logs_mod.pod_log(self.api, self.namespace, pod, tail=lines, previous=True)
        except ModeldeckError:
            return ""
        return "\n".join(text for _, text in got)

    async def _init_failure(self, pod: dict) -> str | None:
        """An init container (the environment build, the model download) that failed and
        will not heal by itself: what the kubelet says, with the container's own last lines
        (pip's message for a package that does not exist)."""
        pname = pod["metadata"]["name"]
        for cs in (pod.get("status") or {}).get("initContainerStatuses") or []:
            state = cs.get("state") or {}
            waiting = state.get("waiting") or {}
            done = state.get("terminated") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            restarts = int(cs.get("restartCount") or 0)
            reason = waiting.get("reason") or ""
            if reason in FAILING_WAIT_REASONS:
                return f"pod {pname}: init container {cs['name']}: {reason}: " + str(
                    waiting.get("message", "")
                )
            failed = done if int(done.get("exitCode") or 0) else last
            crashing = reason == "CrashLoopBackOff" or int(done.get("exitCode") or 0) != 0
            if not (crashing and failed and restarts >= self.crashloop_restarts):
                continue
            what = (
                "the environment build"
                if cs["name"] == mf.ENV_CONTAINER
                else f"init container {cs['name']}"
            )
            log = await self._init_log(pname, cs["name"])
            return (
                f"pod {pname}: {what} failed (exit code {failed.get('exitCode')}"
                + (f", {failed['reason']}" if failed.get("reason") else "")
                + f", {restarts} restart(s))"
                + (f"; its log:\n{log}" if log else "")
            )
        return None

    async def _init_log(self, pod: str, container: str, lines: int = 20) -> str:
        """The last lines of an init container: its last run's log, else the one before."""
        for previous in (False, True):
            try:
                got = await logs_mod.pod_log(
                    self.api,
                    self.namespace,
                    pod,
                    tail=lines,
                    previous=previous,
                    container=container,
                )
            except ModeldeckError:
                continue
            if got:
                return "\n".join(text for _, text in got)
        return ""

    async def delete_deployment(self, endpoint: str, name: str) -> None:
        obj = mf.deployment_name(endpoint, name)
        await self._delete("HorizontalPodAutoscaler", obj)
        await self._delete("Deployment", obj)
        await self._delete("Service", obj)
        await self._delete_selected("ConfigMap", mf.selector(endpoint, name))
        await self._delete("Secret", mf.pip_secret_name(endpoint, name))
        self._seen.pop(("Deployment", obj), None)
        await self._update_route(endpoint, None, None, create=False, drop=name)

    async def deployment_status(self, endpoint: str, name: str) -> DeploymentStatus:
        dep = await self._get_or_none("Deployment", mf.deployment_name(endpoint, name))
        if dep is None:
            raise NotFound("deployment", f"{endpoint}/{name}")
        st = dep.get("status") or {}
        desired = int((dep.get("spec") or {}).get("replicas", 1))
        ready = int(st.get("readyReplicas") or 0)
        error = None if ready >= desired else await self.why_not_ready(endpoint, name)
        return DeploymentStatus(ready_replicas=ready, desired_replicas=desired, error=error)

    async def why_not_ready(self, endpoint: str, name: str) -> str | None:
        """Why the deployment's pods are not ready: waiting reasons (CrashLoopBackOff with
        the previous container's log, ImagePullBackOff), FailedScheduling events."""
        failure, scheduling = await self._failure(endpoint, name)
        if failure or scheduling:
            return failure or scheduling
        reasons = []
        for pod in await self._list("Pod", mf.selector(endpoint, name)):
            for cs in (pod.get("status") or {}).get("initContainerStatuses") or []:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") and waiting["reason"] != "PodInitializing":
                    reasons.append(
                        f"pod {pod['metadata']['name']}: init container {cs['name']}: "
                        f"{waiting['reason']}"
                    )
                elif (cs.get("state") or {}).get("running"):
                    reasons.append(
                        f"pod {pod['metadata']['name']}: init container {cs['name']} running"
                        + (" (building the environment)" if cs["name"] == mf.ENV_CONTAINER else "")
                    )
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason"):
                    reasons.append(f"pod {pod['metadata']['name']}: {waiting['reason']}")
        return "; ".join(reasons) or None

    async def events(
        self, *, pod_name: str | None = None, endpoint: str | None = None, name: str | None = None
    ) -> list[dict]:
        """Events of one pod, or of a deployment's objects (Deployment and its pods):
        ``{"ts", "type", "reason", "object", "message", "count"}``, oldest first."""
        if pod_name:
            names = {pod_name}
            field = f"involvedObject.name={pod_name}"
        else:
            if not (endpoint and name):
                raise ValueError("events() needs pod_name, or endpoint and name")
            obj = mf.deployment_name(endpoint, name)
            names = {obj} | {
                p["metadata"]["name"] for p in await self._list("Pod", mf.selector(endpoint, name))
            }
            field = None
        out = []
        for ev in await self._list("Event", field_selector=field):
            inv = ev.get("involvedObject") or {}
            if inv.get("name") not in names and not str(inv.get("name", "")).startswith(
                tuple(f"{n}-" for n in names)
            ):
                continue
            stamp = ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp") or ""
            out.append(
                {
                    "ts": logs_mod.parse_time(stamp) if stamp else None,
                    "type": ev.get("type", ""),
                    "reason": ev.get("reason", ""),
                    "object": f"{inv.get('kind', '')}/{inv.get('name', '')}",
                    "message": ev.get("message", ""),
                    "count": ev.get("count", 1),
                }
            )
        out.sort(key=lambda e: e["ts"] or 0)
        return out

    # ------------------------------------------------------------------ state from the cluster

    async def list_managed(self) -> list[dict[str, str]]:
        """Everything modeldeck made in the namespace: ``{"kind", "name", "endpoint", "deployment"}``."""
        out: list[dict[str, str]] = []

        async def one(kind: str) -> list[dict[str, str]]:
            try:
                items = await self._list(kind, mf.SELECTOR_MANAGED)
            except (NotFound, BackendError) as exc:
                if kind == "HTTPRoute" and (
                    isinstance(exc, NotFound) or exc.details.get("missing")
                ):
                    return []
                raise
            return [
                {
                    "kind": kind,
                    "name": o["metadata"]["name"],
                    "endpoint": (o["metadata"].get("labels") or {}).get(mf.ENDPOINT_LABEL, ""),
                    "deployment": (o["metadata"].get("labels") or {}).get(mf.DEPLOYMENT_LABEL, ""),
                }
                for o in items
            ]

        for group in await asyncio.gather(*(one(k) for k in OWNED_KINDS)):
            out.extend(group)
        return out

    async def delete_resources(self) -> list[dict[str, str]]:
        """``detach --delete-resources``: delete everything modeldeck made in the namespace
        (routes first). Returns what was deleted. Nothing else is touched."""
        managed = await self.list_managed()
        for kind in OWNED_KINDS:
            names = [m["name"] for m in managed if m["kind"] == kind]
            await asyncio.gather(*(self._delete(kind, n) for n in names))
        return managed

    async def list_state(self, *, secrets: bool = False) -> dict[str, Any]:
        """Endpoints (traffic from the routes) and deployments as the cluster has them.

        ``{"endpoints": {name: {"traffic", "mirror_traffic"[, "auth_mode", "primary_key",
        "secondary_key", "token_secret"]}}, "deployments": [{"endpoint", "name", "model",
        "spec", "image", "ready_replicas", "desired_replicas"}], "resource_versions":
        {kind: rv}}``. With ``secrets`` the endpoints' keys Secrets are read too (an
        endpoint whose route is missing is listed from its Secret): what adoption needs.
        ``spec`` is the DeploymentSpec as applied (a dict, az ml field names), or None
        when the Deployment carries no ``modeldeck.io/spec`` annotation.
        """
        gateway = await self.gateway_api_installed()
        deps_raw, routes_raw, secrets_raw = await asyncio.gather(
            self._list_raw("Deployment", mf.SELECTOR_MANAGED),
            self._list_raw("HTTPRoute", mf.SELECTOR_MANAGED) if gateway else _empty(),
            self._list_raw("Secret", mf.SELECTOR_MANAGED) if secrets else _empty(),
        )
        rvs = {
            kind: (raw.get("metadata") or {}).get("resourceVersion")
            for kind, raw in (
                ("Deployment", deps_raw),
                ("HTTPRoute", routes_raw),
                ("Secret", secrets_raw),
            )
            if (raw.get("metadata") or {}).get("resourceVersion")
        }
        # what this control plane now knows: the base of its next writes' checks (objects it
        # wrote itself keep what it wrote: its records may not have taken the cluster's yet)
        for kind, raw, fields_of in (
            ("Deployment", deps_raw, cc.deployment_fields),
            ("HTTPRoute", routes_raw, cc.route_fields),
            ("Secret", secrets_raw, cc.secret_fields),
        ):
            for item in raw.get("items") or []:
                self._seen.setdefault((kind, item["metadata"]["name"]), fields_of(item))
        endpoints: dict[str, dict[str, Any]] = {}
        for r in routes_raw.get("items") or []:
            ep = (r["metadata"].get("labels") or {}).get(mf.ENDPOINT_LABEL, "")
            traffic, mirror = mf.route_state(r)
            endpoints[ep] = {
                "traffic": traffic,
                "mirror_traffic": mirror,
                "route_changed_by": _changed_by(r),
            }
        for sec in secrets_raw.get("items") or []:
            lab = sec["metadata"].get("labels") or {}
            ep = lab.get(mf.ENDPOINT_LABEL, "")
            if (
                not ep
                or lab.get(mf.DEPLOYMENT_LABEL)
                or sec["metadata"]["name"] != mf.secret_name(ep)
            ):
                continue
            data = sec.get("data") or {}

            def dec(key: str, data: dict = data) -> str:
                try:
                    return base64.b64decode(data.get(key) or "").decode()
                except (ValueError, UnicodeDecodeError):
                    return ""

            entry = endpoints.setdefault(ep, {"traffic": {}, "mirror_traffic": {}})
            ann = sec["metadata"].get("annotations") or {}
            try:
                tags = json.loads(ann.get(mf.TAGS_ANNOTATION) or "{}")
            except ValueError:
                tags = {}
            entry.update(
                # False: written by a modeldeck that kept no description/tags on the cluster
                described=mf.DESCRIPTION_ANNOTATION in ann,
                secret_changed_by=_changed_by(sec),
                description=str(ann.get(mf.DESCRIPTION_ANNOTATION) or ""),
                tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
                auth_mode=dec("auth-mode") or "key",
                primary_key=dec("primary-key"),
                secondary_key=dec("secondary-key"),
                token_secret=dec("token-secret"),
            )
        deployments = []
        for d in deps_raw.get("items") or []:
            lab = d["metadata"].get("labels") or {}
            ann = d["metadata"].get("annotations") or {}
            st = d.get("status") or {}
            containers = d["spec"]["template"]["spec"].get("containers") or [{}]
            try:
                spec = json.loads(ann[mf.SPEC_ANNOTATION]) if mf.SPEC_ANNOTATION in ann else None
            except ValueError:
                spec = None
            deployments.append(
                {
                    "endpoint": lab.get(mf.ENDPOINT_LABEL, ""),
                    "name": lab.get(mf.DEPLOYMENT_LABEL, ""),
                    "model": ann.get(mf.MODEL_ANNOTATION),
                    "spec": spec if isinstance(spec, dict) else None,
                    "changed_by": _changed_by(d),
                    "image": containers[0].get("image"),
                    "container": containers[0],
                    "ready_replicas": int(st.get("readyReplicas") or 0),
                    "desired_replicas": int(d["spec"].get("replicas", 1)),
                }
            )
        return {"endpoints": endpoints, "deployments": deployments, "resource_versions": rvs}

    async def wait_for_change(
        self, resource_versions: dict[str, str], timeout_s: float = 60.0
    ) -> bool:
        """Watch (``watch=true``) modeldeck's Deployments, HTTPRoutes and Secrets from the
        resourceVersions :meth:`list_state` returned; True at the first change, False when
        ``timeout_s`` passed without one (or the server ended the watches)."""

        async def one(kind: str, rv: str) -> bool:
            async for raw in self.api.stream_lines(
                self._path(kind),
                self._call("watch", kind),
                query=[
                    ("labelSelector", mf.SELECTOR_MANAGED),
                    ("watch", "true"),
                    ("resourceVersion", rv),
                    ("timeoutSeconds", max(1, int(timeout_s))),
                ],
                read_timeout=timeout_s + 10.0,
            ):
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED", "ERROR"):
                    return True  # ERROR (410 Gone): too old, the caller lists again
            return False

        tasks = [asyncio.ensure_future(one(k, rv)) for k, rv in resource_versions.items()]
        if not tasks:
            await asyncio.sleep(timeout_s)
            return False
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(
                    pending, timeout=timeout_s + 15.0, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    return False
                for t in done:
                    if t.result():
                        return True
            return False
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def watch_deployments(self) -> AsyncIterator[tuple[str, dict]]:
        """(event type, Deployment) for every change of modeldeck's Deployments (``watch=true``),
        re-listing when the server ends the watch."""
        while True:
            listed = await self._list_raw("Deployment", mf.SELECTOR_MANAGED)
            for item in listed.get("items") or []:
                yield "ADDED", item
            rv = (listed.get("metadata") or {}).get("resourceVersion")
            async for raw in self.api.stream_lines(
                self._path("Deployment"),
                self._call("watch", "Deployment"),
                query=[
                    ("labelSelector", mf.SELECTOR_MANAGED),
                    ("watch", "true"),
                    ("resourceVersion", rv),
                    ("timeoutSeconds", 300),
                ],
            ):
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if event.get("type") == "ERROR":  # e.g. 410 Gone: too old; list again
                    break
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield event["type"], event.get("object") or {}
            await asyncio.sleep(self.poll_interval)

    # ------------------------------------------------------------------ logs

    async def pods(self, endpoint: str | None = None, deployment: str | None = None) -> list[dict]:
        """modeldeck's pods in the namespace (one list call, parsed once), as the API returns them."""
        return await self._list("Pod", mf.selector(endpoint, deployment))

    async def _pod_names(self, endpoint: str, name: str) -> list[str]:
        return [p["metadata"]["name"] for p in await self._list("Pod", mf.selector(endpoint, name))]

    async def read_logs(
        self, endpoint: str, name: str, lines: int, *, since: float | None = None
    ) -> list[LogLine]:
        """The last ``lines`` lines over the deployment's pods; ``since`` (epoch seconds):
        only lines written at or after it (``kubectl logs --since-time``)."""
        listed = await self._list("Pod", mf.selector(endpoint, name))
        pods = [p["metadata"]["name"] for p in listed]
        got = await logs_mod.read(
            self.api, self.namespace, pods, endpoint, name, lines, since=since
        )
        # the environment build's lines (the init container), as a local pool keeps them
        building = [
            p["metadata"]["name"]
            for p in listed
            if any(
                c.get("name") == mf.ENV_CONTAINER
                for c in (p.get("spec") or {}).get("initContainers") or []
            )
        ]
        if not building:
            return got

        async def env_lines(pod: str) -> list[LogLine]:
            for previous in (False, True):
                try:
                    found = await logs_mod.pod_log(
                        self.api,
                        self.namespace,
                        pod,
                        tail=lines,
                        previous=previous,
                        container=mf.ENV_CONTAINER,
                        since=since,
                    )
                except ModeldeckError:
                    continue
                return [LogLine(ts, endpoint, name, pod, "environment", t) for ts, t in found]
            return []

        extra = await asyncio.gather(*(env_lines(p) for p in building))
        merged = sorted([*got, *(line for group in extra for line in group)], key=lambda x: x.ts)
        return merged[-lines:] if lines > 0 else merged

    def follow_logs(
        self, endpoint: str, name: str, lines: int, *, since: float | None = None
    ) -> AsyncIterator[LogLine]:
        return logs_mod.follow(
            self.api,
            self.namespace,
            mf.selector(endpoint, name),
            endpoint,
            name,
            lines,
            retry_delay=min(0.5, self.poll_interval),
            since=since,
        )

    # ------------------------------------------------------------------ metrics

    async def _pod_metrics(self, selector: str) -> dict[str, tuple[float, float]] | None:
        """pod -> (cpu cores, memory bytes) from metrics.k8s.io; None when it is not installed."""
        try:
            data = await self.api.request(
                "GET",
                f"/apis/metrics.k8s.io/v1beta1/namespaces/{self.namespace}/pods",
                Call("list", "pods.metrics.k8s.io", self.namespace),
                query=[("labelSelector", selector)],
            )
        except NotFound:
            self.metrics_note = (
                f"the metrics server is not installed on cluster '{self.spec.name}': CPU and "
                f"memory are unavailable (install it: {METRICS_SERVER_INSTALL})"
            )
            return None
        except BackendError as exc:
            if exc.details.get("status") == 503:
                self.metrics_note = (
                    f"the metrics server of cluster '{self.spec.name}' is not available"
                )
                return None
            raise
        self.metrics_note = None
        out = {}
        for item in data.get("items") or []:
            cores = mem = 0.0
            for c in item.get("containers") or []:
                usage = c.get("usage") or {}
                cores += metrics_mod.cpu_cores(usage.get("cpu", "0"))
                mem += metrics_mod.memory_bytes(usage.get("memory", "0"))
            out[item["metadata"]["name"]] = (cores, mem)
        return out

    async def _scrape(self, pod: str) -> metrics_mod.Scrape | None:
        try:
            text = await self.api.request(
                "GET",
                f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{mf.POD_PORT}/proxy/metrics",
                Call("get", "pods/proxy", self.namespace, pod),
                accept="text/plain",
                raw=True,
                timeout=(self.api.timeout[0], min(10.0, self.api.timeout[1])),
            )
        except (NotFound, BackendError, Conflict):
            return None
        return metrics_mod.parse_prometheus(text.decode("utf-8", "replace"))

    async def metrics(self, endpoint: str | None = None) -> list[MetricSample]:
        sel = mf.selector(endpoint)
        deps, pods, usage = await asyncio.gather(
            self._list("Deployment", sel), self._list("Pod", sel), self._pod_metrics(sel)
        )
        by_dep: dict[tuple[str, str], list[dict]] = {}
        for pod in pods:
            lab = pod["metadata"].get("labels") or {}
            by_dep.setdefault(
                (lab.get(mf.ENDPOINT_LABEL, ""), lab.get(mf.DEPLOYMENT_LABEL, "")), []
            ).append(pod)
        running = [
            p["metadata"]["name"] for p in pods if (p.get("status") or {}).get("phase") == "Running"
        ]
        scrapes = dict(
            zip(running, await asyncio.gather(*(self._scrape(p) for p in running)), strict=True)
        )
        now = time.time()
        out = []
        for d in deps:
            lab = d["metadata"].get("labels") or {}
            key = (lab.get(mf.ENDPOINT_LABEL, ""), lab.get(mf.DEPLOYMENT_LABEL, ""))
            st = d.get("status") or {}
            total = metrics_mod.Scrape()
            cpu = mem = 0.0
            for pod in by_dep.get(key, []):
                pname = pod["metadata"]["name"]
                scraped = scrapes.get(pname)
                if scraped is not None:
                    total.add(scraped)
                if usage and pname in usage:
                    cpu += usage[pname][0]
                    mem += usage[pname][1]
            prev = self._scrapes.get(key)
            self._scrapes[key] = (now, total)
            window = metrics_mod.delta(total, prev[1] if prev else None)
            elapsed = now - prev[0] if prev else 0.0
            requests = window.requests
            errors = sum(n for c, n in window.codes.items() if c.startswith("5"))
            out.append(
                MetricSample(
                    ts=now,
                    endpoint=key[0],
                    deployment=key[1],
                    requests_total=total.requests,
                    requests_per_second=requests / elapsed if elapsed > 0 else 0.0,
                    errors_total=total.errors,
                    error_rate=errors / requests if requests else 0.0,
                    latency_p50_ms=metrics_mod.quantile(window.buckets, 0.5),
                    latency_p95_ms=metrics_mod.quantile(window.buckets, 0.95),
                    latency_p99_ms=metrics_mod.quantile(window.buckets, 0.99),
                    status_codes=dict(total.codes),
                    cpu_percent=cpu * 100.0 if usage is not None else None,
                    memory_mb=mem / 2**20 if usage is not None else None,
                    replicas_ready=int(st.get("readyReplicas") or 0),
                    replicas_desired=int((d.get("spec") or {}).get("replicas", 1)),
                )
            )
        return out

    async def close(self) -> None:
        await self.api.close()


class _ChangeFeed:
    """Wakes a rollout on every change of its Deployment and pods: one ``watch=true`` per
    kind for the whole rollout (re-opened from the last resourceVersion when the server
    ends it). When the cluster does not let us watch (RBAC, 410 Gone), waits become a
    pause of ``poll_interval``."""

    def __init__(self, driver: KubernetesDriver, selector: str) -> None:
        self.driver = driver
        self.selector = selector
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def clear(self) -> None:
        self._changed.clear()

    def start(self, resource_versions: dict[str, str | None]) -> None:
        if self._tasks or not all(resource_versions.values()):
            return
        self._tasks = [
            asyncio.ensure_future(self._follow(kind, str(rv)))
            for kind, rv in resource_versions.items()
        ]

    async def _follow(self, kind: str, rv: str) -> None:
        d = self.driver
        with contextlib.suppress(ModeldeckError):
            while True:
                async for raw in d.api.stream_lines(
                    d._path(kind),
                    d._call("watch", kind),
                    query=[
                        ("labelSelector", self.selector),
                        ("watch", "true"),
                        ("resourceVersion", rv),
                        ("allowWatchBookmarks", "true"),
                        ("timeoutSeconds", 60),
                    ],
                    read_timeout=75.0,
                ):
                    try:
                        event = json.loads(raw)
                    except ValueError:
                        continue
                    kind_of = event.get("type")
                    if kind_of == "ERROR":  # 410 Gone: the polls take over
                        return
                    meta = (event.get("object") or {}).get("metadata") or {}
                    rv = str(meta.get("resourceVersion") or rv)
                    if kind_of in ("ADDED", "MODIFIED", "DELETED"):
                        self._changed.set()
                await asyncio.sleep(d.poll_interval)  # the server ended it: open it again

    async def wait(self, cap: float) -> None:
        """Until the next change, at most ``cap`` seconds (``poll_interval`` without watches)."""
        watching = any(not t.done() for t in self._tasks)
        timeout = cap if watching else self.driver.poll_interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _building(pods: list[dict]) -> int:
    """How many of ``pods`` are running their environment build (the init container)."""
    return sum(
        1
        for pod in pods
        for cs in (pod.get("status") or {}).get("initContainerStatuses") or []
        if cs.get("name") == mf.ENV_CONTAINER and (cs.get("state") or {}).get("running")
    )


def _changed_by(obj: dict) -> str | None:
    """Who last changed ``obj`` through modeldeck (``user@host``), when it says."""
    who = ((obj.get("metadata") or {}).get("annotations") or {}).get(cc.CHANGED_BY_ANNOTATION)
    return str(who) if who else None


def _reapplicable(obj: dict) -> dict:
    """An object read from the API server as a body to apply again: no status, no server-set
    metadata (uid, resourceVersion, managedFields, the controller's revision annotation)."""
    meta = obj.get("metadata") or {}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(("deployment.kubernetes.io/", "kubectl.kubernetes.io/last-applied"))
    }
    out_meta: dict[str, Any] = {"name": meta["name"], "namespace": meta.get("namespace")}
    if meta.get("labels"):
        out_meta["labels"] = dict(meta["labels"])
    if annotations:
        out_meta["annotations"] = annotations
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": out_meta,
        "spec": json.loads(json.dumps(obj.get("spec") or {})),
    }


async def _empty() -> dict:
    return {}
