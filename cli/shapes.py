"""The objects the commands print, in az ml's keys and value types.

az ml prints an entity as azure-ai-ml's marshmallow schema dumps it (``entity.dump()``,
azure-cli-extensions ``azext_mlv2/manual/custom/online_endpoint.py``), and azure-cli adds
``resourceGroup`` to every object whose ``id`` is an ARM id (azure-cli-core
``commands/transform.py``, ``_add_resource_group``). The schemas read
(Azure/azure-sdk-for-python ``sdk/ml/azure-ai-ml/azure/ai/ml/_schema/``):

* endpoint: ``_endpoint/endpoint.py`` ``EndpointSchema`` (id, name, description, tags,
  provisioning_state, properties, auth_mode, scoring_uri, location, openapi_uri, identity)
  and ``_endpoint/online/online_endpoint.py`` (traffic, mirror_traffic, kind; Kubernetes:
  compute; managed: public_network_access). Times are in ``properties`` (``createdAt``,
  ``lastModifiedAt``, as the service writes them: ``2026-04-17T16:55:44.738923+0000``);
  ``properties."azureml.onlineendpointid"`` is the id in lower case.
* deployment: ``_deployment/deployment.py`` and ``online/online_deployment.py`` (id,
  properties, instance_count, type ``kubernetes``/``managed``, scale_settings with only
  ``type`` when ``default``, creation_context); resources as Kubernetes quantities
  (``online/resource_settings_schema.py``: cpu, memory, gpu are strings).
* model and environment: ``assets/model.py``, ``assets/environment.py``, ``assets/asset.py``
  (version is a string, creation_context with ISO times, id the version's ARM id).
* compute: ``compute/compute.py`` (id, type, location, provisioning_errors, created_on,
  resource_id), ``compute/kubernetes_compute.py`` (namespace, properties, identity).
* creation_context: ``job/creation_context.py`` (marshmallow ``DateTime``: ISO 8601).
* get-credentials: azure-cli turns the result object's attributes into camelCase keys
  (``accessToken``, ``expiryTimeUtc``...); the token's times are the REST model's int64
  epoch seconds (mfe.json ``EndpointAuthToken``), so they print as integers.

modeldeck's own keys (ready_replicas, error, revision, control, ...) stay beside az's. The
domain types are not changed for this: the dashboard reads them, not this output.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..services.api.domain import DriverKind, Endpoint, EndpointToken, Identity, to_dict
from ..services.armids import Scope, iso_time, placeholder_uuid

if TYPE_CHECKING:  # types only: listing endpoints defines no other group (cold start)
    from ..services.api.domain import Cluster, Deployment, Environment, Model


def _service_time(epoch: float | None) -> str | None:
    """A time as the service writes it in an endpoint's ``properties`` (``+0000``)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def _creation_context(created: float | None, modified: float | None = None) -> dict[str, Any]:
    out = {"created_at": iso_time(created), "last_modified_at": iso_time(modified or created)}
    return {k: v for k, v in out.items() if v is not None}


def _arm(out: dict[str, Any], scope: Scope, arm_id: str) -> dict[str, Any]:
    """``id`` first and ``resourceGroup`` beside it, as az prints them."""
    return {"id": arm_id, **out, "resourceGroup": scope.resource_group}


def endpoint(ep: Endpoint, scope: Scope) -> dict[str, Any]:
    arm_id = scope.id("onlineEndpoints", ep.name)
    out = to_dict(ep)
    created = out.pop("created_at", None)
    if ep.identity is not None:
        out["identity"] = to_dict(ep.identity)
    elif scope.placeholders:  # the local workspace: a stable one (services/armids.py)
        ident = Identity(principal_id=placeholder_uuid(arm_id), tenant_id=scope.tenant_id)
        out["identity"] = to_dict(ident)
    else:  # ARM gave none: az prints none
        out["identity"] = None
    props = dict(ep.properties)
    props.setdefault("azureml.onlineendpointid", arm_id.lower())
    if created is not None:
        props.setdefault("createdAt", _service_time(created) or "")
    out["properties"] = props
    out["location"] = ep.location or scope.location or None
    if out.get("public_network_access") is None:
        out.pop("public_network_access", None)
    return _arm(out, scope, arm_id)


def _quantity(value: float | None, unit: str = "") -> str | None:
    if value is None:
        return None
    return f"{value:g}{unit}"


def _resources(res: dict[str, Any]) -> dict[str, Any]:
    """Our resources (cores, GiB, GPUs) as az prints a Kubernetes deployment's
    (``ResourceSettingsSchema``: strings, memory in ``Gi``); unset ones left out."""
    out: dict[str, Any] = {}
    for part in ("requests", "limits"):
        rs = res.get(part) or {}
        item = {
            "cpu": _quantity(rs.get("cpu")),
            "memory": _quantity(rs.get("memory_gb"), "Gi"),
            "gpu": str(rs["gpu"]) if rs.get("gpu") else None,
        }
        out[part] = {k: v for k, v in item.items() if v is not None}
    return out


def deployment(dep: Deployment, scope: Scope, endpoint_kind: str = "K8s") -> dict[str, Any]:
    arm_id = scope.id("onlineEndpoints", dep.endpoint_name, "deployments", dep.name)
    out = to_dict(dep)
    created, updated = out.pop("created_at", None), out.pop("updated_at", None)
    out["creation_context"] = _creation_context(created, updated)
    out["type"] = "managed" if endpoint_kind.lower() == "managed" else "kubernetes"
    if (out.get("scale_settings") or {}).get("type") == "default":
        out["scale_settings"] = {"type": "default"}
    out["resources"] = _resources(out.get("resources") or {})
    return _arm(out, scope, arm_id)


def model(m: Model, scope: Scope) -> dict[str, Any]:
    out = to_dict(m)
    out["version"] = str(m.version)
    out["creation_context"] = _creation_context(out.pop("created_at", None))
    out.setdefault("properties", {})
    return _arm(out, scope, scope.id("models", m.name, "versions", str(m.version)))


def environment(env: Environment, scope: Scope) -> dict[str, Any]:
    out = to_dict(env)
    out["creation_context"] = _creation_context(out.pop("created_at", None))
    return _arm(out, scope, scope.id("environments", env.name, "versions", env.version))


def compute(c: Cluster, scope: Scope) -> dict[str, Any]:
    out = to_dict(c)
    out["created_on"] = iso_time(out.pop("created_at", None))
    if not out.get("type"):
        out["type"] = "kubernetes" if c.driver is DriverKind.KUBERNETES else str(c.driver)
    out["location"] = c.location or scope.location or None
    out["provisioning_errors"] = c.error
    return _arm(out, scope, scope.id("computes", c.name))


def token(t: EndpointToken) -> dict[str, Any]:
    """get-credentials of a token endpoint: az prints the REST model's int64 epoch seconds."""
    return {
        "accessToken": t.accessToken,
        "expiryTimeUtc": int(t.expiryTimeUtc),
        "refreshAfterTimeUtc": int(t.refreshAfterTimeUtc),
        "tokenType": t.tokenType,
    }
