"""Azure ML v2 YAML (``kubernetesOnlineEndpoint`` / ``kubernetesOnlineDeployment``, and the
managed online keys where they make sense) into domain specs, and the "apply" helpers the CLI
and the TUI share.

* paths (``code_configuration.code``, an inline ``model.path``) are relative to the YAML file;
* an unknown key is named with its line and the closest known key
  ("blue.yml: line 7: unknown key 'instance_cont' in deployment; did you mean 'instance_count'?");
* enum values are case-insensitive (``auth_mode: Key``), as ``az ml`` takes them;
* ``--set key=value`` overrides (dotted paths) are applied to the document before validation;
* ``environment``: an image (Kubernetes uses it; local pools warn that they do not), a
  registered ``azureml:NAME:VERSION``, a curated name, or an inline mapping whose
  ``conda_file`` is read and resolved here (``spec.environment_inline``; local pools build
  it, see :mod:`services.environments`);
* an inline ``model: {path: ...}`` is a model to register first (see
  :func:`create_deployment`), as ``az ml`` does.

Every problem is an :class:`InvalidInput` naming where (file and line, or the ``--set``),
the field, the value, the rule and the fix. ``yaml`` is imported only when a file is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import inputs
from ..api import validation
from ..api.domain import (
    AuthMode,
    ClusterDriver,
    ClusterPurpose,
    CodeConfiguration,
    DeploymentRole,
    DeploymentSpec,
    EndpointSpec,
    ModelSpec,
    Probe,
    RequestSettings,
    Resources,
    ResourceSet,
    ScaleSettings,
)
from ..api.errors import Conflict, InvalidInput, ModeldeckError
from . import yamlload

if TYPE_CHECKING:
    from ..api.workspace import OperationHandle, Workspace

GPU_KEY = "nvidia.com/gpu"

# --------------------------------------------------------------------------- the keys we accept

ENDPOINT_KEYS = (
    "$schema",
    "name",
    "type",
    "kind",
    "compute",
    "auth_mode",
    "description",
    "tags",
    "traffic",
    "mirror_traffic",
    "identity",
    "public_network_access",
    "properties",
    "revision",
)
DEPLOYMENT_KEYS = (
    "$schema",
    "name",
    "type",
    "endpoint_name",
    "model",
    "code_configuration",
    "environment",
    "environment_variables",
    "instance_count",
    "instance_type",
    "scale_settings",
    "request_settings",
    "liveness_probe",
    "readiness_probe",
    "resources",
    "description",
    "tags",
    "properties",
    "app_insights_enabled",
    "data_collector",
    "egress_public_network_access",
    "model_mount_path",
    "private_network_connection",
    "runtime",
    "role",
    "storage_uri",
    "revision",
)
MODEL_KEYS = ("$schema", "name", "version", "path", "description", "tags", "type", "properties")
CODE_KEYS = ("code", "scoring_script")
SCALE_KEYS = (
    "type",
    "min_instances",
    "max_instances",
    "target_utilization_percentage",
    "polling_interval",
)
REQUEST_KEYS = ("request_timeout_ms", "max_concurrent_requests_per_instance", "max_queue_wait_ms")
PROBE_KEYS = ("initial_delay", "period", "timeout", "failure_threshold", "success_threshold")
RESOURCES_KEYS = ("requests", "limits")
RESOURCE_SET_KEYS = ("cpu", "memory", GPU_KEY)
ENVIRONMENT_KEYS = (
    "$schema",
    "name",
    "version",
    "image",
    "conda_file",
    "build",
    "inference_config",
    "os_type",
    "description",
    "tags",
)

# Accepted for compatibility, not used locally: key -> why (a one-line warning), or "" (silent).
_IGNORED_DEPLOYMENT = {
    "instance_type": "instance_type is not used by local pools: resources.requests decide what each replica takes",
    "app_insights_enabled": "app_insights_enabled is not used: the gateway exposes metrics at /metrics",
    "data_collector": "data_collector is not used: logs and metrics stream with get-logs and the dashboard",
    "model_mount_path": "model_mount_path is not used: the model is under $AZUREML_MODEL_DIR",
    "egress_public_network_access": "",
    "private_network_connection": "",
    "properties": "",
    "revision": "",  # what `show -o yaml` printed: read by `update -f` (file_revision)
}
_IGNORED_ENDPOINT = {
    "identity": "identity is not used by the local workspace",
    "public_network_access": "public_network_access is not used: the gateway listens on loopback",
    "properties": "",
    "revision": "",  # as in _IGNORED_DEPLOYMENT
}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LoadedEndpoint:
    spec: EndpointSpec
    warnings: list[str] = field(default_factory=list)
    #: the document named these (an update applies only what is named)
    given: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LoadedDeployment:
    spec: DeploymentSpec
    #: an inline ``model: {path: ...}``: register it, then point ``spec.model`` at it
    model_to_register: ModelSpec | None = None
    warnings: list[str] = field(default_factory=list)
    #: warnings that hold only on a local pool (the environment image it does not use):
    #: :func:`deployment_warnings` adds them when the endpoint's cluster is one
    pool_warnings: list[str] = field(default_factory=list)
    #: warnings that hold only on a Kubernetes cluster (a conda file it does not build yet)
    kubernetes_warnings: list[str] = field(default_factory=list)
    #: what a local pool cannot build (a conda-only package, an unknown curated name):
    #: :func:`deployment_warnings` raises the first when the endpoint's cluster is a pool
    pool_errors: list[InvalidInput] = field(default_factory=list)
    #: no code_configuration and a registered model reference: served as an MLflow no-code
    #: deployment if that model is an ``mlflow_model`` (looked up when it is sent)
    no_code_model: str | None = None


# --------------------------------------------------------------------------- documents


@dataclass
class _Doc:
    """A YAML document as plain data, and where each key came from."""

    data: dict[str, Any]
    source: str  # the file name as the user wrote it, or a label
    base_dir: Path | None  # relative paths in the file are relative to this
    where: dict[tuple[str, ...], str] = field(default_factory=dict)  # path -> "line 7"
    from_set: set[tuple[str, ...]] = field(default_factory=set)

    def loc(self, path: Sequence[str]) -> str:
        path = tuple(path)
        while path:
            if path in self.where:
                at = self.where[path]
                return at if path in self.from_set else f"{self.source}: {at}"
            path = path[:-1]
        return self.source

    def base_for(self, path: Sequence[str]) -> Path | None:
        """Where a relative path at ``path`` is relative to: the file, or the cwd for --set."""
        return Path.cwd() if tuple(path) in self.from_set else self.base_dir


def read_yaml(path: str | Path, what: str) -> _Doc:
    """Read one YAML mapping with the line of each key. Errors are InvalidInput."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(
            "file",
            str(path),
            "does not exist" if not p.exists() else "is not a file",
            f"give the path of the {what} YAML file (-f FILE)",
        )
    text = yamlload.read_text(p, field="file")  # at most yamlload.MAX_BYTES are read
    return parse_yaml(text, str(path), p.resolve().parent, what)


def parse_yaml(text: str, source: str, base_dir: Path | None, what: str) -> _Doc:
    import yaml  # deferred: the CLI's cold start stays small

    loader = None
    try:
        # aliases, expansion and nesting are bounded while composing (yamlload)
        loader = yamlload.loader_class()(text)
        node = loader.get_single_node()
        doc = _Doc({}, source, base_dir)
        if node is None:
            raise InvalidInput(
                "file",
                source,
                f"is empty; expected a {what} mapping",
                "see examples/endpoint.yml and examples/blue.yml",
            )
        if not isinstance(node, yaml.MappingNode):
            raise InvalidInput(
                "file",
                source,
                f"must be a mapping of {what} keys",
                "write key: value lines at the top level (see examples/blue.yml)",
                message=f"{source}: line {node.start_mark.line + 1}: expected a mapping of {what} keys",
            )
        doc.data = _node_value(loader, node, (), doc)
        return doc
    except (yaml.YAMLError, RecursionError) as exc:
        mark = loader.get_mark() if loader is not None else None
        raise yamlload.as_invalid(exc, source, mark=mark) from None
    finally:
        if loader is not None:
            loader.dispose()


_MAX_DEPTH = 32


def _node_value(loader: Any, node: Any, path: tuple[str, ...], doc: _Doc, depth: int = 0) -> Any:
    import yaml

    if depth > _MAX_DEPTH:  # also what a recursive alias (&a [*a]) turns into
        raise InvalidInput(
            "file",
            doc.source,
            f"nests deeper than {_MAX_DEPTH} levels",
            "remove recursive aliases; no key of a spec nests that deep",
            message=f"{doc.source}: line {node.start_mark.line + 1}: nested too deeply",
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key = str(key) if not isinstance(key, str) else key
            line = f"line {key_node.start_mark.line + 1}"
            if key in out:
                raise InvalidInput(
                    ".".join((*path, key)),
                    key,
                    "is given twice",
                    "keep one of them",
                    message=f"{doc.source}: {line}: key '{key}' is given twice",
                )
            sub = (*path, key)
            doc.where[sub] = line
            out[key] = _node_value(loader, value_node, sub, doc, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_value(loader, n, path, doc, depth + 1) for n in node.value]
    return loader.construct_object(node, deep=True)


def doc_from_data(data: Mapping[str, Any], source: str) -> _Doc:
    """A document built from data we already have (the current spec, or flags)."""
    return _Doc(dict(data), source, None)


# --------------------------------------------------------------------------- --set overrides


def parse_set_value(text: str) -> Any:
    """A --set value as YAML reads a scalar: ``2`` is a number, ``true`` a bool, ``Key`` text."""
    if text.strip() == "":
        return ""
    try:
        value = yamlload.safe_load(text, "--set")
    except InvalidInput:
        return text
    return value if isinstance(value, str | int | float | bool | list | dict) else text


def _split_path(key: str) -> list[str]:
    parts = [p for p in key.strip().split(".")]
    # nvidia.com/gpu contains a dot: put it back together
    out: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i] == "nvidia" and i + 1 < len(parts) and parts[i + 1] == "com/gpu":
            out.append(GPU_KEY)
            i += 2
            continue
        out.append(parts[i])
        i += 1
    # map keys (tags, environment variables, traffic) may hold dots themselves
    if out and out[0] in ("tags", "environment_variables", "traffic", "mirror_traffic"):
        out = [out[0], ".".join(out[1:])] if len(out) > 1 else out
    return out


def _cut(raw: str, limit: int = 80) -> str:
    """A --set item as error messages name it: cut past ``limit`` characters, as values are."""
    return raw if len(raw) <= limit else raw[: limit - 3] + "..."


def apply_overrides(doc: _Doc, overrides: Iterable[str]) -> None:
    """Apply ``--set key=value`` items (dotted paths) to the document, in order."""
    for raw in overrides:
        key, sep, text = raw.partition("=")
        path = _split_path(key)
        if not sep or not key.strip() or any(not p for p in path):
            raise InvalidInput(
                "--set",
                raw,
                "must be KEY=VALUE with a dotted key",
                "for example --set instance_count=2 or --set request_settings.request_timeout_ms=1000",
            )
        value = parse_set_value(text)
        node: dict[str, Any] = doc.data
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise InvalidInput(
                    "--set",
                    raw,
                    f"'{where}' is not a mapping, so '{key}' cannot be set",
                    f"set '{where}' itself, e.g. --set {where}=VALUE",
                    message=f"--set {_cut(raw)}: '{where}' is not a mapping",
                )
            node = nxt
        node[path[-1]] = value
        for i in range(1, len(path) + 1):
            sub = tuple(path[:i])
            if sub not in doc.where or i == len(path):
                doc.where[sub] = f"--set {_cut(raw)}"
                doc.from_set.add(sub)


# --------------------------------------------------------------------------- checking helpers


def _suggest(key: str, allowed: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not match:
        lowered = {a.lower(): a for a in allowed}
        return lowered.get(key.lower())
    return match[0]


def _check_keys(
    doc: _Doc, mapping: Mapping[str, Any], path: tuple[str, ...], allowed: Sequence[str], what: str
) -> None:
    for key in mapping:
        if key in allowed:
            continue
        hint = _suggest(key, [a for a in allowed if a != "$schema"])
        full = ".".join((*path, key))
        message = f"{doc.loc((*path, key))}: unknown key '{key}' in {what}"
        if hint:
            message += f"; did you mean '{hint}'?"
            fix = f"rename it to '{hint}'"
        else:
            fix = "remove it; the keys accepted here are: " + ", ".join(
                a for a in allowed if a != "$schema"
            )
        raise InvalidInput(full, key, f"is not a key of {what}", fix, message=message)


def _at(doc: _Doc, path: Sequence[str], exc: InvalidInput) -> InvalidInput:
    """The same error, prefixed with where the value came from."""
    loc = doc.loc(path)
    err = InvalidInput(exc.field, exc.value, exc.rule, exc.fix, message=f"{loc}: {exc.message}")
    return err


def _field_path(field_name: str) -> tuple[str, ...]:
    path = _split_path(field_name.replace(".memory_gb", ".memory"))
    return tuple(path)


def _mapping(doc: _Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _at(
            doc,
            (*path, key),
            InvalidInput(
                ".".join((*path, key)),
                value,
                "must be a mapping of keys to values",
                f"write '{key}:' on its own line with indented keys below it",
            ),
        )
    return value


def _text(doc: _Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _at(
            doc,
            (*path, key),
            InvalidInput(".".join((*path, key)), value, "must be text", f"write {key}: some text"),
        )
    return str(value)


def _int(
    doc: _Doc,
    data: Mapping[str, Any],
    key: str,
    path: tuple[str, ...],
    default: int,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    value = data.get(key)
    if value is None:
        return default
    try:
        return validation.integer(value, ".".join((*path, key)), lo, hi)
    except InvalidInput as exc:
        if exc.fix is None:
            exc = InvalidInput(exc.field, exc.value, exc.rule, f"write {key}: {default}")
        raise _at(doc, (*path, key), exc) from None


def _bool(doc: _Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _at(
        doc,
        (*path, key),
        InvalidInput(".".join((*path, key)), value, "must be true or false", f"write {key}: true"),
    )


def _str_map(doc: _Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]) -> dict[str, str]:
    value = _mapping(doc, data, key, path)
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            v = ""
        if isinstance(v, dict | list):
            raise _at(
                doc,
                (*path, key, k),
                InvalidInput(
                    f"{'.'.join((*path, key))}.{k}",
                    v,
                    "must be text",
                    "quote the value to make it text",
                ),
            )
        out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _percent_map(
    doc: _Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]
) -> dict[str, int]:
    value = _mapping(doc, data, key, path)
    out: dict[str, int] = {}
    for k, v in value.items():
        try:
            out[str(k)] = validation.integer(v, f"{key}.{k}", 0, 100)
        except InvalidInput as exc:
            raise _at(doc, (*path, key, k), exc) from None
    return out


def _enum(
    doc: _Doc,
    data: Mapping[str, Any],
    key: str,
    path: tuple[str, ...],
    choices: Sequence[str],
    default: str,
) -> str:
    """Case-insensitive; '-' and '_' and CamelCase are alike (TargetUtilization)."""
    value = data.get(key)
    if value is None:
        return default

    def norm(s: str) -> str:
        return re.sub(r"[-_\s]", "", s).lower()

    if isinstance(value, str):
        for c in choices:
            if norm(c) == norm(value):
                return c
    raise _at(
        doc,
        (*path, key),
        InvalidInput(
            ".".join((*path, key)),
            value,
            "must be one of " + ", ".join(choices),
            f"write {key}: {choices[0]}",
        ),
    )


def _resolve_path(doc: _Doc, path: tuple[str, ...], value: str, what: str) -> str:
    if re.match(r"^(azureml|https?|wasbs?|abfss?)://", value) or value.startswith("azureml:"):
        raise _at(
            doc,
            path,
            InvalidInput(
                ".".join(path),
                value,
                f"must be a local {what} path; remote assets are not supported here",
                "give a path relative to the YAML file",
            ),
        )
    p = Path(value).expanduser()
    base = doc.base_for(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve()) if base is not None or p.is_absolute() else value


# --------------------------------------------------------------------------- endpoints


def load_endpoint(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    name: str | None = None,
    auth_mode: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> LoadedEndpoint:
    """An endpoint from a YAML file (or from ``base`` data / flags alone), with --set applied."""
    doc = read_yaml(path, "endpoint") if path else doc_from_data(base or {}, "endpoint")
    if name:
        _from_flag(doc, "name", "--name", name)
    if auth_mode:
        doc.data["auth_mode"] = auth_mode
        doc.where[("auth_mode",)] = f"--auth-mode {auth_mode}"
        doc.from_set.add(("auth_mode",))
    apply_overrides(doc, overrides)
    return endpoint_from_doc(doc)


def endpoint_from_doc(doc: _Doc) -> LoadedEndpoint:
    data = doc.data
    warnings: list[str] = []
    _check_keys(doc, data, (), ENDPOINT_KEYS, "endpoint")
    for key, why in _IGNORED_ENDPOINT.items():
        if key in data and why:
            warnings.append(f"{doc.loc((key,))}: {why}")
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
        raise _at(doc, ("name",), exc) from None
    compute = _text(doc, data, "compute", ()) or ""
    if compute.startswith("azureml:"):
        compute = compute[len("azureml:") :]
    if "/" in compute:  # an ARM id: azureml:/subscriptions/.../computes/NAME
        compute = compute.rstrip("/").rsplit("/", 1)[-1]
    mode = _enum(doc, data, "auth_mode", (), [m.value for m in AuthMode], AuthMode.KEY.value)
    if "type" in data:
        _enum(doc, data, "type", (), ["kubernetes", "managed"], "kubernetes")
    spec = EndpointSpec(
        name=ep_name,
        compute=compute,
        auth_mode=AuthMode.parse(mode),
        description=_text(doc, data, "description", ()) or "",
        tags=_str_map(doc, data, "tags", ()),
        traffic=_percent_map(doc, data, "traffic", ()),
        mirror_traffic=_percent_map(doc, data, "mirror_traffic", ()),
    )
    try:
        validation.endpoint_spec(spec)
    except InvalidInput as exc:
        raise _at(doc, _field_path(exc.field), exc) from None
    return LoadedEndpoint(spec, warnings, frozenset(data))


# --------------------------------------------------------------------------- deployments


def load_deployment(
    path: str | Path,
    overrides: Iterable[str] = (),
    *,
    name: str | None = None,
    endpoint_name: str | None = None,
) -> LoadedDeployment:
    """A deployment from a YAML file; ``name``/``endpoint_name`` (flags) win over the file."""
    doc = read_yaml(path, "deployment")
    for key, flag, value in (
        ("name", "--name", name),
        ("endpoint_name", "--endpoint", endpoint_name),
    ):
        if value:
            _from_flag(doc, key, flag, value)
    apply_overrides(doc, overrides)
    return deployment_from_doc(doc)


def _from_flag(doc: _Doc, key: str, flag: str, value: str) -> None:
    """A flag's value for a top-level key: an error about it names the flag, not the file."""
    doc.data[key] = value
    doc.where[(key,)] = f"{flag} {value}"
    doc.from_set.add((key,))


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
    for key in ("environment", "storage_uri"):
        if data.get(key) is None:
            data.pop(key, None)
    return data


def updated_deployment(current: DeploymentSpec, overrides: Iterable[str]) -> LoadedDeployment:
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


def _model(
    doc: _Doc, data: Mapping[str, Any], ep_name: str, dep_name: str
) -> tuple[str, ModelSpec | None]:
    value = data.get("model")
    if value is None:
        raise InvalidInput(
            "model",
            None,
            "is required",
            "set model: azureml:NAME:VERSION (a registered model), or model: {path: ./model}",
            message=f"{doc.source}: the deployment needs a model",
        )
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        ref = str(value).strip()
        return ref, None
    if not isinstance(value, dict):
        raise _at(
            doc,
            ("model",),
            InvalidInput(
                "model",
                value,
                "must be a model reference (azureml:NAME:VERSION) or a mapping with path:",
                "write model: azureml:sklearn-demo:1, or model: {path: ./model}",
            ),
        )
    _check_keys(doc, value, ("model",), MODEL_KEYS, "model")
    raw_path = _text(doc, value, "path", ("model",))
    if not raw_path:
        raise InvalidInput(
            "model.path",
            None,
            "is required in an inline model",
            "set model.path to the model file or folder, relative to the YAML file",
            message=f"{doc.loc(('model',))}: an inline model needs a path",
        )
    model_path = _resolve_path(doc, ("model", "path"), raw_path, "model")
    default_name = f"{ep_name}-{dep_name}"[:32].rstrip("-")
    mname = _text(doc, value, "name", ("model",)) or default_name
    version = value.get("version")
    spec = ModelSpec(
        name=mname,
        path=model_path,
        version=None if version is None else _int(doc, value, "version", ("model",), 1, 1),
        description=_text(doc, value, "description", ("model",)) or "",
        tags=_str_map(doc, value, "tags", ("model",)),
        type=_model_type(doc, value, ("model",)),
    )
    try:
        validation.model_spec(spec)
    except InvalidInput as exc:
        sub = "path" if exc.field == "path" else exc.field
        raise _at(doc, ("model", sub), _renamed(exc, f"model.{exc.field}")) from None
    # a placeholder that passes the reference rule until the model is registered
    return f"azureml:{mname}@latest", spec


def _model_type(doc: _Doc, data: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """A model's ``type:`` (az ml's spellings); triton_model is named in the error."""
    return _enum(doc, data, "type", path, list(validation.MODEL_TYPES), "custom_model")


def _renamed(exc: InvalidInput, field_name: str) -> InvalidInput:
    return InvalidInput(
        field_name,
        exc.value,
        exc.rule,
        exc.fix,
        message=exc.message.replace(f"invalid {exc.field} ", f"invalid {field_name} ", 1),
    )


def _resource_set(
    doc: _Doc, data: Mapping[str, Any], kind: str, default: ResourceSet
) -> ResourceSet:
    path = ("resources", kind)
    rs = _mapping(doc, data, kind, ("resources",))
    _check_keys(doc, rs, path, RESOURCE_SET_KEYS, f"resources.{kind}")
    cpu, mem, gpu = default.cpu, default.memory_gb, default.gpu
    try:
        if rs.get("cpu") is not None:
            cpu = validation.cpu_quantity(rs["cpu"], f"resources.{kind}.cpu")
        if rs.get("memory") is not None:
            mem = validation.memory_quantity(rs["memory"], f"resources.{kind}.memory")
    except InvalidInput as exc:
        raise _at(doc, _field_path(exc.field), exc) from None
    if rs.get(GPU_KEY) is not None:
        gpu = _int(doc, rs, GPU_KEY, path, 0, 0, 16)
    return ResourceSet(cpu=cpu, memory_gb=mem, gpu=gpu)


def deployment_from_doc(doc: _Doc, *, warn_environment: bool = True) -> LoadedDeployment:
    data = doc.data
    warnings: list[str] = []
    pool_warnings: list[str] = []
    _check_keys(doc, data, (), DEPLOYMENT_KEYS, "deployment")
    for key, why in _IGNORED_DEPLOYMENT.items():
        if key in data and why:
            warnings.append(f"{doc.loc((key,))}: {why}")
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
            raise _at(doc, (key,), exc) from None
    if "type" in data:
        _enum(doc, data, "type", (), ["kubernetes", "managed"], "kubernetes")
    model_ref, model_to_register = _model(doc, data, names["endpoint_name"], names["name"])

    # code
    code_cfg = _mapping(doc, data, "code_configuration", ())
    _check_keys(doc, code_cfg, ("code_configuration",), CODE_KEYS, "code_configuration")
    code = _text(doc, code_cfg, "code", ("code_configuration",))
    script = _text(doc, code_cfg, "scoring_script", ("code_configuration",))
    no_code = None
    if not code_cfg:
        no_code = _mlflow_no_code(doc, data, model_to_register, names)
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
    checked = doc.base_for(code_path) is not None
    if no_code is None:
        code = _resolve_path(doc, code_path, code, "code")
    try:
        inputs.scoring_script_rule(script)  # relative, no '..': whatever the base
    except InvalidInput as exc:
        raise _at(doc, ("code_configuration", "scoring_script"), exc) from None
    if checked:
        if not Path(code).is_dir():
            raise _at(
                doc,
                code_path,
                InvalidInput(
                    "code_configuration.code",
                    code,
                    "is not a folder",
                    "give the folder that holds the scoring script, relative to the YAML file",
                ),
            )
        try:
            inputs.check_code(code, script)  # a regular file inside the folder
        except InvalidInput as exc:
            raise _at(doc, _field_path(exc.field), exc) from None

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
        _check_keys(doc, env_value, ("environment",), ENVIRONMENT_KEYS, "environment")
        environment, environment_inline, env_warnings, kube_warnings = _inline_environment(
            doc, env_value, f"{names['endpoint_name']}-{names['name']}"[:64], pool_errors
        )
        if warn_environment:
            pool_warnings += env_warnings
    elif env_value is not None:
        environment = _text(doc, data, "environment", ())
        if environment:
            env_warnings = _referenced_environment(doc, environment, pool_errors)
            if warn_environment:
                pool_warnings += env_warnings

    # resources
    res = _mapping(doc, data, "resources", ())
    _check_keys(doc, res, ("resources",), RESOURCES_KEYS, "resources")
    default = Resources()
    resources = Resources(
        requests=_resource_set(doc, res, "requests", default.requests),
        limits=_resource_set(doc, res, "limits", default.limits),
    )

    # scale settings
    ss = _mapping(doc, data, "scale_settings", ())
    _check_keys(doc, ss, ("scale_settings",), SCALE_KEYS, "scale_settings")
    sd = ScaleSettings()
    sp = ("scale_settings",)
    scale = ScaleSettings(
        type=_enum(doc, ss, "type", sp, ["default", "target_utilization"], sd.type),
        min_instances=_int(doc, ss, "min_instances", sp, sd.min_instances),
        max_instances=_int(doc, ss, "max_instances", sp, sd.max_instances),
        target_utilization_percentage=_int(
            doc, ss, "target_utilization_percentage", sp, sd.target_utilization_percentage
        ),
        polling_interval=_int(doc, ss, "polling_interval", sp, sd.polling_interval),
    )

    # request settings
    rq = _mapping(doc, data, "request_settings", ())
    _check_keys(doc, rq, ("request_settings",), REQUEST_KEYS, "request_settings")
    rd = RequestSettings()
    rp = ("request_settings",)
    request = RequestSettings(
        request_timeout_ms=_int(doc, rq, "request_timeout_ms", rp, rd.request_timeout_ms),
        max_concurrent_requests_per_instance=_int(
            doc,
            rq,
            "max_concurrent_requests_per_instance",
            rp,
            rd.max_concurrent_requests_per_instance,
        ),
        max_queue_wait_ms=_int(doc, rq, "max_queue_wait_ms", rp, rd.max_queue_wait_ms),
    )

    probes: dict[str, Probe] = {}
    for probe_name in ("liveness_probe", "readiness_probe"):
        pr = _mapping(doc, data, probe_name, ())
        _check_keys(doc, pr, (probe_name,), PROBE_KEYS, probe_name)
        pd = Probe()
        pp = (probe_name,)
        probes[probe_name] = Probe(**{k: _int(doc, pr, k, pp, getattr(pd, k)) for k in PROBE_KEYS})

    _bool(doc, data, "app_insights_enabled", ())
    spec = DeploymentSpec(
        name=names["name"],
        endpoint_name=names["endpoint_name"],
        model=model_ref,
        code_configuration=CodeConfiguration(code=code, scoring_script=script),
        instance_count=_int(doc, data, "instance_count", (), 1),
        resources=resources,
        scale_settings=scale,
        request_settings=request,
        liveness_probe=probes["liveness_probe"],
        readiness_probe=probes["readiness_probe"],
        environment_variables=_str_map(doc, data, "environment_variables", ()),
        environment=environment,
        environment_inline=environment_inline,
        runtime=_enum(doc, data, "runtime", (), ["default", "azmlinfsrv"], "default"),
        role=DeploymentRole.parse(
            _enum(doc, data, "role", (), [r.value for r in DeploymentRole], "treatment")
        ),
        description=_text(doc, data, "description", ()) or "",
        tags=_str_map(doc, data, "tags", ()),
        storage_uri=_text(doc, data, "storage_uri", ()),
    )
    try:
        validation.deployment_spec(spec)
    except InvalidInput as exc:
        raise _at(doc, _field_path(exc.field), exc) from None
    pending = model_ref if no_code is not None and no_code.environment is None else None
    return LoadedDeployment(
        spec, model_to_register, warnings, pool_warnings, kube_warnings, pool_errors, pending
    )


@dataclass
class _NoCode:
    code: str
    scoring_script: str
    environment: dict[str, Any] | None  # None: a registered model, looked up when sent
    warnings: list[str]
    errors: list[InvalidInput]


def _mlflow_no_code(
    doc: _Doc, data: Mapping[str, Any], model: ModelSpec | None, names: dict[str, str]
) -> _NoCode:
    """A deployment with no ``code_configuration``: served as Azure serves an MLflow model
    (modeldeck's scoring script, an environment from the model's own files), which needs an
    inline ``mlflow_model`` (or a registered one, checked when sent: :func:`_register`);
    anything else is refused here, before anything is sent."""
    from ..scoring import MLFLOW_CODE, MLFLOW_SCRIPT

    where = doc.loc(("code_configuration",))
    if model is None:  # a registered model: its type is looked up when the deployment is sent
        if data.get("environment") is None:
            return _NoCode(str(MLFLOW_CODE), MLFLOW_SCRIPT, None, [], [])
    elif model.type != "mlflow_model":
        what = f"the model is a {model.type}"
        raise InvalidInput(
            "code_configuration",
            None,
            f"is required unless the model is an mlflow_model ({what}): only MLflow models "
            "are served without a scoring script",
            "add code_configuration: {code: ./src, scoring_script: score.py}, or, for an MLflow "
            "model, model: {path: ./model, type: mlflow_model}",
            message=f"{where}: the deployment needs code_configuration (code and "
            f"scoring_script): {what}, and only an mlflow_model is served without one",
        )
    if data.get("environment") is not None:
        raise _at(
            doc,
            ("environment",),
            InvalidInput(
                "environment",
                data.get("environment"),
                "is given with no code_configuration: an MLflow no-code deployment takes its "
                "environment from the model (conda.yaml / requirements.txt)",
                "remove environment:, or give code_configuration (your scoring script) with it",
            ),
        )
    assert model is not None
    inline, warnings, errors = _mlflow_environment(
        Path(model.path), f"{doc.loc(('model',))} (MLflow no-code)", names, "model.path"
    )
    if inline is None:
        raise _at(doc, ("model", "path"), errors[0]) from None
    return _NoCode(str(MLFLOW_CODE), MLFLOW_SCRIPT, inline, warnings, errors)


def _mlflow_environment(
    folder: Path, env_where: str, names: Mapping[str, str], field_name: str
) -> tuple[dict[str, Any] | None, list[str], list[InvalidInput]]:
    """The inline environment of a no-code deployment of the MLflow model at ``folder``:
    (inline, warnings, what a local pool cannot build); (None, [], [error]) when the model
    cannot be read."""
    from .. import environments
    from ..environments.mlflow import mlflow_environment

    try:
        conda, notes = mlflow_environment(folder, field=field_name)
    except InvalidInput as exc:
        return None, [], [exc]
    default_name = f"{names['endpoint_name']}-{names['name']}"[:64]
    spec = environments.environment_from_dict(
        {"conda_file": conda}, base_dir=folder, source=env_where, default_name=default_name
    )
    warnings = [f"{env_where}: {n}" for n in notes]
    errors: list[InvalidInput] = []
    try:
        warnings += [f"{env_where}: {w}" for w in environments.resolve(spec).warnings]
    except InvalidInput as exc:
        errors.append(_renamed(exc, f"{field_name} ({exc.field})"))
    inline = {
        "name": spec.name,
        "image": None,
        "conda_file": spec.conda_file,
        "base_dir": str(spec.base_dir) if spec.base_dir else None,
    }
    return inline, warnings, errors


def _environment_error(doc: _Doc, exc: InvalidInput) -> InvalidInput:
    """An environment library error, its field under ``environment.``, with where it was."""
    name = exc.field if exc.field.startswith("environment") else f"environment.{exc.field}"
    sub = name.split(".")[1] if "." in name else None
    return _at(doc, ("environment", sub) if sub else ("environment",), _renamed(exc, name))


def _inline_environment(
    doc: _Doc, value: dict[str, Any], default_name: str, pool_errors: list[InvalidInput]
) -> tuple[str | None, dict[str, Any] | None, list[str], list[str]]:
    """An inline ``environment:`` mapping: (image, inline content, local warnings,
    Kubernetes warnings). A conda file is read here (unreadable: refused at once) and
    resolved: what a local pool cannot build (a package no Python environment can hold) goes
    to ``pool_errors``, refused before anything is sent when the cluster is a pool (Azure ML
    builds it with conda)."""
    from .. import environments

    base = doc.base_for(("environment", "conda_file")) or Path.cwd()
    try:
        env = environments.environment_from_dict(
            value, base_dir=base, source=doc.loc(("environment",)), default_name=default_name
        )
    except InvalidInput as exc:
        raise _environment_error(doc, exc) from None
    where = doc.loc(("environment",))
    if env.conda_file is None:
        if not env.image:
            return None, None, [], []
        return (
            env.image,
            None,
            [
                f"{where}: environment image '{env.image}' is ignored on local pools (replicas "
                "run with modeldeck's Python; Kubernetes clusters use it): add "
                "environment.conda_file (the packages the scoring script imports) to have them "
                "built into an environment of their own"
            ],
            [],
        )
    warnings: list[str] = []
    try:
        warnings = [f"{where}: {w}" for w in environments.resolve(env).warnings]
    except InvalidInput as exc:
        pool_errors.append(_environment_error(doc, exc))
    inline = {
        "name": env.name,
        "image": env.image,
        "conda_file": env.conda_file,
        "base_dir": str(env.base_dir) if env.base_dir else None,
    }
    kube: list[str] = []  # Kubernetes: the pods' init container builds the same lines
    return env.image, inline, warnings, kube


def _referenced_environment(doc: _Doc, ref: str, pool_errors: list[InvalidInput]) -> list[str]:
    """Checks on ``environment: <text>``: a curated name must be one a local pool knows
    (else ``pool_errors``; Azure ML has them all; its warnings are returned); a registered
    ``azureml:NAME:VERSION`` is looked up by the workspace; any other text is an image,
    which local pools do not use."""
    from .. import environments

    where = doc.loc(("environment",))
    if environments.is_curated_reference(ref):
        try:
            resolved = environments.resolve(environments.spec_from_reference(ref))
        except InvalidInput as exc:
            pool_errors.append(_environment_error(doc, exc))
            return []
        return [f"{where}: {w}" for w in resolved.warnings]
    if ref.startswith("azureml:"):
        return []
    return [
        f"{where}: environment '{ref}' is ignored on local pools (replicas run with "
        "modeldeck's Python; Kubernetes clusters use it as the image): give an environment "
        "with a conda_file to have the packages built"
    ]


# --------------------------------------------------------------------------- models


def load_model(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    name: str | None = None,
    model_path: str | None = None,
    version: int | str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    model_type: str | None = None,
) -> ModelSpec:
    """A model from a YAML file and/or flags (flags win); ``path`` in the file is relative to it."""
    doc = read_yaml(path, "model") if path else _Doc({}, "model", None)
    flags = {
        "name": name,
        "path": model_path,
        "version": version,
        "description": description,
        "type": model_type,
    }
    for key, value in flags.items():
        if value is not None:
            doc.data[key] = value
            doc.where[(key,)] = f"--{key} {value}"
            doc.from_set.add((key,))
    if tags:
        doc.data.setdefault("tags", {}).update(tags)
    apply_overrides(doc, overrides)
    data = doc.data
    _check_keys(doc, data, (), MODEL_KEYS, "model")
    raw_name = data.get("name")
    if raw_name is None:
        raise InvalidInput("name", None, "is required", "pass --name or set name: in the YAML")
    try:
        mname = validation.name(raw_name, "name")
    except InvalidInput as exc:
        raise _at(doc, ("name",), exc) from None
    raw_path = _text(doc, data, "path", ())
    if not raw_path:
        raise InvalidInput("path", None, "is required", "pass --path to a model file or folder")
    resolved = _resolve_path(doc, ("path",), raw_path, "model")
    if doc.base_for(("path",)) is None:
        resolved = str(Path(raw_path).expanduser().resolve())
    spec = ModelSpec(
        name=mname,
        path=resolved,
        version=None if data.get("version") is None else _int(doc, data, "version", (), 1, 1),
        description=_text(doc, data, "description", ()) or "",
        tags=_str_map(doc, data, "tags", ()),
        type=_model_type(doc, data, ()),
    )
    try:
        validation.model_spec(spec)
    except InvalidInput as exc:
        raise _at(doc, _field_path(exc.field), exc) from None
    return spec


def parse_tags(items: Iterable[str], flag: str = "--tag") -> dict[str, str]:
    """``--tag k=v`` items (also ``k``, an empty value, as az takes it)."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key.strip():
            raise InvalidInput(flag, item, "must be KEY=VALUE", f"for example {flag} team=demo")
        out[key.strip()] = value
    return out


def parse_purpose(value: str) -> ClusterPurpose:
    try:
        return ClusterPurpose.parse(value.replace("_", ""))  # type: ignore[return-value]
    except ValueError:
        raise InvalidInput(
            "purpose", value, "must be FastProd or DevTest", "pass --purpose FastProd"
        ) from None


# --------------------------------------------------------------------------- traffic flags


def traffic_from_flags(
    traffic: str | None, rest: str | None, deployments: Sequence[str]
) -> dict[str, int] | None:
    """``--traffic "blue=90 green=10"`` and ``--rest NAME``: a full, valid map, or None.

    Deployments left out of ``--traffic`` get 0 (the map is what the operator wrote);
    with ``--rest`` that deployment takes the remainder (the seed's default version).
    """
    if traffic is None and rest is None:
        return None
    if traffic is not None and not traffic.strip() and rest is None:
        # an unset shell variable (--traffic "$SPLIT") must not silently stop all traffic
        raise InvalidInput(
            "--traffic",
            traffic,
            "is empty",
            'give the split, e.g. --traffic "blue=90 green=10"; to stop all traffic, set each '
            'deployment to 0, e.g. --traffic "blue=0 green=0"',
        )
    given = _with_fix(
        lambda: validation.parse_traffic(traffic or ""), 'for example --traffic "blue=90 green=10"'
    )
    for dep in given:
        if dep not in deployments:
            validation.traffic(given, deployments)  # raises, naming the unknown deployment
    if rest is not None:
        return validation.fill_rest(given, rest, deployments)
    full = {d: 0 for d in deployments}
    full.update(given)
    return validation.traffic(full, deployments)


def _with_fix(call: Callable[[], dict[str, int]], fix: str) -> dict[str, int]:
    try:
        return call()
    except InvalidInput as exc:
        if exc.fix:
            raise
        raise InvalidInput(exc.field, exc.value, exc.rule, fix, message=exc.message) from None


def mirror_from_flag(
    mirror: str, live: Mapping[str, int], deployments: Sequence[str]
) -> dict[str, int]:
    given = _with_fix(
        lambda: validation.parse_traffic(mirror, "mirror_traffic"),
        'for example --mirror-traffic "green=10"',
    )
    return validation.mirror_traffic(given, live, deployments)


# --------------------------------------------------------------------------- apply (CLI + TUI)

Warn = Callable[[str], None]


def _emit(warnings: Iterable[str], warn: Warn | None) -> None:
    if warn is not None:
        for w in warnings:
            warn(w)


async def deployment_warnings(ws: Workspace, loaded: LoadedDeployment) -> list[str]:
    """The load warnings that hold where the deployment goes: ``pool_warnings`` only when
    the endpoint's cluster is known to be a local pool (a Kubernetes cluster or Azure ML
    uses the environment; an endpoint or cluster that cannot be looked up gets no guess).

    The first of ``pool_errors`` (what modeldeck's own resolution of the environment
    refuses, such as a conda-only package) is raised where modeldeck builds the
    environment, a local pool or a Kubernetes cluster, before an inline model is
    registered; Azure ML builds it with conda and takes it."""
    if not loaded.pool_warnings and not loaded.kubernetes_warnings and not loaded.pool_errors:
        return list(loaded.warnings)
    try:
        endpoint = await ws.get_endpoint(loaded.spec.endpoint_name)
        cluster = await ws.get_cluster(endpoint.compute)
    except ModeldeckError:
        return list(loaded.warnings)
    if loaded.pool_errors and cluster.driver in (ClusterDriver.POOL, ClusterDriver.KUBERNETES):
        raise loaded.pool_errors[0]  # refused before anything (an inline model) is registered
    if cluster.driver is ClusterDriver.POOL:
        return [*loaded.warnings, *loaded.pool_warnings]
    if cluster.driver is ClusterDriver.KUBERNETES:
        return [*loaded.warnings, *loaded.kubernetes_warnings]
    return list(loaded.warnings)


async def create_endpoint_from_file(
    ws: Workspace,
    path: str | Path | None,
    overrides: Iterable[str] = (),
    *,
    name: str | None = None,
    auth_mode: str | None = None,
    warn: Warn | None = None,
) -> OperationHandle:
    loaded = load_endpoint(path, overrides, name=name, auth_mode=auth_mode)
    _emit(loaded.warnings, warn)
    return await ws.create_endpoint(loaded.spec)


async def _existing_deployments(ws: Workspace, endpoint: str) -> list[str]:
    await ws.get_endpoint(endpoint)  # NotFound when it does not exist
    return [d.name for d in await ws.list_deployments(endpoint)]


async def _no_code_registered(ws: Workspace, loaded: LoadedDeployment) -> LoadedDeployment:
    """A deployment with no code_configuration naming a registered model: refused unless the
    model is an ``mlflow_model``; then, where modeldeck builds the environment (a local pool,
    a Kubernetes cluster), the environment from the model's files (the workspace's copy)."""
    ref = loaded.no_code_model
    if ref is None:
        return loaded
    from ..azureml.mapping import parse_model_ref

    name, version = parse_model_ref(ref)
    model = await ws.get_model(name, validation.integer(version, "model", 1) if version else None)
    if model.type != "mlflow_model":
        raise InvalidInput(
            "code_configuration",
            None,
            f"is required unless the model is an mlflow_model (model {model.ref} is a "
            f"{model.type})",
            "add code_configuration: {code: ./src, scoring_script: score.py}, or register the "
            "model with --type mlflow_model (a folder with an MLmodel file)",
            message=f"the deployment needs code_configuration (code and scoring_script): model "
            f"{model.ref} is a {model.type}, and only an mlflow_model is served without one",
        )
    try:
        endpoint = await ws.get_endpoint(loaded.spec.endpoint_name)
        cluster = await ws.get_cluster(endpoint.compute)
        driver = cluster.driver
    except ModeldeckError:  # a compute Azure ML knows and modeldeck does not list
        driver = None
    if driver not in (ClusterDriver.POOL, ClusterDriver.KUBERNETES):
        return dataclasses.replace(loaded, no_code_model=None)  # Azure ML builds it
    names = {"endpoint_name": loaded.spec.endpoint_name, "name": loaded.spec.name}
    inline, _, errors = _mlflow_environment(
        Path(model.path), f"model {model.ref} (MLflow no-code)", names, "model"
    )
    if inline is None:
        raise errors[0]
    if errors and driver is ClusterDriver.POOL:
        raise errors[0]
    spec = dataclasses.replace(loaded.spec, environment_inline=inline)
    return dataclasses.replace(loaded, spec=spec, no_code_model=None)


async def _register(ws: Workspace, loaded: LoadedDeployment) -> tuple[DeploymentSpec, Any]:
    """Register an inline model; return the spec pointing at it and the model (or None). A
    registered model with no code_configuration is checked first (``_no_code_registered``)."""
    loaded = await _no_code_registered(ws, loaded)
    if loaded.model_to_register is None:
        return loaded.spec, None
    model = await ws.create_model(loaded.model_to_register)
    return dataclasses.replace(loaded.spec, model=model.ref), model


async def create_deployment(
    ws: Workspace, loaded: LoadedDeployment, *, all_traffic: bool = False
) -> OperationHandle:
    """Create a loaded deployment: check what can be checked, register an inline model, create.

    Checks before anything is written: the endpoint exists, the deployment does not, and the
    endpoint has room for it. If the create call itself is refused, an inline model registered
    for it is removed again, so nothing changes.
    """
    spec = loaded.spec
    existing = await _existing_deployments(ws, spec.endpoint_name)
    if spec.name in existing:
        from ..api.errors import Conflict

        raise Conflict(
            f"deployment '{spec.name}' already exists on endpoint '{spec.endpoint_name}'",
            fix=f"update it with: modeldeck online-deployment update -n {spec.name} "
            f"-e {spec.endpoint_name} -f FILE, or choose another name",
        )
    validation.deployment_count(existing, spec.name)
    spec, model = await _register(ws, loaded)
    try:
        return await ws.create_deployment(spec, all_traffic=all_traffic)
    except ModeldeckError:
        if model is not None:
            with contextlib.suppress(ModeldeckError):
                await ws.delete_model(model.name, model.version)
        raise


async def create_deployment_from_file(
    ws: Workspace,
    path: str | Path,
    overrides: Iterable[str] = (),
    *,
    name: str | None = None,
    endpoint_name: str | None = None,
    all_traffic: bool = False,
    warn: Warn | None = None,
) -> OperationHandle:
    loaded = load_deployment(path, overrides, name=name, endpoint_name=endpoint_name)
    if warn is not None:
        _emit(await deployment_warnings(ws, loaded), warn)
    return await create_deployment(ws, loaded, all_traffic=all_traffic)


#: how many times a read-modify-write is tried again on fresh state after a Conflict that
#: does not touch the user's own change
CONFLICT_RETRIES = 5
#: how long a retry waits for someone else's rollout of the same deployment to end (s)
BUSY_WAIT_S = 300.0


def _set_paths(overrides: Iterable[str]) -> list[str]:
    """The dotted paths ``--set`` items change (what a retry must not have seen changed)."""
    return [".".join(_split_path(o.partition("=")[0])) for o in overrides]


def file_revision(path: str | Path, what: str) -> str | None:
    """The top-level ``revision:`` of an update file (as ``show -o yaml`` prints it), or None."""
    doc = read_yaml(path, what)
    value = doc.data.get("revision")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 200:
        raise _at(
            doc,
            ("revision",),
            InvalidInput(
                "revision",
                str(value)[:80],
                "is not a revision (a short text or number)",
                f"copy revision: as `modeldeck online-{what} show -o yaml` prints it, or remove it",
            ),
        )
    return str(value)


def _pinned(exc: Conflict, show: str, flag: str) -> Conflict:
    """A Conflict on a revision the user named: refused as is, never retried."""
    return Conflict(
        exc.message,
        fix=f"see what changed ({show} -o yaml), then update with its revision ({flag} REV)",
        **exc.details,
    )


def _retryable(exc: Conflict, touched: Iterable[str] | None) -> bool:
    """A Conflict over a change that leaves the user's own fields alone."""
    from ..api import revisions

    if exc.details.get("busy") not in (None, "Updating", "Creating"):
        return False  # being deleted
    changed = revisions.conflict_paths(exc)
    return changed is not None and not revisions.overlapping(touched, changed)


def _overlap_error(exc: Conflict, touched: Iterable[str] | None, show: str) -> Conflict:
    """The Conflict as the user sees it when someone else changed what they change too."""
    from ..api import revisions

    both = revisions.overlapping(touched, revisions.conflict_paths(exc) or [])
    if not both:
        return exc
    said = exc.message.removesuffix("; this change was not applied")  # said once, below
    return Conflict(
        f"{said}; your change touches {', '.join(both)} too, so it was not applied",
        fix=f"see the new value ({show}) and repeat your command if it still applies",
        **exc.details,
    )


async def _settled(read: Callable[[], Any], deadline: float) -> None:
    """Wait until someone else's operation on the record has ended (bounded)."""
    import asyncio
    import time

    from ..api.domain import ProvisioningState

    delay = 0.05
    busy = (ProvisioningState.CREATING, ProvisioningState.UPDATING)
    while (await read()).provisioning_state in busy and time.monotonic() < deadline:
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 2)


async def update_deployment_from(
    ws: Workspace,
    endpoint: str,
    name: str,
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    warn: Warn | None = None,
    if_revision: str | None = None,
    retry_stale: bool = True,
) -> OperationHandle:
    """``update``: from a file (the whole spec), or the current spec with --set applied.

    The full spec is sent either way, with the revision it was computed from. When someone
    else changed the deployment meanwhile (Conflict), it is read again and the ``--set``
    applied on the fresh state, as long as the other change left the fields it sets alone
    (a file sets them all); otherwise the Conflict, naming both, is raised.

    ``if_revision`` is the revision the change was computed from when that was earlier than
    this call (a dashboard prompt opened on it; else the file's ``revision:``): the first
    write carries it. With ``retry_stale=False`` (the user named it: ``--if-revision``) a
    Conflict on it is raised as is, never retried on the fresh state.
    """
    import time

    overrides = list(overrides)
    if path is None and not overrides:
        raise InvalidInput(
            "update",
            None,
            "nothing to change",
            "pass -f FILE or --set KEY=VALUE (e.g. --set instance_count=2)",
        )
    touched = None if path is not None else _set_paths(overrides)
    show = f"modeldeck online-deployment show -e {endpoint} -n {name}"
    if if_revision is None and path is not None:
        if_revision = file_revision(path, "deployment")
    deadline = time.monotonic() + BUSY_WAIT_S
    for attempt in range(CONFLICT_RETRIES + 1):
        current = await ws.get_deployment(endpoint, name)
        if path is not None:
            loaded = load_deployment(path, overrides, name=name, endpoint_name=endpoint)
        else:
            loaded = updated_deployment(current.spec, overrides)
        if warn is not None and attempt == 0:
            _emit(await deployment_warnings(ws, loaded), warn)
        spec, model = await _register(ws, loaded)
        sent = (if_revision if attempt == 0 else None) or current.revision or None
        try:
            return await ws.update_deployment(spec, if_revision=sent)
        except ModeldeckError as exc:
            if model is not None:
                with contextlib.suppress(ModeldeckError):
                    await ws.delete_model(model.name, model.version)
            if not isinstance(exc, Conflict):
                raise
            if if_revision is not None and not retry_stale:
                raise _pinned(exc, show, "--if-revision") from None
            if not _retryable(exc, touched):
                raise _overlap_error(exc, touched, show) from None
            if attempt == CONFLICT_RETRIES or time.monotonic() > deadline:
                raise Conflict(
                    f"{exc.message} (tried {attempt + 1} times; it keeps changing)",
                    fix=f"see it ({show}), then repeat the command",
                    **exc.details,
                ) from None
            if exc.details.get("busy"):
                await _settled(lambda: ws.get_deployment(endpoint, name), deadline)
    raise AssertionError("unreachable")


async def update_endpoint_from(
    ws: Workspace,
    name: str,
    *,
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    traffic: str | None = None,
    rest: str | None = None,
    mirror_traffic: str | None = None,
    warn: Warn | None = None,
    if_revision: str | None = None,
    retry_stale: bool = True,
) -> OperationHandle:
    """``online-endpoint update``. Traffic changes only when asked (--traffic/--rest, or a
    ``traffic:`` in the file): an update never resets it.

    Sent with the revision the change was computed from; on a Conflict over other fields
    (someone else's tags while this sets traffic) the change is computed again on the fresh
    state, as :func:`update_deployment_from` does. ``if_revision``/``retry_stale`` (or the
    file's ``revision:``) as there.
    """
    overrides = list(overrides)
    show = f"modeldeck online-endpoint show -n {name}"
    if if_revision is None and path is not None:
        if_revision = file_revision(path, "endpoint")
    for attempt in range(CONFLICT_RETRIES + 1):
        current = await ws.get_endpoint(name)
        deployments = [d.name for d in await ws.list_deployments(name)]
        changes = _endpoint_changes(
            current,
            deployments,
            path=path,
            overrides=overrides,
            traffic=traffic,
            rest=rest,
            mirror_traffic=mirror_traffic,
            warn=warn if attempt == 0 else None,
        )
        touched = _endpoint_touched(current, changes, whole_tags=path is not None)
        sent = (if_revision if attempt == 0 else None) or current.revision or None
        try:
            return await ws.update_endpoint(name, **changes, if_revision=sent)
        except Conflict as exc:
            if if_revision is not None and not retry_stale:
                raise _pinned(exc, show, "--if-revision") from None
            if not _retryable(exc, touched):
                raise _overlap_error(exc, touched, show) from None
            if attempt == CONFLICT_RETRIES:
                raise Conflict(
                    f"{exc.message} (tried {attempt + 1} times; it keeps changing)",
                    fix=f"see it ({show}), then repeat the command",
                    **exc.details,
                ) from None
    raise AssertionError("unreachable")


def _endpoint_touched(current: Any, changes: Mapping[str, Any], *, whole_tags: bool) -> list[str]:
    """The paths an endpoint change touches: a traffic map as a whole (its numbers add up
    together), tags one by one when --set changes some of them."""
    out = []
    for key, value in changes.items():
        if key == "tags" and not whole_tags:
            old = dict(current.tags)
            out += [
                f"tags.{k}" for k in sorted(set(old) | set(value)) if old.get(k) != value.get(k)
            ]
        else:
            out.append(key)
    return out


def _endpoint_changes(
    current: Any,
    deployments: list[str],
    *,
    path: str | Path | None,
    overrides: list[str],
    traffic: str | None,
    rest: str | None,
    mirror_traffic: str | None,
    warn: Warn | None,
) -> dict[str, Any]:
    """What ``online-endpoint update`` changes, computed on the endpoint as read."""
    name = current.name
    changes: dict[str, Any] = {}
    overrides = list(overrides)
    control = [o for o in overrides if o.partition("=")[0].strip() == "control"]
    if control:  # the control deployment (the others are treatments): --set control=NAME
        overrides = [o for o in overrides if o not in control]
        value = control[-1].partition("=")[2].strip()
        if value.lower() in ("", "none", "null"):
            changes["control"] = ""  # no control any more
        elif value not in deployments:
            raise InvalidInput(
                "control",
                value,
                f"there is no deployment '{value}' on this endpoint",
                "existing deployments: " + (", ".join(deployments) or "none yet"),
                message=f"--set {control[-1]}: there is no deployment '{value}' on this endpoint",
            )
        else:
            changes["control"] = value
    if path is not None or overrides:
        base = {
            "name": current.name,
            "compute": current.compute,
            "auth_mode": current.auth_mode.value,
            "description": current.description,
            "tags": dict(current.tags),
        }
        loaded = load_endpoint(path, overrides, name=name, base=None if path else base)
        _emit(loaded.warnings, warn)
        spec = loaded.spec
        for key, old, new in (
            ("auth_mode", current.auth_mode, spec.auth_mode),
            ("compute", current.compute, spec.compute),
        ):
            if key in loaded.given and old != new:
                raise InvalidInput(
                    key,
                    str(new),
                    f"cannot be changed by update (the endpoint has {old})",
                    "delete the endpoint and create it again with the new value",
                )
        if "description" in loaded.given:
            changes["description"] = spec.description
        if "tags" in loaded.given:
            changes["tags"] = spec.tags
        if "traffic" in loaded.given and traffic is None and rest is None:
            changes["traffic"] = validation.traffic(
                {**{d: 0 for d in deployments}, **spec.traffic}, deployments
            )
        if "mirror_traffic" in loaded.given and mirror_traffic is None:
            changes["mirror_traffic"] = dict(spec.mirror_traffic)
    full = traffic_from_flags(traffic, rest, deployments)
    if full is not None:
        changes["traffic"] = full
    if mirror_traffic is not None:
        live = changes.get("traffic", current.traffic)
        changes["mirror_traffic"] = mirror_from_flag(mirror_traffic, live, deployments)
    elif "traffic" in changes and current.mirror_traffic:
        # a mirror may not go to a deployment that now takes live traffic: say so now
        try:
            validation.mirror_traffic(current.mirror_traffic, changes["traffic"], deployments)
        except InvalidInput as exc:
            target = next(iter(current.mirror_traffic))
            raise InvalidInput(
                exc.field,
                exc.value,
                exc.rule,
                f'stop the mirror in the same command: --mirror-traffic "{target}=0"',
                message=f"{exc.message} (the endpoint mirrors {current.mirror_traffic[target]}% "
                f"of requests to '{target}')",
            ) from None
    if not changes:
        raise InvalidInput(
            "update",
            None,
            "nothing to change",
            'pass --traffic "blue=90 green=10", --mirror-traffic, -f FILE, --set control=NAME '
            "or --set KEY=VALUE",
        )
    return changes


__all__ = [
    "LoadedDeployment",
    "LoadedEndpoint",
    "apply_overrides",
    "create_deployment",
    "create_deployment_from_file",
    "create_endpoint_from_file",
    "deployment_from_doc",
    "deployment_to_doc",
    "endpoint_from_doc",
    "load_deployment",
    "load_endpoint",
    "load_model",
    "parse_tags",
    "traffic_from_flags",
    "update_deployment_from",
    "update_endpoint_from",
    "updated_deployment",
]
