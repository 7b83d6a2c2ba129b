"""The records a deployment refers to: settings, clusters, models and environments."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from ....api.domain import ClusterSpec, Environment, Model, ProvisioningState, from_dict, to_dict
from .history import HistoryRecords


@dataclass(frozen=True)
class ClusterRow:
    spec: ClusterSpec
    state: ProvisioningState
    error: str | None
    created_at: float


class CatalogRecords(HistoryRecords):
    """Settings, clusters, models and environments; a cluster's create, attach, spec
    changes, delete and detach are recorded in the history."""

    # -- settings --------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        row = self._one("SELECT value FROM settings WHERE key=?", key)
        return None if row is None else str(row["value"])

    def set_setting(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO settings(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    # -- clusters --------------------------------------------------------------------------
    @staticmethod
    def _cluster(row: sqlite3.Row) -> ClusterRow:
        return ClusterRow(
            spec=from_dict(ClusterSpec, json.loads(row["spec"])),
            state=ProvisioningState.parse(row["state"]),  # type: ignore[arg-type]
            error=row["error"],
            created_at=row["created_at"],
        )

    def clusters(self) -> list[ClusterRow]:
        return [self._cluster(r) for r in self._all("SELECT * FROM clusters ORDER BY name")]

    def cluster(self, name: str) -> ClusterRow | None:
        row = self._one("SELECT * FROM clusters WHERE name=?", name)
        return None if row is None else self._cluster(row)

    @staticmethod
    def _cluster_change(spec: ClusterSpec, gone: bool = False) -> tuple[dict[str, Any], str]:
        """What the history shows of a cluster, and the action its create (or delete) is."""
        view = to_dict(spec)
        view.pop("name", None)
        attached = spec.driver.value == "kubernetes"
        if gone:
            return view, "detach" if attached else "delete"
        return view, "attach" if attached else "create"

    def insert_cluster(self, spec: ClusterSpec, state: ProvisioningState) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO clusters(name, spec, state, created_at) VALUES(?, ?, ?, ?)",
                (spec.name, json.dumps(to_dict(spec)), state.value, time.time()),
            )
            view, action = self._cluster_change(spec)
            self._record(db, "cluster", spec.name, None, view, action)

    def update_cluster(
        self,
        name: str,
        *,
        spec: ClusterSpec | None = None,
        state: ProvisioningState | None = None,
        error: str | bool | None = False,
    ) -> None:
        sets, args = self._sets(
            spec=None if spec is None else json.dumps(to_dict(spec)),
            state=None if state is None else state.value,
        )
        if error is not False:
            sets.append("error=?")
            args.append(error)
        if sets:
            with self.tx() as db:
                before = self.cluster(name)
                db.execute(f"UPDATE clusters SET {', '.join(sets)} WHERE name=?", (*args, name))
                if before is not None and spec is not None:
                    old, _ = self._cluster_change(before.spec)
                    self._record(db, "cluster", name, old, self._cluster_change(spec)[0])

    def delete_cluster(self, name: str) -> None:
        with self.tx() as db:
            before = self.cluster(name)
            db.execute("DELETE FROM clusters WHERE name=?", (name,))
            if before is not None:
                view, action = self._cluster_change(before.spec, gone=True)
                self._record(db, "cluster", name, view, None, action)

    # -- models ----------------------------------------------------------------------------
    @staticmethod
    def _model(row: sqlite3.Row) -> Model:
        return Model(
            name=row["name"],
            version=int(row["version"]),
            path=row["path"],
            description=row["description"],
            tags=json.loads(row["tags"]),
            original_path=row["original_path"],
            created_at=row["created_at"],
            type=row["type"],
            archived=bool(row["archived"]),
        )

    def models(self, name: str | None = None) -> list[Model]:
        if name is None:
            rows = self._all("SELECT * FROM models ORDER BY name, version")
        else:
            rows = self._all("SELECT * FROM models WHERE name=? ORDER BY version", name)
        return [self._model(r) for r in rows]

    def model(self, name: str, version: int | None = None) -> Model | None:
        if version is None:  # the latest not archived, as az ml's
            row = self._one(
                "SELECT * FROM models WHERE name=? AND archived=0 ORDER BY version DESC LIMIT 1",
                name,
            )
        else:
            row = self._one("SELECT * FROM models WHERE name=? AND version=?", name, version)
        return None if row is None else self._model(row)

    def next_model_version(self, name: str) -> int:
        row = self._one("SELECT MAX(version) AS v FROM models WHERE name=?", name)
        return int(row["v"] or 0) + 1 if row is not None else 1

    def insert_model(self, model: Model) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO models(name, version, path, original_path, description, tags, "
                "created_at, type) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model.name,
                    model.version,
                    model.path,
                    model.original_path,
                    model.description,
                    json.dumps(model.tags),
                    model.created_at or time.time(),
                    model.type,
                ),
            )

    def archive_model(self, name: str, version: int, archived: bool = True) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE models SET archived=? WHERE name=? AND version=?",
                (1 if archived else 0, name, version),
            )

    def delete_model(self, name: str, version: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM models WHERE name=? AND version=?", (name, version))

    # -- environments ----------------------------------------------------------------------
    @staticmethod
    def _environment(row: sqlite3.Row) -> Environment:
        data = json.loads(row["spec"])
        return from_dict(
            Environment,
            {
                **data,
                "name": row["name"],
                "version": row["version"],
                "key": row["key"],
                "stage": "Archived" if row["archived"] else "Development",
                "created_at": row["created_at"],
            },
        )

    def environments(self, name: str | None = None) -> list[Environment]:
        order = "ORDER BY name, CAST(version AS INTEGER), version"
        if name is None:
            rows = self._all(f"SELECT * FROM environments {order}")
        else:
            rows = self._all(f"SELECT * FROM environments WHERE name=? {order}", name)
        return [self._environment(r) for r in rows]

    def environment(self, name: str, version: str | None = None) -> Environment | None:
        """One version; ``None``: the latest that is not archived (as ``@latest``)."""
        if version is None:
            row = self._one(
                "SELECT * FROM environments WHERE name=? AND archived=0 "
                "ORDER BY created_at DESC LIMIT 1",
                name,
            )
        else:
            row = self._one(
                "SELECT * FROM environments WHERE name=? AND version=?", name, str(version)
            )
        return None if row is None else self._environment(row)

    def next_environment_version(self, name: str) -> str:
        rows = self._all("SELECT version FROM environments WHERE name=?", name)
        numbers = [int(r["version"]) for r in rows if str(r["version"]).isdigit()]
        return str(max(numbers, default=0) + 1)

    def insert_environment(self, env: Environment) -> None:
        spec = {
            k: v
            for k, v in to_dict(env).items()
            if k not in ("name", "version", "key", "stage", "created_at", "size_bytes", "users")
        }
        with self.tx() as db:
            db.execute(
                "INSERT INTO environments(name, version, spec, key, archived, created_at) "
                "VALUES(?, ?, ?, ?, 0, ?)",
                (env.name, env.version, json.dumps(spec), env.key, env.created_at or time.time()),
            )

    def archive_environment(self, name: str, version: str, archived: bool = True) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE environments SET archived=? WHERE name=? AND version=?",
                (1 if archived else 0, name, str(version)),
            )
