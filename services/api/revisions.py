"""Optimistic concurrency, the parts every back end and client share.

A change is a mapping ``{dotted.path: [before, after]}`` over the fields a user can see
(``instance_count``, ``request_settings.request_timeout_ms``, ``traffic.blue``,
``tags.owner``), so that

* a stale write can be refused with a :class:`~.errors.Conflict` naming what changed and who
  (:func:`stale`), and
* a client's read-modify-write can retry on the fresh state exactly when its own change does
  not touch what changed (:func:`overlapping`).

Pure functions, no I/O: the local store records changes with them, the CLI and the
dashboard read them back from a Conflict's details.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import Conflict

#: the header a client of the local control plane names itself in (:func:`client_actor`)
ACTOR_HEADER = "X-Modeldeck-Actor"
#: fields that change by themselves as an operation runs: never a user's own change
STATUS_FIELDS = frozenset({"provisioning_state", "error"})
#: names a --set uses for what the records hold under another name (YAML vs domain)
_ALIASES = {"memory_gb": "memory", "gpu": "nvidia.com/gpu"}
#: map fields whose keys are names, not paths (a tag key may hold a dot)
_MAPS = ("tags", "environment_variables", "traffic", "mirror_traffic", "properties")
#: how much of a changed value a message shows
_SHOWN = 60

Change = dict[str, list[Any]]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; an empty mapping stays a leaf (``{}``)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            if not prefix and key in _MAPS:  # map keys may hold dots: one level only
                for k, v in value.items():
                    out[f"{path}.{k}"] = v
            else:
                out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> Change:
    """What differs between two records (nested mappings), as ``{path: [before, after]}``."""
    old = flatten(before or {})
    new = flatten(after or {})
    out: Change = {}
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a != b and not (a in (None, {}) and b in (None, {})):
            out[path] = [a, b]
    return out


def merge(changes: Iterable[Change]) -> Change:
    """Successive changes as one: the first ``before`` and the last ``after`` of each path."""
    out: Change = {}
    for change in changes:
        for path, (a, b) in change.items():
            out[path] = [out[path][0] if path in out else a, b]
    return {p: v for p, v in out.items() if v[0] != v[1]}


def _canon(path: str) -> list[str]:
    parts = path.replace("nvidia.com/gpu", "\0").split(".")
    return [_ALIASES.get(p, "nvidia.com/gpu" if p == "\0" else p) for p in parts]


def overlapping(touched: Iterable[str] | None, changed: Iterable[str]) -> list[str]:
    """The changed paths the user's own change touches (one is a prefix of the other).

    ``touched=None`` means the whole record (``update -f FILE``): every change but a
    status field (:data:`STATUS_FIELDS`) overlaps it.
    """
    changed = [c for c in changed if c.split(".")[0] not in STATUS_FIELDS]
    if touched is None:
        return changed
    mine = [_canon(t) for t in touched]
    out = []
    for path in changed:
        theirs = _canon(path)
        if any(m[: len(theirs)] == theirs or theirs[: len(m)] == m for m in mine):
            out.append(path)
    return out


def _show(value: Any) -> str:
    if value is None or value == {}:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    # "...", not "…": the text goes to any terminal (the dashboard's may have no UTF-8)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def describe(change: Change, limit: int = 4) -> str:
    """``instance_count 2 -> 3, tags.owner (none) -> bob``: user fields first, then status."""
    paths = sorted(change, key=lambda p: (p.split(".")[0] in STATUS_FIELDS, p))
    if any(p.split(".")[0] not in STATUS_FIELDS for p in paths):
        paths = [p for p in paths if p.split(".")[0] not in STATUS_FIELDS]
    shown = [f"{p} {_show(change[p][0])} -> {_show(change[p][1])}" for p in paths[:limit]]
    if len(paths) > limit:
        shown.append(f"and {len(paths) - limit} more")
    return ", ".join(shown)


def stale(
    kind: str,
    name: str,
    *,
    sent: str,
    now: str,
    change: Change,
    by: list[str],
    fix: str,
) -> Conflict:
    """The Conflict of a write whose ``if_revision`` no longer matches."""
    who = ", ".join(by) or "someone"
    what = describe(change)
    return Conflict(
        f"{kind} '{name}' changed since you read it (revision {sent} -> {now} by {who}"
        + (f": {what})" if what else ")"),
        fix=fix,
        revision_sent=sent,
        revision_now=now,
        changed=change,
        by=who,
    )


def conflict_paths(exc: Conflict) -> list[str] | None:
    """The changed paths a Conflict carries; None when it says nothing (then: overlap)."""
    changed = exc.details.get("changed")
    if not isinstance(changed, dict):
        return None
    return [str(p) for p in changed]


def client_actor() -> str:
    """Who is making a change, as the client sees itself: ``alice@jump1``, plus the SSH
    client's address when there is one (two people may share one account on a jump box)."""
    try:
        user = getpass.getuser()
    except Exception:  # no name for this uid
        user = str(os.getuid())
    who = f"{user}@{socket.gethostname()}"
    ssh = os.environ.get("SSH_CONNECTION", "").split()
    if ssh:
        who += f" (ssh from {ssh[0]})"
    return who.encode("ascii", "replace").decode("ascii")  # a header value


__all__ = [
    "ACTOR_HEADER",
    "STATUS_FIELDS",
    "client_actor",
    "conflict_paths",
    "describe",
    "diff",
    "flatten",
    "merge",
    "overlapping",
    "stale",
]
