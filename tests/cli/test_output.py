"""-o json|yaml|table|tsv and --query, as az prints them."""

from __future__ import annotations

import json

import pytest
import yaml
from modeldeck.cli.output import Raw, render
from modeldeck.services.domain import AuthMode, Endpoint, EndpointKeys, ProvisioningState, to_dict
from modeldeck.services.errors import InvalidInput

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
