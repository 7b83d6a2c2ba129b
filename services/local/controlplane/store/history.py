"""Revisions and the history of changes: who changed which fields of an endpoint or a
deployment, under one workspace-wide counter.

Every change of an endpoint or a deployment takes the next number of the counter (so a name
deleted and created again never reuses a revision) and records who made it (:data:`ACTOR`)
and which fields changed in ``changes`` (bounded per object; secrets never). A write given
``if_revision`` is a compare-and-set inside its transaction: :class:`StaleRevision` when the
record moved on.
"""

from __future__ import annotations

import contextvars
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from ....api import revisions
from .base import StoreBase

#: Who the change being made is for: set per request by the API (the client's user@host),
#: inherited by the operations the request starts; the control plane's own changes otherwise.
ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar(
    "modeldeck_actor", default="the control plane"
)
#: How many changes are kept per endpoint or deployment (the oldest go first).
CHANGES_KEPT = 100


class StaleRevision(Exception):
    """A compare-and-set found another revision than the one it was given."""

    def __init__(self, kind: str, target: str, sent: int, now: int) -> None:
        super().__init__(f"{kind} {target}: revision {sent} expected, {now} found")
        self.kind = kind
        self.target = target
        self.sent = sent
        self.now = now


@dataclass(frozen=True)
class ChangeRow:
    revision: int
    actor: str
    at: float
    changed: dict[str, list[Any]]


class HistoryRecords(StoreBase):
    """The revision counter and the ``changes`` table."""

    @staticmethod
    def _next_revision(db: sqlite3.Connection) -> int:
        """The next number of the workspace-wide counter (inside the caller's transaction)."""
        row = db.execute("SELECT value FROM settings WHERE key='revision'").fetchone()
        value = int(row["value"]) + 1 if row is not None else 1
        db.execute(
            "INSERT INTO settings(key, value) VALUES('revision', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (str(value),),
        )
        return value

    def _record(
        self,
        db: sqlite3.Connection,
        kind: str,
        target: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> int | None:
        """Record a change (nothing when nothing a user can write changed): its revision.

        Status alone (:data:`~..revisions.STATUS_FIELDS`: an operation running, a replica
        failing, a restart restoring) takes no revision, as a Kubernetes object's
        ``generation`` ignores its status: a read-modify-write is stale only when what the
        user could have written changed under it.
        """
        changed = revisions.diff(before, after)
        if not changed or all(p.split(".")[0] in revisions.STATUS_FIELDS for p in changed):
            return None
        rev = self._next_revision(db)
        db.execute(
            "INSERT INTO changes(kind, target, revision, actor, at, changed) "
            "VALUES(?, ?, ?, ?, ?, ?)",
            (kind, target, rev, ACTOR.get(), time.time(), json.dumps(changed, default=str)),
        )
        db.execute(
            "DELETE FROM changes WHERE kind=? AND target=? AND revision NOT IN "
            "(SELECT revision FROM changes WHERE kind=? AND target=? "
            "ORDER BY revision DESC LIMIT ?)",
            (kind, target, kind, target, CHANGES_KEPT),
        )
        return rev

    def changes(self, kind: str, target: str, after: int = 0) -> list[ChangeRow]:
        """The recorded changes of ``kind`` (endpoint | deployment) ``target`` (``ep`` or
        ``ep/dep``) with a revision above ``after``, oldest first."""
        rows = self._all(
            "SELECT * FROM changes WHERE kind=? AND target=? AND revision>? ORDER BY revision",
            kind,
            target,
            after,
        )
        return [
            ChangeRow(
                revision=int(r["revision"]),
                actor=r["actor"],
                at=r["at"],
                changed=json.loads(r["changed"]),
            )
            for r in rows
        ]

    def _set_revision(self, db: sqlite3.Connection, kind: str, target: str, rev: int) -> None:
        if kind == "endpoint":
            db.execute("UPDATE endpoints SET revision=? WHERE name=?", (rev, target))
        else:
            endpoint, _, name = target.partition("/")
            db.execute(
                "UPDATE deployments SET revision=? WHERE endpoint=? AND name=?",
                (rev, endpoint, name),
            )

    def _check(self, kind: str, target: str, current: int, if_revision: int | None) -> None:
        if if_revision is not None and current != if_revision:
            raise StaleRevision(kind, target, if_revision, current)
