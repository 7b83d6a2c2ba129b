"""History: who changed an endpoint and its deployments, when, and what (before -> after),
newest first; ``u`` reverts the highlighted traffic change.

The rows are ``services.audit``'s, as the CLI's ``online-endpoint history`` prints them.
A revert puts back the values the change replaced, on the maps as they are now, and is
sent with the revision that change made as ``if_revision``: if anything changed the
endpoint since, the back end refuses it (no lost writes) and the message says so. The
revert is itself a change, recorded like any other.
"""

from __future__ import annotations

import asyncio
import time

from rich.markup import escape
from textual import work
from textual.binding import Binding

from ...services import audit
from ...services.api import health
from ...services.api.domain import ChangeHistory, ChangeRecord, EndpointPatch
from ...services.api.errors import Conflict, ModeldeckError
from ...services.api.workspace import OperationHandle
from .resource_list import ResourceListScreen


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class HistoryScreen(ResourceListScreen):
    VIEW_NAME = "History"
    NOUN = "changes"
    EMPTY_TEXT = "no changes recorded yet"
    POLL_INTERVAL = 5.0  # a back end without a watch (Azure ML)
    WATCHED = True  # every row is a recorded change: each wakes the watch
    COLUMNS = [
        ("time", "TIME (UTC)"),
        ("who", "WHO"),
        ("target", "TARGET"),
        ("action", "ACTION"),
        ("what", "WHAT (BEFORE -> AFTER)"),
    ]
    MUTATING = frozenset({"revert"})
    ORDER_BY_KEY = True  # the newest change first, as show() keys them (not by TIME's text)
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("u", "revert", "Revert traffic"),
    ]

    def __init__(self, endpoint: str | None = None) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.changes: dict[str, ChangeRecord] = {}
        self.missing: str | None = None

    def title_text(self) -> str:
        return f"History {self.endpoint_name}" if self.endpoint_name else "History"

    async def fetch(self) -> ChangeHistory:
        return await self.workspace.get_history(self.endpoint_name)

    def show(self, history: ChangeHistory) -> None:
        self.missing = history.missing
        ordered = list(reversed(history.changes))  # newest first
        self.changes = {f"{i:06d}": c for i, c in enumerate(ordered)}
        rows = {key: audit.row(c) for key, c in self.changes.items()}
        self.sync_rows(
            {
                # names and values are recorded text, never markup
                key: (
                    _when(c.at),
                    escape(c.actor),
                    escape(rows[key]["target"]),
                    escape(c.action),
                    escape(rows[key]["what"]),
                )
                for key, c in self.changes.items()
            }
        )

    def row_detail(self, key: str | None) -> str | None:
        change = self.changes.get(key or "")
        if change is None:
            return f"[dim]{self.missing}[/]" if self.missing else None
        hint = "  [dim]u: revert[/]" if audit.is_traffic_change(change) else ""
        rev = f"revision {change.revision}: " if change.revision else ""
        return f"{rev}{escape(audit.what(change, limit=12))}{hint}"

    def action_revert(self) -> None:
        key = self.need_selection()
        if key is None or not self.mdapp.allow_mutation("revert traffic"):
            return
        change = self.changes[key]
        if not audit.is_traffic_change(change) or not change.revision:
            self.notify(
                "only a traffic change recorded with its revision can be reverted here"
                "\nfix: set the traffic on the Traffic screen (t on the endpoint)",
                severity="warning",
            )
            return
        self._revert_checked(change)

    @work(group="revert-check", exclusive=True, exit_on_error=False)
    async def _revert_checked(self, change: ChangeRecord) -> None:
        """Revert ``change``, after asking when the maps put back give a deployment that is
        not ready or failing more traffic, as the Traffic screen's Apply does
        (``health.traffic_risks_now``; the CLI's ``update --traffic`` without --force
        refuses it): no answer, no change."""
        name, rev = change.target, change.revision
        try:
            now, deployments = await asyncio.gather(
                self.workspace.get_endpoint(name), self.workspace.list_deployments(name)
            )
            traffic, mirror = audit.reverted_maps(change, now.traffic, now.mirror_traffic)
            # a stale revert is refused below (and says why): nothing to ask about first
            stale = bool(now.revision) and now.revision != rev
            risks = (
                []
                if stale
                else await health.traffic_risks_now(
                    self.workspace, now, deployments, traffic, mirror
                )
            )
        except ModeldeckError as exc:
            self.mdapp.show_error(exc)
            return
        patch = EndpointPatch(traffic=traffic, mirror_traffic=mirror)

        async def start() -> OperationHandle:
            try:
                return await self.workspace.update_endpoint(name, patch, if_revision=rev)
            except Conflict as exc:
                raise Conflict(
                    f"not reverted: revision {rev} is no longer the endpoint's last change. "
                    + exc.message,
                    fix="revert the latest traffic change (the list shows it first), or set the "
                    "traffic on the Traffic screen",
                    **exc.details,
                ) from None

        self.unless_risky(
            risks,
            lambda: self.mdapp.run_operation(f"revert traffic {name} (revision {rev})", start),
            "not reverted: nothing was changed",
        )
