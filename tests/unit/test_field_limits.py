"""Free-text fields are capped: Azure's tag limits, modeldeck's own for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeck.services.api import validation as v
from modeldeck.services.api.domain import (
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    EndpointSpec,
    ModelSpec,
)
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.specs.endpoint import load_endpoint


def endpoint(**kw: object) -> EndpointSpec:
    return EndpointSpec(name="blue-ep", compute="local", **kw)  # type: ignore[arg-type]


def deployment(**kw: object) -> DeploymentSpec:
    fields: dict[str, object] = {
        "name": "blue",
        "endpoint_name": "blue-ep",
        "model": "azureml:m:1",
        "code_configuration": CodeConfiguration(code=".", scoring_script="score.py"),
    }
    return DeploymentSpec(**{**fields, **kw})  # type: ignore[arg-type]


def test_a_40_mib_description_is_refused_naming_its_size_not_echoing_it() -> None:
    huge = "x" * (40 * 1024 * 1024)
    with pytest.raises(InvalidInput) as exc:
        v.endpoint_spec(endpoint(description=huge))
    err = exc.value
    assert err.field == "description"
    assert "is 41,943,040 characters long; at most 4,000 are allowed" in err.rule
    assert err.fix and "4,000" in err.fix
    assert len(str(err)) < 400  # the value is shortened in the message


def test_descriptions_up_to_the_cap_pass_everywhere(tmp_path: Path) -> None:
    ok = "d" * v.MAX_DESCRIPTION_CHARS
    v.endpoint_spec(endpoint(description=ok))
    v.deployment_spec(deployment(description=ok))
    v.cluster_spec(ClusterSpec(name="pool1", description=ok))
    (tmp_path / "m.pkl").write_bytes(b"x")
    v.model_spec(ModelSpec(name="model1", path=str(tmp_path / "m.pkl"), description=ok))
    for check in (
        lambda: v.endpoint_spec(endpoint(description=ok + "d")),
        lambda: v.deployment_spec(deployment(description=ok + "d")),
        lambda: v.cluster_spec(ClusterSpec(name="pool1", description=ok + "d")),
        lambda: v.model_spec(
            ModelSpec(name="model1", path=str(tmp_path / "m.pkl"), description=ok + "d")
        ),
    ):
        with pytest.raises(InvalidInput) as exc:
            check()
        assert exc.value.field == "description"


def test_200000_tags_are_refused_with_the_count_and_azures_limit() -> None:
    many = {f"t{i}": "v" for i in range(200_000)}
    with pytest.raises(InvalidInput) as exc:
        v.tags(many)
    assert exc.value.field == "tags"
    assert "200,000 tags" in str(exc.value)
    assert "at most 50 tags" in exc.value.rule and "Azure Resource Manager" in exc.value.rule
    assert exc.value.fix and "JSON" in exc.value.fix


def test_fifty_tags_pass_fifty_one_do_not() -> None:
    assert len(v.tags({f"t{i}": "v" for i in range(50)})) == 50
    with pytest.raises(InvalidInput):
        v.tags({f"t{i}": "v" for i in range(51)})


def test_tag_names_512_and_values_256_characters() -> None:
    v.tags({"k" * 512: "v" * 256})
    with pytest.raises(InvalidInput) as exc:
        v.tags({"k" * 513: "v"})
    assert exc.value.field == "tags" and "a tag name is 513 characters" in exc.value.rule
    with pytest.raises(InvalidInput) as exc:
        v.tags({"team": "v" * 257})
    assert exc.value.field == "tags.team" and "257 characters" in exc.value.rule
    assert exc.value.fix and "256" in exc.value.fix


def test_environment_variables_count_name_value_and_total() -> None:
    v.deployment_spec(deployment(environment_variables={f"V{i}": "x" for i in range(100)}))
    with pytest.raises(InvalidInput) as exc:
        v.deployment_spec(deployment(environment_variables={f"V{i}": "x" for i in range(101)}))
    assert exc.value.field == "environment_variables" and "at most 100" in exc.value.rule

    v.deployment_spec(deployment(environment_variables={"BIG": "x" * v.MAX_ENV_VALUE_CHARS}))
    with pytest.raises(InvalidInput) as exc:
        v.deployment_spec(
            deployment(environment_variables={"BIG": "x" * (v.MAX_ENV_VALUE_CHARS + 1)})
        )
    assert exc.value.field == "environment_variables.BIG"
    assert "32,769 characters" in exc.value.rule and exc.value.fix

    with pytest.raises(InvalidInput) as exc:
        v.deployment_spec(deployment(environment_variables={"N" * 257: "x"}))
    assert "a variable name is 257 characters" in exc.value.rule

    nine = {f"V{i}": "x" * 30_000 for i in range(9)}  # each fine, 270,000 in all
    with pytest.raises(InvalidInput) as exc:
        v.deployment_spec(deployment(environment_variables=nine))
    assert "262,144 characters" in exc.value.rule


def test_references_are_capped() -> None:
    with pytest.raises(InvalidInput) as exc:
        v.deployment_spec(deployment(environment="img:" + "t" * 3000))
    assert exc.value.field == "environment" and "at most 2,048" in exc.value.rule
    with pytest.raises(InvalidInput) as exc:
        v.deployment_spec(deployment(model="azureml:" + "m" * 3000 + ":1"))
    assert exc.value.field == "model"


def test_a_spec_file_with_too_many_tags_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ep.yml"
    tags = "".join(f"  t{i}: v\n" for i in range(51))
    path.write_text(f"name: blue-ep\ncompute: local\ndescription: hi\ntags:\n{tags}")
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(path)
    assert exc.value.message.startswith(f"{path}: line 4:"), exc.value.message
    assert "at most 50 tags" in exc.value.message


def test_a_long_tag_value_in_a_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ep.yml"
    path.write_text(f"name: blue-ep\ncompute: local\ntags:\n  a: b\n  team: {'v' * 300}\n")
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(path)
    assert exc.value.message.startswith(f"{path}: line 5:"), exc.value.message
