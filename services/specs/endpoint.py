"""The endpoint shape: ``kubernetesOnlineEndpoint`` YAML (and flags) into an EndpointSpec."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import validation
from ..api.domain import AuthMode, EndpointSpec
from ..api.errors import InvalidInput
from ..api.rollouts import RolloutSpec
from .document import Doc, at, doc_from_data, from_flag, read_yaml
from .rollout import rollout_from_doc
from .schema import (
    BackendWarnings,
    Key,
    Shape,
    choice,
    field_path,
    percent_map,
    read_text,
    str_map,
    text,
)
from .setargs import Override, apply_overrides

#: ``type:`` of an endpoint or a deployment: checked, not kept (the compute decides)
TYPE_KEY = Key("type", choice(["kubernetes", "managed"]), default="kubernetes", keep=False)

ENDPOINT = Shape(
    "endpoint",
    (
        Key("$schema"),
        Key("name"),  # required: read by endpoint_from_doc
        TYPE_KEY,
        Key("kind"),
        Key("compute"),  # a cluster name, azureml:NAME or an ARM id: read by endpoint_from_doc
        Key("auth_mode", choice([m.value for m in AuthMode], AuthMode.parse)),
        Key("description", text),
        Key("tags", str_map),
        Key("traffic", percent_map),
        Key("mirror_traffic", percent_map),
        Key("identity", ignored="identity is not used by the local workspace"),
        Key(
            "public_network_access",
            choice(["enabled", "disabled"]),
            default=None,
            sent_by="endpoint.public_network_access",  # ARM's publicNetworkAccess
            ignored="public_network_access is not used: the gateway listens on loopback",
        ),
        Key("properties", ignored=""),
        # what `show -o yaml` printed: read by `update -f` (document.file_revision)
        Key("revision", ignored=""),
        # modeldeck's own extension block (a progressive rollout): read by specs/rollout.py
        Key("modeldeck"),
    ),
    EndpointSpec,
)
#: the keys an endpoint accepts
ENDPOINT_KEYS = ENDPOINT.names


@dataclass(frozen=True)
class LoadedEndpoint:
    spec: EndpointSpec
    warnings: list[str] = field(default_factory=list)
    #: the document named these (an update applies only what is named)
    given: frozenset[str] = frozenset()
    #: warnings of the back ends that do not send a key given (``Shape.backend_warnings``)
    backend_warnings: BackendWarnings = ()
    #: the ``modeldeck.rollout`` block: started once the endpoint is applied
    rollout: RolloutSpec | None = None


def load_endpoint(
    path: str | Path | None = None,
    overrides: Iterable[Override] = (),
    *,
    name: str | None = None,
    auth_mode: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> LoadedEndpoint:
    """An endpoint from a YAML file (or from ``base`` data / flags alone), with --set applied."""
    doc = read_yaml(path, "endpoint") if path else doc_from_data(base or {}, "endpoint")
    # --set first, then the flags: they win (azext_mlv2 ml_online_endpoint_create appends
    # name and auth_mode to params_override last; update sets the name last)
    apply_overrides(doc, overrides)
    if name:
        from_flag(doc, "name", "--name", name)
    if auth_mode:
        doc.data["auth_mode"] = auth_mode
        doc.where[("auth_mode",)] = f"--auth-mode {auth_mode}"
        doc.from_set.add(("auth_mode",))
    return endpoint_from_doc(doc)


def endpoint_from_doc(doc: Doc) -> LoadedEndpoint:
    data = doc.data
    ENDPOINT.check(doc, data)
    warnings = ENDPOINT.warnings(doc, data)
    raw_name = data.get("name")
    if raw_name is None:
        raise InvalidInput(
            "name",
            None,
            "is required",
            "set name: in the YAML or pass --name",
            message=f"{doc.source}: the endpoint needs a name",
        )
    try:
        ep_name = validation.name(raw_name, "name")
    except InvalidInput as exc:
        raise at(doc, ("name",), exc) from None
    compute = read_text(doc, data, "compute", ()) or ""
    compute = validation.strip_azureml(compute)
    if "/" in compute:  # an ARM id: azureml:/subscriptions/.../computes/NAME
        compute = compute.rstrip("/").rsplit("/", 1)[-1]
    read = (
        "auth_mode",
        "type",
        "description",
        "tags",
        "traffic",
        "mirror_traffic",
        "public_network_access",
    )
    spec = EndpointSpec(name=ep_name, compute=compute, **ENDPOINT.read(doc, data, (), *read))
    try:
        validation.endpoint_spec(spec)
    except InvalidInput as exc:
        raise at(doc, field_path(exc.field), exc) from None
    return LoadedEndpoint(
        spec,
        warnings,
        frozenset(data),
        ENDPOINT.backend_warnings(doc, data),
        rollout_from_doc(doc, ep_name),
    )
