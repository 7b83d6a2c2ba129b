"""-o json|yaml|table|tsv and --query, as az prints them."""

from __future__ import annotations

import json

import pytest
import yaml
from modeldeck.cli.output import Raw, render
from modeldeck.services.api.domain import (
    AuthMode,
    Endpoint,
    EndpointKeys,
    ProvisioningState,
    to_dict,
)
from modeldeck.services.api.errors import InvalidInput

ENDPOINT = to_dict(
    Endpoint(
        name="my-endpoint",
        compute="myaks",
        auth_mode=AuthMode.KEY,
        scoring_uri="http://127.0.0.1:8080/api/v1/endpoint/my-endpoint/score",
        traffic={"blue": 90, "green": 10},
        mirror_traffic={},
        provisioning_state=ProvisioningState.SUCCEEDED,
    )
)
KEYS = to_dict(EndpointKeys(primaryKey="pk-123", secondaryKey="sk-456"))


def test_json_uses_az_field_names() -> None:
    data = json.loads(render(ENDPOINT, "json"))
    assert data["scoring_uri"].endswith("/my-endpoint/score")
    assert data["traffic"] == {"blue": 90, "green": 10}
    assert data["auth_mode"] == "key"
    assert data["provisioning_state"] == "Succeeded"
    assert json.loads(render(KEYS, "json")) == {"primaryKey": "pk-123", "secondaryKey": "sk-456"}


def test_query_is_applied_before_formatting() -> None:
    assert json.loads(render(ENDPOINT, "json", "traffic")) == {"blue": 90, "green": 10}
    assert (
        render([ENDPOINT, {**ENDPOINT, "name": "other"}], "tsv", "[].name") == "my-endpoint\nother"
    )


def test_an_unknown_query_path_prints_nothing_in_every_format() -> None:
    # az (knack/cli.py) prints a result only when it is not None: empty output, exit 0
    for fmt in ("json", "yaml", "tsv", "table"):
        assert render({"name": "ep"}, fmt, "no.such.key") == "", fmt


def test_tsv_scalar_prints_bare_for_shell_capture() -> None:
    assert render(KEYS, "tsv", "primaryKey") == "pk-123"
    assert render(ENDPOINT, "tsv", "scoring_uri") == ENDPOINT["scoring_uri"]


def test_tsv_rows_like_az() -> None:
    # a mapping prints its values tab-separated; nested mappings print empty, lists their length
    assert (
        render({"a": 1, "b": True, "c": None, "d": {"x": 1}, "e": [1, 2]}, "tsv")
        == "1\ttrue\t\t\t2"
    )
    assert render(ENDPOINT, "tsv", "traffic") == "90\t10"
    assert render([[1, 2], [3, 4]], "tsv") == "1\t2\n3\t4"


def test_yaml_round_trips() -> None:
    assert yaml.safe_load(render(ENDPOINT, "yaml")) == ENDPOINT
    assert render(ENDPOINT, "yaml").splitlines()[0] == "name: my-endpoint"


def test_table_columns_and_inline_maps() -> None:
    text = render([ENDPOINT], "table", columns=["name", "compute", "traffic"])
    header, rule, row = text.splitlines()
    assert header.split() == ["Name", "Compute", "Traffic"]
    assert set(rule) <= {"-", " "}
    assert row.split() == ["my-endpoint", "myaks", "blue=90", "green=10"]
    # with --query the columns come from the result
    text = render([ENDPOINT], "table", "[].{n:name, s:provisioning_state}", columns=["name"])
    assert text.splitlines()[0].split() == ["N", "S"]
    assert render(["a", "b"], "table").splitlines() == ["Result", "------", "a", "b"]


def test_raw_text_is_printed_as_is_and_none_prints_nothing() -> None:
    assert render(Raw("line 1\nline 2"), "json") == "line 1\nline 2"
    assert render(ENDPOINT, "none") == ""


def test_bad_query_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as exc:
        render(ENDPOINT, "json", "traffic[")
    assert exc.value.field == "--query"


def _cluster(name: str) -> dict:
    from modeldeck.services.api.domain import Cluster, ClusterPurpose, DriverKind

    return to_dict(
        Cluster(
            name=name,
            driver=DriverKind.POOL,
            purpose=ClusterPurpose.FAST_PROD,
            provisioning_state=ProvisioningState.SUCCEEDED,
            agent_count=3,
            vm_size="Standard_D3_v2",
            vcpus_total=12.0,
            memory_gb_total=42.0,
            vcpus_used=0.5,
            created_at=1795711669.6512177,
        )
    )


def test_tables_read_at_100_columns() -> None:
    # a list: the useful columns under short headers, the scoring URI left out
    listed = render([ENDPOINT, {**ENDPOINT, "name": "e" * 32}], "table")
    assert listed.splitlines()[0].split() == ["Name", "Compute", "Auth", "State", "Traffic"]
    assert max(len(line) for line in listed.splitlines()) <= 100
    # one endpoint (show, create, update): too wide for a row, so one field per line,
    # with its scoring URI; an empty mirror is not shown
    shown = render(ENDPOINT, "table").splitlines()
    assert shown[0].split() == ["Name", "my-endpoint"]
    assert "Scoring URI  http://127.0.0.1:8080/api/v1/endpoint/my-endpoint/score" in shown
    assert not any(line.startswith("Mirror") for line in shown)
    # a create names no columns: the kind's own, not every field (no timestamps, no tags)
    created = render(_cluster("myaks"), "table").splitlines()
    assert created[0].split() == [
        *("Name", "Driver", "Purpose", "State", "Nodes", "VM", "size", "vCPU", "vCPU", "used"),
        "Endpoints",
    ]
    assert created[2].split()[-3:] == ["12", "0.5", "0"]
    assert all(len(line) <= 100 for line in created)
    # a --query result keeps az's capitalised keys
    assert render(ENDPOINT, "table", "{uri: scoring_uri}").splitlines()[0] == "Uri"


def test_a_list_shows_a_row_error_on_one_line() -> None:
    broken = {**_cluster("aks-prod"), "error": "cannot reach https://10.0.0.1:443: timed out\nmore"}
    text = render([_cluster("myaks"), broken], "table")
    header, _, ok, bad = text.splitlines()
    assert header.split()[-1] == "Error" and ok.split()[-1] == "0"
    assert bad.endswith("cannot reach https://10.0.0.1:443: timed out")
    assert "more" not in text
