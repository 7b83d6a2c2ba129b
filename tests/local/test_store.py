"""The SQLite records of the local workspace: private files, WAL, schema version, transactions."""

from __future__ import annotations

import sqlite3
import stat
import time
from dataclasses import replace
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    Environment,
    Model,
    ProvisioningState,
)
from modeldeck.services.api.errors import BackendError
from modeldeck.services.local.controlplane.store.db import Store
from modeldeck.services.local.controlplane.store.deployments import DeploymentRow
from modeldeck.services.local.controlplane.store.endpoints import EndpointRow
from modeldeck.services.local.controlplane.store.history import ACTOR, StaleRevision
from modeldeck.services.local.controlplane.store.schema import SCHEMA_VERSION


def _endpoint(name: str) -> EndpointRow:
    return EndpointRow(
        name=name,
        cluster="myaks",
        auth_mode="key",
        description="",
        tags={},
        traffic={},
        mirror_traffic={},
        control=None,
        primary_key="p" * 43,
        secondary_key="s" * 43,
        token_secret="t" * 43,
        state=ProvisioningState.SUCCEEDED,
        error=None,
        created_at=time.time(),
    )


def test_files_are_private_and_the_journal_is_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "data" / "workspace.db")
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    for path in (tmp_path / "data").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    db = sqlite3.connect(tmp_path / "data" / "workspace.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    store.close()


def test_foreign_keys_hold(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "workspace.db")
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_endpoint(_endpoint("orphan"))  # no cluster 'myaks'
    assert store.endpoints() == []
    store.close()


def test_a_failed_transaction_changes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "workspace.db")
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    store.insert_endpoint(_endpoint("ep-one"))
    with pytest.raises(RuntimeError), store.tx() as db:
        db.execute("UPDATE endpoints SET traffic='{\"blue\": 100}' WHERE name='ep-one'")
        db.execute("UPDATE endpoints SET primary_key='changed' WHERE name='ep-one'")
        raise RuntimeError("half way")
    row = store.endpoint("ep-one")
    assert row is not None and row.traffic == {} and row.primary_key == "p" * 43
    store.close()
    # the records survive a reopen (what a daemon restart does)
    again = Store(tmp_path / "workspace.db")
    assert [e.name for e in again.endpoints()] == ["ep-one"]
    again.close()


def test_a_newer_schema_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(tmp_path / "workspace.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(BackendError) as err:
        Store(tmp_path / "workspace.db")
    assert "newer than this modeldeck" in err.value.message


def test_store_calls_inside_one_transaction_commit_together(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "workspace.db")
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    store.insert_endpoint(_endpoint("ep-two"))
    with pytest.raises(RuntimeError), store.tx():
        store.update_endpoint("ep-two", traffic={"blue": 100})
        store.update_endpoint("ep-two", control="blue")
        raise RuntimeError("the second half failed")
    row = store.endpoint("ep-two")
    assert row is not None and (row.traffic, row.control) == ({}, None)
    with store.tx():
        store.update_endpoint("ep-two", traffic={"blue": 100})
        store.update_endpoint("ep-two", control="blue")
    row = store.endpoint("ep-two")
    assert row is not None and (row.traffic, row.control) == ({"blue": 100}, "blue")
    store.close()


def test_record_listeners_hear_a_change_once_it_is_committed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A listener (the watch route's long polls, the audit publisher) reads the change from
    elsewhere when it is told: it is committed by then; a change rolled back is not told."""
    store = Store(tmp_path / "workspace.db")
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    store.insert_endpoint(_endpoint("ep"))
    other = sqlite3.connect(str(tmp_path / "workspace.db"))
    heard: list[int] = []

    def listener() -> None:
        (value,) = other.execute("SELECT value FROM settings WHERE key='revision'").fetchone()
        heard.append(int(value))

    store.record_listeners = (listener,)
    with store.tx():
        rev = store.update_endpoint("ep", traffic={"blue": 100})
        store.update_endpoint("ep", control="blue")
        assert heard == []  # not while the transaction is open
    assert heard == [store.revision()] and store.revision() > (rev or 0)
    with pytest.raises(RuntimeError), store.tx():
        assert store.update_endpoint("ep", description="rolled back") is not None
        raise RuntimeError("rolled back")
    store.update_endpoint("ep", description="now")  # its own transaction
    assert heard == [rev + 1, store.revision()]  # type: ignore[operator]
    other.close()
    store.close()


def _deployment_row(endpoint: str, name: str) -> DeploymentRow:
    spec = DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model="azureml:m:1",
        code_configuration=CodeConfiguration(code="/c", scoring_script="score.py"),
    )
    now = time.time()
    return DeploymentRow(
        endpoint=endpoint,
        name=name,
        spec=spec,
        model_name="m",
        model_version=1,
        code_dir="/c",
        state=ProvisioningState.SUCCEEDED,
        error=None,
        created_at=now,
        updated_at=now,
    )


def test_every_change_takes_a_new_revision_with_who_and_what(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "workspace.db")
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    store.insert_endpoint(_endpoint("ep"))
    store.upsert_deployment(_deployment_row("ep", "blue"))
    first = store.endpoint("ep")
    dep = store.deployment("ep", "blue")
    assert first is not None and dep is not None
    assert first.revision > 0 and dep.revision > 0 and first.revision != dep.revision
    token = ACTOR.set("alice@jump1 (ssh from 10.0.0.5)")
    try:
        rev = store.update_endpoint("ep", traffic={"blue": 100}, primary_key="n" * 43)
    finally:
        ACTOR.reset(token)
    assert rev is not None and rev > max(first.revision, dep.revision)
    assert store.update_endpoint("ep", traffic={"blue": 100}) is None  # the same: no change
    assert store.endpoint("ep").revision == rev  # type: ignore[union-attr]
    (change,) = store.changes("endpoint", "ep", after=first.revision)
    assert change.revision == rev and change.actor == "alice@jump1 (ssh from 10.0.0.5)"
    assert change.changed["traffic.blue"] == [None, 100]
    assert set(change.changed) == {"traffic.blue", "primary_key"}
    raw = sqlite3.connect(tmp_path / "workspace.db").execute("SELECT changed FROM changes")
    assert not any("n" * 43 in r[0] or "p" * 43 in r[0] for r in raw)  # never a key

    # compare-and-set: a stale revision changes nothing
    with pytest.raises(StaleRevision) as err:
        store.update_endpoint("ep", description="late", if_revision=first.revision)
    assert (err.value.sent, err.value.now) == (first.revision, rev)
    assert store.endpoint("ep").description == ""  # type: ignore[union-attr]
    with pytest.raises(StaleRevision):
        store.set_deployment_state(
            "ep", "blue", ProvisioningState.UPDATING, if_revision=dep.revision - 1
        )
    assert store.deployment("ep", "blue").state is ProvisioningState.SUCCEEDED  # type: ignore[union-attr]
    # a deleted name created again never reuses a revision; the history keeps the delete
    store.delete_deployment("ep", "blue")
    store.upsert_deployment(_deployment_row("ep", "blue"))
    assert store.deployment("ep", "blue").revision > rev  # type: ignore[union-attr]
    created, deleted, again = store.changes("deployment", "ep/blue")
    assert [c.action for c in (created, deleted, again)] == ["create", "delete", "create"]
    assert created.changed["instance_count"] == [None, 1] == again.changed["instance_count"]
    assert deleted.changed["instance_count"] == [1, None]
    store.close()


def test_the_history_has_before_and_after_of_each_change_and_survives_deletes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The audit history (issue 13): create, traffic, keys (never their values), delete, and a
    cluster's attach and detach, each with its action, who and both values."""
    from modeldeck.services.api.domain import DriverKind

    store = Store(tmp_path / "workspace.db")
    store.insert_cluster(
        ClusterSpec(name="myaks", driver=DriverKind.KUBERNETES, kube_context="kind"),
        ProvisioningState.SUCCEEDED,
    )
    store.insert_endpoint(_endpoint("ep"))
    store.upsert_deployment(_deployment_row("ep", "blue"))
    token = ACTOR.set("alice@jump1")
    try:
        store.update_endpoint("ep", traffic={"blue": 100})
        store.update_endpoint("ep", primary_key="q" * 43)
    finally:
        ACTOR.reset(token)
    store.delete_endpoint("ep")
    store.delete_cluster("myaks")
    rows = store.history("ep")
    assert [(c.kind, c.target, c.action) for c in rows] == [
        ("endpoint", "ep", "create"),
        ("deployment", "ep/blue", "create"),
        ("endpoint", "ep", "update"),
        ("endpoint", "ep", "regenerate-keys"),
        ("endpoint", "ep", "delete"),
    ]
    assert rows[2].actor == "alice@jump1" and rows[2].changed == {"traffic.blue": [None, 100]}
    (marks,) = rows[3].changed.values()
    assert all(m.startswith("set ") and "q" * 43 not in m for m in marks)
    assert rows[4].changed["traffic.blue"] == [100, None]
    everything = store.history()
    assert [(c.kind, c.action) for c in everything if c.kind == "cluster"] == [
        ("cluster", "attach"),
        ("cluster", "detach"),
    ]
    assert everything[0].changed["kube_context"] == [None, "kind"]
    store.close()


def test_a_schema_1_database_is_migrated_with_a_revision_per_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "workspace.db"
    store = Store(path)
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    for name in ("a", "b"):
        store.insert_endpoint(_endpoint(name))
        store.upsert_deployment(_deployment_row(name, "blue"))
    store.close()
    db = sqlite3.connect(path)  # back to what modeldeck 1 wrote
    db.executescript(
        "ALTER TABLE endpoints DROP COLUMN revision; ALTER TABLE deployments DROP COLUMN revision;"
        "DROP TABLE changes; DELETE FROM settings WHERE key='revision'; PRAGMA user_version=1;"
    )
    db.close()

    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    revs = [e.revision for e in store.endpoints()] + [d.revision for d in store.deployments()]
    assert len(set(revs)) == 4 and min(revs) > 0
    assert store.update_endpoint("a", description="after", if_revision=revs[0]) == max(revs) + 1
    store.close()


def test_a_schema_2_database_gains_the_environment_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "workspace.db"
    store = Store(path)
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    store.insert_endpoint(_endpoint("a"))
    store.upsert_deployment(_deployment_row("a", "blue"))
    before = store.deployment("a", "blue")
    store.close()
    db = sqlite3.connect(path)  # back to what modeldeck wrote before environments
    db.executescript("DROP TABLE environments; DROP TABLE deployment_envs; PRAGMA user_version=2;")
    db.close()

    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.deployment("a", "blue") == before
    assert store.environments() == [] and store.deployment_envs() == {}
    store.insert_environment(
        Environment(name="env", version="1", conda_file={"dependencies": ["six=1.16.0"]})
    )
    store.set_deployment_env("a", "blue", "k" * 24, "/envs/k/bin/python")
    assert store.environment("env").conda_file == {"dependencies": ["six=1.16.0"]}  # type: ignore[union-attr]
    assert store.deployment_envs() == {("a", "blue"): "k" * 24}
    store.archive_environment("env", "1")
    assert store.environment("env") is None  # @latest skips an archived version
    assert store.environment("env", "1").stage == "Archived"  # type: ignore[union-attr]
    store.close()


def test_a_schema_3_database_keeps_its_models_as_custom_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "workspace.db"
    store = Store(path)
    store.insert_model(Model(name="m", version=1, path="/models/m/1/model.pkl", created_at=1.0))
    store.close()
    db = sqlite3.connect(path)  # back to what modeldeck wrote before model types
    db.executescript("ALTER TABLE models DROP COLUMN type; PRAGMA user_version=3;")
    db.close()

    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.model("m", 1).type == "custom_model"  # type: ignore[union-attr]
    store.insert_model(Model(name="m", version=2, path="/m/2/model", type="mlflow_model"))
    assert [m.type for m in store.models("m")] == ["custom_model", "mlflow_model"]
    store.close()


def test_a_schema_4_database_keeps_its_changes_as_updates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "workspace.db"
    store = Store(path)
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    store.insert_endpoint(_endpoint("ep"))
    store.update_endpoint("ep", description="d")
    store.close()
    db = sqlite3.connect(path)  # back to what modeldeck wrote before the audit history
    db.executescript(
        "DROP INDEX changes_by_revision; ALTER TABLE changes DROP COLUMN action; "
        "PRAGMA user_version=4;"
    )
    db.close()

    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [c.action for c in store.history("ep")] == ["update", "update"]
    store.update_endpoint("ep", description="e")
    assert store.history("ep")[-1].changed == {"description": ["d", "e"]}
    store.close()


def test_a_schema_7_database_keeps_its_models_active(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Schema 8: archived model versions (az ml's model archive / restore)."""
    path = tmp_path / "workspace.db"
    store = Store(path)
    store.insert_model(Model(name="m", version=1, path="/models/m/1/model.pkl", created_at=1.0))
    store.insert_model(Model(name="m", version=2, path="/models/m/2/model.pkl", created_at=2.0))
    store.close()
    db = sqlite3.connect(path)  # back to what modeldeck wrote before archived models
    db.executescript("ALTER TABLE models DROP COLUMN archived; PRAGMA user_version=7;")
    db.close()

    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [m.archived for m in store.models("m")] == [False, False]
    store.archive_model("m", 2)
    assert store.model("m").version == 1  # type: ignore[union-attr]  # the latest not archived
    assert store.model("m", 2).archived is True  # type: ignore[union-attr]
    store.archive_model("m", 2, archived=False)
    assert store.model("m").version == 2  # type: ignore[union-attr]
    store.close()


def _running_rollout(**fields: Any) -> Any:
    """Rollout r1 of green on endpoint a, Running at its first step (of 10, 100)."""
    from modeldeck.services.api.rollouts import Rollout, RolloutSpec, RolloutState

    spec = RolloutSpec(endpoint="a", to="green", from_="blue", steps=(10, 100))
    values: dict[str, Any] = {"weight": 0, "started_at": 1.0, "step_started_at": 1.0}
    return Rollout("r1", spec, RolloutState.RUNNING, 0, updated_at=1.0, **{**values, **fields})


def test_a_schema_8_database_gains_the_rollouts_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: a store from before rollouts opens with its records as they were, and keeps
    rollouts from then on (compare-and-set on the revision read; the endpoint's current one;
    its events in the endpoint's history)."""
    from modeldeck.services.api.rollouts import RolloutState

    path = tmp_path / "workspace.db"
    store = Store(path)
    store.insert_cluster(ClusterSpec(name="myaks"), ProvisioningState.SUCCEEDED)
    store.insert_endpoint(_endpoint("a"))
    before, revision = store.endpoint("a"), store.revision()
    store.close()
    db = sqlite3.connect(path)  # back to what modeldeck wrote before rollouts
    db.executescript("DROP TABLE rollouts; PRAGMA user_version=8;")
    db.close()

    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
    assert store.endpoint("a") == before and store.revision() == revision
    assert store.rollout("a") is None and store.rollouts() == []
    first = store.save_rollout(_running_rollout())
    assert first.revision == str(revision + 1) and store.revision() == revision + 1
    paused = store.save_rollout(replace(first, state=RolloutState.PAUSED))
    with pytest.raises(StaleRevision):  # a save from the record as first read
        store.save_rollout(replace(first, step=1))
    assert store.rollout("a") == paused and paused.spec.steps == (10, 100)
    store.record_rollout_event("a", None, {"event": "paused", "state": "Paused"})
    assert [(c.kind, c.action) for c in store.history("a")][-1] == ("rollout", "rollout")
    store.close()
    again = Store(path)  # and a reopen reads it back
    assert again.rollouts() == [paused]
    again.close()


def test_a_rollout_s_progress_takes_no_revision_of_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A running rollout saves its check's figures about once a second: its revision (what an
    operator's action carries) stays, as an endpoint's status takes none, while a change of
    state, step or traffic moves it; each save still wakes the workspace's watchers."""
    from modeldeck.services.api.rollouts import RolloutCheck, RolloutState

    store = Store(tmp_path / "workspace.db")
    held = store.save_rollout(_running_rollout(weight=10, traffic={"blue": 90, "green": 10}))
    read = held.revision  # what an operator read
    for n in range(1, 4):  # three checks saved, as the runner saves them
        check = RolloutCheck(1.0 + n, n, n, 0, 0, 0, reason=f"{n} so far")
        before = store.revision()
        held = store.save_rollout(
            replace(held, message=check.reason, last_check=check, updated_at=1.0 + n)
        )
        assert held.revision == read and store.revision() == before + 1
    assert store.rollout("a") == held and held.last_check.reason == "3 so far"  # type: ignore[union-attr]
    # the operator's pause on the revision read before the checks: taken
    paused = store.save_rollout(replace(held, revision=read, state=RolloutState.PAUSED))
    assert paused.revision != read
    # the runner's next check, on the record it held before the pause: refused, not saved
    with pytest.raises(StaleRevision):
        store.save_rollout(replace(held, message="4 so far"))
    assert store.rollout("a") == paused
    # a step (or a resume) moves it: a pause on the revision of before is refused
    resumed = store.save_rollout(replace(paused, state=RolloutState.RUNNING))
    stepped = store.save_rollout(replace(resumed, step=1, weight=100))
    assert len({read, paused.revision, resumed.revision, stepped.revision}) == 4
    with pytest.raises(StaleRevision):
        store.save_rollout(replace(resumed, state=RolloutState.PAUSED))
    store.close()
