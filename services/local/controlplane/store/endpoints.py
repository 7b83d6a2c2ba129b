"""Endpoint records: keys, traffic maps and state, each change a revision."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ....api.domain import ProvisioningState
from .history import HistoryRecords


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
    #: made with az ml's --local: its owner's own requests need no key (the gateway checks
    #: the connection's uid); anyone else's still do
    local: bool = False


class EndpointRecords(HistoryRecords):
    """The ``endpoints`` table."""

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
            "compute": ep.cluster,
            "auth_mode": ep.auth_mode,
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
            local=bool(row["local"]),
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
                "error, created_at, local) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    int(ep.local),
                ),
            )
            rev = self._record(db, "endpoint", ep.name, None, self.endpoint_view(ep))
            self._set_revision(db, "endpoint", ep.name, rev or self._next_revision(db))

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
        """Delete an endpoint and its deployments; the delete is recorded (its history is
        kept)."""
        with self.tx() as db:
            before = self.endpoint(name)
            db.execute("DELETE FROM deployments WHERE endpoint=?", (name,))
            db.execute("DELETE FROM endpoints WHERE name=?", (name,))
            if before is not None:
                self._record(db, "endpoint", name, self.endpoint_view(before), None)
