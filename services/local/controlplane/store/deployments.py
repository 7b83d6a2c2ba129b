"""Deployment records and the built environment each runs in; removing a deployment also
stores its endpoint's new traffic maps (one transaction)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from ....api.domain import DeploymentSpec, ProvisioningState, from_dict, to_dict
from .endpoints import EndpointRecords, EndpointRow


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


class DeploymentRecords(EndpointRecords):
    """The ``deployments`` and ``deployment_envs`` tables."""

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

    def upsert_deployment(
        self, d: DeploymentRow, spec_before: DeploymentSpec | None = None
    ) -> int | None:
        """Insert or replace a deployment's record; its new revision (None: no change).

        ``spec_before``: the spec the history already shows (an update recorded when it
        was marked Updating, :meth:`set_deployment_state`), so its rollout is not recorded
        a second time."""
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
            rev = self._record(
                db, "deployment", target, self.deployment_view(before, spec_before),
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
            self.delete_deployment(endpoint, name)
            db.execute(
                "UPDATE endpoints SET traffic=?, mirror_traffic=?, control=? WHERE name=?",
                (json.dumps(ep.traffic), json.dumps(ep.mirror_traffic), ep.control, endpoint),
            )
            if before is not None:
                self._endpoint_changed(db, before)

    def delete_deployment(self, endpoint: str, name: str) -> None:
        """Delete a deployment; the delete is recorded (its history is kept)."""
        with self.tx() as db:
            before = self.deployment(endpoint, name)
            db.execute("DELETE FROM deployments WHERE endpoint=? AND name=?", (endpoint, name))
            db.execute("DELETE FROM deployment_envs WHERE endpoint=? AND name=?", (endpoint, name))
            if before is not None:
                view = self.deployment_view(before)
                self._record(db, "deployment", f"{endpoint}/{name}", view, None)

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
