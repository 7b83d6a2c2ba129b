"""What the cluster has: its capacity, the APIs modeldeck needs (Gateway API, metrics
server) and the checks ``cluster attach`` runs before the cluster is recorded."""

from __future__ import annotations

import asyncio

from ...api.domain import ClusterPurpose
from ...api.errors import BackendError, InvalidInput, NotFound, Unauthorized
from ..base import Capacity
from . import manifests as mf
from . import metrics as metrics_mod
from . import rbac
from .errors import GATEWAY_API_GROUP, Call, gateway_api_missing, metrics_server_missing
from .kubeconfig import KubeContext
from .resources import Resources


class AttachChecks(Resources):
    """Discovery and the attach checks (a room of :class:`~.driver.KubernetesDriver`)."""

    ctx: KubeContext
    gateway: mf.GatewayRef
    metrics_note: str | None
    #: The Gateway API was found (it is looked up once).
    _gateway_api: bool

    # ------------------------------------------------------------------ discovery

    async def _require_gateway_api(self) -> None:
        if self._gateway_api:
            return
        try:
            data = await self.api.request(
                "GET",
                f"/apis/{GATEWAY_API_GROUP}/v1",
                Call("get", f"{GATEWAY_API_GROUP}/v1 (discovery)"),
            )
        except NotFound:
            raise gateway_api_missing(self.spec.name) from None
        names = {r.get("name") for r in (data or {}).get("resources") or []}
        if "httproutes" not in names:
            raise gateway_api_missing(self.spec.name)
        self._gateway_api = True

    async def gateway_api_installed(self) -> bool:
        try:
            await self._require_gateway_api()
        except BackendError as exc:
            if exc.details.get("missing"):
                return False
            raise
        return True

    # ------------------------------------------------------------------ capacity and attach

    async def capacity(self) -> Capacity:
        nodes, version = await asyncio.gather(
            self.api.request("GET", "/api/v1/nodes", Call("list", "nodes")),
            self.api.request("GET", "/version", Call("get", "version")),
        )
        vcpus = memory = 0.0
        count = 0
        for node in nodes.get("items") or []:
            if (node.get("spec") or {}).get("unschedulable"):
                continue
            alloc = (node.get("status") or {}).get("allocatable") or {}
            count += 1
            vcpus += metrics_mod.cpu_cores(alloc.get("cpu", "0"))
            memory += metrics_mod.memory_bytes(alloc.get("memory", "0")) / 2**30
        return Capacity(
            nodes=count,
            vcpus=round(vcpus, 3),
            memory_gb=round(memory, 3),
            version=(version or {}).get("gitVersion"),
        )

    async def attach_check(self) -> tuple[Capacity, list[str]]:
        """What ``cluster attach`` runs: the cluster answers, the namespace exists, the
        purpose rule holds on allocatable CPU. Returns the capacity and notes (e.g. the
        Gateway API is missing: endpoints cannot be created until it is installed).
        Raises Unreachable/Unauthorized/InvalidInput."""
        cap = await self.capacity()
        need = 12 if self.spec.purpose is ClusterPurpose.FAST_PROD else 2
        if cap.vcpus < need:
            fix = (
                "add nodes (or a larger node pool) to the cluster, or attach it with "
                "--purpose DevTest (not for production traffic)"
                if self.spec.purpose is ClusterPurpose.FAST_PROD
                else "add nodes to the cluster: DevTest needs at least 2 allocatable vCPU"
            )
            raise InvalidInput(
                "purpose",
                self.spec.purpose.value,
                f"a {self.spec.purpose.value} cluster needs at least {need} allocatable vCPU; "
                f"context '{self.ctx.name}' has {cap.vcpus:g} on {cap.nodes} node(s)",
                fix,
            )
        notes: list[str] = []
        try:
            await self.api.request(
                "GET",
                f"/api/v1/namespaces/{self.namespace}",
                Call("get", "namespaces", None, self.namespace),
            )
        except NotFound:
            raise InvalidInput(
                "namespace",
                self.namespace,
                f"does not exist in context '{self.ctx.name}'",
                f"create it: kubectl --context {self.ctx.name} create namespace {self.namespace}",
            ) from None
        except Unauthorized:
            notes.append(
                f"cannot read namespace '{self.namespace}' (no cluster-wide get on namespaces)"
            )
        notes += await self._check_permissions()
        if not await self.gateway_api_installed():
            err = gateway_api_missing(self.spec.name)
            notes.append(f"{err.message}; {err.fix}")
        note = await self._metrics_server_missing()
        if note:
            notes.append(note)
        return cap, notes

    async def _metrics_server_missing(self) -> str | None:
        """Why CPU and memory will be unavailable (no ``metrics.k8s.io``), or None."""
        try:
            await self.api.request(
                "GET",
                "/apis/metrics.k8s.io/v1beta1",
                Call("get", "metrics.k8s.io/v1beta1 (discovery)"),
            )
        except NotFound:
            self.metrics_note = metrics_server_missing(self.spec.name, attaching=True)
        except (BackendError, Unauthorized) as exc:
            if exc.details.get("status") not in (503, 403):
                raise
            return None  # not answering now, or not ours to read: the metrics will say
        else:
            return None
        return self.metrics_note

    # ------------------------------------------------------------------ permissions

    async def _check_permissions(self) -> list[str]:
        """Refuse the attach (Unauthorized, naming each resource and its verbs, and the Role
        that grants them) when the context's user lacks a permission the driver needs;
        notes for what is missing but optional, or when the API server cannot say."""
        try:
            missing = await self.missing_permissions()
        except (BackendError, Unauthorized, NotFound) as exc:
            return [f"could not check the RBAC permissions modeldeck needs: {exc.message}"]
        needed = [(n, v) for n, v in missing if not n.optional]
        if needed:
            optional = [(n, v) for n, v in missing if n.optional]
            also = f"; and, optional: {rbac.describe(optional)}" if optional else ""
            raise Unauthorized(
                f"cluster '{self.spec.name}': the user of context '{self.ctx.name}' lacks "
                f"permissions modeldeck needs in namespace '{self.namespace}': "
                f"{rbac.describe(needed)}{also}",
                fix=(
                    "have an administrator grant them with the Role that "
                    f"`modeldeck cluster attach {self.spec.name} --kube-context {self.ctx.name} "
                    f"--namespace {self.namespace} --print-role` prints (set the RoleBinding's "
                    "user, then kubectl apply -f it), and attach again"
                ),
                missing=[
                    {"apiGroup": g, "resource": r, "verbs": v}
                    for (g, r), v in rbac.merged(needed).items()
                ],
            )
        return [
            f"no {'/'.join(verbs)} on '{need.rbac_name}' in namespace "
            f"'{self._namespace_of(need)}' ({need.why}): {need.optional}"
            for need, verbs in _by_need(missing).items()
        ]

    def _namespace_of(self, need: rbac.Need) -> str:
        return (self.gateway.namespace or self.namespace) if need.in_gateway_ns else self.namespace

    async def missing_permissions(self) -> list[tuple[rbac.Need, str]]:
        """The (need, verb) of :data:`.rbac.NEEDS` the context's user is not granted, each in
        its namespace (the cluster's, or the Gateway's). One SelfSubjectRulesReview per
        namespace; when the API server says its rules are ``incomplete`` (an authorizer such
        as a webhook cannot list its rules), each verb they do not grant is asked with a
        SelfSubjectAccessReview."""
        by_ns: dict[str, list[tuple[rbac.Need, str]]] = {}
        for need, verb in rbac.pairs():
            by_ns.setdefault(self._namespace_of(need), []).append((need, verb))
        found = await asyncio.gather(*(self._missing_in(ns, p) for ns, p in by_ns.items()))
        return [m for missing in found for m in missing]

    async def _missing_in(
        self, namespace: str, needs: list[tuple[rbac.Need, str]]
    ) -> list[tuple[rbac.Need, str]]:
        status = await self._review("SelfSubjectRulesReview", {"namespace": namespace})
        rules = status.get("resourceRules") or []
        missing = [(n, v) for n, v in needs if not rbac.allows(rules, n.group, n.resource, v)]
        if not status.get("incomplete") or not missing:
            return missing
        allowed = await asyncio.gather(*(self._access_review(namespace, *m) for m in missing))
        return [m for m, ok in zip(missing, allowed, strict=True) if not ok]

    async def _access_review(self, namespace: str, need: rbac.Need, verb: str) -> bool:
        resource, _, sub = need.resource.partition("/")
        attrs = {
            "namespace": namespace,
            "verb": verb,
            "group": need.group,
            "resource": resource,
        }
        if sub:
            attrs["subresource"] = sub
        status = await self._review("SelfSubjectAccessReview", {"resourceAttributes": attrs})
        return bool(status.get("allowed"))

    async def _review(self, kind: str, spec: dict) -> dict:
        """The ``status`` the API server answers to a SelfSubject*Review (authorization.k8s.io/v1,
        created with ``spec``; every authenticated user may: the ClusterRole system:basic-user)."""
        plural = f"{kind.lower()}s"
        review = await self.api.request(
            "POST",
            f"/apis/authorization.k8s.io/v1/{plural}",
            Call("create", f"{plural}.authorization.k8s.io"),
            body={"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec},
        )
        return (review or {}).get("status") or {}


def _by_need(missing: list[tuple[rbac.Need, str]]) -> dict[rbac.Need, list[str]]:
    out: dict[rbac.Need, list[str]] = {}
    for need, verb in missing:
        out.setdefault(need, []).append(verb)
    return out
