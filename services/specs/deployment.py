"""The deployment shape: ``kubernetesOnlineDeployment`` YAML into a DeploymentSpec, and the
current spec with ``--set`` applied (``update --set``).

* paths (``code_configuration.code``, an inline ``model.path``) are relative to the YAML file;
* an inline ``model: {path: ...}`` is a model to register first (:mod:`services.apply`);
* no ``code_configuration``: an MLflow no-code deployment (:mod:`.environment`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import inputs
from ..api import validation
from ..api.domain import (
    CodeConfiguration,
    DeploymentRole,
    DeploymentSpec,
    ModelSpec,
    Probe,
    RequestSettings,
    Resources,
    ResourceSet,
    ScaleSettings,
)
from ..api.errors import InvalidInput
from .document import GPU_KEY, Doc, at, doc_from_data, from_flag, invalid_at, read_yaml
from .endpoint import TYPE_KEY
from .environment import (
    ENVIRONMENT,
    inline_environment,
    mlflow_no_code,
    referenced_environment,
)
from .model import inline_model
from .schema import (
    BackendWarnings,
    Key,
    Shape,
    boolean,
    choice,
    field_path,
    integer,
    nested,
    quantity,
    read_mapping,
    read_text,
    resolve_path,
    str_map,
    text,
)
from .setargs import Override, apply_overrides, update_names

CODE = Shape("code_configuration", (Key("code"), Key("scoring_script")), CodeConfiguration)
SCALE = Shape(
    "scale_settings",
    (
        Key("type", choice(["default", "target_utilization"])),
        Key("min_instances", integer()),
        Key("max_instances", integer()),
        Key("target_utilization_percentage", integer()),
        Key("polling_interval", integer()),
    ),
    ScaleSettings,
)
REQUEST = Shape(
    "request_settings",
    (
        Key("request_timeout_ms", integer()),
        Key("max_concurrent_requests_per_instance", integer()),
        Key("max_queue_wait_ms", integer()),
    ),
    RequestSettings,
)
#: liveness_probe and readiness_probe (errors name the one they are in)
PROBE = Shape(
    None,
    tuple(
        Key(k, integer())
        for k in ("initial_delay", "period", "timeout", "failure_threshold", "success_threshold")
    ),
    Probe,
)
#: resources.requests and resources.limits
RESOURCE_SET = Shape(
    None,
    (
        Key("cpu", quantity(validation.cpu_quantity)),
        Key("memory", quantity(validation.memory_quantity), field="memory_gb"),  # bytes or 1Gi
        Key(GPU_KEY, integer(lo=0, hi=16, example=0), field="gpu"),
    ),
    ResourceSet,
)
RESOURCES = Shape(
    "resources",
    (Key("requests", nested(RESOURCE_SET)), Key("limits", nested(RESOURCE_SET))),
    Resources,
)

DEPLOYMENT = Shape(
    "deployment",
    (
        Key("$schema"),
        Key("name"),  # name, endpoint_name, model, code and environment: deployment_from_doc
        TYPE_KEY,
        Key("endpoint_name"),
        Key("model"),
        Key("code_configuration"),
        Key("environment"),
        Key("environment_variables", str_map),
        Key("instance_count", integer()),
        Key(
            "instance_type",
            text,
            sent_by="deployment.instance_type",  # ARM's instanceType
            ignored="instance_type is not used on a cluster of the local workspace: "
            "resources.requests decide what each replica takes (it sizes the replicas of an "
            "endpoint without compute)",
        ),
        Key("scale_settings", nested(SCALE)),
        Key("request_settings", nested(REQUEST)),
        Key("liveness_probe", nested(PROBE)),
        Key("readiness_probe", nested(PROBE)),
        Key("resources", nested(RESOURCES)),
        Key("description", text),
        Key("tags", str_map),
        Key("properties", ignored=""),
        Key(
            "app_insights_enabled",
            boolean,
            sent_by="deployment.app_insights_enabled",  # ARM's appInsightsEnabled
            ignored="app_insights_enabled is not used: the gateway exposes metrics at /metrics",
        ),
        Key(
            "data_collector",
            ignored="data_collector is not used: logs and metrics stream with get-logs and the "
            "dashboard",
        ),
        Key("egress_public_network_access", ignored=""),
        Key(
            "model_mount_path",
            ignored="model_mount_path is not used: the model is under $AZUREML_MODEL_DIR",
        ),
        Key("private_network_connection", ignored=""),
        Key("runtime", choice(["default", "azmlinfsrv"])),
        Key("role", choice([r.value for r in DeploymentRole], DeploymentRole.parse)),
        Key("storage_uri", text),
        # what `show -o yaml` printed: read by `update -f` (document.file_revision)
        Key("revision", ignored=""),
    ),
    DeploymentSpec,
)
#: the keys read after the nested settings, in this order (the first error is the one named)
_PLAIN = (
    "app_insights_enabled",
    "instance_type",
    "instance_count",
    "environment_variables",
    "runtime",
    "role",
    "description",
    "tags",
    "storage_uri",
)
#: the keys a deployment and its settings accept
DEPLOYMENT_KEYS = DEPLOYMENT.names
REQUEST_KEYS = REQUEST.names
PROBE_KEYS = PROBE.names


@dataclass(frozen=True)
class LoadedDeployment:
    spec: DeploymentSpec
    #: an inline ``model: {path: ...}``: register it, then point ``spec.model`` at it
    model_to_register: ModelSpec | None = None
    warnings: list[str] = field(default_factory=list)
    #: warnings that hold only on a local pool (the environment image it does not use):
    #: :func:`services.apply.deployment_warnings` adds them when the endpoint's cluster is one
    pool_warnings: list[str] = field(default_factory=list)
    #: warnings that hold only on a Kubernetes cluster (a conda file it does not build yet)
    kubernetes_warnings: list[str] = field(default_factory=list)
    #: what a local pool cannot build (a conda-only package, an unknown curated name):
    #: :func:`services.apply.deployment_warnings` raises the first when the endpoint's cluster is a pool
    pool_errors: list[InvalidInput] = field(default_factory=list)
    #: no code_configuration and a registered model reference: served as an MLflow no-code
    #: deployment if that model is an ``mlflow_model`` (looked up when it is sent)
    no_code_model: str | None = None
    #: warnings of the back ends that do not send a key given (``Shape.backend_warnings``)
    backend_warnings: BackendWarnings = ()


def load_deployment(
    path: str | Path,
    overrides: Iterable[Override] = (),
    *,
    name: str | None = None,
    endpoint_name: str | None = None,
    update: bool = False,
) -> LoadedDeployment:
    """A deployment from a YAML file; ``name``/``endpoint_name`` (flags) win over the file.

    In az ml's order: ``create`` applies ``--set`` to the file, then the flags (they win:
    azext_mlv2 ``ml_online_deployment_create`` appends them to params_override last);
    ``update`` starts from the flags and applies ``--set``/``--add``/``--remove`` after them
    (az's generic update of the getter's ``{name, endpoint_name}``, then merged into the file:
    ``_update_deployment_parameters``)."""
    doc = read_yaml(path, "deployment")
    if not update:
        apply_overrides(doc, overrides)
    for key, flag, value in (
        ("name", "--name", name),
        ("endpoint_name", "--endpoint", endpoint_name),
    ):
        if value:
            from_flag(doc, key, flag, value)
    if update:
        apply_overrides(doc, overrides)
    return deployment_from_doc(doc)


def deployment_names(
    path: str | Path | None,
    overrides: Iterable[Override] = (),
    *,
    name: str | None = None,
    endpoint_name: str | None = None,
) -> tuple[str, str]:
    """(endpoint, deployment) an ``update`` names: the flags, else (with -f) the file's
    ``endpoint_name:`` and ``name:`` as ``--set`` leaves them, as az ml reads them."""
    names = update_names(
        path,
        "deployment",
        overrides,
        {"name": ("-n/--name", name), "endpoint_name": ("-e/--endpoint-name", endpoint_name)},
    )
    return names["endpoint_name"], names["name"]


def deployment_to_doc(spec: DeploymentSpec) -> dict[str, Any]:
    """The YAML form of a spec (YAML resource keys, memory in bytes), for --set on it."""
    from ..api.domain import to_dict

    data = to_dict(spec)
    for kind in ("requests", "limits"):
        rs = data["resources"][kind]
        out: dict[str, Any] = {}
        if rs.get("cpu") is not None:
            out["cpu"] = rs["cpu"]
        if rs.get("memory_gb") is not None:
            out["memory"] = rs["memory_gb"] * 2**30  # bytes: round-trips exactly
        if rs.get("gpu"):
            out[GPU_KEY] = rs["gpu"]
        data["resources"][kind] = out
    if data.pop("environment_inline", None) is not None:
        data.pop("environment", None)  # kept as it is by updated_deployment
    for key in ("environment", "storage_uri", "liveness_probe", "readiness_probe", "instance_type"):
        if data.get(key) is None:
            data.pop(key, None)
    if not data.get("app_insights_enabled"):
        data.pop("app_insights_enabled", None)  # a key given is warned about where unused
    return data


def updated_deployment(current: DeploymentSpec, overrides: Iterable[Override]) -> LoadedDeployment:
    """The current spec with ``--set`` overrides applied, validated as a whole."""
    doc = doc_from_data(deployment_to_doc(current), f"deployment {current.name}")
    doc.data.pop("name", None)
    doc.data.pop("endpoint_name", None)
    apply_overrides(doc, overrides)
    for key in ("name", "endpoint_name"):
        if key in doc.data:
            raise InvalidInput(
                key,
                doc.data[key],
                "cannot be changed by update",
                "create a new deployment with that name instead",
                message=f"{doc.loc((key,))}: {key} cannot be changed by update",
            )
    doc.data["name"] = current.name
    doc.data["endpoint_name"] = current.endpoint_name
    loaded = deployment_from_doc(doc, warn_environment=False)
    if current.environment_inline is not None and "environment" not in doc.data:
        # an inline environment not named by --set stays as it was (its conda file was read)
        spec = dataclasses.replace(
            loaded.spec,
            environment=current.environment,
            environment_inline=current.environment_inline,
        )
        loaded = dataclasses.replace(loaded, spec=spec)
    return loaded


def deployment_from_doc(doc: Doc, *, warn_environment: bool = True) -> LoadedDeployment:
    data = doc.data
    pool_warnings: list[str] = []
    DEPLOYMENT.check(doc, data)
    warnings = DEPLOYMENT.warnings(doc, data)
    names: dict[str, str] = {}
    for key, flag in (("name", "--name"), ("endpoint_name", "--endpoint-name")):
        raw = data.get(key)
        if raw is None:
            raise InvalidInput(
                key,
                None,
                "is required",
                f"set {key}: in the YAML or pass {flag}",
                message=f"{doc.source}: the deployment needs {'a name' if key == 'name' else 'an endpoint_name'}",
            )
        try:
            names[key] = validation.name(raw, key)
        except InvalidInput as exc:
            raise at(doc, (key,), exc) from None
    DEPLOYMENT.read(doc, data, (), "type")
    model_ref, model_to_register = inline_model(doc, data, names["endpoint_name"], names["name"])

    # code
    code_cfg = read_mapping(doc, data, "code_configuration", ())
    CODE.check(doc, code_cfg, ("code_configuration",))
    code = read_text(doc, code_cfg, "code", ("code_configuration",))
    script = read_text(doc, code_cfg, "scoring_script", ("code_configuration",))
    no_code = None
    if not code_cfg:
        no_code = mlflow_no_code(doc, data, model_to_register, names)
        code, script = no_code.code, no_code.scoring_script
        code_cfg = {"code": code, "scoring_script": script}
    if not code_cfg or not code or not script:
        missing = (
            "code_configuration" if not code_cfg else ("code" if not code else "scoring_script")
        )
        raise InvalidInput(
            "code_configuration",
            code_cfg or None,
            f"needs code (a folder) and scoring_script (a file in it); {missing} is missing",
            "add code_configuration: {code: ./src, scoring_script: score.py}",
            message=f"{doc.loc(('code_configuration',))}: the deployment needs "
            "code_configuration.code and code_configuration.scoring_script",
        )
    code_path = ("code_configuration", "code")
    # a registered code asset (azureml:NAME:VERSION) or a URI: the back end decides
    checked = doc.base_for(code_path) is not None and not validation.is_remote_asset(code)
    if no_code is None:
        code = resolve_path(doc, code_path, code)
    try:
        inputs.scoring_script_rule(script)  # relative, no '..': whatever the base
    except InvalidInput as exc:
        raise at(doc, ("code_configuration", "scoring_script"), exc) from None
    if checked:
        if not Path(code).is_dir():
            raise invalid_at(
                doc,
                code_path,
                code,
                "is not a folder",
                "give the folder that holds the scoring script, relative to the YAML file",
            )
        try:
            inputs.check_code(code, script)  # a regular file inside the folder
        except InvalidInput as exc:
            raise at(doc, field_path(exc.field), exc) from None

    # environment: an image, a registered or curated one, or inline (local pools build it)
    env_value = data.get("environment")
    environment: str | None = None
    environment_inline: dict[str, Any] | None = None
    kube_warnings: list[str] = []
    pool_errors: list[InvalidInput] = []
    if no_code is not None:
        environment_inline = no_code.environment
        if warn_environment:
            pool_warnings += no_code.warnings
            pool_errors += no_code.errors
    elif isinstance(env_value, dict):
        ENVIRONMENT.check(doc, env_value, ("environment",))
        environment, environment_inline, env_warnings, kube_warnings = inline_environment(
            doc, env_value, f"{names['endpoint_name']}-{names['name']}"[:64], pool_errors
        )
        if warn_environment:
            pool_warnings += env_warnings
    elif env_value is not None:
        environment = read_text(doc, data, "environment", ())
        if environment:
            env_warnings = referenced_environment(doc, environment, pool_errors)
            if warn_environment:
                pool_warnings += env_warnings

    nested = (
        "resources",
        "scale_settings",
        "request_settings",
        "liveness_probe",
        "readiness_probe",
    )
    settings = DEPLOYMENT.read(doc, data, (), *nested)
    plain = DEPLOYMENT.read(doc, data, (), *_PLAIN)
    spec = DeploymentSpec(
        name=names["name"],
        endpoint_name=names["endpoint_name"],
        model=model_ref,
        code_configuration=CodeConfiguration(code=code, scoring_script=script),
        environment=environment,
        environment_inline=environment_inline,
        **settings,
        **plain,
    )
    try:
        validation.deployment_spec(spec)
    except InvalidInput as exc:
        raise at(doc, field_path(exc.field), exc) from None
    pending = model_ref if no_code is not None and no_code.environment is None else None
    return LoadedDeployment(
        spec,
        model_to_register,
        warnings,
        pool_warnings,
        kube_warnings,
        pool_errors,
        pending,
        DEPLOYMENT.backend_warnings(doc, data),
    )
