"""The audit history of an Azure ML endpoint: the Azure activity log.

``GET /subscriptions/S/providers/Microsoft.Insights/eventtypes/management/values``
(api-version 2015-04-01; learn.microsoft.com/rest/api/monitor/activity-logs/list): its
``$filter`` allows only a few patterns, each with a time range; "events for a resource
group" is used (``eventTimestamp ge ... and eventTimestamp le ... and resourceGroupName
eq 'RG'``) and the events kept are those of the endpoint's resource id or below it (its
deployments), since ``resourceUri eq`` matches one resource only. Each ARM write makes
events (``BeginRequest``/``EndRequest``, ``Started``/``Succeeded``/``Failed``); one record
per operation is kept: its last event.

What the activity log does not have is said (:data:`MISSING`): the values before and
after (it records who called which operation, not the request body), and anything
older than its 90 days.
"""

from __future__ import annotations

import time
from typing import Any

from ..api.domain import ChangeHistory, ChangeRecord
from ..armids import parse_time
from .arm import ArmClient

ACTIVITY_API_VERSION = "2015-04-01"
#: how far back the activity log goes
RETENTION_S = 90 * 86400
MISSING = (
    "the Azure activity log records who ran which operation on the endpoint and its "
    "deployments, and whether it succeeded; not the values before and after (not "
    "available on Azure ML), and only the last 90 days"
)
#: the operation's last word on an ARM action -> the action as the history names it
_ACTIONS = {
    "write": "update",
    "delete": "delete",
    "regeneratekeys/action": "regenerate-keys",
}


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def activity_filter(resource_group: str, now: float) -> str:
    return (
        f"eventTimestamp ge '{_stamp(now - RETENTION_S + 60)}' and "
        f"eventTimestamp le '{_stamp(now)}' and resourceGroupName eq '{resource_group}'"
    )


def _value(field: Any) -> str:
    return str(field.get("value") or "") if isinstance(field, dict) else str(field or "")


def _target(resource_id: str) -> tuple[str, str]:
    """(kind, target) of a resource id: an endpoint ``ep``, a deployment ``ep/blue``, a
    compute (the workspace's history) its name."""
    parts = resource_id.split("/")
    lower = [p.lower() for p in parts]

    def after(segment: str) -> str | None:
        return parts[lower.index(segment) + 1] if segment in lower[:-1] else None

    endpoint, deployment = after("onlineendpoints"), after("deployments")
    if endpoint and deployment:
        return "deployment", f"{endpoint}/{deployment}"
    if endpoint:
        return "endpoint", endpoint
    compute = after("computes")
    return ("cluster", compute) if compute else ("workspace", resource_id)


def to_changes(events: list[dict[str, Any]], endpoint_id: str) -> list[ChangeRecord]:
    """The endpoint's (and its deployments') operations, oldest first, one per operation."""
    prefix = endpoint_id.lower()
    last: dict[str, dict[str, Any]] = {}
    for ev in events:
        rid = str(ev.get("resourceId") or "").lower()
        if rid != prefix and not rid.startswith(prefix + "/"):
            continue
        key = str(ev.get("operationId") or ev.get("correlationId") or ev.get("eventDataId"))
        seen = last.get(key)
        if seen is None or (parse_time(ev.get("eventTimestamp")) or 0) >= (
            parse_time(seen.get("eventTimestamp")) or 0
        ):
            last[key] = ev
    out = []
    for ev in last.values():
        kind, name = _target(str(ev.get("resourceId") or ""))
        operation = _value(ev.get("operationName"))
        verb = operation.lower().rsplit("/", 2)
        tail = verb[-1] if verb[-1] != "action" else "/".join(verb[-2:])
        out.append(
            ChangeRecord(
                at=parse_time(ev.get("eventTimestamp")) or 0.0,
                actor=str(ev.get("caller") or "unknown"),
                kind=kind,
                target=name,
                action=_ACTIONS.get(tail, operation),
                status=_value(ev.get("status")),
            )
        )
    return sorted(out, key=lambda c: c.at)


async def history(
    arm: ArmClient, subscription: str, resource_group: str, endpoint_id: str
) -> ChangeHistory:
    events = await arm.list_all(
        f"/subscriptions/{subscription}/providers/Microsoft.Insights/eventtypes/management/values",
        params={
            "api-version": ACTIVITY_API_VERSION,
            "$filter": activity_filter(resource_group, time.time()),
        },
        kind="activity log",
    )
    return ChangeHistory(changes=to_changes(events, endpoint_id), missing=MISSING)
