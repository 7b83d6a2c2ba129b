"""``update -f FILE`` applies to the state the file came from, through the real CLI.

A user reads (``show -o yaml``), edits a file, and applies it later. Meanwhile another
command changes the resource. With the revision they read (``--if-revision REV`` or a
top-level ``revision:`` in the file), the update is refused with Conflict (exit 4) naming the
change, and nothing of theirs is overwritten; with the fresh revision it applies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from modeldeck.cli.main import main
from modeldeck.services.api.errors import Conflict

pytestmark = pytest.mark.e2e

CONFLICT_EXIT = Conflict.exit_code  # 4


@pytest.fixture
def deck(examples_cli: Callable[[str], int]) -> Callable[[str], int]:
    """The examples' endpoint with blue (see ``examples_cli``)."""
    assert examples_cli("online-deployment create -n blue -e my-endpoint -f blue.yml") == 0
    return examples_cli


def _shown(capsys: pytest.CaptureFixture[str], command: str) -> dict:  # type: ignore[type-arg]
    """What ``show -o yaml`` prints, as data."""
    capsys.readouterr()
    assert main([*command.split(), "-o", "yaml"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


DEP = "online-deployment show -n blue -e my-endpoint"
UPDATE_DEP = "online-deployment update -n blue -e my-endpoint"


def test_deployment_update_from_a_stale_file_is_refused_then_applies_fresh(  # type: ignore[no-untyped-def]
    deck, capsys
) -> None:
    read = _shown(capsys, DEP)
    assert read["instance_count"] == 1 and read["revision"]
    # the user's file: blue.yml with a longer timeout, and the revision they read
    mine = yaml.safe_load(Path("blue.yml").read_text())
    mine["request_settings"]["request_timeout_ms"] = 4500
    mine["revision"] = read["revision"]
    Path("mine.yml").write_text(yaml.safe_dump(mine))

    # meanwhile, another command scales it
    assert deck(f"{UPDATE_DEP} --set instance_count=0") == 0
    capsys.readouterr()

    # the file's revision: refused, naming the change; theirs kept, mine not applied
    assert deck(f"{UPDATE_DEP} -f mine.yml") == CONFLICT_EXIT
    err = capsys.readouterr().err
    assert "deployment 'blue' changed since you read it" in err, err
    assert f"revision {read['revision']} -> " in err and "instance_count 1 -> 0" in err, err
    now = _shown(capsys, DEP)
    assert now["instance_count"] == 0 and now["request_settings"]["request_timeout_ms"] == 3000

    # the flag wins over the file: the same, from --if-revision with a file without revision
    del mine["revision"]
    Path("plain.yml").write_text(yaml.safe_dump(mine))
    assert deck(f"{UPDATE_DEP} -f plain.yml --if-revision {read['revision']}") == CONFLICT_EXIT
    assert "instance_count 1 -> 0" in capsys.readouterr().err
    # (without a revision, -f is the whole spec sent on the state as read now: it applies)

    # with the fresh revision (the flag wins over the stale one in the file): applied
    assert deck(f"{UPDATE_DEP} -f mine.yml --if-revision {now['revision']}") == 0
    after = _shown(capsys, DEP)
    assert after["request_settings"]["request_timeout_ms"] == 4500
    assert after["instance_count"] == 1  # the file's, now knowingly


def test_endpoint_update_if_revision_refuses_a_stale_one(deck, capsys) -> None:  # type: ignore[no-untyped-def]
    ep = "online-endpoint show -n my-endpoint"
    read = _shown(capsys, ep)
    mine = yaml.safe_load(Path("endpoint.yml").read_text())
    mine["description"] = "mine"
    mine["revision"] = read["revision"]
    Path("ep.yml").write_text(yaml.safe_dump(mine))

    assert deck("online-endpoint update -n my-endpoint --set tags.owner=bob") == 0
    capsys.readouterr()
    assert deck("online-endpoint update -n my-endpoint -f ep.yml") == CONFLICT_EXIT
    err = capsys.readouterr().err
    assert "endpoint 'my-endpoint' changed since you read it" in err, err
    assert "tags.owner (none) -> bob" in err, err
    now = _shown(capsys, ep)
    assert now["description"] != "mine" and now["tags"]["owner"] == "bob"

    # --set with a stale --if-revision is refused too (no retry: the user named it)
    flag = f"--if-revision {read['revision']}"
    assert deck(f"online-endpoint update -n my-endpoint --set description=x {flag}") == 4
    assert _shown(capsys, ep)["description"] != "x"

    fresh = f"--if-revision {now['revision']}"
    assert deck(f"online-endpoint update -n my-endpoint -f ep.yml {fresh}") == 0
    assert _shown(capsys, ep)["description"] == "mine"


def test_a_revision_that_is_not_one_is_refused_by_name(deck, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mine = yaml.safe_load(Path("blue.yml").read_text())
    mine["revision"] = ["2"]
    Path("bad.yml").write_text(yaml.safe_dump(mine))
    capsys.readouterr()
    assert deck(f"{UPDATE_DEP} -f bad.yml") == 2
    err = capsys.readouterr().err
    assert "revision" in err and "is not a revision" in err, err


def test_endpoint_update_reads_its_file_once(deck, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The file is saved again while the command runs (after it read the name, the rollout
    block and the revision; before it computes the change): the update is the version it
    first read, whole. It read the file for each of those and sent the new version's
    description with the old version's revision (which pinned a state the new one did not)."""
    from modeldeck.services.local.client import LocalWorkspace

    read = _shown(capsys, "online-endpoint show -n my-endpoint")
    first = yaml.safe_load(Path("endpoint.yml").read_text())
    first.update(description="first", revision=read["revision"])
    Path("ep.yml").write_text(yaml.safe_dump(first))
    second = {**first, "description": "second", "revision": "1"}  # stale: refused if sent

    real = LocalWorkspace.get_endpoint
    saved: list[str] = []

    async def get_endpoint(self: LocalWorkspace, name: str):  # type: ignore[no-untyped-def]
        if not saved:  # the command's first read of the endpoint: the user saves the file
            Path("ep.yml").write_text(yaml.safe_dump(second))
            saved.append(name)
        return await real(self, name)

    monkeypatch.setattr(LocalWorkspace, "get_endpoint", get_endpoint)
    assert deck("online-endpoint update -f ep.yml") == 0, capsys.readouterr().err
    assert saved == ["my-endpoint"]
    assert _shown(capsys, "online-endpoint show -n my-endpoint")["description"] == "first"


def test_deployment_update_reads_its_file_once(deck, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """As for the endpoint: the file saved again after the command read its names and its
    revision, before it read the spec: the update is the version it first read, whole."""
    from modeldeck.services.local.client import LocalWorkspace

    read = _shown(capsys, DEP)
    first = yaml.safe_load(Path("blue.yml").read_text())
    first["request_settings"]["request_timeout_ms"] = 4500
    first["revision"] = read["revision"]
    Path("mine.yml").write_text(yaml.safe_dump(first))
    second = {**first, "request_settings": {"request_timeout_ms": 5000}, "revision": "1"}

    real = LocalWorkspace.get_deployment
    saved: list[str] = []

    async def get_deployment(self: LocalWorkspace, endpoint: str, name: str):  # type: ignore[no-untyped-def]
        if not saved:  # the command's first read of the deployment: the user saves the file
            Path("mine.yml").write_text(yaml.safe_dump(second))
            saved.append(name)
        return await real(self, endpoint, name)

    monkeypatch.setattr(LocalWorkspace, "get_deployment", get_deployment)
    assert deck("online-deployment update -f mine.yml") == 0, capsys.readouterr().err
    assert saved == ["blue"]
    assert _shown(capsys, DEP)["request_settings"]["request_timeout_ms"] == 4500
