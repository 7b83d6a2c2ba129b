"""Progressive rollouts: the contract (issue 14).

A rollout moves an endpoint's live traffic from a **control** deployment to a
**treatment** deployment in steps (``--steps 5,10,25,50,100``: the treatment's share),
holding each step for ``interval`` seconds while it compares the treatment with the control
over the same window; an optional mirror phase first copies traffic to the treatment with no
user seeing its answers. A failed check puts all traffic back on the control at once and
marks the rollout Failed with the numbers; passing every step promotes the treatment to 100%.

It runs in the control plane (the local daemon), not in a terminal: its state is a
:class:`Rollout` record that survives the daemon, and every traffic change it makes is an
audited change carrying the revision it read. A manual traffic change pauses it.

This module holds the types every layer shares, the input rules (each error names the field,
the value, the rule and the fix) and the arithmetic of a step's traffic map. The state
machine is ``services/rollout/runner.py``; the analysis ``services/rollout/analysis.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .domain import Deployment, Endpoint, ProvisioningState, _StrEnum
from .errors import Conflict, InvalidInput, NotFound

#: Defaults, as the issue's command line gives them.
DEFAULT_STEPS: tuple[int, ...] = (5, 10, 25, 50, 100)
DEFAULT_INTERVAL_S = 120.0
DEFAULT_MAX_ERROR_RATE = 1.0  # percentage points the treatment may exceed the control by
DEFAULT_MAX_P95_RATIO = 1.3
DEFAULT_MIN_REQUESTS = 200
#: the mirror phase copies this share of live traffic to the treatment (Azure ML's limit)
MIRROR_PERCENT = 50
#: the shortest step: the analysis needs a window (tests and the bench use 1-5 s)
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 24 * 3600.0

#: What an operator can do to a rollout once started.
ACTIONS = ("pause", "resume", "promote", "abort")


class RolloutState(_StrEnum):
    RUNNING = "Running"  # moving through its steps (the mirror phase included)
    PAUSED = "Paused"  # holds the traffic it has; an operator resumes, promotes or aborts
    SUCCEEDED = "Succeeded"  # promoted: the treatment has 100%
    FAILED = "Failed"  # a check failed: traffic is back on the control
    ABORTED = "Aborted"  # an operator aborted: traffic is back on the control

    @property
    def active(self) -> bool:
        """Running or Paused: the endpoint has a rollout in progress (no other may start)."""
        return self in (RolloutState.RUNNING, RolloutState.PAUSED)


@dataclass(frozen=True)
class RolloutSpec:
    """What the operator asked for (``online-endpoint rollout``, the YAML's
    ``modeldeck.rollout`` block, the dashboard's Rollout view)."""

    endpoint: str
    to: str  # the treatment
    #: the control; None: the endpoint's control mark, else the deployment with the most
    #: live traffic (resolved by :func:`check_start`)
    from_: str | None = None
    steps: tuple[int, ...] = DEFAULT_STEPS
    interval_s: float = DEFAULT_INTERVAL_S
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    max_p95_ratio: float = DEFAULT_MAX_P95_RATIO
    min_requests: int = DEFAULT_MIN_REQUESTS
    mirror_first_s: float = 0.0  # 0: no mirror phase
    #: where each step and the verdict are posted as JSON; None: the profile's default, if any
    webhook: str | None = None


@dataclass(frozen=True)
class RolloutCheck:
    """One analysis of the treatment against the control over one window."""

    at: float
    window_s: float
    treatment_requests: int
    treatment_errors: int
    control_requests: int
    control_errors: int
    treatment_p95_ms: float | None = None
    control_p95_ms: float | None = None
    #: "pass" | "fail" | "wait" (too few requests for a verdict yet)
    verdict: str = "wait"
    #: the numbers behind the verdict, in words ("green 31.0% errors (93 of 300) against
    #: blue 0.0% (0 of 912) over 4 s: more than 1 point above")
    reason: str = ""

    @property
    def treatment_error_rate(self) -> float | None:
        """Percent, None without a request."""
        return (
            100.0 * self.treatment_errors / self.treatment_requests
            if self.treatment_requests
            else None
        )

    @property
    def control_error_rate(self) -> float | None:
        return (
            100.0 * self.control_errors / self.control_requests if self.control_requests else None
        )


@dataclass(frozen=True)
class Rollout:
    """A rollout's state, as the control plane records it and every reader sees it."""

    id: str
    spec: RolloutSpec  # from_ resolved
    state: RolloutState
    #: index into spec.steps of the step being held; -1: the mirror phase
    step: int
    #: the treatment's live share now (the step's, or 0 after a rollback)
    weight: int
    started_at: float
    step_started_at: float
    updated_at: float
    finished_at: float | None = None
    #: who started it (``uid@host``, as the audit history says)
    started_by: str = ""
    #: which control plane drives it (``user@host:MODELDECK_HOME``); on a shared Kubernetes
    #: cluster another workspace sees it here
    driven_by: str = ""
    #: why it is paused, failed, aborted or waiting, in words
    message: str = ""
    last_check: RolloutCheck | None = None
    #: the traffic map the rollout last wrote: a different one on the endpoint means an
    #: operator changed it (the rollout pauses)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    #: the record's revision (compare-and-set of the control actions)
    revision: str = ""

    @property
    def treatment(self) -> str:
        return self.spec.to

    @property
    def control(self) -> str:
        return self.spec.from_ or ""

    @property
    def phase(self) -> str:
        """``mirror``, ``step 3/5 (25%)``, or ``promoted (100%)`` once it Succeeded (``step``
        keeps the last step it held, which the treatment has left): where it is, in words."""
        if self.state is RolloutState.SUCCEEDED:
            return "promoted (100%)"
        if self.step < 0:
            return "mirror"
        return f"step {self.step + 1}/{len(self.spec.steps)} ({self.spec.steps[self.step]}%)"


# --------------------------------------------------------------------------- input rules

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhd])+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
DURATION_FIX = "write a duration such as 30s, 2m, 1h (or 1h30m)"


def duration(value: Any, field_name: str) -> float:
    """Seconds from ``30s``, ``2m``, ``1h30m`` (or a bare number of seconds)."""
    if isinstance(value, bool):
        raise InvalidInput(field_name, value, "must be a duration", DURATION_FIX)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        raw = str(value).strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", raw):
            seconds = float(raw)
        elif _DURATION.match(raw):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(raw))
        else:
            raise InvalidInput(field_name, value, "must be a duration", DURATION_FIX)
    if seconds < 0:
        raise InvalidInput(field_name, value, "must not be negative", DURATION_FIX)
    return seconds


def duration_text(seconds: float) -> str:
    """The other way: ``2m``, ``1m30s``, ``1h``, ``5s``, ``0.5s`` (as ``--interval`` takes it)."""
    if seconds < 60:
        return f"{round(seconds, 1):g}s"  # a measured window: 1.00684 s reads 1s
    out, left = "", round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out


def steps(value: Any, field_name: str = "steps") -> tuple[int, ...]:
    """``5,10,25,50,100`` (text or a list): whole percents, strictly increasing, ending at 100."""
    fix = "write increasing percents ending at 100, e.g. 5,10,25,50,100"
    items: list[Any]
    if isinstance(value, str):
        items = [p.strip().rstrip("%") for p in value.split(",") if p.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise InvalidInput(field_name, value, "must be a list of percents", fix)
    if not items:
        raise InvalidInput(field_name, value, "must name at least one step", fix)
    out: list[int] = []
    for item in items:
        try:
            pct = int(str(item).strip().rstrip("%"))
        except ValueError:
            raise InvalidInput(field_name, value, f"'{item}' is not a whole percent", fix) from None
        if not 1 <= pct <= 100:
            raise InvalidInput(field_name, value, f"{pct} is not between 1 and 100", fix)
        if out and pct <= out[-1]:
            raise InvalidInput(
                field_name, value, f"steps must increase: {pct} comes after {out[-1]}", fix
            )
        out.append(pct)
    if out[-1] != 100:
        raise InvalidInput(field_name, value, f"the last step must be 100, not {out[-1]}", fix)
    return tuple(out)


def webhook(value: Any, field_name: str = "webhook") -> str | None:
    if value in (None, ""):
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            field_name,
            redact_url(str(value)),
            "must be an http:// or https:// URL",
            "give the URL the notifications are posted to, e.g. https://hooks.example.com/x",
        )
    return str(value)


def redact_url(url: str) -> str:
    """A webhook URL as shown and logged: its path and query often carry a secret (Slack's,
    Teams'), so only ``scheme://host[:port]/…`` is shown."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return "…" if url else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def validate_spec(spec: RolloutSpec) -> RolloutSpec:
    """The rules that need nothing but the spec; :func:`check_start` adds the endpoint's."""
    from . import validation

    validation.name(spec.endpoint, "endpoint")
    validation.name(spec.to, "to")
    if spec.from_ is not None:
        validation.name(spec.from_, "from")
        if spec.from_ == spec.to:
            raise InvalidInput(
                "from", spec.from_, "must differ from to", "name the deployment that serves now"
            )
    interval = duration(spec.interval_s, "interval")
    if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise InvalidInput(
            "interval",
            spec.interval_s,
            f"must be between {MIN_INTERVAL_S:g} s and 24 h",
            "write e.g. --interval 2m",
        )
    mirror = duration(spec.mirror_first_s, "mirror_first")
    if mirror > MAX_INTERVAL_S:
        raise InvalidInput(
            "mirror_first", spec.mirror_first_s, "must be at most 24 h", DURATION_FIX
        )
    max_error_rate = validation.number(spec.max_error_rate, "max_error_rate", 0.0)
    if max_error_rate > 100:
        raise InvalidInput(
            "max_error_rate", spec.max_error_rate, "is in percent: at most 100", "write e.g. 1"
        )
    max_p95_ratio = validation.number(spec.max_p95_ratio, "max_p95_ratio", 0.0)
    if max_p95_ratio < 1:
        raise InvalidInput(
            "max_p95_ratio",
            spec.max_p95_ratio,
            "must be at least 1 (the treatment's p95 over the control's)",
            "write e.g. 1.3",
        )
    min_requests = validation.integer(spec.min_requests, "min_requests", 1)
    return RolloutSpec(
        endpoint=spec.endpoint,
        to=spec.to,
        from_=spec.from_,
        steps=steps(spec.steps),
        interval_s=interval,
        max_error_rate=max_error_rate,
        max_p95_ratio=max_p95_ratio,
        min_requests=min_requests,
        mirror_first_s=mirror,
        webhook=webhook(spec.webhook),
    )


def check_start(
    spec: RolloutSpec, endpoint: Endpoint, deployments: list[Deployment]
) -> RolloutSpec:
    """The spec with its control resolved, or the error that says why it cannot start on
    this endpoint as it is: an unknown deployment, treatment and control the same, a
    treatment that is not Ready, live traffic on a third deployment, a treatment already
    past the first step. (Whether another rollout runs is the host's check.)"""
    spec = validate_spec(spec)
    by_name = {d.name: d for d in deployments}
    if spec.to not in by_name:
        raise NotFound.deployment(spec.to, endpoint.name)
    control = spec.from_
    if control is None:
        live = {k: v for k, v in endpoint.traffic.items() if k != spec.to and v > 0}
        control = endpoint.control if endpoint.control in live else None
        if control is None and live:
            control = max(sorted(live), key=lambda k: live[k])
        if control is None and endpoint.traffic.get(spec.to, 0) >= 100:
            raise InvalidInput(
                "to",
                spec.to,
                "already takes all live traffic: there is nothing to roll out",
                "roll out another deployment, or move traffic back first: modeldeck "
                f"online-endpoint update -n {endpoint.name} --traffic ...",
            )
        if control is None:
            raise InvalidInput(
                "from",
                None,
                "is required: no other deployment takes live traffic",
                f"name the control with --from (deployments: {', '.join(sorted(by_name))})",
            )
    elif control not in by_name:
        raise NotFound.deployment(control, endpoint.name)
    if control == spec.to:
        raise InvalidInput(
            "from", control, "must differ from --to", "name the deployment that serves now"
        )
    treatment = by_name[spec.to]
    if (
        treatment.provisioning_state is not ProvisioningState.SUCCEEDED
        or treatment.ready_replicas < max(1, treatment.desired_replicas)
    ):
        raise InvalidInput(
            "to",
            spec.to,
            f"is not Ready (READY {treatment.ready_replicas}/{treatment.desired_replicas}, "
            f"{treatment.provisioning_state.value})",
            f"wait until it is Ready: modeldeck online-deployment show -e {endpoint.name} -n {spec.to}",
        )
    others = {k: v for k, v in endpoint.traffic.items() if k not in (spec.to, control) and v > 0}
    if others:
        shown = ", ".join(f"{k}={v}%" for k, v in sorted(others.items()))
        raise InvalidInput(
            "traffic",
            shown,
            "a rollout moves traffic between two deployments only",
            f"give {control} that traffic first (online-endpoint update --traffic "
            f'"{control}={100 - endpoint.traffic.get(spec.to, 0)} {spec.to}={endpoint.traffic.get(spec.to, 0)}")',
        )
    if endpoint.traffic.get(spec.to, 0) >= spec.steps[0]:
        raise InvalidInput(
            "steps",
            ",".join(map(str, spec.steps)),
            f"the first step ({spec.steps[0]}%) must be above {spec.to}'s share now "
            f"({endpoint.traffic.get(spec.to, 0)}%)",
            f"start from steps above {endpoint.traffic.get(spec.to, 0)}, or set {spec.to} to 0 first",
        )
    return RolloutSpec(**{**spec.__dict__, "from_": control})


def step_traffic(spec: RolloutSpec, weight: int) -> dict[str, int]:
    """The live map that gives the treatment ``weight`` percent and the control the rest."""
    return {spec.from_ or "": 100 - weight, spec.to: weight}


def already_running(rollout: Rollout) -> Conflict:
    """The error of a second rollout on an endpoint that has one in progress."""
    where = f", driven by {rollout.driven_by}" if rollout.driven_by else ""
    return Conflict(
        f"endpoint '{rollout.spec.endpoint}' already has a rollout of {rollout.spec.to} "
        f"{rollout.state.value.lower()} ({rollout.phase}{where})",
        fix=(
            "wait for it, or stop it first: modeldeck online-endpoint rollout -n "
            f"{rollout.spec.endpoint} --abort"
        ),
    )


def changed_since(current: Rollout, if_revision: str | None) -> Conflict | None:
    """The refusal of an operator's action sent with ``if_revision`` (the revision read)
    when ``current`` took another since: its state, step or traffic moved (its progress
    takes no revision); None when none was sent or it still is the same."""
    if if_revision in (None, "", current.revision):
        return None
    endpoint = current.spec.endpoint
    return Conflict(
        f"the rollout of {current.spec.to} on '{endpoint}' changed since you read it "
        f"(revision {if_revision} -> {current.revision}: {current.state.value}, "
        f"{current.phase})",
        fix=f"read it again: modeldeck online-endpoint rollout -n {endpoint}",
    )
