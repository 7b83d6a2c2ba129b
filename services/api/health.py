"""Health where traffic is decided: is a deployment fit to take traffic, is its endpoint
Degraded, and what a traffic change would send to a deployment that is not.

Pure functions of what a Workspace already reads (the endpoint, its deployments, one
:class:`MetricsReport`'s samples), and at the end the same read through a Workspace, so
that the CLI (``online-endpoint show``; ``update --traffic`` refused without confirmation,
in ``services/apply.py``) and the dashboard (Endpoints, Endpoint, Traffic, whose Apply asks)
judge the same way.

A deployment is **sick** when it is *not ready* (provisioning state Failed, or fewer ready
replicas than desired: ``READY 0/1`` while its init() crash-loops) or *failing* (more than
:data:`ERROR_RATE_DEGRADED` of its requests answered 5xx in the workspace's current
figures, at :data:`MIN_REQUESTS_PER_MINUTE` or more). A deployment scaled to zero
(``READY 0/0``) is not sick: nobody asked for a replica. An endpoint is **Degraded** while it sends live or mirrored traffic to a sick
deployment. A change needs confirmation when it gives a sick deployment more live or
mirrored traffic than it takes now; taking traffic away never does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .domain import Deployment, Endpoint, MetricSample, ProvisioningState
from .errors import InvalidInput, ModeldeckError

if TYPE_CHECKING:
    from .workspace import Workspace

#: a deployment whose share of 5xx answers is above this is failing...
ERROR_RATE_DEGRADED = 0.05
#: ...once it serves at least this many requests a minute (one failed request of two is not
#: a verdict; DESIGN.md's rollout compares error rates over a minimum request count too)
MIN_REQUESTS_PER_MINUTE = 10.0
#: the last error line is cut to this many characters
LAST_ERROR_CHARS = 200

# "Name: message", as a traceback ends ("RuntimeError: ...", "azureml.x.UserError: ...")
# and as ARM words an error ("ResourceNotReady: ...", "InitFailed: ...")
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*: \S")
_SEE_LOG = re.compile(r"\s*\(see log [^)]*\)\s*$")


def last_error(error: str | None) -> str | None:
    """The line of a deployment's error an operator needs first: its last ``Name: message``
    line (an init() traceback's ``RuntimeError: model file is corrupt`` in the log it quotes,
    ARM's innermost detail), else its first line without the log's path; cut to
    :data:`LAST_ERROR_CHARS`."""
    if not error:
        return None
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return None
    picked = next((x for x in reversed(lines) if _EXCEPTION_LINE.match(x)), None)
    text = picked or _SEE_LOG.sub("", lines[0])
    # "...", not "…": the text goes to any terminal (the dashboard's may have no UTF-8)
    return text if len(text) <= LAST_ERROR_CHARS else text[: LAST_ERROR_CHARS - 3] + "..."


@dataclass(frozen=True)
class DeploymentHealth:
    """One deployment as a traffic decision sees it."""

    name: str
    ready_replicas: int
    desired_replicas: int
    provisioning_state: ProvisioningState
    traffic: int = 0  # its share of live traffic (in the map this was judged on)
    mirror_traffic: int = 0
    #: 5xx share of its requests in the workspace's current figures; None: no request then
    #: (or no figures at all)
    error_rate: float | None = None
    latency_p95_ms: float | None = None
    #: why it is sick ("READY 0/1", "READY 0/1, Failed", "error rate 12%"); None: fit for it
    problem: str | None = None
    last_error: str | None = None

    @property
    def ready(self) -> str:
        return f"{self.ready_replicas}/{self.desired_replicas}"

    @property
    def sick(self) -> bool:
        return self.problem is not None

    @property
    def serving(self) -> bool:
        """It takes live or mirrored traffic."""
        return self.traffic > 0 or self.mirror_traffic > 0

    def detail(self) -> str:
        """``READY 0/1, Failed, 10% of traffic; last error: RuntimeError: ...``"""
        shares = [f"{self.traffic}% of traffic"] if self.traffic else []
        if self.mirror_traffic:
            shares.append(f"{self.mirror_traffic}% mirrored")
        text = self.problem or "healthy"
        if shares:
            text += ", " + " and ".join(shares)
        if self.last_error:
            text += f"; last error: {self.last_error}"
        return text

    def reason(self) -> str:
        """``red: READY 0/1, Failed, 10% of traffic; last error: RuntimeError: ...``"""
        return f"{self.name}: {self.detail()}"

    def to_dict(self) -> dict[str, Any]:
        """As ``online-endpoint show`` prints it under ``health.deployments``."""
        return {
            "name": self.name,
            "ready": self.ready,
            "ready_replicas": self.ready_replicas,
            "desired_replicas": self.desired_replicas,
            "provisioning_state": self.provisioning_state.value,
            "traffic": self.traffic,
            "mirror_traffic": self.mirror_traffic,
            "error_rate": self.error_rate,
            "latency_p95_ms": self.latency_p95_ms,
            "problem": self.problem,
            "last_error": self.last_error,
        }


def _problem(dep: Deployment, error_rate: float | None, rpm: float) -> str | None:
    ready = f"READY {dep.ready_replicas}/{dep.desired_replicas}"
    if dep.provisioning_state is ProvisioningState.FAILED:
        return f"{ready}, Failed"
    if dep.ready_replicas < dep.desired_replicas:
        busy = dep.provisioning_state is not ProvisioningState.SUCCEEDED
        return f"{ready}, {dep.provisioning_state.value}" if busy else ready
    if (
        error_rate is not None
        and error_rate > ERROR_RATE_DEGRADED
        and rpm >= MIN_REQUESTS_PER_MINUTE
    ):
        return f"error rate {error_rate:.0%}"
    return None


def deployment_health(
    dep: Deployment,
    sample: MetricSample | None = None,
    *,
    traffic: int | None = None,
    mirror_traffic: int | None = None,
) -> DeploymentHealth:
    """``dep`` judged with its metrics ``sample``; ``traffic``/``mirror_traffic``: its shares
    in the map judged (default: the deployment's own, as read)."""
    error_rate, rpm = None, 0.0
    if sample is not None and sample.requests_per_second > 0:
        error_rate, rpm = sample.error_rate, sample.requests_per_second * 60
    return DeploymentHealth(
        name=dep.name,
        ready_replicas=dep.ready_replicas,
        desired_replicas=dep.desired_replicas,
        provisioning_state=dep.provisioning_state,
        traffic=dep.traffic if traffic is None else traffic,
        mirror_traffic=dep.mirror_traffic if mirror_traffic is None else mirror_traffic,
        error_rate=error_rate,
        latency_p95_ms=sample.latency_p95_ms if sample is not None else None,
        problem=_problem(dep, error_rate, rpm),
        last_error=last_error(dep.error),
    )


def _samples_by_name(endpoint: str, samples: Iterable[MetricSample] | None) -> dict[str, Any]:
    return {s.deployment: s for s in samples or () if s.endpoint == endpoint}


def endpoint_health(
    endpoint: Endpoint,
    deployments: Iterable[Deployment],
    samples: Iterable[MetricSample] | None = None,
    *,
    traffic: Mapping[str, int] | None = None,
    mirror_traffic: Mapping[str, int] | None = None,
) -> list[DeploymentHealth]:
    """Each deployment of ``endpoint`` (by name), with its shares in ``traffic`` /
    ``mirror_traffic`` (default: the endpoint's maps as read)."""
    live = endpoint.traffic if traffic is None else traffic
    mirror = endpoint.mirror_traffic if mirror_traffic is None else mirror_traffic
    by_name = _samples_by_name(endpoint.name, samples)
    return [
        deployment_health(
            d,
            by_name.get(d.name),
            traffic=int(live.get(d.name, 0)),
            mirror_traffic=int(mirror.get(d.name, 0)),
        )
        for d in sorted(deployments, key=lambda d: d.name)
        if d.endpoint_name == endpoint.name
    ]


def degraded(healths: Iterable[DeploymentHealth]) -> list[DeploymentHealth]:
    """The sick deployments that take live or mirrored traffic: while there is one, the
    endpoint is Degraded (each one's :meth:`DeploymentHealth.reason` says why)."""
    return [h for h in healths if h.sick and h.serving]


def health_dict(healths: list[DeploymentHealth]) -> dict[str, Any]:
    """``{"status": "Degraded" | "Healthy", "reasons": [...], "deployments": [...]}``."""
    sick = degraded(healths)
    return {
        "status": "Degraded" if sick else "Healthy",
        "reasons": [h.reason() for h in sick],
        "deployments": [h.to_dict() for h in healths],
    }


def gains(
    endpoint: Endpoint,
    traffic: Mapping[str, int] | None,
    mirror_traffic: Mapping[str, int] | None,
) -> set[str]:
    """The deployments a change gives more live or mirrored traffic than they take now
    (``None``: that map is not changed)."""
    out = set()
    for new, old in ((traffic, endpoint.traffic), (mirror_traffic, endpoint.mirror_traffic)):
        if new is not None:
            out |= {n for n, v in new.items() if int(v) > int(old.get(n, 0))}
    return out


def traffic_risks(
    endpoint: Endpoint,
    deployments: Iterable[Deployment],
    samples: Iterable[MetricSample] | None,
    traffic: Mapping[str, int] | None = None,
    mirror_traffic: Mapping[str, int] | None = None,
) -> list[DeploymentHealth]:
    """What applying ``traffic``/``mirror_traffic`` (None: unchanged) to ``endpoint`` would
    need confirmed: the sick deployments it gives more traffic than they take now, judged
    with their shares in the new maps. Moving traffic away from one never needs it."""
    more = gains(endpoint, traffic, mirror_traffic)
    if not more:
        return []
    healths = endpoint_health(
        endpoint, deployments, samples, traffic=traffic, mirror_traffic=mirror_traffic
    )
    return [h for h in healths if h.sick and h.name in more]


def risks_message(endpoint: str, risks: list[DeploymentHealth]) -> str:
    """One sentence naming each deployment, its READY x/y (or error rate) and last error."""
    which = "; ".join(f"deployment '{h.name}' ({h.detail()})" for h in risks)
    return f"endpoint '{endpoint}': this change sends traffic where it would fail: {which}"


# -- the same, read through a Workspace (the CLI and the dashboard share these) ----------
async def _samples(ws: Workspace, endpoint: str) -> list[MetricSample] | None:
    """The workspace's metrics of ``endpoint`` now; None when it has none or they cannot be
    read (health is then judged on readiness alone, and the figures read ``–``)."""
    if "metrics" not in ws.capabilities():
        return None
    try:
        return (await ws.get_metrics(endpoint)).samples
    except ModeldeckError:
        return None


async def read_endpoint(
    ws: Workspace, name: str
) -> tuple[Endpoint, list[Deployment], list[MetricSample] | None]:
    """The endpoint, its deployments and their metrics now (None: none to be read), read
    together: what its health is judged on."""
    return await asyncio.gather(
        ws.get_endpoint(name), ws.list_deployments(name), _samples(ws, name)
    )


async def endpoint_health_now(ws: Workspace, endpoint: Endpoint) -> list[DeploymentHealth]:
    """Each deployment of ``endpoint`` as traffic sees it now (:func:`endpoint_health`)."""
    deployments, samples = await asyncio.gather(
        ws.list_deployments(endpoint.name), _samples(ws, endpoint.name)
    )
    return endpoint_health(endpoint, deployments, samples)


async def traffic_risks_now(
    ws: Workspace,
    endpoint: Endpoint,
    deployments: list[Deployment],
    traffic: Mapping[str, int] | None,
    mirror_traffic: Mapping[str, int] | None,
) -> list[DeploymentHealth]:
    """What a traffic change (None: that map unchanged) needs confirmed
    (:func:`traffic_risks`), judged on ``deployments`` as read and the workspace's
    metrics now, read only when the change gives some deployment more traffic (without
    them, on readiness alone)."""
    if not gains(endpoint, traffic, mirror_traffic):
        return []
    samples = await _samples(ws, endpoint.name)
    return traffic_risks(endpoint, deployments, samples, traffic, mirror_traffic)


def unconfirmed_traffic(endpoint: str, risks: list[DeploymentHealth], confirm: str) -> InvalidInput:
    """The refusal of a change that :func:`traffic_risks_now` found risky, not confirmed."""
    first = risks[0].name
    return InvalidInput(
        "traffic",
        None,
        "sends traffic to a deployment that is not ready or failing",
        f"see why: modeldeck online-deployment get-logs -n {first} -e {endpoint}; to send it "
        f"traffic anyway, repeat the command with {confirm}",
        message=f"{risks_message(endpoint, risks)}. Not applied: nothing was changed.",
    )
