"""The audit history as people read it, shared by the CLI (``online-endpoint history``) and
the dashboard's History view: one row per change (time in ISO 8601, who, what, each field
before -> after), and the revert of a traffic change.

Pure: no I/O. The records come from ``Workspace.get_history``.
"""

from __future__ import annotations

from typing import Any

from .api import revisions
from .api.domain import ChangeHistory, ChangeRecord
from .armids import iso_time

#: the fields a traffic change is made of (what a revert puts back)
TRAFFIC_FIELDS = ("traffic", "mirror_traffic")


def what(change: ChangeRecord, limit: int = 6) -> str:
    """``traffic.blue 90 -> 80, traffic.green 10 -> 20``; a create or delete says so; a
    rollout's event in words (:func:`rollout_event`)."""
    if not change.changed:
        return change.action
    if change.kind == "rollout":
        return rollout_event(change)
    return revisions.describe(change.changed, limit)


def rollout_event(change: ChangeRecord) -> str:
    """A rollout's event (a change of kind ``rollout``: the fields of the view its control
    plane notified that changed) in words: ``started at step 1/5 (5%): starting``,
    ``step: holding step 2/5 (10%)``, ``failed: green 31.0% errors (93 of 300) ...``."""
    now = {path: after for path, (_before, after) in change.changed.items()}
    event = str(now.get("event") or "step")  # the same event again: another step
    message, check = str(now.get("message") or ""), str(now.get("check") or "")
    if message.startswith(event):  # "promoted: green has 100% (...)"
        text = message
    else:
        text = event + (f" at {now['phase']}" if now.get("phase") else "")
        text += f": {message}" if message else ""
    return text + (f" ({check})" if check and check not in message else "")


def row(change: ChangeRecord) -> dict[str, Any]:
    """One change as the CLI prints it (``-o json`` keeps every field's before and after)."""
    return {
        "time": iso_time(change.at),
        "who": change.actor,
        "target": change.target if change.kind != "cluster" else f"cluster {change.target}",
        "action": change.action,
        "what": what(change),
        "changes": [
            {"field": path, "before": before, "after": after}
            for path, (before, after) in change.changed.items()
        ],
        "revision": change.revision,
        **({"status": change.status} if change.status else {}),
    }


def rows(history: ChangeHistory) -> list[dict[str, Any]]:
    return [row(c) for c in history.changes]


def is_traffic_change(change: ChangeRecord) -> bool:
    """A change of an endpoint's traffic or mirror traffic (and nothing else a user set): by
    hand, a revert, or a rollout's step (its revert is a manual change: it pauses a rollout
    that runs)."""
    paths = [p for p in change.changed if p.split(".")[0] not in revisions.STATUS_FIELDS]
    return (
        change.kind == "endpoint"
        and change.action in ("update", "revert", "rollout")
        and bool(paths)
        and all(p.split(".")[0] in TRAFFIC_FIELDS for p in paths)
    )


def reverted_maps(
    change: ChangeRecord, traffic: dict[str, int], mirror: dict[str, int]
) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    """The endpoint's maps (as they are now) with a traffic change undone: each path the
    change touched back to its value before (a deployment it added, gone). None for a map
    the change did not touch."""
    maps = {"traffic": dict(traffic), "mirror_traffic": dict(mirror)}
    touched: set[str] = set()
    for path, (before, _after) in change.changed.items():
        field, _, name = path.partition(".")
        if field not in maps or not name:
            continue
        touched.add(field)
        if before is None or (before == 0 and field == "mirror_traffic"):
            maps[field].pop(name, None)
        else:
            maps[field][name] = int(before)
    return (
        maps["traffic"] if "traffic" in touched else None,
        maps["mirror_traffic"] if "mirror_traffic" in touched else None,
    )
