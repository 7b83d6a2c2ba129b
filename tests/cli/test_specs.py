"""Loading Azure ML v2 YAML into specs: what an operator sees when a file is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeck.services.api.domain import AuthMode, DeploymentSpec
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.apply import unsent
from modeldeck.services.specs.deployment import load_deployment, updated_deployment
from modeldeck.services.specs.endpoint import load_endpoint
from modeldeck.services.specs.model import load_model

#: the keys Azure ML sends (AzureMLWorkspace.capabilities)
AZUREML_CAPS = frozenset(
    {
        "endpoint.public_network_access",
        "deployment.instance_type",
        "deployment.app_insights_enabled",
    }
)


def line_of(text: str, snippet: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if snippet in line)


def write(dirpath: Path, name: str, text: str) -> Path:
    path = dirpath / name
    path.write_text(text)
    return path


def test_walkthrough_files_load_with_paths_relative_to_the_file(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the YAML's folder: paths must still resolve
    ep = load_endpoint(work / "endpoint.yml")
    assert ep.spec.name == "my-endpoint"
    assert ep.spec.compute == "myaks"  # compute: azureml:myaks
    assert ep.spec.auth_mode is AuthMode.KEY
    blue = load_deployment(work / "blue.yml")
    assert blue.spec.code_configuration.code == str((work / "blue").resolve())
    assert blue.spec.model == "azureml:sklearn-demo:1"
    assert blue.model_to_register is None
    assert blue.spec.resources.requests.cpu == 0.5
    assert blue.spec.resources.requests.memory_gb == 0.5
    assert blue.spec.resources.limits.memory_gb == 1.0


def test_environment_image_is_ignored_with_one_warning(work: Path) -> None:
    blue = load_deployment(work / "blue.yml")
    # tagged: it holds only on a local pool (deployment_warnings decides with the cluster)
    assert blue.warnings == [] and len(blue.pool_warnings) == 1
    (warning,) = blue.pool_warnings
    assert (
        f"line {line_of((work / 'blue.yml').read_text(), 'environment:')}:" in warning
        and "ignored" in warning
        and "openmpi" in warning
    )
    assert "\n" not in warning


def test_inline_model_is_a_model_to_register_first(work: Path) -> None:
    green = load_deployment(work / "green.yml")
    model = green.model_to_register
    assert model is not None
    assert model.name == "my-endpoint-green"  # endpoint + deployment
    assert model.path == str((work / "model").resolve())
    assert model.version is None  # the next version


def test_inline_model_with_its_own_name(work: Path) -> None:
    text = (
        (work / "green.yml")
        .read_text()
        .replace("  path: ./model", "  name: rounded\n  path: ./model")
    )
    green = load_deployment(write(work, "g2.yml", text))
    assert green.model_to_register is not None
    assert green.model_to_register.name == "rounded"


def test_unknown_key_names_its_line_and_the_closest_key(work: Path) -> None:
    text = (work / "blue.yml").read_text().replace("instance_count: 1", "instance_cont: 1")
    line = text.splitlines().index("instance_cont: 1") + 1
    path = write(work, "typo.yml", text)
    with pytest.raises(InvalidInput) as exc:
        load_deployment(path)
    assert (
        f"line {line}: unknown key 'instance_cont' in deployment; did you mean 'instance_count'?"
        in str(exc.value)
    )
    assert exc.value.fix == "rename it to 'instance_count'"


def test_unknown_nested_key_names_the_section(work: Path) -> None:
    text = (work / "blue.yml").read_text().replace("max_queue_wait_ms", "max_queue_wait")
    with pytest.raises(InvalidInput) as exc:
        load_deployment(write(work, "nested.yml", text))
    msg = exc.value.message
    assert (
        f"line {line_of(text, 'max_queue_wait')}:" in msg
        and "in request_settings" in msg
        and "'max_queue_wait_ms'" in msg
    )


def test_unknown_endpoint_key_without_a_close_match_lists_the_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "ep.yml", "name: my-endpoint\ncompute: azureml:myaks\nzzz: 1\n")
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(path)
    assert "line 3: unknown key 'zzz' in endpoint" in exc.value.message
    assert exc.value.fix is not None and "auth_mode" in exc.value.fix


@pytest.mark.parametrize(
    ("replace", "field"),
    [
        ("instance_count: 1", "instance_count: two"),
        ("request_timeout_ms: 3000", "request_timeout_ms: 3s"),
        ('cpu: "0.5"', "cpu: lots"),
        ("memory: 1Gi", "memory: 1 gallon"),
    ],
)
def test_wrong_types_name_field_value_rule_and_line(work: Path, replace: str, field: str) -> None:
    text = (work / "blue.yml").read_text().replace(replace, field)
    line = line_of(text, field)
    with pytest.raises(InvalidInput) as exc:
        load_deployment(write(work, "bad.yml", text))
    err = exc.value
    assert f"line {line}:" in err.message
    bad_value = field.split(": ", 1)[1]
    assert bad_value in err.message
    assert err.rule  # the rule is named
    assert err.fix  # and the fix


def test_limit_below_request_points_at_the_limit(work: Path) -> None:
    text = (work / "blue.yml").read_text().replace('cpu: "1"', "cpu: 250m")
    with pytest.raises(InvalidInput) as exc:
        load_deployment(write(work, "lim.yml", text))
    assert exc.value.field == "resources.limits.cpu"
    assert f"line {line_of(text, 'cpu: 250m')}:" in exc.value.message


def test_enum_values_are_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path, "ep.yml", "name: my-endpoint\ncompute: myaks\nauth_mode: Key\n")
    assert load_endpoint(path).spec.auth_mode is AuthMode.KEY
    path = write(tmp_path, "ep2.yml", "name: my-endpoint\ncompute: myaks\nauth_mode: AMLToken\n")
    assert load_endpoint(path).spec.auth_mode is AuthMode.AML_TOKEN  # ARM's spelling
    path = write(tmp_path, "ep4.yml", "name: my-endpoint\ncompute: myaks\nauth_mode: password\n")
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(path)
    assert "line 3:" in exc.value.message
    assert "key, aml_token, none" in exc.value.message
    path = write(tmp_path, "ep3.yml", "name: my-endpoint\ncompute: myaks\nauth_mode: AML_Token\n")
    assert load_endpoint(path).spec.auth_mode is AuthMode.AML_TOKEN


def test_scale_settings_type_camel_case(work: Path) -> None:
    text = (work / "blue.yml").read_text() + (
        "scale_settings:\n  type: TargetUtilization\n  min_instances: 1\n  max_instances: 3\n"
    )
    loaded = load_deployment(write(work, "scale.yml", text))
    assert loaded.spec.scale_settings.type == "target_utilization"
    assert loaded.spec.scale_settings.max_instances == 3


def test_set_overrides_apply_before_validation(work: Path) -> None:
    loaded = load_deployment(
        work / "blue.yml",
        [
            "instance_count=2",
            "request_settings.request_timeout_ms=1000",
            "resources.requests.cpu=0.25",
            "resources.requests.nvidia.com/gpu=1",
            "environment_variables.MODE=fast",
            "tags.team=demo",
        ],
    )
    spec = loaded.spec
    assert spec.instance_count == 2
    assert spec.request_settings.request_timeout_ms == 1000
    assert spec.resources.requests.cpu == 0.25
    assert spec.resources.requests.gpu == 1
    assert spec.environment_variables == {"MODE": "fast"}
    assert spec.tags == {"team": "demo"}
    # the file's other settings are kept
    assert spec.request_settings.max_concurrent_requests_per_instance == 4


def test_set_override_that_breaks_a_rule_names_the_set(work: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        load_deployment(work / "blue.yml", ["instance_count=lots"])
    assert exc.value.message.startswith("--set instance_count=lots:")
    with pytest.raises(InvalidInput) as exc:
        load_deployment(work / "blue.yml", ["instance_cont=2"])
    assert "did you mean 'instance_count'" in exc.value.message
    assert "--set instance_cont=2" in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        load_deployment(work / "blue.yml", ["instance_count"])
    assert exc.value.field == "--set"


def test_set_on_a_scalar_is_refused(work: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        load_deployment(work / "blue.yml", ["instance_count.x=1"])
    # az's words (azure-cli core arm.py throw_and_show_options)
    assert exc.value.message == (
        "--set instance_count.x=1: Couldn't find 'x' in 'instance_count'. "
        "'instance_count' does not support further indexing."
    )


def test_flags_name_and_endpoint_win_over_the_file(work: Path) -> None:
    loaded = load_deployment(work / "blue.yml", name="blue2", endpoint_name="other-ep")
    assert (loaded.spec.name, loaded.spec.endpoint_name) == ("blue2", "other-ep")


def test_bad_name_is_refused_with_the_rule(work: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        load_deployment(work / "blue.yml", name="b_1")
    assert exc.value.field == "name"
    assert "3-32 characters" in exc.value.message
    # the bad name came from the flag: the error says so, not the file's own line
    assert exc.value.message.startswith("--name b_1: ")
    with pytest.raises(InvalidInput) as exc:
        load_deployment(work / "blue.yml", endpoint_name="my_ep")
    assert exc.value.message.startswith("--endpoint my_ep: ")
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(work / "endpoint.yml", name="e_1")
    assert exc.value.message.startswith("--name e_1: ")


def test_missing_model_path_and_scoring_script(work: Path) -> None:
    text = (work / "green.yml").read_text().replace("./model", "./nowhere")
    with pytest.raises(InvalidInput) as exc:
        load_deployment(write(work, "nomodel.yml", text))
    assert exc.value.field == "model.path" and "does not exist" in exc.value.message
    text = (work / "blue.yml").read_text().replace("score.py", "missing.py")
    with pytest.raises(InvalidInput) as exc:
        load_deployment(write(work, "noscript.yml", text))
    assert exc.value.field == "code_configuration.scoring_script"
    assert f"line {line_of(text, 'missing.py')}:" in exc.value.message


def test_yaml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(write(tmp_path, "broken.yml", "name: [unclosed\ncompute: x\n"))
    assert "not valid YAML" in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(tmp_path / "absent.yml")
    assert exc.value.field == "file" and "does not exist" in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(write(tmp_path, "list.yml", "- a\n- b\n"))
    assert "mapping" in exc.value.message


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(write(tmp_path, "dup.yml", "name: a-b-c\ncompute: x1y\nname: d-e-f\n"))
    assert "line 3: key 'name' is given twice" in exc.value.message


def test_endpoint_without_compute_is_a_managed_endpoint(tmp_path: Path) -> None:
    # issue 12: as in az ml, an endpoint with no compute is a managed online endpoint (was
    # refused: "invalid compute '': is required"); the back end places it
    assert load_endpoint(None, name="my-endpoint").spec.compute == ""
    managed = write(tmp_path, "endpoint.yml", "name: my-endpoint\nauth_mode: key\n")
    assert load_endpoint(managed).spec.compute == ""
    loaded = load_endpoint(
        None, ["compute=azureml:myaks"], name="my-endpoint", auth_mode="AML_token"
    )
    assert loaded.spec.compute == "myaks"
    assert loaded.spec.auth_mode is AuthMode.AML_TOKEN
    arm_id = "azureml:/subscriptions/s/resourceGroups/rg/providers/x/workspaces/w/computes/myaks"
    assert load_endpoint(None, [f"compute={arm_id}"], name="my-endpoint").spec.compute == "myaks"


def test_managed_keys_are_kept_and_warned_about_where_unused(work: Path) -> None:
    # issue 16: kept in the spec for the back ends that send them (Azure ML), warned about
    # only on the others (services.apply.unsent, by the capabilities a back end declares)
    text = (
        work / "blue.yml"
    ).read_text() + "instance_type: Standard_DS3_v2\napp_insights_enabled: true\n"
    loaded = load_deployment(write(work, "managed.yml", text))
    assert loaded.spec.instance_type == "Standard_DS3_v2"
    assert loaded.spec.app_insights_enabled is True
    assert not any("instance_type" in w or "app_insights" in w for w in loaded.warnings)
    local = unsent(frozenset(), loaded.backend_warnings)
    assert len(local) == 2
    assert any(
        "instance_type is not used on a cluster of the local workspace: resources.requests "
        "decide" in w
        for w in local
    )
    assert any("app_insights_enabled is not used: the gateway exposes" in w for w in local)
    assert unsent(AZUREML_CAPS, loaded.backend_warnings) == []
    # an update --set of another key on such a spec keeps them
    updated = updated_deployment(loaded.spec, ["instance_count=2"])
    assert updated.spec.instance_type == "Standard_DS3_v2"
    assert updated.spec.app_insights_enabled is True


def test_public_network_access_is_kept_and_warned_about_where_unused(work: Path) -> None:
    text = (work / "endpoint.yml").read_text() + "public_network_access: disabled\n"
    loaded = load_endpoint(write(work, "private.yml", text))
    assert loaded.spec.public_network_access == "disabled"
    assert loaded.warnings == []
    (local,) = unsent(frozenset(), loaded.backend_warnings)
    assert "public_network_access is not used: the gateway listens on loopback" in local
    assert f"line {line_of(text, 'public_network_access')}" in local
    assert unsent(AZUREML_CAPS, loaded.backend_warnings) == []
    assert load_endpoint(work / "endpoint.yml").spec.public_network_access is None
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(write(work, "bad.yml", text.replace("disabled", "private")))
    assert "enabled, disabled" in exc.value.message


@pytest.mark.parametrize(
    "remote",
    [
        "azureml://datastores/workspaceblobstore/paths/remote-model/",
        "azureml:sklearn-demo:1",
        "https://acct.blob.core.windows.net/models/m.pkl",
    ],
)
def test_remote_model_paths_are_kept_as_given(work: Path, remote: str) -> None:
    # issue 16 point 1: the loader kept them out ("must be a local model path") before the
    # Azure ML back end, which registers them as given, was reached
    assert load_model(None, name="remote-model", model_path=remote).path == remote
    path = write(work, "m.yml", f"name: remote-model\npath: {remote}\n")
    assert load_model(path).path == remote
    text = (work / "green.yml").read_text()
    inline = write(work, "inline.yml", text.replace("path: ./model", f"path: {remote}"))
    model = load_deployment(inline).model_to_register
    assert model is not None and model.path == remote


def test_registered_code_is_kept_as_given(work: Path) -> None:
    text = (work / "blue.yml").read_text().replace("code: ./blue", "code: azureml:score-code:3")
    loaded = load_deployment(write(work, "code.yml", text))
    assert loaded.spec.code_configuration.code == "azureml:score-code:3"
    with pytest.raises(InvalidInput) as exc:  # still checked: an azureml: path is a model ref
        load_model(None, name="my-model", model_path="azureml:not a ref")
    assert exc.value.field == "path"


def test_update_applies_set_to_the_current_spec(work: Path) -> None:
    current: DeploymentSpec = load_deployment(work / "blue.yml").spec
    updated = updated_deployment(current, ["instance_count=3", "resources.limits.memory=2Gi"])
    assert updated.spec.instance_count == 3
    assert updated.spec.resources.limits.memory_gb == 2.0
    # everything else is the current spec, sent in full
    assert updated.spec.model == current.model
    assert updated.spec.code_configuration == current.code_configuration
    assert updated.spec.request_settings == current.request_settings
    assert updated.spec.resources.requests == current.resources.requests
    # 500Mi is 0.48828125 GiB: an update that does not touch it keeps it exactly
    green = load_deployment(work / "green.yml", ["resources.requests.memory=500Mi"]).spec
    assert updated_deployment(green, ["instance_count=2"]).spec.resources == green.resources
    with pytest.raises(InvalidInput) as exc:
        updated_deployment(current, ["name=other"])
    assert "cannot be changed" in exc.value.message


def test_model_yaml_and_flags(tmp_path: Path, work: Path) -> None:
    path = write(
        work, "model.yml", "name: sklearn-demo\npath: ./model\nversion: 3\ntags:\n  a: b\n"
    )
    spec = load_model(path)
    assert spec.path == str((work / "model").resolve())
    assert (spec.version, spec.tags) == (3, {"a": "b"})
    spec = load_model(path, ["version=4"], description="d")
    assert (spec.version, spec.description) == (4, "d")
    with pytest.raises(InvalidInput) as exc:
        load_model(name="sklearn-demo", model_path=str(tmp_path / "absent"))
    assert exc.value.field == "path"


def test_probes_not_given_stay_not_given_through_update(work: Path) -> None:
    """Issues 15.7 and 16.3: a YAML without probes leaves them unset (each back end applies
    its default); ``update --set`` re-reads the spec's YAML form and keeps them unset, or
    as given; a block given in part is completed with az ml's defaults."""
    from modeldeck.services.api.domain import Probe

    blue = load_deployment(work / "blue.yml").spec
    assert blue.liveness_probe is None and blue.readiness_probe is None
    assert (
        load_deployment(
            write(work, "null.yml", (work / "blue.yml").read_text() + "liveness_probe: null\n")
        ).spec.liveness_probe
        is None
    )
    kept = updated_deployment(blue, ["instance_count=2"]).spec
    assert kept.liveness_probe is None and kept.readiness_probe is None
    probed = updated_deployment(blue, ["readiness_probe.period=3"]).spec
    assert probed.liveness_probe is None
    assert probed.readiness_probe == Probe(
        initial_delay=10, period=3, timeout=2, failure_threshold=30, success_threshold=1
    )
    assert updated_deployment(probed, ["instance_count=3"]).spec.readiness_probe == (
        probed.readiness_probe
    )
