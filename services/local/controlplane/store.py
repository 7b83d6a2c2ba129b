"""The local workspace's records: one SQLite file (WAL) owned by the control plane.

``workspace.db`` lives in the data dir (0700) with mode 0600: the endpoints table
holds keys and token secrets. Every logical change is one transaction, so a
traffic update or a key rotation is all-or-nothing.

Revisions: every change of an endpoint or a deployment takes the next number of one
workspace-wide counter (so a name deleted and created again never reuses a revision) and
records who made it (:data:`ACTOR`) and which fields changed in ``changes`` (bounded per
object; secrets never). A write given ``if_revision`` is a compare-and-set inside its
transaction: :class:`StaleRevision` when the record moved on.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...api import revisions
from ...api.domain import (
    ClusterSpec,
    DeploymentSpec,
    Environment,
    Model,
    Operation,
    OperationStatus,
    ProvisioningState,
    from_dict,
    to_dict,
)

SCHEMA_VERSION = 4

#: Who the change being made is for: set per request by the API (the client's user@host),
#: inherited by the operations the request starts; the control plane's own changes otherwise.
ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar(
    "modeldeck_actor", default="the control plane"
)
#: How many changes are kept per endpoint or deployment (the oldest go first).
CHANGES_KEPT = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    original_path TEXT,
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    type TEXT NOT NULL DEFAULT 'custom_model',
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    cluster TEXT NOT NULL REFERENCES clusters(name),
    auth_mode TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    traffic TEXT NOT NULL DEFAULT '{}',
    mirror_traffic TEXT NOT NULL DEFAULT '{}',
    control TEXT,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    token_secret TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deployments (
    endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    code_dir TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint, name)
);
CREATE TABLE IF NOT EXISTS changes (
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    revision INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at REAL NOT NULL,
    changed TEXT NOT NULL,
    PRIMARY KEY (kind, target, revision)
);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS environments (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    spec TEXT NOT NULL,
    key TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS deployment_envs (
    endpoint TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    python TEXT NOT NULL,
    PRIMARY KEY (endpoint, name)
);
"""
#: schema 3 -> 4: a model's type (custom_model, mlflow_model)
_TO_4 = ("ALTER TABLE models ADD COLUMN type TEXT NOT NULL DEFAULT 'custom_model'",)

#: schema 2 -> 3: environments (registered ones, and the built one each deployment runs in);
#: both tables are in _SCHEMA, created by the migration as they are on a new store

#: schema 1 -> 2: revisions on endpoints and deployments (the changes table is in _SCHEMA)
_TO_2 = (
    "ALTER TABLE endpoints ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE deployments ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
)


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


@dataclass(frozen=True)
class ClusterRow:
    spec: ClusterSpec
    state: ProvisioningState
    error: str | None
    created_at: float


@dataclass(frozen=True)
class EndpointRow:
    name: str
    cluster: str
    auth_mode: str
    description: str
    tags: dict[str, str]
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    control: str | None
    primary_key: str
    secondary_key: str
    token_secret: str
    state: ProvisioningState
    error: str | None
    created_at: float
    revision: int = 0


@dataclass(frozen=True)
class DeploymentRow:
    endpoint: str
    name: str
    spec: DeploymentSpec
    model_name: str
    model_version: int
    code_dir: str
    state: ProvisioningState
    error: str | None
    created_at: float
    updated_at: float
    revision: int = 0


class Store:
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
            from ...api.errors import BackendError

            raise BackendError(
                f"{self.path} has schema version {version}, newer than this modeldeck "
                f"({SCHEMA_VERSION})",
                fix="upgrade modeldeck, or point MODELDECK_HOME elsewhere",
            )
        if version < SCHEMA_VERSION:
            with self.tx() as db:
                if 0 < version < 2:
                    for stmt in _TO_2:
                        db.execute(stmt)
                columns = {r[1] for r in db.execute("PRAGMA table_info(models)").fetchall()}
                if 0 < version < 4 and "type" not in columns:
                    for stmt in _TO_4:
                        db.execute(stmt)
                for stmt in _SCHEMA.split(";"):
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

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: everything inside commits together or not at all.

        Nested calls join the outer transaction, so a logical change made of several
        store calls is written with ``with store.tx(): ...`` around them.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self._db
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    # -- revisions -------------------------------------------------------------------------
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

    @staticmethod
    def _secret_mark(value: str) -> str:
        # a change of a key shows as a change, never with the key in it
        return "set " + hashlib.sha256(value.encode()).hexdigest()[:6] if value else ""

    @classmethod
    def endpoint_view(cls, ep: EndpointRow | None) -> dict[str, Any] | None:
        """What a user sees of an endpoint, as a change is recorded against it."""
        if ep is None:
            return None
        return {
            "description": ep.description,
            "tags": dict(ep.tags),
            "traffic": dict(ep.traffic),
            "mirror_traffic": dict(ep.mirror_traffic),
            "control": ep.control,
            "primary_key": cls._secret_mark(ep.primary_key),
            "secondary_key": cls._secret_mark(ep.secondary_key),
            "provisioning_state": ep.state.value,
            "error": ep.error,
        }

    @staticmethod
    def deployment_view(
        d: DeploymentRow | None, spec: DeploymentSpec | None = None
    ) -> dict[str, Any] | None:
        if d is None:
            return None
        out = to_dict(spec or d.spec)
        for key in ("name", "endpoint_name"):
            out.pop(key, None)
        out["provisioning_state"] = d.state.value
        out["error"] = d.error
        return out

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self._db.execute(sql, args).fetchall()

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

    def insert_cluster(self, spec: ClusterSpec, state: ProvisioningState) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO clusters(name, spec, state, created_at) VALUES(?, ?, ?, ?)",
                (spec.name, json.dumps(to_dict(spec)), state.value, time.time()),
            )

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
                db.execute(f"UPDATE clusters SET {', '.join(sets)} WHERE name=?", (*args, name))

    def delete_cluster(self, name: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM clusters WHERE name=?", (name,))

    @staticmethod
    def _sets(**values: Any) -> tuple[list[str], list[Any]]:
        sets: list[str] = []
        args: list[Any] = []
        for key, value in values.items():
            if value is not None:
                sets.append(f"{key}=?")
                args.append(value)
        return sets, args

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
        )

    def models(self, name: str | None = None) -> list[Model]:
        if name is None:
            rows = self._all("SELECT * FROM models ORDER BY name, version")
        else:
            rows = self._all("SELECT * FROM models WHERE name=? ORDER BY version", name)
        return [self._model(r) for r in rows]

    def model(self, name: str, version: int | None = None) -> Model | None:
        if version is None:
            row = self._one("SELECT * FROM models WHERE name=? ORDER BY version DESC LIMIT 1", name)
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

    def set_deployment_env(self, endpoint: str, name: str, key: str | None, python: str) -> None:
        """The built environment a deployment runs in (None: modeldeck's own Python)."""
        with self.tx() as db:
            if key is None:
                db.execute(
                    "DELETE FROM deployment_envs WHERE endpoint=? AND name=?", (endpoint, name)
                )
            else:
                db.execute(
                    "INSERT INTO deployment_envs(endpoint, name, key, python) VALUES(?, ?, ?, ?) "
                    "ON CONFLICT(endpoint, name) DO UPDATE SET key=excluded.key, "
                    "python=excluded.python",
                    (endpoint, name, key, python),
                )

    def deployment_envs(self) -> dict[tuple[str, str], str]:
        """(endpoint, deployment) -> the key of the built environment it runs in."""
        rows = self._all(  # a deleted deployment (or endpoint) uses none
            "SELECT e.endpoint, e.name, e.key FROM deployment_envs e JOIN deployments d "
            "ON d.endpoint=e.endpoint AND d.name=e.name"
        )
        return {(r["endpoint"], r["name"]): r["key"] for r in rows}

    # -- endpoints -------------------------------------------------------------------------
    @staticmethod
    def _endpoint(row: sqlite3.Row) -> EndpointRow:
        return EndpointRow(
            name=row["name"],
            cluster=row["cluster"],
            auth_mode=row["auth_mode"],
            description=row["description"],
            tags=json.loads(row["tags"]),
            traffic=json.loads(row["traffic"]),
            mirror_traffic=json.loads(row["mirror_traffic"]),
            control=row["control"],
            primary_key=row["primary_key"],
            secondary_key=row["secondary_key"],
            token_secret=row["token_secret"],
            state=ProvisioningState.parse(row["state"]),  # type: ignore[arg-type]
            error=row["error"],
            created_at=row["created_at"],
            revision=int(row["revision"]),
        )

    def endpoints(self, cluster: str | None = None) -> list[EndpointRow]:
        if cluster is None:
            rows = self._all("SELECT * FROM endpoints ORDER BY name")
        else:
            rows = self._all("SELECT * FROM endpoints WHERE cluster=? ORDER BY name", cluster)
        return [self._endpoint(r) for r in rows]

    def endpoint(self, name: str) -> EndpointRow | None:
        row = self._one("SELECT * FROM endpoints WHERE name=?", name)
        return None if row is None else self._endpoint(row)

    def insert_endpoint(self, ep: EndpointRow) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO endpoints(name, cluster, auth_mode, description, tags, traffic, "
                "mirror_traffic, control, primary_key, secondary_key, token_secret, state, "
                "error, created_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ep.name,
                    ep.cluster,
                    ep.auth_mode,
                    ep.description,
                    json.dumps(ep.tags),
                    json.dumps(ep.traffic),
                    json.dumps(ep.mirror_traffic),
                    ep.control,
                    ep.primary_key,
                    ep.secondary_key,
                    ep.token_secret,
                    ep.state.value,
                    ep.error,
                    ep.created_at,
                ),
            )
            rev = self._record(db, "endpoint", ep.name, None, {"created": ep.name})
            self._set_revision(db, "endpoint", ep.name, rev or self._next_revision(db))

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

    def update_endpoint(
        self,
        name: str,
        *,
        traffic: dict[str, int] | None = None,
        mirror_traffic: dict[str, int] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        control: str | bool | None = False,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        state: ProvisioningState | None = None,
        error: str | bool | None = False,
        if_revision: int | None = None,
    ) -> int | None:
        """Change what is given, in one transaction; the new revision (None: no change).

        With ``if_revision``: only if the endpoint is still at that revision, else
        :class:`StaleRevision` and nothing changes.
        """
        sets, args = self._sets(
            traffic=None if traffic is None else json.dumps(traffic),
            mirror_traffic=None if mirror_traffic is None else json.dumps(mirror_traffic),
            description=description,
            tags=None if tags is None else json.dumps(tags),
            primary_key=primary_key,
            secondary_key=secondary_key,
            state=None if state is None else state.value,
        )
        if control is not False:
            sets.append("control=?")
            args.append(control)
        if error is not False:
            sets.append("error=?")
            args.append(error)
        with self.tx() as db:
            before = self.endpoint(name)
            if before is None:
                return None
            self._check("endpoint", name, before.revision, if_revision)
            if not sets:
                return None
            db.execute(f"UPDATE endpoints SET {', '.join(sets)} WHERE name=?", (*args, name))
            return self._endpoint_changed(db, before)

    def _endpoint_changed(self, db: sqlite3.Connection, before: EndpointRow) -> int | None:
        after = self.endpoint(before.name)
        rev = self._record(
            db, "endpoint", before.name, self.endpoint_view(before), self.endpoint_view(after)
        )
        if rev is not None:
            self._set_revision(db, "endpoint", before.name, rev)
        return rev

    def delete_endpoint(self, name: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM deployments WHERE endpoint=?", (name,))
            db.execute("DELETE FROM endpoints WHERE name=?", (name,))
            db.execute(
                "DELETE FROM changes WHERE (kind='endpoint' AND target=?) OR "
                "(kind='deployment' AND substr(target, 1, ?)=?)",
                (name, len(name) + 1, name + "/"),
            )

    # -- deployments -----------------------------------------------------------------------
    @staticmethod
    def _deployment(row: sqlite3.Row) -> DeploymentRow:
        return DeploymentRow(
            endpoint=row["endpoint"],
            name=row["name"],
            spec=from_dict(DeploymentSpec, json.loads(row["spec"])),
            model_name=row["model_name"],
            model_version=int(row["model_version"]),
            code_dir=row["code_dir"],
            state=ProvisioningState.parse(row["state"]),  # type: ignore[arg-type]
            error=row["error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            revision=int(row["revision"]),
        )

    def deployments(self, endpoint: str | None = None) -> list[DeploymentRow]:
        if endpoint is None:
            rows = self._all("SELECT * FROM deployments ORDER BY endpoint, created_at, name")
        else:
            rows = self._all(
                "SELECT * FROM deployments WHERE endpoint=? ORDER BY created_at, name", endpoint
            )
        return [self._deployment(r) for r in rows]

    def deployment(self, endpoint: str, name: str) -> DeploymentRow | None:
        row = self._one("SELECT * FROM deployments WHERE endpoint=? AND name=?", endpoint, name)
        return None if row is None else self._deployment(row)

    def models_in_use(self, name: str, version: int) -> list[str]:
        rows = self._all(
            "SELECT endpoint, name FROM deployments WHERE model_name=? AND model_version=?",
            name,
            version,
        )
        return [f"{r['endpoint']}/{r['name']}" for r in rows]

    def upsert_deployment(self, d: DeploymentRow) -> int | None:
        """Insert or replace a deployment's record; its new revision (None: no change)."""
        with self.tx() as db:
            before = self.deployment(d.endpoint, d.name)
            db.execute(
                "INSERT INTO deployments(endpoint, name, spec, model_name, model_version, "
                "code_dir, state, error, created_at, updated_at) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(endpoint, name) DO UPDATE SET spec=excluded.spec, "
                "model_name=excluded.model_name, model_version=excluded.model_version, "
                "code_dir=excluded.code_dir, state=excluded.state, error=excluded.error, "
                "updated_at=excluded.updated_at",
                (
                    d.endpoint,
                    d.name,
                    json.dumps(to_dict(d.spec)),
                    d.model_name,
                    d.model_version,
                    d.code_dir,
                    d.state.value,
                    d.error,
                    d.created_at,
                    d.updated_at,
                ),
            )
            target = f"{d.endpoint}/{d.name}"
            after = self.deployment(d.endpoint, d.name)
            if before is None:
                rev = self._record(db, "deployment", target, None, {"created": target})
            else:
                rev = self._record(
                    db, "deployment", target, self.deployment_view(before),
                    self.deployment_view(after),
                )  # fmt: skip
            if rev is not None:
                self._set_revision(db, "deployment", target, rev)
            return rev

    def set_deployment_state(
        self,
        endpoint: str,
        name: str,
        state: ProvisioningState,
        error: str | None = None,
        *,
        if_revision: int | None = None,
        spec_before: DeploymentSpec | None = None,
        spec_after: DeploymentSpec | None = None,
    ) -> int | None:
        """A deployment's state; its new revision (None: no change).

        ``spec_before``/``spec_after``: the spec change this state change stands for (an
        update being rolled out, or rolled back), recorded in the history; the record's
        spec changes only with :meth:`upsert_deployment`. ``if_revision`` as in
        :meth:`update_endpoint`.
        """
        with self.tx() as db:
            before = self.deployment(endpoint, name)
            if before is None:
                return None
            target = f"{endpoint}/{name}"
            self._check("deployment", target, before.revision, if_revision)
            db.execute(
                "UPDATE deployments SET state=?, error=?, updated_at=? WHERE endpoint=? AND name=?",
                (state.value, error, time.time(), endpoint, name),
            )
            after = self.deployment(endpoint, name)
            rev = self._record(
                db,
                "deployment",
                target,
                self.deployment_view(before, spec_before),
                self.deployment_view(after, spec_after),
            )
            if rev is not None:
                self._set_revision(db, "deployment", target, rev)
            return rev

    def remove_deployment(self, endpoint: str, name: str, ep: EndpointRow) -> None:
        """Delete a deployment and store its endpoint's new maps, in one transaction."""
        with self.tx() as db:
            before = self.endpoint(endpoint)
            db.execute("DELETE FROM deployments WHERE endpoint=? AND name=?", (endpoint, name))
            db.execute("DELETE FROM deployment_envs WHERE endpoint=? AND name=?", (endpoint, name))
            db.execute(
                "DELETE FROM changes WHERE kind='deployment' AND target=?", (f"{endpoint}/{name}",)
            )
            db.execute(
                "UPDATE endpoints SET traffic=?, mirror_traffic=?, control=? WHERE name=?",
                (json.dumps(ep.traffic), json.dumps(ep.mirror_traffic), ep.control, endpoint),
            )
            if before is not None:
                self._endpoint_changed(db, before)

    def delete_deployment(self, endpoint: str, name: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM deployments WHERE endpoint=? AND name=?", (endpoint, name))
            db.execute("DELETE FROM deployment_envs WHERE endpoint=? AND name=?", (endpoint, name))
            db.execute(
                "DELETE FROM changes WHERE kind='deployment' AND target=?", (f"{endpoint}/{name}",)
            )

    # -- operations ------------------------------------------------------------------------
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
