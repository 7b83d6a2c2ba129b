"""The revision check of a write: resources as read, and the Conflict that names what
someone else changed since."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from ..api import revisions
from ..api.errors import (
    Conflict,
)
from . import mapping
from .session import Session


class ConflictCheck(Session):
    """Remembers resources as read; refuses a write based on a revision that is gone."""

    #: (kind, name, revision) -> the resource as read: what a refused update's Conflict
    #: compares with to name the fields someone else changed (bounded)
    _reads: OrderedDict[tuple[str, str, str], dict[str, Any]]

    def _remember(self, kind: str, name: str, res: dict[str, Any]) -> None:
        key = (kind, name, mapping.revision(res))
        self._reads[key] = res
        self._reads.move_to_end(key)
        while len(self._reads) > 512:
            self._reads.popitem(last=False)

    def _check_revision(
        self, kind: str, name: str, current: dict[str, Any], if_revision: str | None
    ) -> None:
        """Refuse (Conflict) a write based on ``if_revision`` when the resource as read just
        now has another revision.

        ARM gives online endpoints and deployments no etag and honours no If-Match for them
        (see :func:`mapping.revision`), so this check runs on a GET made just before the
        PUT: it narrows the race to that one round trip but cannot close it on ARM's side.
        (Azure ML does refuse a second write while the first one's operation is running:
        that 409 comes back as Conflict too.)
        """
        if not if_revision:
            return
        now = mapping.revision(current)
        if now == if_revision:
            return
        before = self._reads.get((kind, name, if_revision))
        # what changed, as {path: [before, after]} (services/api/revisions.py): the CLI retries
        # on the fresh state when its own change touches none of it; unknown (this process
        # did not read that revision): no "changed", so nothing is retried blindly
        changed = (
            revisions.diff(mapping.visible(kind, before), mapping.visible(kind, current))
            if before is not None
            else None
        )
        fields = sorted({p.split(".")[0] for p in changed or {}})
        sd = current.get("systemData") or {}
        by, at = sd.get("lastModifiedBy"), sd.get("lastModifiedAt")
        shown: dict[str, Any] = {}
        if kind == "endpoint":  # the live maps, for a dashboard that shows what won
            live = mapping.visible(kind, current)
            shown = {"traffic": live["traffic"], "mirror_traffic": live["mirror_traffic"]}
            what, show = f"endpoint '{name}'", f"modeldeck online-endpoint show -n {name}"
        else:
            e, d = name.split("/", 1)
            what = f"deployment '{d}' of endpoint '{e}'"
            show = f"modeldeck online-deployment show -e {e} -n {d}"
        described = revisions.describe(changed) if changed else ""
        raise Conflict(
            f"{what} changed since you read it (revision {if_revision} -> {now}"
            + (f" by {by}" if by else "")
            + (f" at {at}" if at else "")
            + (f": {described}" if described else "")
            + ")"
            + (f"; traffic is now {json.dumps(shown['traffic'], sort_keys=True)}" if shown else "")
            + "; this change was not applied",
            fix=f"read it again ({show} shows the other change) and make your change on top of it",
            revision_sent=if_revision,
            revision_now=now,
            changed=changed,
            by=by or "someone",
            fields=fields or None,
            changed_by=by,
            changed_at=at,
            current=shown or None,
        )
