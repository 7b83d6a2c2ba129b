"""Revisions and the history of changes: who changed which fields of an endpoint or a
deployment, under one workspace-wide counter.

Every change of an endpoint, a deployment or a cluster takes the next number of the counter
(so a name deleted and created again never reuses a revision) and records who made it
(:data:`ACTOR`), what it was (:data:`ACTIONS`) and each field's value before and after in
``changes``: the audit history (``online-endpoint history``). Bounded per object
(:data:`CHANGES_KEPT`) and in all (:data:`CHANGES_KEPT_ALL`); kept after a delete, so the
delete itself can be read back; secrets never (a key shows as ``set`` and a fingerprint).
A write given ``if_revision`` is a compare-and-set inside its transaction:
:class:`StaleRevision` when the record moved on.
"""

from __future__ import annotations

import contextvars
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ....api import revisions
from .base import StoreBase

#: Who the change being made is for: set per request by the API (the client's user@host),
#: inherited by the operations the request starts; the control plane's own changes otherwise.
ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar(
    "modeldeck_actor", default="the control plane"
)
#: How many changes are kept per endpoint, deployment or cluster (the oldest go first).
CHANGES_KEPT = 100
#: How many changes are kept in all, deleted objects' included (the oldest go first).
CHANGES_KEPT_ALL = 20_000
#: What a change did: create | update | revert (an update undoing the previous one) | delete |
#: regenerate-keys (only keys changed) | attach | detach (a Kubernetes cluster) | rollout (a
#: progressive rollout's step of an endpoint's traffic, or its event: kind ``rollout``)
ACTIONS = (
    "create", "update", "revert", "delete", "regenerate-keys", "attach", "detach", "rollout"
)  # fmt: skip
#: The action an update made now is recorded as, when not the one its fields say (a rollout's
#: step: ``rollout``); set around the call like :data:`ACTOR`.
ACTION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modeldeck_action", default=None
)
#: fields whose values are secrets: recorded as "set <fingerprint>", never the value
KEY_FIELDS = frozenset({"primary_key", "secondary_key"})


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
    kind: str = "endpoint"
    target: str = ""
    action: str = "update"


class HistoryRecords(StoreBase):
    """The revision counter and the ``changes`` table."""

    #: called once the transaction that recorded a change has committed, so what a listener
    #: reads then (the watch route's long polls, ``controlplane/watch.py``; the audit's
    #: publisher, ``controlplane/audit.py``) has it
    record_listeners: tuple[Callable[[], None], ...] = ()
    _recorded_uncommitted = False

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
        action: str | None = None,
    ) -> int | None:
        """Record a change (nothing when nothing a user can write changed): its revision.

        ``before``/``after``: what a user sees of the object (None: it did not exist / no
        longer does), recorded as ``{path: [before, after]}``. ``action`` defaults to what
        the two say (create, delete, regenerate-keys, update; ``revert`` for an update that
        puts back exactly what the object's previous change changed). Status alone
        (:data:`~..revisions.STATUS_FIELDS`: an operation running, a replica failing, a
        restart restoring) takes no revision, as a Kubernetes object's ``generation``
        ignores its status: a read-modify-write is stale only when what the user could have
        written changed under it.
        """
        changed = revisions.diff(before, after)
        if before is None or after is None:  # a create or a delete: the fields with a value
            changed = {p: v for p, v in changed.items() if any(x not in (None, "") for x in v)}
        if not changed or all(p.split(".")[0] in revisions.STATUS_FIELDS for p in changed):
            return None
        if action is None and before is not None and after is not None:
            action = ACTION.get()
        if action is None:
            user = {p for p in changed if p.split(".")[0] not in revisions.STATUS_FIELDS}
            action = (
                "create" if before is None
                else "delete" if after is None
                else "regenerate-keys" if user <= KEY_FIELDS
                else "revert" if self._undoes_last(db, kind, target, changed)
                else "update"
            )  # fmt: skip
        rev = self._next_revision(db)
        db.execute(
            "INSERT INTO changes(kind, target, revision, actor, at, changed, action) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)",
            (
                kind,
                target,
                rev,
                ACTOR.get(),
                time.time(),
                json.dumps(changed, default=str),
                action,
            ),
        )
        db.execute(
            "DELETE FROM changes WHERE kind=? AND target=? AND revision NOT IN "
            "(SELECT revision FROM changes WHERE kind=? AND target=? "
            "ORDER BY revision DESC LIMIT ?)",
            (kind, target, kind, target, CHANGES_KEPT),
        )
        db.execute("DELETE FROM changes WHERE revision<=?", (rev - CHANGES_KEPT_ALL,))
        self._recorded_uncommitted = True
        if not self._depth:  # not inside tx(): nothing to wait for
            self._tx_ended(committed=True)
        return rev

    def _tx_ended(self, committed: bool) -> None:
        recorded, self._recorded_uncommitted = self._recorded_uncommitted, False
        if recorded and committed:
            for listener in self.record_listeners:
                listener()

    def revision(self) -> int:
        """The workspace-wide revision: the number of the last change recorded (0: none)."""
        row = self._one("SELECT value FROM settings WHERE key='revision'")
        return int(row["value"]) if row is not None else 0

    @staticmethod
    def _undoes_last(
        db: sqlite3.Connection, kind: str, target: str, changed: dict[str, list[Any]]
    ) -> bool:
        """Whether ``changed`` is the object's last recorded change, backwards."""
        row = db.execute(
            "SELECT changed, action FROM changes WHERE kind=? AND target=? "
            "ORDER BY revision DESC LIMIT 1",
            (kind, target),
        ).fetchone()
        if row is None or row["action"] not in ("update", "revert", "rollout"):  # a step too
            return False

        def user(change: dict[str, list[Any]]) -> dict[str, list[Any]]:
            return {
                p: v for p, v in change.items() if p.split(".")[0] not in revisions.STATUS_FIELDS
            }

        mine = user(changed)
        return bool(mine) and mine == {
            p: [b, a] for p, (a, b) in user(json.loads(row["changed"])).items()
        }

    @staticmethod
    def _change(r: sqlite3.Row) -> ChangeRow:
        return ChangeRow(
            revision=int(r["revision"]),
            actor=r["actor"],
            at=r["at"],
            changed=json.loads(r["changed"]),
            kind=r["kind"],
            target=r["target"],
            action=r["action"],
        )

    def history(
        self, endpoint: str | None = None, limit: int = CHANGES_KEPT, after: int = 0
    ) -> list[ChangeRow]:
        """The last ``limit`` changes (with a revision above ``after``) of an endpoint, its
        deployments (deleted ones included) and its rollouts' events, or of the whole
        workspace (clusters too) when ``endpoint`` is None; oldest first."""
        if endpoint is None:
            rows = self._all(
                "SELECT * FROM changes WHERE revision>? ORDER BY revision DESC LIMIT ?",
                after,
                limit,
            )
        else:
            rows = self._all(
                "SELECT * FROM changes WHERE revision>? AND "
                "((kind IN ('endpoint', 'rollout') AND target=?) OR "
                "(kind='deployment' AND substr(target, 1, ?)=?)) "
                "ORDER BY revision DESC LIMIT ?",
                after,
                endpoint,
                len(endpoint) + 1,
                endpoint + "/",
                limit,
            )
        return [self._change(r) for r in reversed(rows)]

    def changes(self, kind: str, target: str, after: int = 0) -> list[ChangeRow]:
        """The recorded changes of ``kind`` (endpoint | deployment) ``target`` (``ep`` or
        ``ep/dep``) with a revision above ``after``, oldest first."""
        rows = self._all(
            "SELECT * FROM changes WHERE kind=? AND target=? AND revision>? ORDER BY revision",
            kind,
            target,
            after,
        )
        return [self._change(r) for r in rows]

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
