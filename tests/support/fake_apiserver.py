"""A Kubernetes API server on loopback that behaves like the real one on the subset modeldeck uses.

A real HTTP server (aiohttp.web in its own thread and event loop) that the real
``kubernetes`` client talks to through a generated kubeconfig:

* discovery (``/api``, ``/apis``, ``/apis/GROUP/VERSION``, ``/version``); the Gateway
  API group and ``metrics.k8s.io`` can be switched off (plain ``404 page not found``,
  as an API server without the CRD / aggregated API answers);
* nodes with allocatable cpu/memory; namespaces;
* namespaced CRUD for deployments, services, secrets, configmaps, HPAs (autoscaling/v2),
  httproutes, gateways, events and pods: 201 on create, 409 AlreadyExists, 409 Conflict
  on a stale resourceVersion (replace, merge patch and server-side apply alike), 404
  Status, 422 Invalid (every object written is validated: built-in kinds with
  ``kubernetes-validate`` strict schemas plus name/label rules;
  HTTPRoute with the Gateway API CRD schema in ``tests/kubernetes/schemas/``), uid, resourceVersion,
  generation, label and field selectors, ``watch=true`` streams, deletecollection;
* server-side apply (``application/apply-patch+yaml`` with ``fieldManager``/``force``;
  an annotation another manager set with a merge patch is kept, as managedFields do;
  409 when another manager owns the object and ``force`` is not set), merge patch, and
  415 for strategic merge patch on custom resources;
* pod logs (``tailLines``, ``sinceTime``, ``timestamps``, ``previous``, ``follow=true``
  streaming), ``metrics.k8s.io`` pod metrics, the ``pods/proxy`` subresource serving the
  pod server's Prometheus text;
* a bearer token check (401), RBAC denials by (verb, resource) with the API server's
  message (403), and per-path fault injection (status, count, ``Retry-After``) and delays;
* a controller that rolls Deployments out (new pods with the template's labels, old ones
  removed once the new are ready, ``status`` as the deployment controller sets it) and
  can simulate CrashLoopBackOff (image with ``crash`` in it), ImagePullBackOff (image
  with ``does-not-exist``) and FailedScheduling (cpu request larger than any node);
* init containers as the kubelet reports them (``initContainerStatuses``, the pod
  ``Pending`` with ``Initialized=False`` until they complete, the app container
  ``PodInitializing``) with their own logs (``?container=NAME``): modeldeck's
  ``environment`` build reads its requirement lines from the ConfigMap and "installs" them
  with pip's lines, failing as pip does (exit 1, ``Init:CrashLoopBackOff``, pip's
  ``No matching distribution found for ...``) for a requirement named in
  :attr:`FakeKube.missing_packages`.

Why this is one file: it is one server; its routes, object store, validation and rollout
controller share one state under one lock, and a test reads that state (``store``,
``invalid``) directly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from aiohttp import web
from modeldeck.services.drivers.kubernetes import metrics as metrics_mod
from modeldeck.services.scoring.host import PROXY_AUTH_HEADER, Stats, TokenError, verify_token

from . import podsecurity

SCHEMAS = Path(__file__).resolve().parents[1] / "kubernetes" / "schemas"
K8S_VERSION = "1.33"
TOKEN = "fake-token-0123456789"
GATEWAY = "gateway.networking.k8s.io"
RBAC = "rbac.authorization.k8s.io"
AUTHZ = "authorization.k8s.io"
USER = "alice@example.com"  # the user TOKEN authenticates as
ADMIN_TOKEN = "fake-admin-token-9876543210"  # a cluster admin's (system:masters): never denied
#: what every authenticated user may do (the ClusterRole system:basic-user)
BASIC_USER_RULES = [
    {
        "verbs": ["create"],
        "apiGroups": [AUTHZ],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    }
]
ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


@dataclass(frozen=True)
class Res:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES = [
    Res("", "v1", "pods", "Pod"),
    Res("", "v1", "services", "Service"),
    Res("", "v1", "secrets", "Secret"),
    Res("", "v1", "configmaps", "ConfigMap"),
    Res("", "v1", "events", "Event"),
    Res("", "v1", "namespaces", "Namespace", namespaced=False),
    Res("", "v1", "nodes", "Node", namespaced=False),
    Res("apps", "v1", "deployments", "Deployment"),
    Res("apps", "v1", "replicasets", "ReplicaSet"),
    Res("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    Res(GATEWAY, "v1", "httproutes", "HTTPRoute", custom=True),
    Res(GATEWAY, "v1", "gateways", "Gateway", custom=True),
    Res(RBAC, "v1", "roles", "Role"),
    Res(RBAC, "v1", "rolebindings", "RoleBinding"),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _event_rules(ns: str, ev: dict) -> str | None:
    """What the API server checks of a core/v1 Event on create beyond its schema
    (pkg/apis/core/validation/events.go, legacyValidateEvent): its involvedObject's
    namespace is its own; an Event with ``eventTime`` (new style) names its
    reportingComponent (a qualified name), reportingInstance, action and reason, each at
    most 128 characters."""
    inv = ev.get("involvedObject") or {}
    if inv.get("namespace") and inv["namespace"] != ns:
        return f"involvedObject.namespace: Invalid value: {inv['namespace']!r}: does not match event.namespace"
    if not ev.get("eventTime"):
        return None
    component = ev.get("reportingComponent") or ""
    if not component:
        return "reportingComponent: Required value"
    prefix, _, last = component.rpartition("/")
    if (prefix and not _DNS1123_SUB.match(prefix)) or not re.fullmatch(
        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", last
    ):
        return f"reportingComponent: Invalid value: {component!r}: must be a qualified name"
    for key in ("reportingInstance", "action", "reason"):
        if not ev.get(key):
            return f"{key}: Required value"
        if len(ev[key]) > 128:
            return f"{key}: Too long: may not be longer than 128"
    return None


def now_rfc3339(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def nano_stamp(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


def page_not_found() -> web.Response:
    return web.Response(status=404, text="404 page not found\n", content_type="text/plain")


async def _stream(
    request: web.Request,
    content_type: str,
    pump: Callable[[web.StreamResponse], Awaitable[None]],
    listeners: list[Any],
    listener: Any,
) -> web.StreamResponse:
    """A chunked answer that ``pump`` writes until it returns or the client goes away;
    then ``listener`` leaves ``listeners`` and the stream ends."""
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        await pump(resp)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(ValueError):
            listeners.remove(listener)
    with contextlib.suppress(Exception):
        await resp.write_eof()
    return resp


def _admin(request: web.Request) -> bool:
    """The request is the cluster admin's (ADMIN_TOKEN): RBAC lets it do anything."""
    return request.headers.get("Authorization") == f"Bearer {ADMIN_TOKEN}"


def match_labels(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "==" in term or "=" in term:
            k, v = re.split(r"==?", term, maxsplit=1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _get_path(obj: dict, dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def match_fields(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if str(_get_path(obj, k) or "") == v:
                return False
        else:
            k, v = re.split(r"==?", term, maxsplit=1)
            if str(_get_path(obj, k) or "") != v:
                return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str]
    status: int
    times: int
    retry_after: float | None = None
    message: str = "injected failure"
    hits: int = 0


@dataclass
class PodLog:
    lines: list[tuple[float, str]] = field(default_factory=list)
    previous: list[tuple[float, str]] | None = None
    followers: list[asyncio.Queue] = field(default_factory=list)


class FakeKube:
    """Start with :meth:`start`; every helper is safe to call from any thread."""

    def __init__(
        self,
        *,
        nodes: list[tuple[str, str, str]] | None = None,
        ready_delay: float = 0.05,
        gateway_api: bool = True,
        metrics_server: bool = True,
        namespaces: tuple[str, ...] = ("default", "ml"),
        token: str = TOKEN,
        anonymous: bool = False,
        roles: bool = False,
    ) -> None:
        self.nodes = nodes or [
            ("node-1", "3860m", "16Gi"),
            ("node-2", "4", "16Gi"),
            ("node-3", "4", "16Gi"),
            ("node-4", "4", "16Gi"),
        ]
        self.ready_delay = ready_delay
        self.rollout_gate: asyncio.Event | None = None  # see hold_rollouts()
        self.gateway_api = gateway_api
        self.metrics_server = metrics_server
        self.token = token
        self.anonymous = anonymous  # requests without credentials are let in (bench: kubectl)
        self.store: dict[tuple[str, str, str], dict] = {}  # (plural, ns, name) -> object
        self.owner: dict[tuple[str, str, str], str] = {}  # field manager owning the object
        #: object -> annotation key -> the field manager that set it with a merge patch
        #: (managedFields, for annotations only): another manager's apply keeps them
        self.annotation_owners: dict[tuple[str, str, str], dict[str, str]] = {}
        self.rv = 100
        self.history: list[tuple[int, str, str, str, dict]] = []  # rv, plural, ns, type, obj
        self.watchers: list[tuple[str, str | None, str | None, asyncio.Queue]] = []
        #: (plural, label selector) of every watch opened, in order
        self.watch_requests: list[tuple[str, str | None]] = []
        self.faults: list[Fault] = []
        self.delays: list[tuple[re.Pattern[str], float]] = []
        self.holds: list[tuple[re.Pattern[str], asyncio.Event]] = []  # wait until released
        self.denied: set[tuple[str, str]] = set()  # (verb, resource) -> 403
        #: RBAC by Roles: False, everything not denied is allowed (a cluster admin); True,
        #: in a namespace only what the Roles bound there to USER grant (RoleBindings
        #: written through the API with ADMIN_TOKEN), cluster-wide what cluster_rules grant
        self.roles = roles
        #: USER's cluster-wide rules when ``roles``: the ClusterRole the docs ask for
        self.cluster_rules: list[dict] = [
            {"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["namespaces"]},
        ]
        #: True: SelfSubjectRulesReview answers ``incomplete`` with only system:basic-user's
        #: rules, as when a webhook authorizer (which cannot list rules) grants the rest
        self.rules_incomplete = False
        #: (kind, spec) of every SelfSubject*Review asked
        self.reviews: list[tuple[str, dict]] = []
        #: (verb, resource, namespace) of every request RBAC refused (403)
        self.forbidden: list[tuple[str, str, str]] = []
        self.conflict_next_put: set[str] = set()  # object names whose next PUT meets a newer rv
        self.requests: list[tuple[str, str, str]] = []  # method, path, content type
        self.written: list[dict] = []  # every object body written (create/replace/apply/patch)
        self.invalid: list[str] = []  # what the validation refused
        self.logs: dict[tuple[str, str], PodLog] = {}
        #: logs of a pod's other containers (init containers): (ns, pod, container)
        self.container_logs: dict[tuple[str, str, str], PodLog] = {}
        #: requirement names no index has: an environment build naming one fails as pip does
        self.missing_packages: set[str] = {"modeldeck-no-such-package-4f1c2"}
        #: True: an ``environment`` init container stays running (a build that takes time)
        self.hold_builds = False
        self.stats: dict[tuple[str, str], Stats] = {}
        self.usage: dict[tuple[str, str], tuple[str, str]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._tasks: set[asyncio.Task] = set()
        with open(SCHEMAS / "httproute-v1.json") as f:
            self._route_schema = json.load(f)
        for ns in namespaces:
            self._put_raw(
                "namespaces",
                "",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns},
                    "status": {"phase": "Active"},
                },
            )
        for name, cpu, mem in self.nodes:
            self._put_raw(
                "nodes",
                "",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                    "status": {
                        "allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
                        "capacity": {"cpu": cpu, "memory": mem, "pods": "110"},
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                },
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKube:
        self._thread = threading.Thread(target=self._run, name="fake-apiserver", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fake API server did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self.loop is None or self.loop.is_closed():  # not started, or stopped already
            return

        async def shutdown() -> None:
            for _, _, _, q in list(self.watchers):
                q.put_nowait(None)
            for log in self.logs.values():
                for q in log.followers:
                    q.put_nowait(None)
            for t in list(self._tasks):
                t.cancel()
            assert self._runner is not None
            await self._runner.shutdown()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread:
            self._thread.join(5)

    def _sync(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop and return its result (from any thread)."""
        assert self.loop is not None

        async def run() -> Any:
            out = fn(*args)
            if asyncio.iscoroutine(out):
                out = await out
            return out

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    # ------------------------------------------------------------------ test helpers

    def fail(
        self,
        path: str,
        status_code: int,
        *,
        times: int = 1,
        method: str | None = None,
        retry_after: float | None = None,
        message: str = "injected failure",
    ) -> Fault:
        fault = Fault(method, re.compile(path), status_code, times, retry_after, message)
        self.faults.append(fault)
        return fault

    def delay(self, path: str, seconds: float) -> None:
        self.delays.append((re.compile(path), seconds))

    def hold(self, path: str) -> Callable[[], None]:
        """Requests to ``path`` get no answer until the returned ``release()`` is called
        (a slow cluster, without betting on how long the rest of the test takes)."""
        gate = asyncio.Event()
        self.holds.append((re.compile(path), gate))

        def release() -> None:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(gate.set)

        return release

    def hold_rollouts(self) -> Callable[[], None]:
        """The controller acts on Deployments only after the returned ``release()``: a
        test sees a rollout in progress however slowly the machine runs."""
        gate = asyncio.Event()
        self.rollout_gate = gate

        def release() -> None:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(gate.set)

        return release

    def create_hpa(
        self, ns: str, name: str, target: str, *, min_replicas: int, max_replicas: int
    ) -> None:
        """Someone else's HorizontalPodAutoscaler (``kubectl autoscale``) on Deployment
        ``target``: from now on it keeps its replica count within the bounds."""
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "generation": 1},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
            },
        }
        res = next(r for r in RESOURCES if r.kind == "HorizontalPodAutoscaler")

        def run() -> None:
            self.owner[("horizontalpodautoscalers", ns, name)] = "kubectl-autoscale"
            self._put_raw("horizontalpodautoscalers", ns, hpa)
            self._after_write(res, ns, name)

        self._on_loop(run)

    def _forbidden(
        self, verb: str, group: str, plural: str, rbac_name: str, ns: str | None, name: str | None
    ) -> web.Response:
        what = f"{plural}.{group}" if group else plural
        subject = f' "{name}"' if name else ""
        self.forbidden.append((verb, f"{rbac_name}.{group}" if group else rbac_name, ns or ""))
        return status(
            403,
            "Forbidden",
            f'{what}{subject} is forbidden: User "{USER}" cannot {verb} resource '
            f'"{rbac_name}" in API group "{group}"'
            + (f' in the namespace "{ns}"' if ns else " at the cluster scope"),
            name=name or "",
            group=group,
            kind=plural,
        )

    def _rules(self, ns: str | None) -> list[dict]:
        """USER's rules in ``ns`` (cluster-wide ones included), as RBAC resolves them: the
        rules of every Role of ``ns`` that a RoleBinding of ``ns`` binds to USER."""
        rules = [*BASIC_USER_RULES, *self.cluster_rules]
        if not ns:
            return rules
        for (plural, n, _), binding in list(self.store.items()):
            if plural != "rolebindings" or n != ns:
                continue
            ref = binding.get("roleRef") or {}
            bound = any(
                s.get("kind") == "User" and s.get("name") == USER
                for s in binding.get("subjects") or []
            )
            role = self.store.get(("roles", ns, ref.get("name", "")))
            if bound and ref.get("kind") == "Role" and role is not None:
                rules += role.get("rules") or []
        return rules

    def _allowed(
        self, verb: str, group: str, resource: str, ns: str | None, name: str | None
    ) -> bool:
        """RBAC's decision for USER (k8s.io/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go:
        "*" matches all, "*/SUB" a subresource of any resource, resourceNames one object)."""
        if not self.roles:
            return (verb, resource) not in self.denied and (
                verb,
                resource.split("/")[0],
            ) not in self.denied
        sub = resource.partition("/")[2]
        for rule in self._rules(ns):
            names = rule.get("resourceNames") or []
            resources = rule.get("resources") or []
            if (
                any(v in ("*", verb) for v in rule.get("verbs") or [])
                and any(g in ("*", group) for g in rule.get("apiGroups") or [])
                and ("*" in resources or resource in resources or (sub and f"*/{sub}" in resources))
                and (not names or (name is not None and name in names))
            ):
                return True
        return False

    def _granted_rules(self, ns: str | None) -> list[dict]:
        """What a SelfSubjectRulesReview lists: with ``roles``, the bound rules; without,
        everything but the denials (a cluster admin's ``*`` when nothing is denied)."""
        if self.roles:
            return [{k: list(v) for k, v in r.items()} for r in self._rules(ns)]
        if not self.denied:
            return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        names = [(r.group, r.plural) for r in RESOURCES]
        names += [("", "pods/log"), ("", "pods/proxy"), ("", "services/proxy")]
        names.append(("metrics.k8s.io", "pods"))
        rules = []
        for group, resource in names:
            verbs = [
                v
                for v in ALL_VERBS
                if group == "metrics.k8s.io" or self._allowed(v, group, resource, ns, None)
            ]
            if verbs:
                rules.append({"verbs": verbs, "apiGroups": [group], "resources": [resource]})
        return rules

    async def _self_subject_review(self, request: web.Request, plural: str) -> web.Response:
        """SelfSubjectRulesReview / SelfSubjectAccessReview (authorization.k8s.io/v1): the
        request's ``spec`` back with the ``status`` the API server computes, 201 Created."""
        body = await self._body(request)
        rules_review = plural == "selfsubjectrulesreviews"
        kind = "SelfSubjectRulesReview" if rules_review else "SelfSubjectAccessReview"
        if body.get("kind") != kind or body.get("apiVersion") != f"{AUTHZ}/v1":
            return status(400, "BadRequest", f"expected {kind} {AUTHZ}/v1")
        spec = body.get("spec") or {}
        self.reviews.append((kind, copy.deepcopy(spec)))
        if kind == "SelfSubjectRulesReview":
            if not spec.get("namespace"):
                return status(400, "BadRequest", "no namespace on request")
            out: dict[str, Any] = {
                "resourceRules": [],
                "nonResourceRules": [
                    {"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/version"]}
                ],
                "incomplete": False,
            }
            if self.rules_incomplete:
                out["resourceRules"] = copy.deepcopy(BASIC_USER_RULES)
                out["incomplete"] = True
                out["evaluationError"] = "webhook authorizer does not support user rule resolution"
            else:
                out["resourceRules"] = self._granted_rules(spec["namespace"])
        else:
            attrs = spec.get("resourceAttributes") or {}
            resource = attrs.get("resource", "")
            if attrs.get("subresource"):
                resource += "/" + attrs["subresource"]
            ns = attrs.get("namespace")
            verb, group, name = attrs.get("verb", ""), attrs.get("group", ""), attrs.get("name")
            ok = self._allowed(verb, group, resource, ns, name)
            out = {"allowed": ok}
            if ok and self.roles:
                out["reason"] = f'RBAC: allowed by RoleBinding in namespace "{ns}"'
        meta: dict = {}
        answer = {"apiVersion": f"{AUTHZ}/v1", "kind": kind, "metadata": meta, "spec": spec}
        return web.json_response({**answer, "status": out}, status=201)

    def add_gateway(
        self,
        ns: str,
        name: str = "modeldeck-gateway",
        *,
        addresses: list[str] | None = None,
        load_balancer: str | None = None,
        port: int = 80,
        status_port: bool = False,
    ) -> None:
        """A Gateway as its implementation leaves it: ``status.addresses`` (when given) and,
        with ``load_balancer``, the LoadBalancer Service it made for the Gateway (labelled
        ``gateway.networking.k8s.io/gateway-name``, as Istio labels it) with that ingress.
        ``status_port``: the Service lists Istio's ``status-port`` (15021) first, as Istio's
        generated Gateway Service does."""
        gw = {
            "apiVersion": f"{GATEWAY}/v1",
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "gatewayClassName": "fake",
                "listeners": [{"name": "http", "port": port, "protocol": "HTTP"}],
            },
            "status": {"addresses": [{"type": "IPAddress", "value": a} for a in addresses or []]},
        }
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{name}-fake",
                "namespace": ns,
                "labels": {f"{GATEWAY}/gateway-name": name},
            },
            "spec": {
                "type": "LoadBalancer",
                "ports": [{"name": "status-port", "port": 15021}] * status_port
                + [{"name": "http", "port": port}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": load_balancer}]}},
        }

        def run() -> None:
            self._put_raw("gateways", ns, gw)
            if load_balancer:
                self._put_raw("services", ns, svc)

        self._on_loop(run)

    def deny(self, verb: str, resource: str) -> None:
        """RBAC: 403 for ``verb`` on ``resource`` (plural, e.g. "deployments")."""
        self.denied.add((verb, resource))

    def label_namespace(self, ns: str, labels: dict[str, str]) -> None:
        """Add labels to a namespace, e.g. ``{podsecurity.ENFORCE_LABEL: "restricted"}``:
        Pod Security admission then refuses the pods that break that level, created directly
        (403) or by a Deployment's ReplicaSet (a ``FailedCreate`` event and condition)."""

        def run() -> None:
            obj = self.store[("namespaces", "", ns)]
            obj["metadata"].setdefault("labels", {}).update(labels)
            self._put_raw("namespaces", "", obj, "MODIFIED")

        self._on_loop(run)

    def _pod_security(self, ns: str, pod: dict) -> str | None:
        """Why Pod Security admission refuses ``pod`` (or a pod template) in ``ns``."""
        space = self.store.get(("namespaces", "", ns)) or {}
        return podsecurity.refusal((space.get("metadata") or {}).get("labels"), pod)

    def _on_loop(self, fn: Any, *args: Any) -> Any:
        """Read the store on the server's loop (tests call from their own thread)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        return self._sync(fn, *args)

    def get(self, plural: str, ns: str, name: str) -> dict | None:
        return self._on_loop(lambda: copy.deepcopy(self.store.get((plural, ns, name))))

    def list(self, plural: str, ns: str | None = None, selector: str | None = None) -> list[dict]:
        return self._on_loop(self._list_objects, plural, ns, selector)

    def _list_objects(self, plural: str, ns: str | None, selector: str | None) -> list[dict]:
        return [
            copy.deepcopy(o)
            for (p, n, _), o in sorted(self.store.items())
            if p == plural
            and (ns is None or n == ns)
            and match_labels(o["metadata"].get("labels") or {}, selector)
        ]

    def pods_of(self, ns: str, deployment: str) -> list[dict]:
        def run() -> list[dict]:
            dep = self.store.get(("deployments", ns, deployment))
            if dep is None:
                return []
            sel = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
            return self._list_objects("pods", ns, sel)

        return self._on_loop(run)

    def add_log(self, ns: str, pod: str, text: str) -> None:
        self._sync(self._add_log, ns, pod, text)

    def restart_pod(
        self, ns: str, pod: str, *, first_line: str = "modeldeck podserver: loading"
    ) -> None:
        """The container exits and is restarted: follow streams end, the old log becomes
        ``previous``, restartCount grows, the new container logs ``first_line`` and its
        ``/metrics`` counters start from zero."""
        self._sync(self._restart_pod, ns, pod, first_line)

    def drop_log_streams(self, ns: str, pod: str) -> None:
        """End the pod's follow streams without a restart (an API server restart, a proxy
        time-out): a client that re-opens must not show lines twice."""

        def run() -> None:
            log = self.logs.setdefault((ns, pod), PodLog())
            for q in log.followers:
                q.put_nowait(None)
            log.followers.clear()

        self._sync(run)

    def record_requests(self, ns: str, pod: str, code: int, count: int, seconds: float) -> None:
        def run() -> None:
            stats = self.stats.setdefault((ns, pod), Stats())
            for _ in range(count):
                stats.record(code, seconds)

        self._sync(run)

    def set_usage(self, ns: str, pod: str, cpu: str, memory: str) -> None:
        self.usage[(ns, pod)] = (cpu, memory)

    def bulk_pods(self, ns: str, deployments: int, pods_each: int = 1) -> None:
        """Insert ``deployments`` x ``pods_each`` running pods with modeldeck's labels (bench)."""

        def run() -> None:
            for i in range(deployments):
                for j in range(pods_each):
                    labels = {
                        "app.kubernetes.io/managed-by": "modeldeck",
                        "modeldeck.io/endpoint": f"ep{i // 6}",
                        "modeldeck.io/deployment": f"d{i}",
                    }
                    self._put_raw(
                        "pods",
                        ns,
                        self._pod_object(
                            ns, f"ep{i // 6}-d{i}-abc-{j:05d}", labels, "h", "ok", f"img:{i}"
                        ),
                    )

        self._sync(run)

    # ------------------------------------------------------------------ storage

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _put_raw(self, plural: str, ns: str, obj: dict, event: str = "ADDED") -> dict:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        if ns:
            meta["namespace"] = ns
        meta["resourceVersion"] = str(self._next_rv())
        self.store[(plural, ns, meta["name"])] = obj
        self._notify(plural, ns, event, obj)
        return obj

    def _delete_raw(self, plural: str, ns: str, name: str) -> dict | None:
        obj = self.store.pop((plural, ns, name), None)
        self.owner.pop((plural, ns, name), None)
        self.annotation_owners.pop((plural, ns, name), None)
        if obj is not None:
            obj["metadata"]["resourceVersion"] = str(self._next_rv())
            self._notify(plural, ns, "DELETED", obj)
            if plural == "deployments":
                sel = obj["spec"]["selector"]["matchLabels"]
                for pod in self.list("pods", ns):
                    if all(
                        (pod["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items()
                    ):
                        self._delete_pod(ns, pod["metadata"]["name"])
        return obj

    def _notify(self, plural: str, ns: str, kind: str, obj: dict) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        snapshot = copy.deepcopy(obj)
        self.history.append((rv, plural, ns, kind, snapshot))
        if len(self.history) > 20000:
            del self.history[:5000]
        for w_plural, w_ns, w_sel, q in list(self.watchers):
            if (
                w_plural == plural
                and (w_ns is None or w_ns == ns)
                and match_labels(snapshot["metadata"].get("labels") or {}, w_sel)
            ):
                q.put_nowait({"type": kind, "object": snapshot})

    def _emit_event(
        self, ns: str, kind: str, name: str, reason: str, message: str, etype: str = "Warning"
    ) -> None:
        ev_name = f"{name}.{uuid.uuid4().hex[:12]}"
        self._put_raw(
            "events",
            ns,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": ev_name},
                "involvedObject": {"kind": kind, "name": name, "namespace": ns},
                "reason": reason,
                "message": message,
                "type": etype,
                "count": 1,
                "firstTimestamp": now_rfc3339(),
                "lastTimestamp": now_rfc3339(),
                "source": {"component": "fake-controller"},
            },
        )

    # ------------------------------------------------------------------ validation

    def _validate(self, res: Res, obj: dict) -> str | None:
        """Why the object is invalid (as the API server says it), or None."""
        if not isinstance(obj, dict):
            return "body is not an object"
        if obj.get("kind") != res.kind or obj.get("apiVersion") != res.api_version:
            return f"kind/apiVersion {obj.get('kind')}/{obj.get('apiVersion')} does not match the path ({res.kind} {res.api_version})"
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        rule = _DNS1035 if res.plural == "services" else _DNS1123_SUB
        if not rule.match(name) or len(name) > (63 if res.plural == "services" else 253):
            return f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 name must consist of lower case alphanumeric characters or '-'"
        for k, v in (meta.get("labels") or {}).items():
            key_name = k.rsplit("/", 1)[-1]
            if not _LABEL_NAME.match(key_name) or len(key_name) > 63:
                return f"metadata.labels: Invalid value: {k!r}: name part must be a valid label key"
            if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
                return f"metadata.labels: Invalid value: {v!r}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and be at most 63 characters"
        try:
            if res.kind == "HTTPRoute":
                jsonschema.validate(obj, self._route_schema)
                for rule_ in obj["spec"].get("rules") or []:
                    types = [f["type"] for f in rule_.get("filters") or []]
                    for f in rule_.get("filters") or []:
                        cfg = {
                            "RequestMirror": "requestMirror",
                            "URLRewrite": "urlRewrite",
                            "RequestHeaderModifier": "requestHeaderModifier",
                        }.get(f["type"])
                        if cfg and cfg not in f:
                            return f"spec.rules.filters: filter.{cfg} must be specified for {f['type']} filter.type"
                    if len([t for t in types if t == "URLRewrite"]) > 1:
                        return "spec.rules.filters: URLRewrite filter cannot be repeated"
            elif not res.custom:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            err = getattr(exc, "caused_by", exc)
            where = ".".join(str(p) for p in getattr(err, "absolute_path", []) or [])
            return f"{where or '<root>'}: {getattr(err, 'message', str(err))}"
        if res.kind == "Deployment":
            sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            tmpl = (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                "labels"
            ) or {}
            if not sel or any(tmpl.get(k) != v for k, v in sel.items()):
                return "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
        return None

    def _refuse(self, res: Res, name: str, why: str) -> web.Response:
        self.invalid.append(f"{res.kind}/{name}: {why}")
        field_ = why.split(":", 1)[0]
        return status(
            422,
            "Invalid",
            f'{res.kind} "{name}" is invalid: {why}',
            name=name,
            kind=res.kind,
            causes=[{"reason": "FieldValueInvalid", "message": why, "field": field_}],
        )

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        method = request.method
        self.requests.append((method, path, request.headers.get("Content-Type", "")))
        for pattern, seconds in self.delays:
            if pattern.search(path):
                await asyncio.sleep(seconds)
        for pattern, gate in self.holds:
            if pattern.search(path):
                await gate.wait()
        auth = request.headers.get("Authorization", "")
        if (
            auth != f"Bearer {self.token}"
            and not _admin(request)
            and not (self.anonymous and not auth)
        ):
            return status(401, "Unauthorized", "Unauthorized")
        for fault in self.faults:
            if (
                fault.hits < fault.times
                and fault.path.search(path)
                and fault.method in (None, method)
            ):
                fault.hits += 1
                resp = status(
                    fault.status,
                    {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
                        fault.status, "InternalError"
                    ),
                    fault.message,
                )
                if fault.retry_after is not None:
                    resp.headers["Retry-After"] = f"{fault.retry_after:g}"
                return resp
        try:
            return await self._route(request, method, path)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug in the fake: show it as the API server would
            import traceback

            traceback.print_exc()
            return status(500, "InternalError", f"fake apiserver error: {exc}")

    async def _route(self, request: web.Request, method: str, path: str) -> web.StreamResponse:
        path = path.rstrip("/") or "/"
        if path == "/version":
            return web.json_response(
                {"major": "1", "minor": "33", "gitVersion": "v1.33.1", "platform": "linux/amd64"}
            )
        if path == "/api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            return web.json_response(self._group_list())
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return page_not_found()
        if (group == GATEWAY and not self.gateway_api) or (
            group == "metrics.k8s.io" and not self.metrics_server
        ):
            return page_not_found()
        if not rest:
            return self._resource_list(group, version)
        if group == "metrics.k8s.io":
            if self.roles and not _admin(request) and len(rest) >= 3:
                verb = "get" if len(rest) > 3 else "list"
                if not self._allowed(verb, group, "pods", rest[1], None):
                    return self._forbidden(verb, group, "pods", "pods", rest[1], None)
            return self._pod_metrics(rest, request)
        reviews = (["selfsubjectrulesreviews"], ["selfsubjectaccessreviews"])
        if group == AUTHZ and method == "POST" and rest in reviews:
            return await self._self_subject_review(request, rest[0])
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), rest[2:]
        res = BY_PATH.get((group, version, plural))
        if res is None:
            return page_not_found()
        verb = self._verb(method, name, request)
        rbac_name = f"{plural}/{sub[0]}" if sub else plural
        if (verb, rbac_name) in self.denied or (verb, plural) in self.denied:
            return self._forbidden(verb, group, plural, rbac_name, ns, name)
        if not _admin(request):
            verbs = [verb]
            if (  # server-side apply of an object not there yet is authorized as a create
                verb == "patch"
                and "apply-patch" in request.headers.get("Content-Type", "")
                and (plural, ns, name) not in self.store
            ):
                verbs.append("create")
            for v in verbs:
                if (v, plural) in self.denied or not self._allowed(v, group, rbac_name, ns, name):
                    return self._forbidden(v, group, plural, rbac_name, ns, name)
        if plural == "pods" and name and sub:
            pod_name = name.split(":", 1)[0]
            if sub[0] == "log":
                return await self._pod_log(request, ns, pod_name)
            if sub[0] == "proxy":
                return self._pod_proxy(ns, pod_name, "/".join(sub[1:]))
        if plural == "services" and name and sub and sub[0] == "proxy":
            return await self._service_proxy(request, ns, name, "/" + "/".join(sub[1:]))
        if name is None:
            if method == "GET":
                if request.query.get("watch") in ("true", "1"):
                    return await self._watch(request, res, ns)
                return self._list(request, res, ns)
            if method == "POST":
                return await self._create(request, res, ns)
            if method == "DELETE":
                return self._delete_collection(request, res, ns)
            return status(405, "MethodNotAllowed", "method not allowed")
        if method == "GET":
            obj = self.store.get((plural, ns, name))
            if obj is None:
                return self._not_found(res, name)
            return web.json_response(obj)
        if method == "PUT":
            return await self._replace(request, res, ns, name)
        if method == "PATCH":
            return await self._patch(request, res, ns, name)
        if method == "DELETE":
            obj = self._delete_raw(plural, ns, name)
            if obj is None:
                return self._not_found(res, name)
            return web.json_response(obj)
        return status(405, "MethodNotAllowed", "method not allowed")

    @staticmethod
    def _verb(method: str, name: str | None, request: web.Request) -> str:
        if method == "GET":
            if name is None:
                return "watch" if request.query.get("watch") in ("true", "1") else "list"
            return "get"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
            method, "delete" if name else "deletecollection"
        )

    def _not_found(self, res: Res, name: str) -> web.Response:
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        return status(
            404,
            "NotFound",
            f'{what} "{name}" not found',
            name=name,
            group=res.group,
            kind=res.plural,
        )

    def _group_list(self) -> dict:
        groups = [("apps", "v1"), ("autoscaling", "v2")]
        if self.gateway_api:
            groups.append((GATEWAY, "v1"))
        if self.metrics_server:
            groups.append(("metrics.k8s.io", "v1beta1"))
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for g, v in groups
            ],
        }

    def _resource_list(self, group: str, version: str) -> web.Response:
        resources = [
            {
                "name": r.plural,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": [
                    "create",
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "update",
                    "watch",
                ],
            }
            for r in RESOURCES
            if r.group == group and r.version == version
        ]
        if group == "metrics.k8s.io":
            resources = [
                {"name": "pods", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]}
            ]
        if not resources:
            return page_not_found()
        gv = f"{group}/{version}" if group else version
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": gv,
                "resources": resources,
            }
        )

    # ------------------------------------------------------------------ verbs

    def _list(self, request: web.Request, res: Res, ns: str) -> web.Response:
        sel = request.query.get("labelSelector")
        fsel = request.query.get("fieldSelector")
        items = [
            o
            for (p, n, _), o in self.store.items()
            if p == res.plural
            and (not res.namespaced or not ns or n == ns)
            and match_labels(o["metadata"].get("labels") or {}, sel)
            and match_fields(o, fsel)
        ]
        body = {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    async def _watch(self, request: web.Request, res: Res, ns: str) -> web.StreamResponse:
        sel = request.query.get("labelSelector")
        self.watch_requests.append((res.plural, sel))
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        q: asyncio.Queue = asyncio.Queue()
        for rv, plural, n, kind, obj in self.history:
            if (
                rv > since
                and plural == res.plural
                and (not ns or n == ns)
                and match_labels(obj["metadata"].get("labels") or {}, sel)
            ):
                q.put_nowait({"type": kind, "object": obj})
        watcher = (res.plural, ns or None, sel, q)
        self.watchers.append(watcher)
        deadline = time.monotonic() + timeout

        async def pump(resp: web.StreamResponse) -> None:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    event = await asyncio.wait_for(q.get(), left)
                except TimeoutError:
                    break
                if event is None:
                    break
                await resp.write(json.dumps(event).encode() + b"\n")

        return await _stream(request, "application/json", pump, self.watchers, watcher)

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if "yaml" in ctype:
            return yaml.safe_load(raw)
        return json.loads(raw)

    async def _create(self, request: web.Request, res: Res, ns: str) -> web.Response:
        try:
            obj = await self._body(request)
        except ValueError:
            return status(400, "BadRequest", "the body is not valid JSON")
        self.written.append(copy.deepcopy(obj))
        name = (obj.get("metadata") or {}).get("name", "")
        why = self._validate(res, obj) or (_event_rules(ns, obj) if res.kind == "Event" else None)
        if why:
            return self._refuse(res, name, why)
        refusal = self._pod_security(ns, obj) if res.kind == "Pod" else None
        if refusal:
            return status(
                403, "Forbidden", f'pods "{name}" is forbidden: {refusal}', name=name, kind="pods"
            )
        if (res.plural, ns, name) in self.store:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            return status(
                409, "AlreadyExists", f'{what} "{name}" already exists', name=name, kind=res.plural
            )
        obj["metadata"].pop("resourceVersion", None)
        obj["metadata"]["generation"] = 1
        self.owner[(res.plural, ns, name)] = request.query.get("fieldManager") or "unknown"
        self._put_raw(res.plural, ns, obj)
        self._after_write(res, ns, name)
        return web.json_response(obj, status=201)

    async def _replace(self, request: web.Request, res: Res, ns: str, name: str) -> web.Response:
        obj = await self._body(request)
        self.written.append(copy.deepcopy(obj))
        current = self.store.get((res.plural, ns, name))
        if current is None:
            return self._not_found(res, name)
        if name in self.conflict_next_put:  # someone else wrote it meanwhile
            self.conflict_next_put.discard(name)
            current["metadata"]["resourceVersion"] = str(self._next_rv())
        why = self._validate(res, obj)
        if why:
            return self._refuse(res, name, why)
        stale = self._stale(res, name, current, obj)
        if stale is not None:
            return stale
        return self._store_update(res, ns, name, current, obj)

    def _stale(self, res: Res, name: str, current: dict, body: dict) -> web.Response | None:
        """409 when the body carries a resourceVersion that is no longer the object's: as the
        API server does for a replace, a merge patch and a server-side apply alike."""
        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
        if not sent_rv or sent_rv == current["metadata"]["resourceVersion"]:
            return None
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        return status(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            name=name,
            kind=res.plural,
        )

    def _store_update(self, res: Res, ns: str, name: str, current: dict, new: dict) -> web.Response:
        if current.get("immutable") and (
            current.get("data") != new.get("data")
            or current.get("binaryData") != new.get("binaryData")
        ):
            return self._refuse(
                res, name, "data: Forbidden: field is immutable when `immutable` is set"
            )
        meta = new.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp"):
            meta[key] = current["metadata"][key]
        gen = int(current["metadata"].get("generation") or 1)
        meta["generation"] = gen + 1 if current.get("spec") != new.get("spec") else gen
        if "status" in current and "status" not in new:
            new["status"] = current["status"]
        self._put_raw(res.plural, ns, new, "MODIFIED")
        self._after_write(res, ns, name)
        return web.json_response(new)

    async def _patch(self, request: web.Request, res: Res, ns: str, name: str) -> web.Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype == "application/strategic-merge-patch+json" and res.custom:
            return status(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )
        try:
            patch = await self._body(request)
        except ValueError:
            return status(400, "BadRequest", "the body is not valid")
        self.written.append(copy.deepcopy(patch))
        current = self.store.get((res.plural, ns, name))
        key = (res.plural, ns, name)
        if ctype == "application/apply-patch+yaml":
            manager = request.query.get("fieldManager")
            if not manager:
                return status(
                    422,
                    "Invalid",
                    "PATCH, fieldManager: Required value: is required for apply patch",
                )
            why = self._validate(res, patch)
            if why:
                return self._refuse(res, name, why)
            if current is None:
                obj = copy.deepcopy(patch)
                obj["metadata"].pop("resourceVersion", None)
                obj["metadata"]["generation"] = 1
                self.owner[key] = manager
                self._put_raw(res.plural, ns, obj)
                self._after_write(res, ns, name)
                return web.json_response(obj, status=201)
            if self.owner.get(key) != manager and request.query.get("force") not in ("true", "1"):
                return status(
                    409,
                    "Conflict",
                    f'Apply failed with 1 conflict: conflict with "{self.owner.get(key)}": .spec',
                    name=name,
                    kind=res.plural,
                    causes=[
                        {
                            "reason": "FieldManagerConflict",
                            "message": f'conflict with "{self.owner.get(key)}"',
                            "field": ".spec",
                        }
                    ],
                )
            stale = self._stale(res, name, current, patch)
            if stale is not None:
                return stale
            self.owner[key] = manager
            new = copy.deepcopy(patch)
            # server-side apply removes only the fields this manager owned: an annotation
            # another manager set (merge patch) stays unless this apply sets it
            held = (current.get("metadata") or {}).get("annotations") or {}
            owners = self.annotation_owners.get(key, {})
            applied = new["metadata"].setdefault("annotations", {})
            for k, owner in list(owners.items()):
                if k in applied:
                    owners[k] = manager
                elif owner != manager and k in held:
                    applied[k] = held[k]
            if not applied:
                del new["metadata"]["annotations"]
            if (
                res.kind == "Deployment"
                and "replicas" not in new.get("spec", {})
                and "replicas" in current.get("spec", {})
            ):
                new["spec"]["replicas"] = current["spec"]["replicas"]
            return self._store_update(res, ns, name, current, new)
        if current is None:
            return self._not_found(res, name)
        if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            stale = self._stale(res, name, current, patch)
            if stale is not None:
                return stale
            new = merge_patch(current, patch)
            why = self._validate(res, {k: v for k, v in new.items() if k != "status"})
            if why:
                return self._refuse(res, name, why)
            manager = request.query.get("fieldManager") or "unknown"
            for k in (patch.get("metadata") or {}).get("annotations") or {}:
                self.annotation_owners.setdefault(key, {})[k] = manager
            return self._store_update(res, ns, name, current, new)
        return status(415, "UnsupportedMediaType", f"unsupported patch type {ctype}")

    def _delete_collection(self, request: web.Request, res: Res, ns: str) -> web.Response:
        sel = request.query.get("labelSelector")
        gone = [
            name
            for (p, n, name), o in list(self.store.items())
            if p == res.plural and n == ns and match_labels(o["metadata"].get("labels") or {}, sel)
        ]
        items = [self._delete_raw(res.plural, ns, name) for name in gone]
        return web.json_response(
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.api_version,
                "metadata": {},
                "items": items,
            }
        )

    # ------------------------------------------------------------------ controller

    def _after_write(self, res: Res, ns: str, name: str) -> None:
        if res.kind == "Deployment":
            self._schedule(self._autoscale(ns, name))
            self._schedule(self._reconcile(ns, name))
        elif res.kind == "HorizontalPodAutoscaler":
            hpa = self.store[(res.plural, ns, name)]
            target = hpa["spec"]["scaleTargetRef"]["name"]
            if ("deployments", ns, target) in self.store:
                self._schedule(self._reconcile(ns, target))

    def _schedule(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _desired(self, ns: str, dep: dict) -> int:
        self._hpa_scale(ns, dep)
        return int(dep["spec"].get("replicas", 1))

    def _hpa_scale(self, ns: str, dep: dict) -> bool:
        """What the HPA controller does to the Deployment it targets: the replica count
        kept within ``[minReplicas, maxReplicas]``, written to ``spec.replicas`` (through
        the scale subresource: a spec change, a new generation). True if it changed."""
        replicas = int(dep["spec"].get("replicas", 1))
        hpas = [
            h
            for h in self.list("horizontalpodautoscalers", ns)
            if h["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
        ]
        for hpa in hpas:
            replicas = min(
                max(replicas, hpa["spec"].get("minReplicas", 1)), hpa["spec"]["maxReplicas"]
            )
        if not hpas or dep["spec"].get("replicas") == replicas:
            return False
        dep["spec"]["replicas"] = replicas
        dep["metadata"]["generation"] = int(dep["metadata"].get("generation", 1)) + 1
        return True

    async def _autoscale(self, ns: str, name: str) -> None:
        """An HPA sync right after a write of the Deployment it targets (the real one syncs
        every 15 s, so it may come at any point, e.g. between a client's apply of a new
        replica count and its delete of the HPA): it scales the Deployment back within its
        bounds, as a write of its own (a new resourceVersion)."""
        dep = self.store.get(("deployments", ns, name))
        if dep is not None and self._hpa_scale(ns, dep):
            self._put_raw("deployments", ns, dep, "MODIFIED")
            self._schedule(self._reconcile(ns, name))

    def _pod_object(
        self,
        ns: str,
        name: str,
        labels: dict,
        template_hash: str,
        mode: str,
        image: str,
        inits: list[dict] | None = None,
    ) -> dict:
        running = mode == "ok"
        init_statuses: list[dict[str, Any]] = []
        for c in inits or []:
            ics: dict[str, Any] = {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": f"docker.io/{c.get('image', '')}@sha256:{'0' * 64}",
                "ready": mode not in ("initfail", "initrunning"),
                "started": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "finishedAt": now_rfc3339(),
                    }
                },
            }
            if mode == "initrunning" and c["name"] == "environment":
                ics["started"] = True
                ics["state"] = {"running": {"startedAt": now_rfc3339()}}
            if mode == "initfail" and c["name"] == "environment":
                ics["restartCount"] = 3
                ics["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 40s restarting failed container={c['name']} "
                        f"pod={name}_{ns}(0)",
                    }
                }
                ics["lastState"] = {
                    "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now_rfc3339()}
                }
            init_statuses.append(ics)
        cs: dict[str, Any] = {
            "name": "scoring",
            "image": image,
            "imageID": f"docker.io/{image}@sha256:{'0' * 64}" if running else "",
            "ready": running,
            "started": running,
            "restartCount": 0,
        }
        phase = "Running"
        conditions = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True" if running else "False"},
        ]
        if running:
            cs["state"] = {"running": {"startedAt": now_rfc3339()}}
        elif mode == "crash":
            cs["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 40s restarting failed container=scoring",
                }
            }
            cs["lastState"] = {"terminated": {"exitCode": 3, "reason": "Error"}}
            cs["restartCount"] = 3
        elif mode == "imagepull":
            phase = "Pending"
            cs["state"] = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}"',
                }
            }
        elif mode == "unschedulable":
            phase = "Pending"
            conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
            cs = {}
        elif mode in ("initfail", "initrunning"):
            phase = "Pending"
            conditions = [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            ]
            cs["state"] = {"waiting": {"reason": "PodInitializing"}}
        spec: dict[str, Any] = {
            "containers": [{"name": "scoring", "image": image}],
            "nodeName": "node-1" if phase == "Running" or mode.startswith("init") else None,
        }
        if inits:
            spec["initContainers"] = [
                {"name": c["name"], "image": c.get("image", "")} for c in inits
            ]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [cs] if cs else [],
            "podIP": "10.0.0.1" if running else None,
        }
        if init_statuses and mode != "unschedulable":
            status["initContainerStatuses"] = init_statuses
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": dict(labels, **{"pod-template-hash": template_hash}),
            },
            "spec": spec,
            "status": status,
        }

    def _environment_requirements(self, ns: str, template: dict) -> list[str] | None:
        """The requirement lines an ``environment`` init container builds: the ConfigMap's
        ``env/requirements.txt`` (None: no such init container)."""
        pod = template["spec"]
        if not any(c.get("name") == "environment" for c in pod.get("initContainers") or []):
            return None
        for vol in pod.get("volumes") or []:
            ref = vol.get("configMap")
            if not ref:
                continue
            cm = self.store.get(("configmaps", ns, ref["name"])) or {}
            for item in ref.get("items") or []:
                if item["path"] == "env/requirements.txt":
                    text = (cm.get("data") or {}).get(item["key"], "")
                    return [ln.strip() for ln in text.splitlines() if ln.strip()]
        return []

    def _missing(self, requirements: list[str]) -> str | None:
        for line in requirements:
            if line.startswith("-"):
                continue
            name = re.split(r"[=<>!~;\[ ]", line, maxsplit=1)[0]
            if name.lower() in self.missing_packages:
                return line
        return None

    def _mode(self, dep: dict) -> str:
        container = dep["spec"]["template"]["spec"]["containers"][0]
        image = container.get("image", "")
        ns = dep["metadata"].get("namespace", "default")
        reqs = self._environment_requirements(ns, dep["spec"]["template"])
        env_fails = reqs is not None and self._missing(reqs) is not None
        if reqs is not None and self.hold_builds and not env_fails:
            return "initrunning"
        if "crash" in image:
            return "initfail" if env_fails else "crash"  # the init container runs first
        if "does-not-exist" in image:
            return "imagepull"
        want = ((container.get("resources") or {}).get("requests") or {}).get("cpu")
        if want:
            biggest = max(metrics_mod.cpu_cores(c) for _, c, _ in self.nodes)
            if metrics_mod.cpu_cores(want) > biggest:
                return "unschedulable"
        return "initfail" if env_fails else "ok"

    def _environment_log(self, requirements: list[str]) -> list[str]:
        """What modeldeck's envbuild.py and pip print for ``requirements``."""
        pkgs = [r for r in requirements if not r.startswith("-")]
        out = [
            f"environment 0123456789ab: {len(pkgs)} package(s) on Python 3.11.9 "
            "(/usr/local/bin/python)",
        ]
        missing = self._missing(requirements)
        for r in pkgs:
            if r == missing:
                out += [
                    f"ERROR: Could not find a version that satisfies the requirement {r} "
                    "(from versions: none)",
                    f"ERROR: No matching distribution found for {r}",
                    "environment 0123456789ab: pip install failed (exit 1); nothing is kept",
                ]
                return out
            out.append(f"Collecting {r}")
        names = " ".join(re.split(r"[=<>!~;\[ ]", r, maxsplit=1)[0] for r in pkgs)
        out += [
            f"Successfully installed {names}",
            "environment 0123456789ab built (/var/modeldeck/env/venv/bin/python)",
        ]
        return out

    async def _reconcile(self, ns: str, name: str) -> None:
        await asyncio.sleep(self.ready_delay)
        if self.rollout_gate is not None:
            await self.rollout_gate.wait()
        dep = self.store.get(("deployments", ns, name))
        if dep is None:
            return
        template = dep["spec"]["template"]
        thash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        desired = self._desired(ns, dep)
        mode = self._mode(dep)
        image = template["spec"]["containers"][0].get("image", "")
        inits = template["spec"].get("initContainers") or []
        env_reqs = self._environment_requirements(ns, template)
        sel = dep["spec"]["selector"]["matchLabels"]
        pods = [
            p
            for p in self.list("pods", ns)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())
        ]
        new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == thash]
        old = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") != thash]
        refusal = self._pod_security(ns, template)
        refused: str | None = None
        for _ in range(len(new), desired):
            pname = f"{name}-{thash[:8]}-{uuid.uuid4().hex[:5]}"
            if refusal:  # the ReplicaSet controller's create is refused at admission
                refused = f'pods "{pname}" is forbidden: {refusal}'
                rs = f"{name}-{thash[:8]}"
                self._emit_event(ns, "ReplicaSet", rs, "FailedCreate", f"Error creating: {refused}")
                break
            pod = self._pod_object(
                ns, pname, template["metadata"].get("labels") or {}, thash, mode, image, inits
            )
            self._put_raw("pods", ns, pod)
            log = self.logs.setdefault((ns, pname), PodLog())
            t = time.time()
            if env_reqs is not None and mode in ("ok", "crash", "initfail", "initrunning"):
                texts = self._environment_log(env_reqs)
                if mode == "initrunning":
                    texts = texts[:2]  # still downloading
                run = [(t - 1 + i * 0.000001, text) for i, text in enumerate(texts)]
                # a crash-looping init container: its last run and the one before say the same
                self.container_logs[(ns, pname, "environment")] = PodLog(
                    lines=run, previous=list(run) if mode == "initfail" else None
                )
            if mode == "initfail":
                self._emit_event(
                    ns,
                    "Pod",
                    pname,
                    "BackOff",
                    f"Back-off restarting failed container environment in pod {pname}_{ns}(0)",
                )
            if mode == "ok":
                log.lines += [
                    (t, "modeldeck podserver: loading /var/modeldeck/app/code/score.py"),
                    (t + 0.000001, "modeldeck podserver: listening on port 5001"),
                ]
            elif mode == "crash":
                log.previous = [
                    (t, "modeldeck podserver: loading /var/modeldeck/app/code/score.py"),
                    (t + 0.000001, "init() failed:"),
                    (
                        t + 0.000002,
                        "FileNotFoundError: [Errno 2] No such file or directory: 'model.pkl'",
                    ),
                ]
                self._emit_event(
                    ns, "Pod", pname, "BackOff", "Back-off restarting failed container scoring"
                )
            elif mode == "imagepull":
                self._emit_event(
                    ns, "Pod", pname, "Failed", f'Failed to pull image "{image}": not found'
                )
            elif mode == "unschedulable":
                n = len(self.nodes)
                self._emit_event(
                    ns,
                    "Pod",
                    pname,
                    "FailedScheduling",
                    f"0/{n} nodes are available: {n} Insufficient cpu. preemption: 0/{n} nodes are available: {n} No preemption victims found for incoming pod.",
                )
        new = [
            p
            for p in self.list("pods", ns)
            if p["metadata"]["labels"].get("pod-template-hash") == thash
            and all(p["metadata"]["labels"].get(k) == v for k, v in sel.items())
        ]
        for extra in new[desired:]:
            self._delete_pod(ns, extra["metadata"]["name"])
        new = new[:desired]
        ready_new = [
            p
            for p in new
            if p["status"]["containerStatuses"] and p["status"]["containerStatuses"][0].get("ready")
        ]
        if len(ready_new) >= desired:
            for p in old:
                self._delete_pod(ns, p["metadata"]["name"])
            old = []
        ready_old = [
            p
            for p in old
            if p["status"]["containerStatuses"] and p["status"]["containerStatuses"][0].get("ready")
        ]
        dep = self.store.get(("deployments", ns, name))
        if dep is None:
            return
        progressing = {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetAvailable"
            if len(ready_new) >= desired
            else "ReplicaSetUpdated",
        }
        dep["status"] = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(new) + len(old),
            "updatedReplicas": len(new),
            "readyReplicas": len(ready_new) + len(ready_old),
            "availableReplicas": len(ready_new) + len(ready_old),
            "unavailableReplicas": max(0, desired - len(ready_new)),
            "conditions": [
                {"type": "Available", "status": "True" if ready_new or ready_old else "False"},
                progressing,
            ],
        }
        if refused:  # the new ReplicaSet's condition, which the deployment controller copies
            failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}
            dep["status"]["conditions"].append({**failure, "message": refused})
        self._put_raw("deployments", ns, dep, "MODIFIED")

    def _delete_pod(self, ns: str, pod: str) -> None:
        self._delete_raw("pods", ns, pod)
        for key in [k for k in self.container_logs if k[:2] == (ns, pod)]:
            del self.container_logs[key]
        log = self.logs.get((ns, pod))
        if log is not None:
            for q in log.followers:
                q.put_nowait(None)
            log.followers.clear()

    def _add_log(self, ns: str, pod: str, text: str) -> None:
        log = self.logs.setdefault((ns, pod), PodLog())
        t = max(time.time(), (log.lines[-1][0] + 0.000001) if log.lines else 0.0)
        log.lines.append((t, text))
        for q in log.followers:
            q.put_nowait((t, text))

    def _restart_pod(self, ns: str, pod: str, first_line: str) -> None:
        log = self.logs.setdefault((ns, pod), PodLog())
        for q in log.followers:
            q.put_nowait(None)
        log.followers.clear()
        log.previous = log.lines
        t = time.time()
        if log.previous:
            t = max(t, log.previous[-1][0] + 0.000001)
        log.lines = [(t, first_line)]
        self.stats.pop((ns, pod), None)  # a new container: its /metrics counts from zero
        obj = self.store.get(("pods", ns, pod))
        if obj is not None:
            for cs in obj["status"].get("containerStatuses") or []:
                cs["restartCount"] = int(cs.get("restartCount") or 0) + 1
                cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
            self._put_raw("pods", ns, obj, "MODIFIED")

    # ------------------------------------------------------------------ subresources

    async def _pod_log(self, request: web.Request, ns: str, pod: str) -> web.StreamResponse:
        obj = self.store.get(("pods", ns, pod))
        if obj is None:
            return status(404, "NotFound", f'pods "{pod}" not found', name=pod, kind="pods")
        q = request.query
        container = q.get("container") or "scoring"
        if container != "scoring":
            names = [c["name"] for c in obj["spec"].get("initContainers") or []]
            if container not in names:
                return status(
                    400,
                    "BadRequest",
                    f"container {container} is not valid for pod {pod}",
                )
            clog = self.container_logs.get((ns, pod, container), PodLog())
            chosen = clog.previous if q.get("previous") == "true" else clog.lines
            if chosen is None:
                return status(
                    400,
                    "BadRequest",
                    f'previous terminated container "{container}" in pod "{pod}" not found',
                )
            if q.get("tailLines") is not None:
                n = int(q["tailLines"])
                chosen = chosen[-n:] if n > 0 else []
            stamp = q.get("timestamps") == "true"
            body = "".join(
                (nano_stamp(t) + " " if stamp else "") + text + "\n" for t, text in chosen
            )
            return web.Response(body=body.encode(), content_type="text/plain")
        log = self.logs.setdefault((ns, pod), PodLog())
        if q.get("previous") == "true":
            if log.previous is None:
                return status(
                    400,
                    "BadRequest",
                    f'previous terminated container "scoring" in pod "{pod}" not found',
                )
            lines = list(log.previous)
        else:
            cs = (obj["status"].get("containerStatuses") or [{}])[0]
            if not (cs.get("state") or {}).get("running"):
                reason = ((cs.get("state") or {}).get("waiting") or {}).get(
                    "reason", "ContainerCreating"
                )
                return status(
                    400,
                    "BadRequest",
                    f'container "scoring" in pod "{pod}" is waiting to start: {reason}',
                )
            lines = list(log.lines)
        if q.get("sinceTime"):
            since = (
                datetime.strptime(q["sinceTime"], "%Y-%m-%dT%H:%M:%SZ")
                .replace(tzinfo=UTC)
                .timestamp()
            )
            lines = [ln for ln in lines if ln[0] >= since]
        if q.get("tailLines") is not None:
            n = int(q["tailLines"])
            lines = lines[-n:] if n > 0 else []
        stamps = q.get("timestamps") == "true"

        def fmt(item: tuple[float, str]) -> bytes:
            return ((nano_stamp(item[0]) + " " if stamps else "") + item[1] + "\n").encode()

        if q.get("follow") != "true" or q.get("previous") == "true":
            return web.Response(body=b"".join(fmt(x) for x in lines), content_type="text/plain")
        queue: asyncio.Queue = asyncio.Queue()
        log.followers.append(queue)

        async def pump(resp: web.StreamResponse) -> None:
            for item in lines:
                await resp.write(fmt(item))
            while True:
                item = await queue.get()
                if item is None:
                    break
                await resp.write(fmt(item))

        return await _stream(request, "text/plain", pump, log.followers, queue)

    def _pod_proxy(self, ns: str, pod: str, rest: str) -> web.Response:
        obj = self.store.get(("pods", ns, pod))
        if obj is None:
            return status(404, "NotFound", f'pods "{pod}" not found', name=pod, kind="pods")
        if obj["status"].get("phase") != "Running" or not obj["status"].get("podIP"):
            return status(
                503,
                "ServiceUnavailable",
                f'error trying to reach service: pod "{pod}" is not running',
            )
        if rest == "metrics":
            dep = (obj["metadata"].get("labels") or {}).get("modeldeck.io/deployment", "")
            stats = self.stats.get((ns, pod)) or Stats()
            return web.Response(text=stats.text(dep), content_type="text/plain")
        if rest == "":
            return web.Response(text="Healthy", content_type="text/plain")
        return web.Response(status=404, text="not found")

    async def _service_proxy(
        self, request: web.Request, ns: str, name: str, rest: str
    ) -> web.Response:
        """``services/NAME[:PORT]/proxy/REST``, as the API server resolves it: the Service,
        its port by name or number, a ready pod its selector picks (503 ``no endpoints
        available for service``), then the request to that pod. ``Authorization`` is not
        passed on: the API server consumed it (k8s.io/apiserver filters.WithAuthentication
        deletes it once the caller is authenticated)."""
        svc_name, _, port = name.partition(":")
        svc = self.store.get(("services", ns, svc_name))
        if svc is None:
            return self._not_found(BY_PATH[("", "v1", "services")], svc_name)
        ports = svc["spec"].get("ports") or []
        if port and not any(port in (p.get("name"), str(p.get("port"))) for p in ports):
            return status(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
        selector = svc["spec"].get("selector") or {}
        ready = [
            p
            for p in self._list_objects("pods", ns, None)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions") or []
            )
        ]
        if not selector or not ready:
            return status(
                503, "ServiceUnavailable", f'no endpoints available for service "{svc_name}"'
            )
        pod = ready[0]
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        return self._pod_server(ns, pod, request.method, rest, headers, await request.read())

    def _pod_server(
        self, ns: str, pod: dict, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> web.Response:
        """What the pod's scoring host answers a score (there is no process behind a fake
        pod): its key check against the keys Secret its Deployment mounts, with the host's
        own reasons (``services/scoring/host.py`` ``Keys.check``, the same credential
        headers), then 200 with the request echoed and ``azureml-model-deployment``."""
        labels = pod["metadata"].get("labels") or {}
        dep = labels.get("modeldeck.io/deployment", "")
        if method != "POST" or not path.endswith("/score"):
            return web.Response(status=404, text="not found")
        keys: dict[str, str] = {}
        for d in self._list_objects("deployments", ns, None):
            match = (d["spec"].get("selector") or {}).get("matchLabels") or {}
            if match and all(labels.get(k) == v for k, v in match.items()):
                for vol in d["spec"]["template"]["spec"].get("volumes") or []:
                    ref = (vol.get("secret") or {}).get("secretName")
                    secret = self.store.get(("secrets", ns, ref)) if ref else None
                    if secret and "primary-key" in (secret.get("data") or {}):
                        keys = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        mode = keys.get("auth-mode", "key")
        given = headers.get("authorization") or headers.get(PROXY_AUTH_HEADER) or ""
        scheme, _, value = given.partition(" ")
        why = None
        if mode != "none":
            if scheme.lower() != "bearer" or not value.strip():
                why = "missing Authorization: Bearer header"
            elif mode == "key" and value.strip() not in (
                keys.get("primary-key"),
                keys.get("secondary-key"),
            ):
                why = "invalid key"
            elif mode == "aml_token":
                try:
                    verify_token(
                        keys.get("token-secret", ""),
                        value.strip(),
                        labels.get("modeldeck.io/endpoint", ""),
                    )
                except TokenError as exc:
                    why = exc.pod_reason
        stats = self.stats.setdefault((ns, pod["metadata"]["name"]), Stats())
        if why is not None:
            stats.record(401, 0.001)
            return web.json_response({"error": why}, status=401)
        stats.record(200, 0.001)
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = body.decode("utf-8", "replace")
        return web.json_response(
            {"pod": pod["metadata"]["name"], "deployment": dep, "input": data},
            headers={"azureml-model-deployment": dep, "x-request-id": str(uuid.uuid4())},
        )

    def _pod_metrics(self, rest: list[str], request: web.Request) -> web.Response:
        if len(rest) < 3 or rest[0] != "namespaces" or rest[2] != "pods":
            return page_not_found()
        ns = rest[1]
        sel = request.query.get("labelSelector")
        items = []
        for pod in self.list("pods", ns, sel):
            if pod["status"].get("phase") != "Running":
                continue
            cpu, mem = self.usage.get((ns, pod["metadata"]["name"]), ("1000000n", "10240Ki"))
            items.append(
                {
                    "metadata": {
                        "name": pod["metadata"]["name"],
                        "namespace": ns,
                        "labels": pod["metadata"].get("labels"),
                    },
                    "timestamp": now_rfc3339(),
                    "window": "15s",
                    "containers": [{"name": "scoring", "usage": {"cpu": cpu, "memory": mem}}],
                }
            )
        return web.json_response(
            {
                "kind": "PodMetricsList",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {},
                "items": items,
            }
        )


def write_kubeconfig(
    path: Path,
    contexts: dict[str, tuple[str, str]],
    current: str | None = None,
    *,
    token: str = TOKEN,
    namespace: str | None = None,
) -> Path:
    """A kubeconfig with ``contexts``: name -> (server URL, token or "")."""
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": f"c-{n}", "cluster": {"server": url}} for n, (url, _) in contexts.items()
        ],
        "users": [
            {"name": f"u-{n}", "user": {"token": tok or token}} for n, (_, tok) in contexts.items()
        ],
        "contexts": [
            {
                "name": n,
                "context": {
                    "cluster": f"c-{n}",
                    "user": f"u-{n}",
                    **({"namespace": namespace} if namespace else {}),
                },
            }
            for n in contexts
        ],
    }
    if current:
        data["current-context"] = current
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path
