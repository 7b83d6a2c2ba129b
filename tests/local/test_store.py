"""The SQLite records of the local workspace: private files, WAL, schema version, transactions."""

from __future__ import annotations

import sqlite3
import stat
import time

import pytest
from modeldeck.services.domain import ClusterSpec, ProvisioningState
from modeldeck.services.errors import BackendError
from modeldeck.services.local.store import SCHEMA_VERSION, EndpointRow, Store


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
