"""What the driver may do in its namespace: the one table of the RBAC permissions it
needs, the Role that grants exactly that, and whether a subject's rules grant it.

:data:`NEEDS` is derived from the driver's calls (each :class:`~.errors.Call` of
``resources``, ``endpoints``, ``rollout``, ``state``, ``telemetry``, ``diagnosis``,
``logs`` and ``changes``): add a row here when the driver starts to call something new. Writes are
server-side apply, a PATCH that the API server authorizes as ``create`` when the object
does not exist yet (kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply),
so every applied kind needs ``create`` and ``patch``.

``cluster attach`` checks the table (:meth:`.attach.AttachChecks.missing_permissions`)
and ``cluster attach --print-role`` prints :func:`role_manifests`. Pure: no I/O, light
imports (the CLI imports it for ``--print-role``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import GATEWAY_API_GROUP

RBAC_API = "rbac.authorization.k8s.io"
ROLE_NAME = "modeldeck"
#: What the RoleBinding's subject says until an administrator puts the user in
USER_PLACEHOLDER = "USER"

_APPLIED = ("get", "list", "create", "patch", "delete")  # read, apply (create or patch), delete


@dataclass(frozen=True)
class Need:
    """Verbs on one resource (``pods/log`` for a subresource) of an API group."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    #: what the driver does with it (said in attach's note when an optional one is missing)
    why: str
    #: what is lost without it; empty: attach is refused without it
    optional: str = ""
    #: in the namespace of the Gateway the routes attach to (``modeldeck.io/gateway``)
    #: rather than the cluster's
    in_gateway_ns: bool = False

    @property
    def rbac_name(self) -> str:
        """As an RBAC denial and ``kubectl auth can-i`` name it: ``deployments.apps``."""
        return rbac_name(self.group, self.resource)


def rbac_name(group: str, resource: str) -> str:
    """``resource.group`` (``deployments.apps``), the core group's resource alone."""
    return f"{resource}.{group}" if group else resource


_NO_URI = "the scoring URI comes from the cluster's modeldeck.io/gateway-url tag only"
_WATCH = "changes are noticed by polling instead of at once (rollouts, other operators' changes)"

NEEDS: tuple[Need, ...] = (
    Need("", "secrets", _APPLIED, "endpoint keys"),
    Need("", "secrets", ("watch",), "following other operators' key changes", _WATCH),
    Need("", "configmaps", _APPLIED, "the deployments' code and model"),
    Need("", "services", _APPLIED, "the deployments' Services"),
    Need("", "pods", ("get", "list"), "rollout progress, status, logs"),
    Need("", "pods", ("watch",), "following rollouts and logs", _WATCH),
    Need("", "pods/log", ("get",), "get-logs and the reasons of a failed rollout"),
    Need("", "pods/proxy", ("get",), "request metrics from the pods' /metrics"),
    Need("", "events", ("list",), "scheduling failures in a deployment's error"),
    Need(
        "",
        "events",
        ("create",),
        "each change as an Event on the changed object (kubectl get events)",
        "changes are not shown as Events (the modeldeck.io/last-change annotation and "
        "online-endpoint history still show them)",
    ),
    Need(
        "",
        "services/proxy",
        ("create",),
        "invoke through the API server's service proxy",
        "invoke reaches the scoring URI only (not --via api)",
    ),
    Need("apps", "deployments", _APPLIED, "the deployments' pods"),
    Need("apps", "deployments", ("watch",), "following rollouts and adoption", _WATCH),
    Need("autoscaling", "horizontalpodautoscalers", _APPLIED, "target_utilization scaling"),
    Need(GATEWAY_API_GROUP, "httproutes", ("get", "list", "create", "update", "delete"), "traffic"),
    Need(GATEWAY_API_GROUP, "httproutes", ("watch",), "following traffic changes", _WATCH),
    Need(
        GATEWAY_API_GROUP,
        "gateways",
        ("get",),
        "the scoring URI from the Gateway's address",
        _NO_URI,
        in_gateway_ns=True,
    ),
    Need(
        "",
        "services",
        ("list",),
        "the scoring URI from the Gateway's LoadBalancer Service",
        _NO_URI,
        in_gateway_ns=True,
    ),
    Need("metrics.k8s.io", "pods", ("list",), "CPU and memory of the pods"),
)


def _verb_order(verb: str) -> int:
    order = ("get", "list", "watch", "create", "update", "patch", "delete")
    return order.index(verb) if verb in order else len(order)


def merged(needs: Iterable[tuple[Need, str]]) -> dict[tuple[str, str], list[str]]:
    """(group, resource) -> verbs, in kubectl's order, of (need, verb) pairs."""
    out: dict[tuple[str, str], list[str]] = {}
    for need, verb in needs:
        verbs = out.setdefault((need.group, need.resource), [])
        if verb not in verbs:
            verbs.append(verb)
    for verbs in out.values():
        verbs.sort(key=_verb_order)
    return out


def pairs(needs: Iterable[Need] = NEEDS) -> list[tuple[Need, str]]:
    """Every (need, verb) of the table."""
    return [(need, verb) for need in needs for verb in need.verbs]


def describe(missing: Iterable[tuple[Need, str]]) -> str:
    """``secrets (get, list, patch); pods/log (get)`` for a message."""
    return "; ".join(f"{rbac_name(g, r)} ({', '.join(v)})" for (g, r), v in merged(missing).items())


def role_rules(needs: Iterable[tuple[Need, str]] | None = None) -> list[dict[str, Any]]:
    """PolicyRules granting exactly ``needs`` (default: the whole table): one rule per API
    group and set of verbs, as a Role is usually written."""
    by_rule: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), verbs in merged(pairs() if needs is None else needs).items():
        by_rule.setdefault((group, tuple(verbs)), []).append(resource)
    return [
        {"apiGroups": [group], "resources": resources, "verbs": list(verbs)}
        for (group, verbs), resources in by_rule.items()
    ]


def role_manifests(
    namespace: str, user: str = USER_PLACEHOLDER, gateway_namespace: str | None = None
) -> list[dict[str, Any]]:
    """The Role granting the table in ``namespace`` and its RoleBinding to ``user`` (the
    name the API server knows the context's user by: ``kubectl auth whoami``); with the
    Gateway in another namespace, a second pair there for the rows read in it."""
    if not gateway_namespace or gateway_namespace == namespace:
        return _role_pair(ROLE_NAME, namespace, pairs(), user)
    own = [(n, v) for n, v in pairs() if not n.in_gateway_ns]
    gateway = [(n, v) for n, v in pairs() if n.in_gateway_ns]
    return [
        *_role_pair(ROLE_NAME, namespace, own, user),
        *_role_pair(f"{ROLE_NAME}-gateway", gateway_namespace, gateway, user),
    ]


def _role_pair(
    name: str, namespace: str, needs: list[tuple[Need, str]], user: str
) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/managed-by": "modeldeck"}
    meta = {"name": name, "namespace": namespace, "labels": labels}
    return [
        {
            "apiVersion": f"{RBAC_API}/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": role_rules(needs),
        },
        {
            "apiVersion": f"{RBAC_API}/v1",
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": RBAC_API, "kind": "Role", "name": name},
            "subjects": [{"apiGroup": RBAC_API, "kind": "User", "name": user}],
        },
    ]


def role_yaml(
    namespace: str | None, context: str | None = None, tags: Mapping[str, str] | None = None
) -> str:
    """:func:`role_manifests` as ``kubectl apply -f`` reads them, with a comment saying
    where the user's name comes from. ``namespace`` None: the context's, as attach takes it
    (reading the kubeconfig: InvalidInput for a context that is not there); ``tags``: the
    cluster's, which may name a Gateway in another namespace."""
    from .manifests import GatewayRef, to_yaml  # deferred: yaml only when printing

    if not namespace:
        from .kubeconfig import load_context

        namespace = load_context(context).namespace
    where = f" of context '{context}'" if context else ""
    return (
        f"# The permissions modeldeck needs in namespace '{namespace}'. Replace {USER_PLACEHOLDER}"
        f" below with the user{where}\n# as the API server knows it (kubectl"
        + (f" --context {context}" if context else "")
        + " auth whoami), then: kubectl apply -f FILE\n# (attach also needs, cluster-wide, "
        "'list' on nodes: the cluster's capacity)\n"
        + to_yaml(
            role_manifests(namespace, gateway_namespace=GatewayRef.from_tags(tags or {}).namespace)
        )
    )


# ---------------------------------------------------------------------- rule evaluation
# As the API server's RBAC authorizer matches a PolicyRule (k8s.io/kubernetes
# pkg/apis/rbac/v1/evaluation_helpers.go: VerbMatches, APIGroupMatches, ResourceMatches):
# "*" matches every verb, group and resource (subresources included), "*/log" the
# subresource "log" of every resource; a rule naming resourceNames grants only those
# objects, never a list or a create, so it does not grant what the driver needs.


def rule_allows(rule: Mapping[str, Any], group: str, resource: str, verb: str) -> bool:
    if rule.get("resourceNames"):
        return False
    verbs = rule.get("verbs") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    sub = resource.partition("/")[2]
    return (
        ("*" in verbs or verb in verbs)
        and ("*" in groups or group in groups)
        and ("*" in resources or resource in resources or (sub and f"*/{sub}" in resources))
    )


def allows(rules: Iterable[Mapping[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(rule_allows(r, group, resource, verb) for r in rules)
