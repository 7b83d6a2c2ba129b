"""What a change is, how a Conflict says it, and when a client may retry on top of it."""

from __future__ import annotations

from modeldeck.services.api import domain, revisions
from modeldeck.services.api.domain import (
    AuthMode,
    CodeConfiguration,
    Deployment,
    DeploymentSpec,
    Endpoint,
    ProvisioningState,
)
from modeldeck.services.api.errors import Conflict, error_from_dict


def test_a_change_is_the_fields_that_differ_as_dotted_paths() -> None:
    before = {
        "instance_count": 2,
        "request_settings": {"request_timeout_ms": 5000, "max_queue_wait_ms": 500},
        "tags": {"team.name": "ml"},
        "provisioning_state": "Succeeded",
    }
    after = {
        "instance_count": 3,
        "request_settings": {"request_timeout_ms": 5000, "max_queue_wait_ms": 900},
        "tags": {"team.name": "ml", "owner": "bob"},
        "provisioning_state": "Updating",
    }
    assert revisions.diff(before, after) == {
        "instance_count": [2, 3],
        "request_settings.max_queue_wait_ms": [500, 900],
        "tags.owner": [None, "bob"],  # a tag key with a dot stays one key
        "provisioning_state": ["Succeeded", "Updating"],
    }
    assert revisions.diff(before, before) == {}


def test_successive_changes_merge_and_undone_ones_vanish() -> None:
    rolled_out = {"instance_count": [2, 3], "provisioning_state": ["Succeeded", "Updating"]}
    landed = {"instance_count": [2, 3], "provisioning_state": ["Updating", "Succeeded"]}
    assert revisions.merge([rolled_out, landed]) == {"instance_count": [2, 3]}
    rolled_back = {"instance_count": [3, 2], "provisioning_state": ["Updating", "Succeeded"]}
    assert revisions.merge([rolled_out, rolled_back]) == {}


def test_describe_puts_what_users_set_first_and_states_only_when_alone() -> None:
    change = {"provisioning_state": ["Updating", "Succeeded"], "instance_count": [2, 3]}
    assert revisions.describe(change) == "instance_count 2 -> 3"
    assert revisions.describe({"error": ["boom", None]}) == "error boom -> (none)"
    many = {f"tags.k{i}": [None, str(i)] for i in range(6)}
    assert revisions.describe(many).endswith("and 2 more")
    long = revisions.describe({"description": [None, "x" * 500]})
    assert long.endswith("xx...") and long.isascii()  # cut in ASCII: any terminal draws it


def test_overlap_is_a_shared_prefix_in_the_yaml_names() -> None:
    changed = ["request_settings.request_timeout_ms", "provisioning_state"]
    assert revisions.overlapping(["instance_count"], changed) == []
    assert revisions.overlapping(["request_settings"], changed) == [changed[0]]
    assert revisions.overlapping(["request_settings.request_timeout_ms"], changed) == [changed[0]]
    assert revisions.overlapping(["request_settings.max_queue_wait_ms"], changed) == []
    # the records say memory_gb where --set says memory
    assert revisions.overlapping(
        ["resources.requests.memory"], ["resources.requests.memory_gb"]
    ) == ["resources.requests.memory_gb"]
    # a whole file overlaps every change but the states an operation moves through
    assert revisions.overlapping(None, changed) == [changed[0]]
    assert revisions.overlapping(None, ["provisioning_state", "error"]) == []
    assert revisions.overlapping(["traffic"], ["traffic.green"]) == ["traffic.green"]
    assert revisions.overlapping(["tags.a"], ["tags.b"]) == []


def test_a_stale_conflict_crosses_the_wire_with_its_details() -> None:
    exc = revisions.stale(
        "deployment",
        "blue",
        sent="7",
        now="8",
        change={"instance_count": [2, 3]},
        by=["alice@jump1"],
        fix="read it again",
    )
    assert exc.message == (
        "deployment 'blue' changed since you read it (revision 7 -> 8 by alice@jump1: "
        "instance_count 2 -> 3)"
    )
    back = error_from_dict(exc.to_dict())
    assert isinstance(back, Conflict) and back.exit_code == 4
    assert back.details == {
        "revision_sent": "7",
        "revision_now": "8",
        "changed": {"instance_count": [2, 3]},
        "by": "alice@jump1",
    }
    assert revisions.conflict_paths(back) == ["instance_count"]
    assert revisions.conflict_paths(Conflict("already exists")) is None


def test_client_actor_names_the_ssh_client(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SSH_CONNECTION", "10.1.2.3 50000 10.0.0.1 22")
    who = revisions.client_actor()
    assert who.endswith(" (ssh from 10.1.2.3)") and "@" in who
    monkeypatch.delenv("SSH_CONNECTION")
    assert "ssh" not in revisions.client_actor()


def test_revisions_round_trip_on_the_domain_objects() -> None:
    ep = Endpoint("e", "c", AuthMode.KEY, "", {}, {}, ProvisioningState.SUCCEEDED, revision="12")
    assert domain.to_dict(ep)["revision"] == "12"
    assert domain.from_dict(Endpoint, domain.to_dict(ep)) == ep
    spec = DeploymentSpec("b", "e", "azureml:m:1", CodeConfiguration("c", "score.py"))
    dep = Deployment(spec, ProvisioningState.SUCCEEDED, 1, 1, revision="13")
    assert domain.to_dict(dep)["revision"] == "13"
    assert domain.from_dict(Deployment, domain.to_dict(dep)) == dep
