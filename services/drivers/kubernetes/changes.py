"""The audit history where Kubernetes users look: each change the control plane records
for an endpoint (its HTTPRoute) or a deployment (its Deployment) is written

* on the object, as the annotation ``modeldeck.io/last-change``: JSON ``{"who", "when",
  "what", "action", "revision"}`` (``kubectl get httproute NAME -o yaml``); the
  Deployment's through a merge patch of its own metadata (never its pod template: no
  restart) under the field manager ``modeldeck-audit``, so the next server-side apply of
  ``modeldeck`` leaves it; the HTTPRoute's read, changed and replaced under its
  resourceVersion, as the driver writes routes (RBAC: ``update``, no ``patch``);
* as a core/v1 Event in the namespace (``kubectl get events``), with the object as
  ``involvedObject``, a CamelCase ``reason``, ``action``, ``eventTime`` and
  ``reportingComponent``/``reportingInstance`` as the API server's validation of a
  new-style Event asks (pkg/apis/core/validation/events.go: reason, action and
  reportingInstance at most 128 characters), and the legacy ``firstTimestamp``/
  ``lastTimestamp``/``count``/``source`` that ``kubectl get events`` shows.

A deleted object gets the Event only. Nothing here carries a key: the change's text is
``revisions.describe`` of what the store recorded, where keys are fingerprints.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from ...api import revisions
from ...api.domain import ChangeRecord
from ...api.errors import NotFound
from . import manifests as mf
from .client import JSON, MERGE
from .errors import GATEWAY_API_GROUP
from .resources import Resources

LAST_CHANGE_ANNOTATION = "modeldeck.io/last-change"
#: the field manager of the annotation (not ``modeldeck``'s: its applies keep it)
AUDIT_MANAGER = "modeldeck-audit"
#: who reports the Events (a qualified name, as reportingComponent must be)
REPORTING_COMPONENT = "modeldeck.io/control-plane"
#: the API server's limits (events.go): reason, action, reportingInstance; a note's 1 kB
_SHORT, _NOTE = 128, 1024
_REASONS = {
    "create": ("Created", "Create"),
    "update": ("Updated", "Update"),
    "revert": ("Reverted", "Revert"),
    "delete": ("Deleted", "Delete"),
    "regenerate-keys": ("KeysRegenerated", "RegenerateKeys"),
}


def _micro_time(epoch: float) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}Z"


def _time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def what(change: ChangeRecord) -> str:
    return revisions.describe(change.changed, limit=8) if change.changed else change.action


def last_change(change: ChangeRecord) -> str:
    """The annotation's value."""
    return json.dumps(
        {
            "who": change.actor,
            "when": _time(change.at),
            "action": change.action,
            "what": what(change)[:_NOTE],
            "revision": change.revision,
        },
        sort_keys=True,
    )


def reason_of(change: ChangeRecord) -> tuple[str, str]:
    """(reason, action) of the Event: a traffic-only update is ``TrafficChanged``; a
    progressive rollout's step is ``RolloutStep`` and its events ``RolloutStarted``,
    ``RolloutPaused``, ``RolloutFailed``... (Argo Rollouts' reasons are named so:
    RolloutPaused, RolloutAborted, RolloutCompleted)."""
    if change.action == "rollout":
        event = change.changed.get("event")
        name = str(event[1]) if event and event[1] else "step"
        return "Rollout" + name.capitalize(), "Rollout"
    reason, action = _REASONS.get(change.action, ("Changed", "Change"))
    paths = [p.split(".")[0] for p in change.changed]
    if change.action == "update" and paths and set(paths) <= {"traffic", "mirror_traffic"}:
        reason = "TrafficChanged"
    return reason, action


class ChangeEvents(Resources):
    """The driver's :class:`~..base.RecordsChanges` (see module doc)."""

    async def record_change(
        self, endpoint: str, deployment: str | None, change: ChangeRecord
    ) -> None:
        if deployment is None:
            kind, name, api_version = (
                "HTTPRoute",
                mf.route_name(endpoint),
                f"{GATEWAY_API_GROUP}/v1",
            )
        else:
            kind, name, api_version = (
                "Deployment",
                mf.deployment_name(endpoint, deployment),
                "apps/v1",
            )
        uid = None
        if change.action != "delete":
            uid = await self._annotate(kind, name, last_change(change))
        await self._post_event(kind, name, api_version, uid, endpoint, deployment, change)

    async def _annotate(self, kind: str, name: str, value: str) -> str | None:
        """Set the annotation; the object's uid (None: it is not there)."""
        patch = {"metadata": {"annotations": {LAST_CHANGE_ANNOTATION: value}}}
        if kind != "HTTPRoute":
            try:
                obj = await self.api.request(
                    "PATCH",
                    self._path(kind, name),
                    self._call("patch", kind, name),
                    query=[("fieldManager", AUDIT_MANAGER)],
                    body=patch,
                    content_type=MERGE,
                )
            except NotFound:
                return None
            return ((obj or {}).get("metadata") or {}).get("uid")
        obj = await self._replace_annotations(
            kind, name, {LAST_CHANGE_ANNOTATION: value}, AUDIT_MANAGER
        )
        return ((obj or {}).get("metadata") or {}).get("uid")

    async def _post_event(
        self,
        kind: str,
        name: str,
        api_version: str,
        uid: str | None,
        endpoint: str,
        deployment: str | None,
        change: ChangeRecord,
    ) -> None:
        reason, action = reason_of(change)
        stamp = _time(change.at)
        labels = {mf.ENDPOINT_LABEL: endpoint}
        if deployment is not None:
            labels[mf.DEPLOYMENT_LABEL] = deployment
        involved: dict[str, Any] = {
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "namespace": self.namespace,
        }
        if uid:
            involved["uid"] = uid
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                # as client-go names Events: the object's name and a unique hex suffix
                "name": f"{name}.{time.time_ns():x}",
                "namespace": self.namespace,
                "labels": labels,
            },
            "involvedObject": involved,
            "reason": reason,
            "action": action,
            "message": f"{change.actor}: {what(change)}"[:_NOTE],
            "type": "Normal",
            "eventTime": _micro_time(change.at),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": (socket.gethostname() or "localhost")[:_SHORT],
        }
        await self.api.request(
            "POST",
            self._path("Event"),
            self._call("create", "Event"),
            body=event,
            content_type=JSON,
        )
