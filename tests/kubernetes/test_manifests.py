"""The manifests modeldeck sends: valid against the Kubernetes and Gateway API schemas, and right."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from modeldeck.services.api.domain import Model, Probe, Resources, ResourceSet, ScaleSettings
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.drivers.kubernetes import manifests as mf

SCHEMA = json.loads((Path(__file__).with_name("schemas") / "httproute-v1.json").read_text())


def validate(obj: dict) -> None:
    if obj["kind"] == "HTTPRoute":
        jsonschema.validate(obj, SCHEMA)
    else:
        kubernetes_validate.validate(obj, "1.33", strict=True)


def objects(k: Any, **changes: Any) -> list[dict]:
    rt = k.runtime(**changes)
    app = mf.collect_files(rt.spec, rt.model, rt.code_dir)
    return mf.deployment_objects("ml", "ep", rt.spec, app, rt.model.ref)


def test_every_deployment_manifest_is_valid_and_labelled(k: Any) -> None:
    objs = objects(
        k,
        scale_settings=ScaleSettings(type="target_utilization", min_instances=2, max_instances=5),
        resources=Resources(
            ResourceSet(cpu=0.5, memory_gb=0.5), ResourceSet(cpu=1, memory_gb=1, gpu=1)
        ),
        environment_variables={"WORKERS": "2"},
        liveness_probe=Probe(initial_delay=5, period=10, timeout=3, failure_threshold=4),
    )
    assert [o["kind"] for o in objs] == [
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    ]
    for obj in objs:
        validate(obj)
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "modeldeck"
        assert labels["modeldeck.io/endpoint"] == "ep"
        assert labels["modeldeck.io/deployment"] == "blue"
    dep = objs[1]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "1000m", "memory": "1024Mi", "nvidia.com/gpu": "1"},
    }
    assert container["livenessProbe"]["initialDelaySeconds"] == 5
    # a slow init() is not killed by the liveness probe: it starts after the startup probe
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["periodSeconds"] == 10
    assert {"name": "WORKERS", "value": "2"} in container["env"]
    assert container["image"] == mf.DEFAULT_IMAGE
    assert "replicas" not in dep["spec"]  # the HPA owns the replica count
    assert objs[3]["spec"]["minReplicas"] == 2 and objs[3]["spec"]["maxReplicas"] == 5
    # new replicas are ready before old ones stop
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_configmap_restores_the_code_and_model_tree(k: Any, examples: Path) -> None:
    cm, dep = objects(k)[:2]
    assert cm["immutable"] is True
    items = dep["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
    paths = {i["path"]: cm["data"][i["key"]] for i in items}
    assert paths["code/score.py"] == (examples / "blue" / "score.py").read_text()
    assert paths["model/model/model.json"] == (examples / "model" / "model.json").read_text()
    assert "host.py" in paths  # the scoring host (services/scoring/host.py)
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AZUREML_MODEL_DIR"] == "/var/modeldeck/app/model"  # holds model/ by its base name
    assert env["MODELDECK_ENTRY_SCRIPT"] == "/var/modeldeck/app/code/score.py"


def test_changed_code_gets_a_new_configmap_name(k: Any, tmp_path: Path, examples: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text((examples / "blue" / "score.py").read_text())
    rt = k.runtime()
    first = mf.collect_files(rt.spec, rt.model, str(code))
    (code / "score.py").write_text((examples / "green" / "score.py").read_text())
    second = mf.collect_files(rt.spec, rt.model, str(code))
    assert mf.configmap_name("ep", "blue", first) != mf.configmap_name("ep", "blue", second)


def test_large_model_comes_from_storage_uri_through_an_init_container(
    k: Any, tmp_path: Path
) -> None:
    model_dir = tmp_path / "bigmodel"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"\0" * (mf.CONFIGMAP_LIMIT + 1))
    rt = k.runtime(storage_uri="https://example.com/models/big.tar.gz")
    model = Model(name="big", version=1, path=str(model_dir))
    app = mf.collect_files(rt.spec, model, rt.code_dir)
    cm, dep = mf.deployment_objects("ml", "ep", rt.spec, app, model.ref)[:2]
    validate(dep)
    validate(cm)
    assert not any("weights" in key for key in cm["data"])
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["args"] == [
        "https://example.com/models/big.tar.gz",
        "/var/modeldeck/model/bigmodel",
    ]
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AZUREML_MODEL_DIR"] == "/var/modeldeck/model"


def test_large_model_without_storage_uri_is_refused_with_the_fix(k: Any, tmp_path: Path) -> None:
    model_dir = tmp_path / "bigmodel"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"\1" * (mf.CONFIGMAP_LIMIT + 1))
    rt = k.runtime()
    with pytest.raises(InvalidInput) as err:
        mf.collect_files(rt.spec, Model(name="big", version=1, path=str(model_dir)), rt.code_dir)
    assert err.value.field == "storage_uri"
    assert "storage_uri" in (err.value.fix or "")


def test_http_route_weights_header_rules_and_mirror() -> None:
    route = mf.http_route(
        "ml",
        "ep",
        {"blue": 90, "green": 10},
        {"shadow": 20},
        ["blue", "green", "shadow"],
        mf.GatewayRef.from_tags({"modeldeck.io/gateway": "infra/public"}),
    )
    validate(route)
    rules = route["spec"]["rules"]
    headers = {
        r["matches"][0]["headers"][0]["value"]: r["backendRefs"][0]["name"] for r in rules[:-1]
    }
    assert headers == {"blue": "ep-blue", "green": "ep-green", "shadow": "ep-shadow"}
    split = rules[-1]
    assert {b["name"]: b["weight"] for b in split["backendRefs"]} == {"ep-blue": 90, "ep-green": 10}
    assert split["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "ep-shadow", "port": 80}, "percent": 20},
        }
    ]
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "infra"}]
    assert mf.route_state(route) == ({"blue": 90, "green": 10}, {"shadow": 20})


def test_route_schema_refuses_what_the_crd_refuses() -> None:
    route = mf.http_route("ml", "ep", {"blue": 100}, {}, ["blue"])
    route["spec"]["rules"][-1]["backendRefs"][0]["weight"] = -1
    with pytest.raises(jsonschema.ValidationError):
        validate(route)
    route = mf.http_route("ml", "ep", {"blue": 100}, {"blue": 101}, ["blue"])
    with pytest.raises(jsonschema.ValidationError):
        validate(route)


def test_names_are_dns_labels_and_never_collide() -> None:
    assert mf.deployment_name("ep", "blue") == "ep-blue"
    assert mf.deployment_name("My-Endpoint", "Blue") != mf.deployment_name("my-endpoint", "blue")
    long = mf.deployment_name("e" * 32, "d" * 32)
    assert len(long) <= 47 and long[0].isalpha() and not long.endswith("-")
    svc = mf.service("ml", "My-Endpoint", "Blue")
    validate(svc)


def test_secret_holds_the_keys_and_dry_run_yaml_redacts_them(k: Any) -> None:
    secret = mf.endpoint_secret(
        "ml", "ep", mode="key", primary_key=k.KEY1, secondary_key=k.KEY2, token_secret="t" * 32
    )
    validate(secret)
    assert base64.b64decode(secret["data"]["primary-key"]).decode() == k.KEY1
    shown = mf.endpoint_secret(
        "ml",
        "ep",
        mode="key",
        primary_key=k.KEY1,
        secondary_key=k.KEY2,
        token_secret="t" * 32,
        redact=True,
    )
    text = mf.to_yaml([shown, mf.http_route("ml", "ep", {}, {}, []), *objects(k)])
    assert k.KEY1 not in text and base64.b64encode(k.KEY1.encode()).decode() not in text
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == [
        "Secret",
        "HTTPRoute",
        "ConfigMap",
        "Deployment",
        "Service",
    ]
    for d in docs:
        validate(d)


def test_probes_not_given_get_az_mls_defaults_and_given_ones_are_kept(
    k: Any, examples: Path, tmp_path: Path
) -> None:
    """Issue 15.7: a YAML without probes gets az ml's defaults (ProbeSettings: first probe
    after 10 s, every 10 s, 2 s time-out, 30 failures), not a probe every second; a block
    given is rendered as given, its missing keys completed with the same defaults."""
    from modeldeck.services.specs.deployment import load_deployment

    def probes(yml: Path) -> tuple[dict, dict]:
        spec = load_deployment(yml).spec
        objs = objects(k, liveness_probe=spec.liveness_probe, readiness_probe=spec.readiness_probe)
        validate(objs[1])
        container = objs[1]["spec"]["template"]["spec"]["containers"][0]
        return container["livenessProbe"], container["readinessProbe"]

    def seconds(probe: dict) -> tuple[int, ...]:
        keys = ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold")
        return tuple(probe[key] for key in keys)

    liveness, readiness = probes(examples / "blue.yml")
    assert seconds(liveness) == seconds(readiness) == (10, 10, 2, 30)
    assert liveness["httpGet"] == {"path": "/", "port": "http"}
    (tmp_path / "blue").symlink_to(examples / "blue")
    given = tmp_path / "probed.yml"
    given.write_text(
        (examples / "blue.yml").read_text()
        + "liveness_probe:\n  period: 3\n  failure_threshold: 5\n"
        + "readiness_probe:\n  initial_delay: 1\n  timeout: 4\n"
    )
    liveness, readiness = probes(given)
    assert seconds(liveness) == (10, 3, 2, 5)
    assert seconds(readiness) == (1, 10, 4, 30)
