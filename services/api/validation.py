"""The rules of DESIGN.md, checked once at the edge, before anything is sent.

Every check raises :class:`InvalidInput` naming the field, the value, the rule
and the fix. Both the client side (CLI, TUI) and the local control plane call
these, so a bad request never reaches a back end and never changes state.

One module (about 650 lines) on purpose: it is the list of the rules, each a small
function, and a reader looking for "what is allowed in field X" finds every rule here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .domain import ClusterPurpose, DriverKind, EndpointSpec
from .errors import InvalidInput

if TYPE_CHECKING:  # types only: the groups are imported by what uses them (domain.py)
    from .. import vmsizes
    from .assets import ModelSpec
    from .clusters import ClusterSpec
    from .deployments import DeploymentSpec

NAME_RE = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
NAME_RULE = (
    "3-32 characters: letters, digits and '-', starting with a letter and "
    "ending with a letter or digit"
)
MAX_DEPLOYMENTS_PER_ENDPOINT = 6
MAX_MIRROR_PERCENT = 50
MIN_VCPUS = {ClusterPurpose.FAST_PROD: 12, ClusterPurpose.DEV_TEST: 2}
RUNTIMES = ("default", "azmlinfsrv")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Sizes of free-text fields. Tags: Azure Resource Manager's limits (50 name/value pairs per
# resource, names up to 512 characters, values up to 256). Azure documents no limit for the
# rest: these are modeldeck's choices, far above real use and small enough that a spec stays
# a few hundred KiB (Kubernetes objects are limited to about 1 MiB).
MAX_TAGS = 50
MAX_TAG_KEY_CHARS = 512
MAX_TAG_VALUE_CHARS = 256
MAX_DESCRIPTION_CHARS = 4000
MAX_ENV_VARS = 100
MAX_ENV_NAME_CHARS = 256
MAX_ENV_VALUE_CHARS = 32 * 1024
MAX_ENV_TOTAL_CHARS = 256 * 1024
MAX_REFERENCE_CHARS = 2048  # model, environment (image), storage_uri, kube_context, resource_id


def strip_azureml(ref: str) -> str:
    """A workspace reference without its ``azureml:`` prefix (``azureml:cpu`` -> ``cpu``,
    ``azureml:NAME:VERSION`` -> ``NAME:VERSION``): both forms are accepted, as by ``az ml``."""
    return ref.removeprefix("azureml:")


#: what a model path or a code folder may name instead of local files: a registered asset
#: (``azureml:NAME:VERSION``), a datastore URI (``azureml://datastores/...``) or a storage
#: URL, registered as given by the back ends with the "assets.remote" capability
REMOTE_ASSET = re.compile(r"^(azureml:|(https?|wasbs?|abfss?)://)", re.IGNORECASE)


#: a registered model: ``azureml:NAME:VERSION``, ``NAME:VERSION``, ``azureml:NAME@latest``
MODEL_REF = re.compile(r"(azureml:)?[a-zA-Z][-a-zA-Z0-9_.]*(:\d+|@latest)?")


def is_remote_asset(path: str) -> bool:
    """A model path or code folder that names a remote asset, not local files."""
    return bool(REMOTE_ASSET.match(path))


def is_registered_asset(value: str) -> bool:
    """``azureml:NAME:VERSION`` (or ``@latest``): a registered asset, not a datastore URI
    (``azureml://...``)."""
    return value.startswith("azureml:") and not value.startswith("azureml://")


def remote_refused(field: str, value: str, backend: str) -> InvalidInput:
    """A remote asset given to a back end without the "assets.remote" capability."""
    fix = "give a file or folder on this machine, or send it to an Azure ML workspace (-w PROFILE"
    fix += ' of a profile with provider = "azureml")'
    if field == "path" and is_registered_asset(value):
        fix += "; a model registered here needs no new version: name it in a deployment as "
        fix += f"model: {value}"
    return InvalidInput(
        field,
        value,
        f"names a registered asset or a remote URI, which the {backend} workspace does not "
        "fetch: it registers files from this machine",
        fix,
    )


def parse_model_ref(ref: str) -> tuple[str, str | None]:
    """``azureml:NAME:VERSION`` / ``NAME:VERSION`` / ``NAME@latest`` -> (name, version|None)."""
    text = strip_azureml(ref)
    if text.endswith("@latest"):
        return text[: -len("@latest")], None
    model, _, version = text.partition(":")
    return model, version or None


def name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str):
        raise InvalidInput(
            field, value, f"must be a string of {NAME_RULE}", "write the name as text, e.g. blue"
        )
    if not 3 <= len(value) <= 32 or not NAME_RE.match(value):
        fixed = re.sub(r"[^-a-zA-Z0-9]", "-", value).strip("-")[:32]
        hint = f", for example '{fixed}'" if len(fixed) >= 3 and NAME_RE.match(fixed) else ""
        raise InvalidInput(field, value, f"must be {NAME_RULE}", f"choose another name{hint}")
    return value


def integer(value: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if (isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip())) or (
            isinstance(value, float) and value.is_integer()
        ):
            value = int(value)
        else:
            raise InvalidInput(
                field,
                value,
                "must be a whole number",
                "write a number without quotes or decimals, e.g. 1",
            )
    bounds = (
        f"from {lo} to {hi}"
        if lo is not None and hi is not None
        else f"at least {lo}"
        if lo is not None
        else f"at most {hi}"
    )
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidInput(field, value, f"must be {bounds}", f"give a number {bounds}")
    return value


def spec_integer(value: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    """A whole number in a spec (a dataclass the rest of the code computes with): "2" or 2.0
    are refused here, where :func:`integer` (for text: YAML, flags) would read them."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            field, value, "must be a whole number", "write a number without quotes or decimals"
        )
    return integer(value, field, lo, hi)


def number(value: Any, field: str, lo: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(field, value, "must be a number", "write a number, e.g. 1")
    if lo is not None and value < lo:
        raise InvalidInput(
            field, value, f"must be at least {lo}", f"give a number of at least {lo}"
        )
    return float(value)


#: a deployment's containers whose logs can be asked for, as az ml names them
#: (``az ml online-deployment get-logs --container``); Azure ML's REST names
#: (``InferenceServer``, ``StorageInitializer``) are read too
LOG_CONTAINERS = ("inference-server", "storage-initializer")


def log_container(value: Any, field: str = "container") -> str | None:
    """None (the back end's usual log), else one of :data:`LOG_CONTAINERS`."""
    if value is None:
        return None
    key = str(value).strip().lower()
    for known in LOG_CONTAINERS:
        if key in (known, known.replace("-", "")):
            return known
    raise InvalidInput(
        field,
        value,
        f"must be one of: {', '.join(LOG_CONTAINERS)}",
        "inference-server: the scoring server's log; storage-initializer: the download "
        "of the model and code before it starts",
    )


def metrics_window(value: Any, field: str = "window") -> tuple[str, int, int]:
    """(name, seconds, step seconds) of a metrics history window (:data:`METRICS_WINDOWS`)."""
    from .streams import METRICS_WINDOWS

    key = str(value).strip().lower()
    if key not in METRICS_WINDOWS:
        raise InvalidInput(
            field, value, f"must be one of: {', '.join(METRICS_WINDOWS)}", "e.g. --window 1h"
        )
    return (key, *METRICS_WINDOWS[key])


# --------------------------------------------------------------------------- quantities

_MEM_UNITS = {
    "": 1 / 2**30,
    "k": 1e3 / 2**30,
    "m": 1e6 / 2**30,
    "g": 1e9 / 2**30,
    "t": 1e12 / 2**30,
    "ki": 1 / 2**20,
    "mi": 1 / 2**10,
    "gi": 1.0,
    "ti": 2.0**10,
}


def cpu_quantity(value: Any, field: str) -> float:
    """Kubernetes CPU quantity ("100m", "0.5", 2) in cores."""
    if isinstance(value, bool):
        raise InvalidInput(
            field, value, "must be a CPU quantity such as 0.5 or 500m", "write cores or millicores"
        )
    if isinstance(value, int | float):
        cores = float(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m?)\s*", str(value))
        if not m:
            raise InvalidInput(
                field,
                value,
                "must be a CPU quantity such as 0.5 or 500m",
                "write cores or millicores",
            )
        cores = float(m.group(1)) / (1000 if m.group(2) else 1)
    if cores < 0:
        raise InvalidInput(field, value, "must not be negative", "write e.g. 0.5 (cores) or 500m")
    return cores


def memory_quantity(value: Any, field: str) -> float:
    """Kubernetes memory quantity ("512Mi", "1.5Gi", "1G") in GiB."""
    if isinstance(value, bool):
        raise InvalidInput(
            field,
            value,
            "must be a memory quantity such as 512Mi or 1.5Gi",
            "write a number with Mi or Gi",
        )
    if isinstance(value, int | float):
        return float(value) / 2**30
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]i?)?\s*", str(value))
    if not m:
        raise InvalidInput(
            field,
            value,
            "must be a memory quantity such as 512Mi or 1.5Gi",
            "write a number with Mi or Gi",
        )
    return float(m.group(1)) * _MEM_UNITS[(m.group(2) or "").lower()]


# --------------------------------------------------------------------------- clusters


def vm_size(value: str, field: str = "vm_size") -> vmsizes.VmSize:
    """A known Azure VM size (case-insensitive, as Azure takes them)."""
    from .. import vmsizes  # its table: for the commands that name a size (cold start)

    size = vmsizes.lookup(value)
    if size is None:
        raise InvalidInput(
            field,
            value,
            "is not a known Azure VM size",
            "pick one of: " + ", ".join(vmsizes.names()[:12]) + ", ...",
        )
    return size


def cluster_spec(spec: ClusterSpec) -> ClusterSpec:
    name(spec.name)
    description(spec.description)
    tags(spec.tags)
    for ref in ("kube_context", "resource_id"):
        if getattr(spec, ref) is not None:
            text(getattr(spec, ref), ref, MAX_REFERENCE_CHARS)
    if spec.driver is DriverKind.POOL:
        spec_integer(spec.agent_count, "agent_count", 1, 100)
        size = vm_size(spec.vm_size)
        purpose_capacity(
            spec.purpose, spec.agent_count * size.vcpus, f"{spec.agent_count} x {size.name}"
        )
    elif spec.driver is DriverKind.KUBERNETES:
        if not spec.kube_context:
            raise InvalidInput(
                "kube_context",
                spec.kube_context,
                "is required to attach a Kubernetes cluster",
                "pass --kube-context NAME (see: kubectl config get-contexts)",
            )
        if spec.namespace is not None and not re.fullmatch(
            r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", spec.namespace
        ):
            raise InvalidInput(
                "namespace",
                spec.namespace,
                "must be a DNS-1123 label (lower case letters, digits, '-')",
                "pass --namespace with lower case letters, digits and '-', e.g. models",
            )
    return spec


def purpose_capacity(purpose: ClusterPurpose, vcpus: float, what: str) -> None:
    """The seed's rule: FastProd needs >= 12 vCPU, DevTest >= 2."""
    need = MIN_VCPUS[purpose]
    if vcpus < need:
        if purpose is ClusterPurpose.FAST_PROD:
            fix = (
                "add nodes (e.g. --agent-count 3 with Standard_D3_v2 = 12 vCPU), pick a larger "
                "--vm-size, or use --purpose DevTest for a cluster not meant for production traffic"
            )
        else:
            fix = "add nodes or pick a larger --vm-size: DevTest needs at least 2 vCPU"
        raise InvalidInput(
            "purpose",
            purpose.value,
            f"a {purpose.value} cluster needs at least {need} vCPU; {what} has {vcpus:g}",
            fix,
        )


# --------------------------------------------------------------------------- models


#: the model types az ml accepts that modeldeck serves
MODEL_TYPES = ("custom_model", "mlflow_model")


def model_spec(spec: ModelSpec) -> ModelSpec:
    from pathlib import Path

    name(spec.name)
    if spec.version is not None:
        spec_integer(spec.version, "version", 1)
    if not spec.path:
        raise InvalidInput(
            "path", spec.path, "is required", "pass --path to a model file or folder"
        )
    remote = is_remote_asset(spec.path)  # registered as given, where the back end can
    if remote:
        text(spec.path, "path", MAX_REFERENCE_CHARS)
        if is_registered_asset(spec.path) and not MODEL_REF.fullmatch(spec.path):
            raise InvalidInput(
                "path",
                spec.path,
                "must be azureml:NAME:VERSION (a registered model) or a file or folder",
                "write --path azureml:sklearn-demo:1",
            )
    elif not Path(spec.path).exists():
        raise InvalidInput(
            "path",
            spec.path,
            "does not exist",
            "give the path of a model file or folder that exists",
        )
    else:
        from .. import inputs  # the file rules: for the commands that read files (cold start)

        inputs.check_top(spec.path, "path", "model")  # a regular file or folder, not /dev
    if spec.type not in MODEL_TYPES:
        raise InvalidInput(
            "type",
            spec.type,
            "must be custom_model or mlflow_model (triton_model is not served by modeldeck)",
            "declare type: custom_model (with code_configuration) or type: mlflow_model (a "
            "folder with an MLmodel file)",
        )
    if spec.type == "mlflow_model" and not remote:
        from ..environments.mlflow import read_mlmodel

        read_mlmodel(spec.path, field="path")
    description(spec.description)
    tags(spec.tags)
    return spec


def _clip(value: str, n: int = 60) -> str:
    """The start of a long value, for an error message (never the whole 40 MiB)."""
    return value if len(value) <= n else value[:n] + "..."


def text(value: Any, field: str, max_chars: int, fix: str | None = None) -> str:
    """A free-text field: a string of at most ``max_chars`` characters."""
    if not isinstance(value, str):
        raise InvalidInput(field, value, "must be text", f"write {field} as a quoted string")
    if len(value) > max_chars:
        raise InvalidInput(
            field,
            _clip(value),
            f"is {len(value):,} characters long; at most {max_chars:,} are allowed",
            fix or f"shorten {field} to {max_chars:,} characters or fewer",
        )
    return value


def description(value: Any, field: str = "description") -> str:
    return text(
        value,
        field,
        MAX_DESCRIPTION_CHARS,
        f"shorten {field} to {MAX_DESCRIPTION_CHARS:,} characters; link to longer notes",
    )


def tags(value: Any, field: str = "tags") -> dict[str, str]:
    """Tags within Azure Resource Manager's limits: 50 pairs, names 512 and values 256 chars."""
    if not isinstance(value, Mapping):
        raise InvalidInput(
            field, value, "must be a mapping of strings to strings", "write it as key: value lines"
        )
    if len(value) > MAX_TAGS:
        raise InvalidInput(
            field,
            f"{len(value):,} tags",
            f"at most {MAX_TAGS} tags are allowed (Azure Resource Manager's limit)",
            f"keep {MAX_TAGS} tags or fewer; put many values in one tag as JSON text",
        )
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str | int | float | bool):
            raise InvalidInput(
                f"{field}.{_clip(str(k))}",
                v,
                "tag values must be strings",
                f"write it as {_clip(str(k))}: some-text",
            )
        if len(k) > MAX_TAG_KEY_CHARS:
            raise InvalidInput(
                field,
                _clip(k),
                f"a tag name is {len(k):,} characters long; at most {MAX_TAG_KEY_CHARS} are allowed",
                f"shorten the tag name to {MAX_TAG_KEY_CHARS} characters (Azure's limit)",
            )
        if len(str(v)) > MAX_TAG_VALUE_CHARS:
            raise InvalidInput(
                f"{field}.{_clip(k)}",
                _clip(str(v)),
                f"is {len(str(v)):,} characters long; a tag value has at most "
                f"{MAX_TAG_VALUE_CHARS}",
                f"shorten the value to {MAX_TAG_VALUE_CHARS} characters (Azure's limit)",
            )
    return {str(k): str(v) for k, v in value.items()}


def environment_variables(
    value: Mapping[str, Any], field: str = "environment_variables"
) -> Mapping[str, Any]:
    """Names a process accepts, values within bounds, and a bounded number of them."""
    if len(value) > MAX_ENV_VARS:
        raise InvalidInput(
            field,
            f"{len(value):,} variables",
            f"at most {MAX_ENV_VARS} environment variables are allowed",
            "keep settings in a file in the code folder and read it in init()",
        )
    total = 0
    for key, val in value.items():
        key_text = str(key)
        if len(key_text) > MAX_ENV_NAME_CHARS:
            raise InvalidInput(
                field,
                _clip(key_text),
                f"a variable name is {len(key_text):,} characters long; at most "
                f"{MAX_ENV_NAME_CHARS} are allowed",
                "use a shorter variable name",
            )
        if not ENV_NAME_RE.match(key_text):
            raise InvalidInput(
                f"{field}.{key_text}",
                val,
                "variable names are letters, digits and '_', not starting with a digit",
                "rename it, e.g. MY_SETTING",
            )
        val_text = str(val)
        if len(val_text) > MAX_ENV_VALUE_CHARS:
            raise InvalidInput(
                f"{field}.{key_text}",
                _clip(val_text),
                f"is {len(val_text):,} characters long; a value has at most "
                f"{MAX_ENV_VALUE_CHARS:,}",
                "put large settings in a file in the code folder and read it in init()",
            )
        total += len(key_text) + len(val_text)
    if total > MAX_ENV_TOTAL_CHARS:
        raise InvalidInput(
            field,
            f"{total:,} characters in all",
            f"names and values together have at most {MAX_ENV_TOTAL_CHARS:,} characters",
            "put large settings in a file in the code folder and read it in init()",
        )
    return value


# --------------------------------------------------------------------------- endpoints


def endpoint_spec(spec: EndpointSpec) -> EndpointSpec:
    name(spec.name)
    if spec.compute:  # none: a managed online endpoint, as in az ml (the back end places it)
        name(spec.compute, "compute")
    description(spec.description)
    tags(spec.tags)
    return spec


def traffic(value: Any, deployments: Iterable[str], field: str = "traffic") -> dict[str, int]:
    """Integers 0..100, total 0 or 100, only existing deployments."""
    known = set(deployments)
    if not isinstance(value, Mapping):
        raise InvalidInput(
            field,
            value,
            "must map deployment names to percentages",
            'write e.g. {"blue": 90, "green": 10}',
        )
    out: dict[str, int] = {}
    for dep, pct in value.items():
        if dep not in known:
            raise InvalidInput.no_deployment(f"{field}.{dep}", pct, dep, known)
        out[str(dep)] = integer(pct, f"{field}.{dep}", 0, 100)
    total = sum(out.values())
    if total not in (0, 100):
        raise InvalidInput(
            field,
            " ".join(f"{k}={v}" for k, v in out.items()),
            f"percentages must add up to 100 (or all be 0); they add up to {total}",
            "adjust the numbers, or name a deployment with --rest to take the remainder",
        )
    return out


def mirror_traffic(
    value: Any, live: Mapping[str, int], deployments: Iterable[str]
) -> dict[str, int]:
    """One deployment at most, 0..50, never one that takes live traffic."""
    known = set(deployments)
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "mirror_traffic",
            value,
            "must map one deployment name to a percentage",
            'write e.g. {"green": 10}, or --mirror-traffic "green=10"',
        )
    out = {k: v for k, v in value.items() if v != 0}
    if len(out) > 1:
        raise InvalidInput(
            "mirror_traffic",
            dict(value),
            "can copy traffic to one deployment only",
            "keep one deployment in the mirror map",
        )
    for dep, pct in out.items():
        if dep not in known:
            raise InvalidInput.no_deployment(f"mirror_traffic.{dep}", pct, dep, known)
        integer(pct, f"mirror_traffic.{dep}", 0, MAX_MIRROR_PERCENT)
        if live.get(dep, 0) > 0:
            raise InvalidInput(
                f"mirror_traffic.{dep}",
                pct,
                f"'{dep}' takes {live[dep]}% of live traffic; a mirror must go to a deployment with 0% live traffic",
                "set its live traffic to 0 first, or mirror to another deployment",
            )
    return {str(k): int(v) for k, v in out.items()}


def parse_traffic(text: str, field: str = "traffic") -> dict[str, int]:
    """``"blue=90 green=10"`` (also commas) as ``az ml --traffic`` takes it."""
    out: dict[str, int] = {}
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        dep, sep, pct = part.partition("=")
        if not sep or not dep:
            raise InvalidInput(
                field,
                text,
                "must be NAME=PERCENT pairs separated by spaces",
                'for example --traffic "blue=90 green=10"',
            )
        if dep in out:
            raise InvalidInput(field, text, f"names '{dep}' twice", "name each deployment once")
        try:
            out[dep] = integer(pct, f"{field}.{dep}", 0, 100)
        except InvalidInput as exc:
            raise InvalidInput(
                exc.field, exc.value, exc.rule, 'write whole percentages, e.g. "blue=90 green=10"'
            ) from None
    return out


def fill_rest(given: Mapping[str, int], rest: str, deployments: Iterable[str]) -> dict[str, int]:
    """The seed's default version: ``rest`` takes what the others do not; the result is full.

    Deployments neither given nor ``rest`` get 0.
    """
    known = list(deployments)
    if rest not in known:
        raise InvalidInput.no_deployment("rest", rest, rest, known)
    if rest in given:
        raise InvalidInput("rest", rest, "is also given a percentage", "leave it out of --traffic")
    taken = sum(given.values())
    if taken > 100:
        raise InvalidInput(
            "traffic",
            dict(given),
            f"leaves nothing for '{rest}': the others take {taken}%",
            "lower the others' percentages to 100 or less in total",
        )
    out = {d: 0 for d in known}
    out.update(given)
    out[rest] = 100 - taken
    return out


def deployment_count(existing: Iterable[str], adding: str) -> None:
    names = set(existing)
    if adding not in names and len(names) >= MAX_DEPLOYMENTS_PER_ENDPOINT:
        raise InvalidInput(
            "deployment",
            adding,
            f"an endpoint holds at most {MAX_DEPLOYMENTS_PER_ENDPOINT} deployments; it has {len(names)}",
            "delete a deployment without traffic first (modeldeck online-deployment delete)",
        )


# --------------------------------------------------------------------------- deployments


def deployment_spec(spec: DeploymentSpec) -> DeploymentSpec:
    name(spec.name)
    name(spec.endpoint_name, "endpoint_name")
    if not spec.model:
        raise InvalidInput("model", spec.model, "is required", "set model: azureml:NAME:VERSION")
    text(spec.model, "model", MAX_REFERENCE_CHARS)
    if not MODEL_REF.fullmatch(spec.model):
        raise InvalidInput(
            "model",
            spec.model,
            "must be azureml:NAME:VERSION (or NAME:VERSION)",
            "register the model first (modeldeck model create) and name it with its version",
        )
    if not spec.code_configuration.scoring_script:
        raise InvalidInput(
            "code_configuration.scoring_script",
            spec.code_configuration.scoring_script,
            "is required",
            "name the scoring script inside code_configuration.code",
        )
    from .. import inputs

    inputs.scoring_script_rule(spec.code_configuration.scoring_script)
    spec_integer(spec.instance_count, "instance_count", 0, 100)
    r = spec.resources
    for kind, rs in (("requests", r.requests), ("limits", r.limits)):
        if rs.cpu is not None:
            number(rs.cpu, f"resources.{kind}.cpu", 0)
        if rs.memory_gb is not None:
            number(rs.memory_gb, f"resources.{kind}.memory", 0)
        spec_integer(rs.gpu, f"resources.{kind}.nvidia.com/gpu", 0, 16)
    for what in ("cpu", "memory_gb"):
        req, lim = getattr(r.requests, what), getattr(r.limits, what)
        if req is not None and lim is not None and lim < req:
            label = "memory" if what == "memory_gb" else "cpu"
            raise InvalidInput(
                f"resources.limits.{label}",
                lim,
                f"a limit must be at least its request ({req:g})",
                f"raise resources.limits.{label} or lower resources.requests.{label}",
            )
    s = spec.scale_settings
    if s.type not in ("default", "target_utilization"):
        raise InvalidInput(
            "scale_settings.type",
            s.type,
            "must be default or target_utilization",
            "write scale_settings: {type: target_utilization, min_instances: 1, max_instances: 3}",
        )
    if s.type == "target_utilization":
        spec_integer(s.min_instances, "scale_settings.min_instances", 0, 100)
        spec_integer(s.max_instances, "scale_settings.max_instances", 1, 100)
        if s.max_instances < s.min_instances:
            raise InvalidInput(
                "scale_settings.max_instances",
                s.max_instances,
                f"must be at least min_instances ({s.min_instances})",
                f"raise max_instances to {s.min_instances} or more, or lower min_instances",
            )
        spec_integer(
            s.target_utilization_percentage, "scale_settings.target_utilization_percentage", 1, 100
        )
        spec_integer(s.polling_interval, "scale_settings.polling_interval", 1, 3600)
    q = spec.request_settings
    spec_integer(q.request_timeout_ms, "request_settings.request_timeout_ms", 1, 300_000)
    spec_integer(
        q.max_concurrent_requests_per_instance,
        "request_settings.max_concurrent_requests_per_instance",
        1,
        1000,
    )
    spec_integer(q.max_queue_wait_ms, "request_settings.max_queue_wait_ms", 0, 300_000)
    for probe_name in ("liveness_probe", "readiness_probe"):
        p = getattr(spec, probe_name)
        if p is None:  # not given: the back end's default
            continue
        spec_integer(p.initial_delay, f"{probe_name}.initial_delay", 0, 3600)
        spec_integer(p.period, f"{probe_name}.period", 1, 3600)
        spec_integer(p.timeout, f"{probe_name}.timeout", 1, 3600)
        spec_integer(p.failure_threshold, f"{probe_name}.failure_threshold", 1, 1000)
        spec_integer(p.success_threshold, f"{probe_name}.success_threshold", 1, 1000)
    environment_variables(spec.environment_variables)
    if spec.runtime not in RUNTIMES:
        raise InvalidInput(
            "runtime", spec.runtime, "must be default or azmlinfsrv", "write runtime: default"
        )
    for ref in ("environment", "storage_uri"):
        if getattr(spec, ref) is not None:
            text(getattr(spec, ref), ref, MAX_REFERENCE_CHARS)
    description(spec.description)
    tags(spec.tags)
    return spec
