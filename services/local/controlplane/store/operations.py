"""Operation records: what a long-running change did, kept for ``operation show``."""

from __future__ import annotations

import json
import sqlite3
import time

from ....api.domain import Operation, OperationStatus
from .base import StoreBase


class OperationRecords(StoreBase):
    """The ``operations`` table."""

    def save_operation(self, op: Operation) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO operations(id, kind, target, status, progress, message, error, "
                "started_at, finished_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET status=excluded.status, "
                "progress=excluded.progress, message=excluded.message, error=excluded.error, "
                "finished_at=excluded.finished_at",
                (
                    op.id,
                    op.kind,
                    op.target,
                    op.status.value,
                    op.progress,
                    op.message,
                    None if op.error is None else json.dumps(op.error),
                    op.started_at,
                    op.finished_at,
                ),
            )

    @staticmethod
    def _operation(row: sqlite3.Row) -> Operation:
        return Operation(
            id=row["id"],
            kind=row["kind"],
            target=row["target"],
            status=OperationStatus.parse(row["status"]),  # type: ignore[arg-type]
            progress=row["progress"],
            message=row["message"],
            error=None if row["error"] is None else json.loads(row["error"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    def operation(self, op_id: str) -> Operation | None:
        row = self._one("SELECT * FROM operations WHERE id=?", op_id)
        return None if row is None else self._operation(row)

    def operations(self, limit: int = 200) -> list[Operation]:
        rows = self._all("SELECT * FROM operations ORDER BY started_at DESC LIMIT ?", limit)
        return [self._operation(r) for r in rows]

    def fail_interrupted_operations(self) -> int:
        """Operations still Running when the daemon stopped: it will never finish them."""
        err = json.dumps(
            {
                "code": "BackendError",
                "message": "interrupted: the control plane stopped while this operation ran",
                "fix": "check the object's state and repeat the command if needed",
            }
        )
        with self.tx() as db:
            cur = db.execute(
                "UPDATE operations SET status=?, error=?, finished_at=? WHERE status=?",
                (OperationStatus.FAILED.value, err, time.time(), OperationStatus.RUNNING.value),
            )
            db.execute(
                "DELETE FROM operations WHERE id NOT IN "
                "(SELECT id FROM operations ORDER BY started_at DESC LIMIT 1000)"
            )
            return cur.rowcount
