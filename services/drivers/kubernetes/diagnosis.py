"""Why a deployment's pods are not ready, read from the cluster: the failures that will not
heal (image pulls, crash loops with the previous container's log, a failed environment
build with its log), scheduling problems (``FailedScheduling`` events), the status the
engine shows, and the events of a pod or a deployment."""

from __future__ import annotations

from ...api.errors import ModeldeckError, NotFound
from ..base import DeploymentStatus
from . import logs as logs_mod
from . import manifests as mf
from .resources import Resources

#: Waiting reasons of a container that will not become ready by itself.
FAILING_WAIT_REASONS = (
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "ErrImageNeverPull",
)


class PodDiagnosis(Resources):
    """Status and failures of deployments (a room of :class:`~.driver.KubernetesDriver`)."""

    #: Restarts after which a CrashLoopBackOff counts as a failure.
    crashloop_restarts: int

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
        got = await logs_mod.last_run_log(
            self.api, self.namespace, pod, container, tail=lines, skip_empty=True
        )
        return "\n".join(text for _, text in got or [])

    async def deployment_status(self, endpoint: str, name: str) -> DeploymentStatus:
        """Ready and desired replicas, and an error whenever the rollout is not complete as
        ``kubectl rollout status`` judges it (:func:`rollout_waiting`) or replicas are not
        ready: ready replicas of an old ReplicaSet do not hide a newer one that crash-loops
        beside them (each ReplicaSet not ready is named, with its pods' reason)."""
        obj = mf.deployment_name(endpoint, name)
        dep = await self._get_or_none("Deployment", obj)
        if dep is None:
            raise NotFound("deployment", f"{endpoint}/{name}")
        st = dep.get("status") or {}
        desired = int((dep.get("spec") or {}).get("replicas", 1))
        ready = int(st.get("readyReplicas") or 0)
        waiting = rollout_waiting(dep)
        error = None
        if ready < desired or waiting:
            pods = await self._list("Pod", mf.selector(endpoint, name))
            parts = [
                *_unready_replica_sets(obj, pods),
                await self.why_not_ready(endpoint, name, pods),
            ]
            if waiting and (ready >= desired or any(parts)):  # not while it merely starts
                parts.insert(0, f"rollout not complete: {waiting}")
            error = "; ".join(p for p in parts if p) or None
        return DeploymentStatus(ready_replicas=ready, desired_replicas=desired, error=error)

    async def why_not_ready(
        self, endpoint: str, name: str, pods: list[dict] | None = None
    ) -> str | None:
        """Why the deployment's pods are not ready: waiting reasons (CrashLoopBackOff with
        the previous container's log, ImagePullBackOff), FailedScheduling events."""
        if pods is None:
            pods = await self._list("Pod", mf.selector(endpoint, name))
        failure, scheduling = await self._failure(endpoint, name, pods)
        if failure or scheduling:
            return failure or scheduling
        reasons = []
        for pod in pods:
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


def rollout_waiting(dep: dict, generation: int = 0, desired: int | None = None) -> str | None:
    """What a Deployment's rollout still waits for, in ``kubectl rollout status``'s words
    (``DeploymentStatusViewer.Status``, k8s.io/kubectl/pkg/polymorphichelpers/
    rollout_status.go: observedGeneration, then updatedReplicas, replicas, and
    availableReplicas against updatedReplicas); None once it is complete.
    ``generation``: at least this one must be observed; ``desired``: this many updated
    replicas (default ``spec.replicas``)."""
    st = dep.get("status") or {}
    gen = max(int(dep["metadata"].get("generation") or 0), generation)
    if int(st.get("observedGeneration") or 0) < gen:
        return "waiting for the deployment spec update to be observed"
    if desired is None:
        desired = int((dep.get("spec") or {}).get("replicas", 1))
    updated = int(st.get("updatedReplicas") or 0)
    total = int(st.get("replicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    if updated < desired:
        return f"{updated} out of {desired} new replicas have been updated"
    if total > updated:
        return f"{total - updated} old replicas are pending termination"
    if available < updated:
        return f"{available} of {updated} updated replicas are available"
    return None


def _unready_replica_sets(obj: str, pods: list[dict]) -> list[str]:
    """Each ReplicaSet of Deployment ``obj`` with pods not ready, and why (its first such
    pod's waiting reason and last termination). A ReplicaSet is told by its pods'
    ``pod-template-hash`` label (its name is ``obj-HASH``): no RBAC on ReplicaSets needed."""
    sets: dict[str, list[dict]] = {}
    for pod in pods:
        rs = ((pod.get("metadata") or {}).get("labels") or {}).get("pod-template-hash", "")
        sets.setdefault(rs, []).append(pod)
    out = []
    for rs, members in sorted(sets.items()):
        unready = [p for p in members if not _pod_ready(p)]
        if not unready:
            continue
        pod = unready[0]
        why = _pod_state(pod)
        out.append(
            f"ReplicaSet {obj}-{rs} not ready ({len(members) - len(unready)} of "
            f"{len(members)} pod(s) ready): pod {pod['metadata']['name']}"
            + (f": {why}" if why else "")
        )
    return out


def _pod_ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _pod_state(pod: dict) -> str:
    """A not-ready pod's reason: the first waiting container (init containers first) and
    its last termination (exit code, reason, termination message)."""
    st = pod.get("status") or {}
    phase = st.get("phase") or ""
    for cs in [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]:
        state = cs.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        last = (cs.get("lastState") or {}).get("terminated") or state.get("terminated") or {}
        if not waiting and not int(last.get("exitCode") or 0):
            continue
        text = f"container {cs.get('name')}: {waiting or 'terminated'}"
        restarts = int(cs.get("restartCount") or 0)
        if restarts:
            text += f" (restarted {restarts} times)"
        if int(last.get("exitCode") or 0):
            text += f", last exit code {last['exitCode']}"
            if last.get("reason"):
                text += f" ({last['reason']})"
            if last.get("message"):
                text += f": {str(last['message']).strip()}"
        return text
    return phase
