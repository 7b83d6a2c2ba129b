"""A deployment's objects on the cluster and their rollout.

:meth:`Rollouts.apply_deployment` checks the Deployment against someone else's change
before anything is written, applies the ConfigMap, pip Secret, Deployment, Service and
HPA, then follows the rollout as ``kubectl rollout status`` does (woken by a watch of
the Deployment and its pods, :class:`_ChangeFeed`) until the new ReplicaSet is ready or
a failure that will not heal (:mod:`.diagnosis`); a failed update is rolled back to the
previous version, whose replicas keep serving meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from ...api.domain import DeploymentSpec, from_dict, to_dict
from ...api.errors import BackendError, ModeldeckError, NotFound
from ..base import DeploymentRuntime, Progress
from . import concurrency as cc
from . import manifests as mf
from .diagnosis import PodDiagnosis, rollout_waiting
from .endpoints import EndpointObjects

#: How long a failed update waits for the cluster to take its rollback in (s).
ROLLBACK_WAIT_S = 60.0


class RolloutFailed(BackendError):
    """A rollout that cannot become ready; the previous replicas keep serving."""


class Rollouts(EndpointObjects, PodDiagnosis):
    """Deployments (a room of :class:`~.driver.KubernetesDriver`): after a rollout the
    endpoint's route is resynced (:mod:`.endpoints`); failures come from :mod:`.diagnosis`."""

    rollout_timeout: float
    poll_interval: float
    schedule_grace: float

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
        autoscaled = mf.autoscaled(spec.scale_settings)
        applied: dict[str, dict] = {}
        for i, obj in enumerate(objects):
            progress(
                0.05 + 0.1 * i / len(objects), f"applying {obj['kind']} {obj['metadata']['name']}"
            )
            if obj["kind"] != "Deployment":
                applied[obj["kind"]] = await self._apply(obj)
                continue
            if not autoscaled:  # first: an HPA left would scale the new count back
                await self._delete("HorizontalPodAutoscaler", obj_name)
            try:
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
            except ModeldeckError:
                if previous_hpa is not None and not autoscaled:  # the Deployment stays as it was
                    with contextlib.suppress(ModeldeckError):
                        await self._apply(_reapplicable(previous_hpa))
                raise
        progress(0.2, "applied; waiting for the new replicas")
        generation = int(applied["Deployment"]["metadata"].get("generation") or 1)
        try:
            await self._wait_rollout(
                endpoint,
                spec.name,
                generation,
                progress,
                at_least=spec.scale_settings.min_instances if autoscaled else 0,
            )
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
            applied = await self._apply(body)
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
        await self._wait_rolled_back(
            endpoint, name, int(applied["metadata"].get("generation") or 0)
        )
        ready = int((previous.get("status") or {}).get("readyReplicas") or 0)
        return RolloutFailed(
            f"update of deployment '{name}' of endpoint '{endpoint}' was rolled back to the "
            f"previous version ({ready} replica(s) of it kept serving): {failure.message}",
            fix="fix the cause and update the deployment again",
            rolled_back=True,
        )

    async def _wait_rolled_back(self, endpoint: str, name: str, generation: int) -> None:
        """Until the cluster has taken the rollback in (``kubectl rollout status`` after
        ``rollout undo``: the spec observed, the failing ReplicaSet scaled down), as ``helm
        upgrade --atomic`` waits for its rollback: the command that says "rolled back" ends
        once it is, and a ``show`` after it reads the version that serves, not the failing
        pods on their way out. At most :data:`ROLLBACK_WAIT_S`: the previous replicas never
        stopped serving, and ``show`` names what the cluster has left to do."""
        obj_name = mf.deployment_name(endpoint, name)
        feed = _ChangeFeed(self, mf.selector(endpoint, name))
        deadline = time.monotonic() + ROLLBACK_WAIT_S
        try:
            while time.monotonic() < deadline:
                feed.clear()
                raw = await self._list_raw("Deployment", feed.selector)
                feed.start({"Deployment": (raw.get("metadata") or {}).get("resourceVersion")})
                dep = next(
                    (d for d in raw.get("items") or [] if d["metadata"]["name"] == obj_name),
                    None,
                )
                if dep is None or rollout_waiting(dep, generation) is None:
                    return
                await feed.wait(min(5.0, max(0.0, deadline - time.monotonic())))
        except ModeldeckError:
            return  # the rollback was applied; show reads the cluster when it answers again
        finally:
            await feed.close()

    async def _wait_rollout(
        self, endpoint: str, name: str, generation: int, progress: Progress, *, at_least: int = 0
    ) -> None:
        """Until the new ReplicaSet is fully ready (as ``kubectl rollout status``), or a failure.

        ``at_least``: with an HPA, the Deployment starts at 1 replica until the HPA scales it
        to its minimum; the rollout is done when that many are ready. A fixed count is the
        one asked (:func:`asked_replicas`): a ``spec.replicas`` that another writer (an HPA,
        ``kubectl scale``) changed fails the rollout.
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
            replicas = int((dep.get("spec") or {}).get("replicas", 1))
            requested = asked_replicas(dep)
            if requested is not None and replicas != requested:
                raise RolloutFailed(
                    f"deployment '{name}' of endpoint '{endpoint}' runs {replicas} replica(s) "
                    f"where {requested} were asked: {await self._scaled_by(obj_name)} changed "
                    "its replica count after modeldeck wrote it",
                    fix=f"remove what scales deployment/{obj_name} (kubectl -n {self.namespace} "
                    "get hpa), or use scale_settings.type: target_utilization",
                )
            desired = requested if requested is not None else max(replicas, at_least)
            updated = int(st.get("updatedReplicas") or 0)
            ready = int(st.get("readyReplicas") or 0)
            observed = int(st.get("observedGeneration") or 0) >= max(gen, generation)
            done = rollout_waiting(dep, generation, desired) is None
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

    async def _scaled_by(self, obj_name: str) -> str:
        """Who else sets the replica count of Deployment ``obj_name``: the HPAs that target
        it, if we may list them."""
        hpas = []
        with contextlib.suppress(ModeldeckError):
            hpas = [
                h["metadata"]["name"]
                for h in await self._list("HorizontalPodAutoscaler")
                if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == obj_name
            ]
        if hpas:
            return "HorizontalPodAutoscaler " + ", ".join(hpas)
        return "another writer (an autoscaler, or kubectl scale)"

    async def delete_deployment(self, endpoint: str, name: str) -> None:
        obj = mf.deployment_name(endpoint, name)
        await self._delete("HorizontalPodAutoscaler", obj)
        await self._delete("Deployment", obj)
        await self._delete("Service", obj)
        await self._delete_selected("ConfigMap", mf.selector(endpoint, name))
        await self._delete("Secret", mf.pip_secret_name(endpoint, name))
        self._seen.pop(("Deployment", obj), None)
        await self._update_route(endpoint, None, None, create=False, drop=name)


class _ChangeFeed:
    """Wakes a rollout on every change of its Deployment and pods: one ``watch=true`` per
    kind for the whole rollout (re-opened from the last resourceVersion when the server
    ends it). When the cluster does not let us watch (RBAC, 410 Gone), waits become a
    pause of ``poll_interval``."""

    def __init__(self, driver: Rollouts, selector: str) -> None:
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
                async for event in d._watch(
                    kind, self.selector, rv, 60, read_timeout=75.0, bookmarks=True
                ):
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


def asked_replicas(dep: dict) -> int | None:
    """The fixed replica count modeldeck's operators asked of a Deployment: the
    ``instance_count`` of its ``modeldeck.io/spec`` annotation (None: autoscaled, or no
    annotation). ``spec.replicas`` may differ, when another writer scaled it."""
    fields = cc.deployment_fields(dep)
    count = fields.get("instance_count")
    if (fields.get("scale_settings") or {}).get("type") == "target_utilization" or count is None:
        return None
    return int(count)


def _building(pods: list[dict]) -> int:
    """How many of ``pods`` are running their environment build (the init container)."""
    return sum(
        1
        for pod in pods
        for cs in (pod.get("status") or {}).get("initContainerStatuses") or []
        if cs.get("name") == mf.ENV_CONTAINER and (cs.get("state") or {}).get("running")
    )


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
