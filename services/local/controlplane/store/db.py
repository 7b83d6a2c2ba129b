"""The local workspace's records: one SQLite file (WAL) owned by the control plane.

``workspace.db`` lives in the data dir (0700) with mode 0600: the endpoints table
holds keys and token secrets. Every logical change is one transaction, so a
traffic update or a key rotation is all-or-nothing.

:class:`Store` is the one object the control plane holds; its rooms are the modules
beside this one: :mod:`.schema` (tables, migrations), :mod:`.history` (revisions and
changes), :mod:`.catalog` (settings, clusters, models, environments), :mod:`.endpoints`,
:mod:`.deployments`, :mod:`.operations` and :mod:`.rollouts`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .catalog import CatalogRecords
from .deployments import DeploymentRecords
from .operations import OperationRecords
from .rollouts import RolloutRecords
from .schema import SCHEMA, SCHEMA_VERSION, TO_2, TO_4, TO_5, TO_7, TO_8


class Store(DeploymentRecords, CatalogRecords, OperationRecords, RolloutRecords):
    """Synchronous access to ``workspace.db``; the daemon is its only user."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        self._depth = 0
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise
        self._secure()

    def _secure(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                os.chmod(p, 0o600)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            from ....api.errors import BackendError

            raise BackendError(
                f"{self.path} has schema version {version}, newer than this modeldeck "
                f"({SCHEMA_VERSION})",
                fix="upgrade modeldeck, or point MODELDECK_HOME elsewhere",
            )
        if version < SCHEMA_VERSION:
            with self.tx() as db:
                if 0 < version < 2:
                    for stmt in TO_2:
                        db.execute(stmt)
                columns = {r[1] for r in db.execute("PRAGMA table_info(models)").fetchall()}
                if 0 < version < 4 and "type" not in columns:
                    for stmt in TO_4:
                        db.execute(stmt)
                if 0 < version < 8 and "archived" not in columns:
                    for stmt in TO_8:
                        db.execute(stmt)
                columns = {r[1] for r in db.execute("PRAGMA table_info(endpoints)").fetchall()}
                if 0 < version < 7 and columns and "local" not in columns:
                    for stmt in TO_7:
                        db.execute(stmt)
                columns = {r[1] for r in db.execute("PRAGMA table_info(changes)").fetchall()}
                if 0 < version < 5 and columns and "action" not in columns:
                    for stmt in TO_5:
                        db.execute(stmt)
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                if 0 < version < 2:  # every record a revision of its own
                    for table, key in (("endpoints", "name"), ("deployments", "endpoint, name")):
                        for row in db.execute(f"SELECT {key} FROM {table}").fetchall():
                            where = " AND ".join(f"{k.strip()}=?" for k in key.split(","))
                            db.execute(
                                f"UPDATE {table} SET revision=? WHERE {where}",
                                (self._next_revision(db), *tuple(row)),
                            )
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()
