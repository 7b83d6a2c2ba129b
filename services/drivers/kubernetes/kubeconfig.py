"""Kubeconfig contexts, read as kubectl reads them.

``KUBECONFIG`` may list several files (``:``-separated; ``;`` on Windows). They
are merged as kubectl merges them: for clusters, users and contexts the first
file that defines a name wins; ``current-context`` comes from the first file
that sets it; missing files are skipped. Relative paths inside a file
(``certificate-authority``, ``client-key``, ``tokenFile``, an exec ``command``
given as a relative path) are relative to that file. Without ``KUBECONFIG``,
``~/.kube/config``.

The merged config is handed to the official client's ``KubeConfigLoader``, which
does the rest (inline certificates, bearer tokens, exec credential plugins and
their refresh).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...api.errors import InvalidInput
from ...specs import yamlload

_PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


@dataclass(frozen=True)
class KubeContext:
    """One context of the merged kubeconfig (``config`` holds credentials: never log it)."""

    name: str
    cluster: str
    user: str
    server: str
    namespace: str  # the context's namespace, or "default"
    files: tuple[str, ...]
    config: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


def kubeconfig_files(env: str | None = None) -> list[Path]:
    """The files kubectl would read, in order (``KUBECONFIG`` or ``~/.kube/config``)."""
    value = os.environ.get("KUBECONFIG", "") if env is None else env
    if value.strip():
        return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
    return [Path("~/.kube/config").expanduser()]


def _absolutize(entry: dict[str, Any], keys: tuple[str, ...], base: Path) -> None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            entry[key] = str((base / value).resolve())
    exec_ = entry.get("exec")
    if isinstance(exec_, dict):
        cmd = exec_.get("command")
        if isinstance(cmd, str) and ("/" in cmd) and not os.path.isabs(cmd):
            exec_["command"] = str((base / cmd).resolve())


def merge(files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    """The merged kubeconfig and the files it was read from."""
    merged: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
    }
    seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
    read: list[str] = []
    for path in files:
        if not path.exists():
            continue
        # bounded like every YAML modeldeck reads (kubeconfigs embed certificates: 16 MiB)
        text = yamlload.read_text(path, field="KUBECONFIG", max_bytes=16 * 1024 * 1024)
        data = yamlload.safe_load(text, str(path), field="KUBECONFIG") or {}
        if not isinstance(data, dict):
            raise InvalidInput("KUBECONFIG", str(path), "is not a kubeconfig (not a mapping)")
        read.append(str(path))
        base = path.resolve().parent
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in data.get(section) or []:
                if not isinstance(item, dict) or "name" not in item:
                    continue
                if item["name"] in seen[section]:
                    continue
                seen[section].add(item["name"])
                item = copy.deepcopy(item)
                body = item.get(inner)
                if isinstance(body, dict) and inner in _PATH_KEYS:
                    _absolutize(body, _PATH_KEYS[inner], base)
                merged[section].append(item)
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged, read


def load_context(name: str | None, *, env: str | None = None) -> KubeContext:
    """The context ``name`` (or the current one). Raises :class:`InvalidInput` naming
    the context and the files when it is not there."""
    files = kubeconfig_files(env)
    merged, read = merge(files)
    shown = ", ".join(str(f) for f in files)
    contexts = {c["name"]: c.get("context") or {} for c in merged["contexts"]}
    wanted = name or merged.get("current-context") or ""
    if not read:
        raise InvalidInput(
            "kube_context",
            wanted or name,
            f"no kubeconfig file found (looked in: {shown})",
            "set KUBECONFIG to your kubeconfig file(s), or get credentials "
            "(e.g. az aks get-credentials -g GROUP -n CLUSTER)",
        )
    if not wanted:
        raise InvalidInput(
            "kube_context",
            name,
            f"is required: the kubeconfig ({', '.join(read)}) has no current-context",
            "pass --kube-context; contexts there: " + (", ".join(sorted(contexts)) or "none"),
        )
    if wanted not in contexts:
        raise InvalidInput(
            "kube_context",
            wanted,
            f"is not a context of the kubeconfig (files: {', '.join(read)})",
            "pick one of: "
            + (", ".join(sorted(contexts)) or "none")
            + " (kubectl config get-contexts), or add the file to KUBECONFIG",
        )
    ctx = contexts[wanted]
    clusters = {c["name"]: c.get("cluster") or {} for c in merged["clusters"]}
    cluster_name = ctx.get("cluster", "")
    if cluster_name not in clusters:
        raise InvalidInput(
            "kube_context",
            wanted,
            f"names cluster '{cluster_name}', which no kubeconfig file defines "
            f"(files: {', '.join(read)})",
            "fix the kubeconfig, or fetch the cluster's credentials again",
        )
    server = str(clusters[cluster_name].get("server") or "")
    merged = dict(merged, **{"current-context": wanted})
    return KubeContext(
        name=wanted,
        cluster=cluster_name,
        user=str(ctx.get("user", "")),
        server=server.rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        files=tuple(read),
        config=merged,
    )


def client_configuration(ctx: KubeContext) -> Any:
    """A ``kubernetes.client.Configuration`` for the context (TLS, token, exec plugin)."""
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    cfg = client.Configuration()
    try:
        KubeConfigLoader(
            config_dict=copy.deepcopy(ctx.config), active_context=ctx.name
        ).load_and_set(cfg)
    except ConfigException as exc:
        raise InvalidInput(
            "kube_context",
            ctx.name,
            f"cannot be loaded from {', '.join(ctx.files)}: {exc}",
            "fix the context's cluster and user entries (kubectl config view)",
        ) from exc
    return cfg
