"""Rollout records (issue 14): each progressive rollout's state (``api.rollouts.Rollout`` as
JSON), its revision from the workspace-wide counter, and the events it notified as changes
of kind ``rollout`` in the audit history.

A save is a compare-and-set on the revision the saver read (the runner's step against an
operator's pause from the API): :class:`~.history.StaleRevision` when the record moved on.
A rollout's revision moves only when what an operator decides on moves (its state, step,
weight, traffic maps, spec, driver), never on a save of its progress alone
(:data:`PROGRESS_FIELDS`: the check's figures so far, about once a second), as an endpoint's
status takes no revision (``history._record``): an operator's pause carrying the revision
read a while ago is taken while only the figures moved, and refused once the step did. The
compare-and-set stays sound: a progress save never changes what a decision changed, and a
decision's save still needs the revision it was made on (a progress save on a record an
operator paused is refused). Each save still takes the workspace counter's next number, so
the dashboards watching it see the figures come in.
An endpoint keeps its last :data:`ROLLOUTS_KEPT` rollouts (an active one always).

A record's ``endpoint`` column is its **key**: a local endpoint's name, or, for a rollout
the daemon drives on an Azure ML workspace (``controlplane/cloudrollouts.py``), the
endpoint's ARM id after :data:`CLOUD_PREFIX` (a local name has no ``:`` nor ``/``), so the
two never meet: :meth:`RolloutRecords.rollouts` lists the local ones unless asked for a
prefix.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

from ....api.domain import from_dict, to_dict
from ....api.rollouts import Rollout, RolloutState
from .history import HistoryRecords, StaleRevision

#: How many rollouts an endpoint keeps (the oldest finished ones go first).
ROLLOUTS_KEPT = 20
_ACTIVE = (RolloutState.RUNNING.value, RolloutState.PAUSED.value)
#: a rollout's fields that a save of its progress changes: saved without a new revision of
#: the rollout (module doc)
PROGRESS_FIELDS = frozenset({"message", "last_check", "updated_at", "step_started_at"})
#: the keys of the rollouts driven on Azure ML workspaces start with it
CLOUD_PREFIX = "azureml:"


def _decisions(record: dict[str, Any]) -> dict[str, Any]:
    """What an operator decides on in a rollout's record: all but :data:`PROGRESS_FIELDS`."""
    return {k: v for k, v in record.items() if k not in PROGRESS_FIELDS}


class RolloutRecords(HistoryRecords):
    """The ``rollouts`` table."""

    @staticmethod
    def _rollout(row: sqlite3.Row) -> Rollout:
        return replace(from_dict(Rollout, json.loads(row["record"])), revision=str(row["revision"]))

    def save_rollout(self, rollout: Rollout, key: str | None = None) -> Rollout:
        """Insert or update ``rollout`` under ``key`` (default: its endpoint's name), on the
        condition that its record is still at ``rollout.revision`` (empty: a new rollout, no
        record yet); the record as saved. Dashboards watching the workspace's revision are
        woken (a step, a check)."""
        key = key or rollout.spec.endpoint
        with self.tx() as db:
            row = db.execute(
                "SELECT revision, record FROM rollouts WHERE id=?", (rollout.id,)
            ).fetchone()
            now = 0 if row is None else int(row["revision"])
            sent = int(rollout.revision) if rollout.revision else 0
            if sent != now:
                raise StaleRevision("rollout", rollout.spec.endpoint, sent, now)
            fields = to_dict(replace(rollout, revision=""))
            counter = self._next_revision(db)  # wakes the watchers, progress or not
            decided = row is None or _decisions(json.loads(row["record"])) != _decisions(fields)
            saved = replace(rollout, revision=str(counter if decided else now))
            record = json.dumps(fields)
            db.execute(
                "INSERT INTO rollouts(id, endpoint, state, record, revision, started_at, "
                "updated_at) VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "state=excluded.state, record=excluded.record, revision=excluded.revision, "
                "updated_at=excluded.updated_at",
                (
                    saved.id,
                    key,
                    saved.state.value,
                    record,
                    int(saved.revision),
                    saved.started_at,
                    saved.updated_at,
                ),
            )
            db.execute(
                "DELETE FROM rollouts WHERE endpoint=? AND state NOT IN (?, ?) AND id NOT IN "
                "(SELECT id FROM rollouts WHERE endpoint=? ORDER BY started_at DESC LIMIT ?)",
                (key, *_ACTIVE, key, ROLLOUTS_KEPT),
            )
            self._recorded_uncommitted = True  # the watchers hear of it once committed
        return saved

    def rollout(self, endpoint: str) -> Rollout | None:
        """The endpoint's (the key's) rollout in progress, else its last one."""
        row = self._one(
            "SELECT * FROM rollouts WHERE endpoint=? "
            "ORDER BY state IN (?, ?) DESC, started_at DESC LIMIT 1",
            endpoint,
            *_ACTIVE,
        )
        return None if row is None else self._rollout(row)

    def rollouts(self, active: bool = False, under: str = "") -> list[Rollout]:
        """Each local endpoint's current or last rollout (only those in progress with
        ``active``), by endpoint; with ``under``, each key's that starts with it instead
        (:data:`CLOUD_PREFIX`: every Azure ML one)."""
        prefix = under or CLOUD_PREFIX
        rows = self._all(
            "SELECT DISTINCT endpoint FROM rollouts WHERE (substr(endpoint, 1, ?) = ?) = ? "
            "ORDER BY endpoint",
            len(prefix),
            prefix,
            bool(under),
        )
        found = [self.rollout(r["endpoint"]) for r in rows]
        return [r for r in found if r is not None and (r.state.active or not active)]

    def rollout_history(self, endpoint: str) -> list[Rollout]:
        """The rollouts an endpoint keeps, newest first."""
        rows = self._all(
            "SELECT * FROM rollouts WHERE endpoint=? ORDER BY started_at DESC", endpoint
        )
        return [self._rollout(r) for r in rows]

    def record_rollout_event(
        self, endpoint: str, before: dict[str, Any] | None, after: dict[str, Any]
    ) -> int | None:
        """A rollout's event (started, a step, the verdict) in the endpoint's audit history:
        a change of kind ``rollout``, action ``rollout``, from the view last notified."""
        with self.tx() as db:
            return self._record(db, "rollout", endpoint, before, after, action="rollout")
