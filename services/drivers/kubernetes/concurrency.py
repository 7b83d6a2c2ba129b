"""No lost writes between two control planes on one cluster.

Two operators' modeldeck (two ``MODELDECK_HOME``, each with its own records) can both
write an endpoint's HTTPRoute (traffic, mirror), its keys Secret (auth, keys,
description, tags) and a deployment's Deployment (its spec). Each write here is:

1. read the object as it is now (with its ``resourceVersion``);
2. compare, field by field, the object now with what this control plane last knew of
   it (its own last write, or what it first listed) and with what it wants to write:
   a field someone else changed meanwhile that this write also changes to another
   value is a :class:`Conflict` naming the field and who changed it (the
   ``modeldeck.io/changed-by`` annotation); fields only someone else changed are
   kept as they are now (merged), fields only this write changes are written;
3. write with ``metadata.resourceVersion`` set to what was read, so a change between
   1 and 3 is a 409 from the API server: then 1-3 run again on the fresh object.

The objects' other writers (the Deployment controller's status, the HPA's replicas)
change the resourceVersion but not the fields compared here, so they never make a
conflict. Nothing here puts a key's value into a message.
"""

from __future__ import annotations

import getpass
import json
import operator
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ...api import revisions
from ...api.errors import Conflict
from . import manifests as mf

CHANGED_BY_ANNOTATION = "modeldeck.io/changed-by"
CHANGED_AT_ANNOTATION = "modeldeck.io/changed-at"
#: Fields compared by name only: their values never reach a message or the details.
SECRET_VALUES = frozenset({"primary_key", "secondary_key", "token_secret"})
#: A deployment's fields this control plane cannot take from someone else's version:
#: the files (code, model) it ships come from its own copy.
DEPLOYMENT_UNMERGEABLE = ("app", "model", "code_configuration.scoring_script")


def who() -> str:
    """``user@host`` of this process, for the ``changed-by`` annotation."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname() or 'localhost'}"


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with who changed it and when (annotations on its own metadata only: a
    Deployment's pod template is not touched, so stamping never restarts pods)."""
    meta = obj.setdefault("metadata", {})
    ann = dict(meta.get("annotations") or {})
    ann[CHANGED_BY_ANNOTATION] = who()
    ann[CHANGED_AT_ANNOTATION] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta["annotations"] = ann
    return obj


def route_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    traffic, mirror = mf.route_state(obj)
    return {"traffic": traffic, "mirror_traffic": mirror}


def secret_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    import base64

    data = obj.get("data") or {}
    ann = (obj.get("metadata") or {}).get("annotations") or {}

    def dec(key: str) -> str:
        try:
            return base64.b64decode(data.get(key) or "").decode()
        except (ValueError, UnicodeDecodeError):
            return ""

    try:
        tags = json.loads(ann.get(mf.TAGS_ANNOTATION) or "{}")
    except ValueError:
        tags = {}
    return {
        "auth_mode": dec("auth-mode") or "key",
        "primary_key": dec("primary-key"),
        "secondary_key": dec("secondary-key"),
        "token_secret": dec("token-secret"),
        "description": str(ann.get(mf.DESCRIPTION_ANNOTATION) or ""),
        "tags": tags if isinstance(tags, dict) else {},
    }


def deployment_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The DeploymentSpec as applied (top-level fields), the app files' digest; not the
    local path of the code (it differs from one operator's machine to another's)."""
    meta = obj.get("metadata") or {}
    ann = meta.get("annotations") or {}
    try:
        spec = json.loads(ann.get(mf.SPEC_ANNOTATION) or "{}")
    except ValueError:
        spec = {}
    out = spec_fields(spec if isinstance(spec, dict) else {})
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    out["app"] = (template.get("annotations") or {}).get("modeldeck.io/app-digest")
    return out


def spec_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A DeploymentSpec (as ``to_dict`` gives it) as the fields compared, without ``app``."""
    spec = json.loads(json.dumps(dict(spec)))  # the same types as read back from JSON
    code = spec.pop("code_configuration", None) or {}
    out = {k: v for k, v in spec.items() if k not in ("name", "endpoint_name")}
    out["code_configuration.scoring_script"] = code.get("scoring_script")
    return out


def same_weights(a: Any, b: Any) -> bool:
    """Two traffic (or mirror) maps send the same traffic: a deployment at 0 is one that is
    not in the map (a workspace lists a new deployment at 0 before the cluster's route has
    it), so that difference is nobody's change."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return {k: v for k, v in a.items() if v} == {k: v for k, v in b.items() if v}
    return bool(a == b)


def merge(
    base: Mapping[str, Any] | None,
    now: Mapping[str, Any],
    mine: Mapping[str, Any],
    *,
    unmergeable: Iterable[str] = (),
    same: Callable[[Any, Any], bool] = operator.eq,
) -> tuple[dict[str, Any], list[str]]:
    """(fields to write, fields in conflict) of a three-way merge.

    ``base``: what this control plane last knew (None: nothing, so ``now`` is taken as
    it); ``now``: the object as read; ``mine``: what this write wants. A conflict is a
    field someone else changed that this write changes to another value, or an
    ``unmergeable`` field someone else changed that this write does not carry. ``same``:
    whether two values of a field are the same (default ``==``; :func:`same_weights`).
    """
    base = now if base is None else base
    theirs = {f for f in set(now) | set(base) if not same(now.get(f), base.get(f))}
    ours = {f for f in mine if not same(mine[f], base.get(f))}
    clash = {f for f in theirs & ours if not same(mine[f], now.get(f))}
    clash |= {f for f in theirs & set(unmergeable) if not same(mine.get(f), now.get(f))}
    merged = dict(now)
    merged.update({f: mine[f] for f in ours})
    return merged, sorted(clash)


def conflict(
    *,
    cluster: str,
    what: str,
    obj: Mapping[str, Any],
    fields: list[str],
    base: Mapping[str, Any] | None,
    now: Mapping[str, Any],
    fix: str,
) -> Conflict:
    """The Conflict for fields someone else changed: names them, the object and who.

    Its details carry what :mod:`modeldeck.services.api.revisions` reads (``changed`` as
    ``{path: [before, after]}``, ``by``), key values hidden, and the live traffic maps.
    """
    base = now if base is None else base
    changed = revisions.diff(
        {f: "(hidden)" if f in SECRET_VALUES else base.get(f) for f in fields},
        {f: "(hidden, changed)" if f in SECRET_VALUES else now.get(f) for f in fields},
    )
    meta = obj.get("metadata") or {}
    ann = meta.get("annotations") or {}
    by = ann.get(CHANGED_BY_ANNOTATION)
    at = ann.get(CHANGED_AT_ANNOTATION)
    ref = f"{obj.get('kind', '')}/{meta.get('name', '')}"
    shown = {f: now.get(f) for f in fields if f not in SECRET_VALUES}
    values = "; ".join(f"{f} is now {json.dumps(v, sort_keys=True)}" for f, v in shown.items())
    who_when = f" by {by}" + (f" at {at}" if at else "") if by else ""
    return Conflict(
        f"{what} was changed on cluster '{cluster}'{who_when} since this workspace read it "
        f"({ref}: {', '.join(fields)} changed)"
        + (f": {values}" if values else "")
        + "; this change was not applied",
        fix=fix,
        changed=changed,
        by=by or "someone",
        fields=fields,
        changed_by=by,
        changed_at=at,
        object=ref,
        current=shown or None,
        revision=str(meta.get("resourceVersion") or "") or None,
    )
