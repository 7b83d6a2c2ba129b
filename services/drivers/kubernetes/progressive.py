"""A progressive rollout's state kept on the cluster (issue 14), where every operator's
control plane attached to it reads it: the annotation ``modeldeck.io/rollout`` on the
endpoint's HTTPRoute, JSON of the rollout as the control plane that drives it records it
(who drives it, state, step, weights, the last check) plus ``heartbeat_at``, the epoch
second it was written. Another workspace attached to the same cluster reads it back (and
adoption's :meth:`.state.ClusterState.list_state` carries it), sees whose rollout runs and
starts no second one; its control plane never writes over it either (:func:`refuse_another`).

Not :mod:`.rollout`, which is a *Deployment's* rollout (new pods ready before old ones stop);
this is the endpoint's traffic moving from a control to a treatment in steps.

Written as ``changes.py`` writes ``modeldeck.io/last-change``: the route read, its metadata
changed, and replaced under its resourceVersion, a 409 retried on the fresh route (RBAC:
``update`` on httproutes, which the driver already needs for traffic). The webhook URL's
path and query often carry a secret (Slack's, Teams'): only its redacted form reaches the
cluster, where anyone who can read routes reads it.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from ...api.domain import from_dict
from ...api.errors import BackendError, Conflict
from ...api.rollouts import Rollout, RolloutState, already_running, redact_url
from . import manifests as mf
from .resources import Resources

ROLLOUT_ANNOTATION = "modeldeck.io/rollout"
#: the field manager of the annotation's writes (not ``modeldeck``'s)
ROLLOUT_MANAGER = "modeldeck-rollout"
_ACTIVE = {s.value for s in RolloutState if s.active}


def annotation_value(data: dict[str, Any], now: float | None = None) -> str:
    """The annotation's text: ``data`` with its webhook redacted and ``heartbeat_at``."""
    out = copy.deepcopy(data)
    spec = out.get("spec")
    if isinstance(spec, dict) and spec.get("webhook"):
        spec["webhook"] = redact_url(str(spec["webhook"]))
    out["heartbeat_at"] = time.time() if now is None else now
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def rollout_of(route: dict | None) -> dict[str, Any] | None:
    """The rollout a route's annotation holds (None: none, or not JSON of an object)."""
    ann = ((route or {}).get("metadata") or {}).get("annotations") or {}
    raw = ann.get(ROLLOUT_ANNOTATION)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def refuse_another(held: dict | None, data: dict | None) -> None:
    """Conflict (``already_running``) when the route holds a rollout in progress that
    another control plane drives: it is never written over (two control planes that start
    a rollout at the same time: the second one's write, under the resourceVersion it read,
    gets 409, reads the first one's and is refused here)."""
    if held is None or data is None:
        return
    if held.get("state") not in _ACTIVE or held.get("driven_by") == data.get("driven_by"):
        return
    try:
        theirs = from_dict(Rollout, held)
    except (TypeError, ValueError, KeyError, AttributeError):  # another version's record
        raise Conflict(
            f"endpoint '{(data.get('spec') or {}).get('endpoint', '')}' already has a rollout "
            f"{str(held.get('state')).lower()}, driven by {held.get('driven_by')}",
            fix="wait for it, or stop it from the workspace that drives it",
        ) from None
    raise already_running(theirs)


class RolloutRecords(Resources):
    """The driver's :class:`~..base.RecordsRollouts` (see module doc)."""

    async def publish_rollout(self, endpoint: str, data: dict | None) -> None:
        """Raises Conflict when the route holds another control plane's rollout in
        progress (:func:`refuse_another`)."""
        value = None if data is None else annotation_value(data)
        await self._replace_annotations(
            "HTTPRoute",
            mf.route_name(endpoint),
            {ROLLOUT_ANNOTATION: value},
            ROLLOUT_MANAGER,
            check=lambda route: refuse_another(rollout_of(route), data),
        )

    async def read_rollout(self, endpoint: str) -> dict | None:
        try:
            route = await self._get_or_none("HTTPRoute", mf.route_name(endpoint))
        except BackendError as exc:  # no Gateway API on the cluster: no route, no rollout
            if exc.details.get("missing"):
                return None
            raise
        return rollout_of(route)
