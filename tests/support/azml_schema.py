"""What az ml prints, as the reference the output-shape tests compare modeldeck's with.

az ml prints an entity as azure-ai-ml's marshmallow schema dumps it; the keys and their
field types below are transcribed from those schema classes (Azure/azure-sdk-for-python,
``sdk/ml/azure-ai-ml/azure/ai/ml/_schema/``, file named beside each), not from our output.
Value sets come from the ARM REST spec the Azure ML tests carry (tests/azureml/schemas,
through :mod:`tests.support.arm_spec`'s files), turned into az's words as azure-ai-ml does
(``StringTransformedEnum(casing_transform=camel_to_snake)``). azure-cli then adds
``resourceGroup`` to an object whose ``id`` is an ARM id (azure-cli-core
``commands/transform.py``, ``_add_resource_group``).

A field is ``REQUIRED`` when az prints it for every object of that kind (a script may
``--query`` it); the others are checked for their type when present and not null (az
leaves out what the service does not return).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from typing import Any

from tests.support.arm_spec import FILES, SCHEMAS

ISO = "iso8601"  # marshmallow fields.DateTime: datetime.isoformat()
STR, INT, BOOL, DICT = str, int, bool, dict

#: _endpoint/endpoint.py EndpointSchema + _endpoint/online/online_endpoint.py
ENDPOINT: dict[str, Any] = {
    "id": STR,
    "name": STR,
    "description": STR,
    "tags": DICT,
    "provisioning_state": STR,
    "properties": DICT,
    "auth_mode": STR,
    "scoring_uri": STR,
    "location": STR,
    "openapi_uri": STR,
    "identity": DICT,
    "traffic": DICT,
    "mirror_traffic": DICT,
    "kind": STR,
    "compute": STR,  # KubernetesOnlineEndpointSchema
    "public_network_access": STR,  # ManagedOnlineEndpointSchema
    "resourceGroup": STR,  # azure-cli
}
ENDPOINT_REQUIRED = {
    "id",
    "name",
    "tags",
    "provisioning_state",
    "properties",
    "auth_mode",
    "scoring_uri",
    "location",
    "openapi_uri",
    "identity",
    "traffic",
    "mirror_traffic",
    "kind",
    "resourceGroup",
}
#: _schema/identity.py IdentitySchema
IDENTITY: dict[str, Any] = {"type": STR, "principal_id": STR, "tenant_id": STR}

#: _deployment/deployment.py DeploymentSchema + online/online_deployment.py
DEPLOYMENT: dict[str, Any] = {
    "name": STR,
    "endpoint_name": STR,
    "description": STR,
    "id": STR,
    "tags": DICT,
    "properties": DICT,
    "model": (STR, DICT),  # UnionField: an asset reference or an inline model
    "code_configuration": DICT,
    "environment": (STR, DICT),
    "environment_variables": DICT,
    "app_insights_enabled": BOOL,
    "scale_settings": DICT,
    "request_settings": DICT,
    "liveness_probe": DICT,
    "readiness_probe": DICT,
    "provisioning_state": STR,
    "instance_count": INT,
    "type": STR,
    "model_mount_path": STR,
    "instance_type": STR,
    "data_collector": DICT,
    "resources": DICT,  # KubernetesOnlineDeploymentSchema
    "egress_public_network_access": STR,  # ManagedOnlineDeploymentSchema
    "private_network_connection": BOOL,
    "creation_context": DICT,
    "resourceGroup": STR,
}
DEPLOYMENT_REQUIRED = {
    "id",
    "name",
    "endpoint_name",
    "tags",
    "properties",
    "model",
    "code_configuration",
    "environment_variables",
    "app_insights_enabled",
    "scale_settings",
    "request_settings",
    "provisioning_state",
    "instance_count",
    "type",
    "resourceGroup",
}
#: online/scale_settings_schema.py (Default: type only)
SCALE_TARGET_UTILIZATION: dict[str, Any] = {
    "type": STR,
    "polling_interval": INT,
    "target_utilization_percentage": INT,
    "min_instances": INT,
    "max_instances": INT,
}
#: online/request_settings_schema.py
REQUEST_SETTINGS: dict[str, Any] = {
    "request_timeout_ms": INT,
    "max_concurrent_requests_per_instance": INT,
    "max_queue_wait_ms": INT,
}
#: online/liveness_probe.py
PROBE: dict[str, Any] = {
    "period": INT,
    "initial_delay": INT,
    "timeout": INT,
    "success_threshold": INT,
    "failure_threshold": INT,
}
#: _deployment/code_configuration_schema.py
CODE_CONFIGURATION: dict[str, Any] = {"code": STR, "scoring_script": STR}
#: online/resource_settings_schema.py (inside ResourceRequirementsSchema's requests/limits)
RESOURCE_SETTINGS: dict[str, Any] = {"cpu": STR, "memory": STR, "gpu": STR}
#: job/creation_context.py
CREATION_CONTEXT: dict[str, Any] = {
    "created_at": ISO,
    "created_by": STR,
    "created_by_type": STR,
    "last_modified_at": ISO,
    "last_modified_by": STR,
    "last_modified_by_type": STR,
}

#: assets/model.py ModelSchema
MODEL: dict[str, Any] = {
    "name": STR,
    "id": STR,
    "type": STR,
    "path": STR,
    "version": STR,  # VersionField dumps a string
    "description": STR,
    "properties": DICT,
    "tags": DICT,
    "utc_time_created": ISO,
    "flavors": DICT,
    "creation_context": DICT,
    "job_name": STR,
    "latest_version": STR,
    "resourceGroup": STR,
}
MODEL_REQUIRED = {"id", "name", "version", "path", "type", "tags", "properties", "creation_context"}

#: assets/environment.py _BaseEnvironmentSchema + assets/asset.py + core/resource.py
ENVIRONMENT: dict[str, Any] = {
    "name": STR,
    "id": STR,
    "description": STR,
    "tags": DICT,
    "version": STR,
    "creation_context": DICT,
    "latest_version": STR,
    "build": DICT,
    "image": STR,
    "conda_file": (DICT, STR),
    "inference_config": DICT,
    "os_type": STR,
    "datastore": STR,
    "resourceGroup": STR,
}
ENVIRONMENT_REQUIRED = {"id", "name", "version", "tags", "creation_context"}

#: compute/compute.py ComputeSchema + compute/kubernetes_compute.py
COMPUTE: dict[str, Any] = {
    "name": STR,
    "id": STR,
    "type": STR,
    "location": STR,
    "description": STR,
    "provisioning_errors": STR,
    "created_on": STR,
    "provisioning_state": STR,
    "resource_id": STR,
    "namespace": STR,
    "properties": DICT,
    "identity": DICT,
    "resourceGroup": STR,
}
COMPUTE_REQUIRED = {"id", "name", "type", "location", "provisioning_state", "resourceGroup"}


# --------------------------------------------------------------------------- the REST spec


@cache
def _mfe() -> dict[str, Any]:
    return json.loads((SCHEMAS / FILES["mfe"]).read_text())["definitions"]


def camel_to_snake(text: str) -> str:
    """azure-ai-ml ``_utils/utils.py camel_to_snake`` (``AMLToken`` -> ``aml_token``)."""
    text = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", text)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()


def arm_enum(name: str, *, snake: bool = False) -> set[str]:
    values = _mfe()[name]["enum"]
    return {camel_to_snake(v) if snake else v for v in values}


def arm_object(name: str) -> dict[str, Any]:
    """An mfe definition's properties as ``{key: python type}`` (int64 -> int)."""
    types = {"string": STR, "integer": INT, "boolean": BOOL, "object": DICT}
    return {k: types[v["type"]] for k, v in _mfe()[name]["properties"].items()}


# --------------------------------------------------------------------------- the check


def _type_ok(value: Any, kind: Any) -> bool:
    if kind == ISO:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if int in kinds and isinstance(value, bool):
        return False
    return isinstance(value, kinds)


def problems(
    obj: dict[str, Any], schema: dict[str, Any], required: set[str] = frozenset()
) -> list[str]:
    """What differs from az's shape: a required key missing or null, a key of the wrong type."""
    out = [f"{k}: missing" for k in sorted(required) if obj.get(k) in (None, "")]
    for key, kind in schema.items():
        value = obj.get(key)
        if value is not None and not _type_ok(value, kind):
            out.append(f"{key}: {value!r} is not {kind}")
    return out


def endpoint_problems(ep: dict[str, Any]) -> list[str]:
    """An online endpoint against az's shape, its identity and the REST spec's values."""
    out = problems(ep, ENDPOINT, ENDPOINT_REQUIRED)
    out += [f"identity.{p}" for p in problems(ep.get("identity") or {}, IDENTITY, {"type"})]
    if ep.get("auth_mode") not in arm_enum("EndpointAuthMode", snake=True):
        out.append(f"auth_mode: {ep.get('auth_mode')!r}")
    if ep.get("provisioning_state") not in arm_enum("EndpointProvisioningState"):
        out.append(f"provisioning_state: {ep.get('provisioning_state')!r}")
    return out


def deployment_problems(dep: dict[str, Any]) -> list[str]:
    """An online deployment against az's shape, its nested settings and the spec's values."""
    out = problems(dep, DEPLOYMENT, DEPLOYMENT_REQUIRED)
    nested = {
        "code_configuration": CODE_CONFIGURATION,
        "request_settings": REQUEST_SETTINGS,
        "liveness_probe": PROBE,
        "readiness_probe": PROBE,
        "creation_context": CREATION_CONTEXT,
    }
    for key, schema in nested.items():
        out += [f"{key}.{p}" for p in problems(dep.get(key) or {}, schema)]
    for part, settings in (dep.get("resources") or {}).items():
        out += [f"resources.{part}.{p}" for p in problems(settings or {}, RESOURCE_SETTINGS)]
    scale = dep.get("scale_settings") or {}
    if scale.get("type") not in arm_enum("ScaleType", snake=True):
        out.append(f"scale_settings.type: {scale.get('type')!r}")
    elif scale["type"] == "default" and set(scale) != {"type"}:  # DefaultScaleSettingsSchema
        out.append(f"scale_settings: {scale!r} (default has its type only)")
    else:
        out += [f"scale_settings.{p}" for p in problems(scale, SCALE_TARGET_UTILIZATION)]
    if dep.get("provisioning_state") not in arm_enum("DeploymentProvisioningState"):
        out.append(f"provisioning_state: {dep.get('provisioning_state')!r}")
    if dep.get("type") not in arm_enum("EndpointComputeType", snake=True):
        out.append(f"type: {dep.get('type')!r}")
    return out
