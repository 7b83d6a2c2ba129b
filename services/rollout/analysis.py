"""The analysis of one rollout step: the treatment against the control over the same window.

Pure: two snapshots of the back end's figures (``MetricsReport``, one ``MetricSample`` per
deployment) in, a :class:`~..api.rollouts.RolloutCheck` out. The runner takes a snapshot when
a step's window starts and one at each tick; the window is their difference.

The rules, in the order they are applied:

1. **Counters.** ``requests_total`` and ``errors_total`` are cumulative; the window's counts
   are the differences between the two snapshots. A counter that went down was reset (the
   gateway or a replica restarted): the window cannot be measured and starts again (the
   runner takes a new first snapshot; :attr:`Window.reset`).
2. **Minimum requests.** No verdict ("wait") until the treatment has served at least
   ``spec.min_requests`` requests in the window: a handful of requests proves nothing either
   way. The reason says ``waiting for 200 requests (37 so far)``.
3. **Error rate: fail fast.** At any tick past the minimum, "fail" when the treatment's error
   rate (errors over requests, in percent) exceeds the control's by more than
   ``spec.max_error_rate`` percentage points. An error is what the back end counts as one
   (the local gateway: a 5xx or a 429). A control without requests in the window counts as
   0% errors.
4. **Latency: fail fast.** "fail" when both p95s are known, the control's is above 0, and the
   treatment's is surely above ``spec.max_p95_ratio`` times the control's. The p95s are the
   back end's current figures for both deployments read at the same moment (the second
   snapshot), not differences: the local gateway's p95 is over each deployment's last 60 s of
   requests (at most 2,048 of them), Azure Monitor's over its last minute; both measured, so
   they are compared as they are. Kubernetes' is interpolated in the pods' histogram buckets
   (5, 10, 25, 50 ms, ...) and says so (``MetricSample.latency_p95_bounds_ms``: the bucket
   the real p95 lies in): there the check compares what the buckets prove, the lower bound of
   the treatment's bucket against the ratio times the upper bound of the control's. 4.9 ms
   against 5.1 ms real reads 4.75 against 9.75 ms (2.05 x) but lies in the next bucket, not
   beyond the ratio: no fail; a p95 two buckets up (4 ms to 12 ms: 10 ms > 1.3 x 5 ms) fails.
   A slowdown within one bucket's width is not seen there: the histogram cannot tell it.
5. **Pass.** "pass" only when the step's interval has elapsed since the window started and
   no rule above failed; before that the verdict is "wait" and the reason gives the figures
   so far.

During the mirror phase the treatment's requests are the mirrored copies: the local gateway
counts a mirrored request's answer in the treatment's figures (``dataplane/forwarding.py``,
``mirror_send`` records it in the mirror deployment's stats), so the same rules apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api.domain import MetricSample, MetricsReport
from ..api.rollouts import RolloutCheck, RolloutSpec


@dataclass(frozen=True)
class Window:
    """The treatment's and the control's counts between two snapshots."""

    treatment_requests: int = 0
    treatment_errors: int = 0
    control_requests: int = 0
    control_errors: int = 0
    treatment_p95_ms: float | None = None
    control_p95_ms: float | None = None
    #: the buckets the p95s lie in, when the back end interpolated them (rule 4)
    treatment_p95_bounds_ms: tuple[float, float | None] | None = None
    control_p95_bounds_ms: tuple[float, float | None] | None = None
    #: a counter went down between the snapshots: the counts mean nothing, start again
    reset: bool = False


def samples(report: MetricsReport | None, endpoint: str) -> dict[str, MetricSample]:
    """The endpoint's samples by deployment name."""
    if report is None:
        return {}
    return {s.deployment: s for s in report.samples if s.endpoint == endpoint}


def window(spec: RolloutSpec, start: MetricsReport, now: MetricsReport) -> Window:
    """The counts of ``spec``'s treatment and control between the snapshots ``start`` and
    ``now`` (rule 1), and their p95 as of ``now`` (rule 4). A deployment missing from a
    snapshot counts as 0 requests there."""
    before, after = samples(start, spec.endpoint), samples(now, spec.endpoint)

    def diff(name: str) -> tuple[int, int, bool]:
        b, a = before.get(name), after.get(name)
        req0, err0 = (b.requests_total, b.errors_total) if b else (0, 0)
        req1, err1 = (a.requests_total, a.errors_total) if a else (0, 0)
        reset = req1 < req0 or err1 < err0
        return max(0, req1 - req0), max(0, err1 - err0), reset

    t_req, t_err, t_reset = diff(spec.to)
    c_req, c_err, c_reset = diff(spec.from_ or "")
    t_now, c_now = after.get(spec.to), after.get(spec.from_ or "")
    return Window(
        treatment_requests=t_req,
        treatment_errors=t_err,
        control_requests=c_req,
        control_errors=c_err,
        treatment_p95_ms=t_now.latency_p95_ms if t_now else None,
        control_p95_ms=c_now.latency_p95_ms if c_now else None,
        treatment_p95_bounds_ms=t_now.latency_p95_bounds_ms if t_now else None,
        control_p95_bounds_ms=c_now.latency_p95_bounds_ms if c_now else None,
        reset=t_reset or c_reset,
    )


def _pct(errors: int, requests: int) -> float:
    return 100.0 * errors / requests if requests else 0.0


def _slower(w: Window, ratio: float) -> str | None:
    """Whether the treatment's p95 is surely above ``ratio`` times the control's (rule 4):
    None when it is not (or is not known); else what the buckets proved, in words ("" when
    both p95s are measured)."""
    t, c = w.treatment_p95_ms, w.control_p95_ms
    if t is None or c is None or c <= 0:
        return None
    if w.treatment_p95_bounds_ms is None and w.control_p95_bounds_ms is None:
        return "" if t > ratio * c else None
    t_low = w.treatment_p95_bounds_ms[0] if w.treatment_p95_bounds_ms else t
    c_high = w.control_p95_bounds_ms[1] if w.control_p95_bounds_ms else c
    if c_high is None or t_low <= ratio * c_high:
        return None
    return f", its histogram bucket above {t_low:g} ms against at most {c_high:g} ms"


def _points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def judge(
    spec: RolloutSpec, w: Window, *, window_s: float, interval_s: float, at: float
) -> RolloutCheck:
    """The verdict on window ``w`` (rules 2 to 5), ``window_s`` seconds after it started, for
    a step held ``interval_s`` seconds (the mirror phase: ``spec.mirror_first_s``)."""
    treatment, control = spec.to, spec.from_ or ""
    t_rate, c_rate = (
        _pct(w.treatment_errors, w.treatment_requests),
        _pct(w.control_errors, w.control_requests),
    )
    errors = (
        f"{treatment} {t_rate:.1f}% errors ({w.treatment_errors} of {w.treatment_requests}) "
        f"against {control} {c_rate:.1f}% ({w.control_errors} of {w.control_requests}) "
        f"over {window_s:.0f} s"
    )
    latency = ""
    if w.treatment_p95_ms is not None and w.control_p95_ms is not None:
        latency = f"p95 {w.treatment_p95_ms:.0f} ms against {w.control_p95_ms:.0f} ms"

    def check(verdict: str, reason: str) -> RolloutCheck:
        return RolloutCheck(
            at=at,
            window_s=window_s,
            treatment_requests=w.treatment_requests,
            treatment_errors=w.treatment_errors,
            control_requests=w.control_requests,
            control_errors=w.control_errors,
            treatment_p95_ms=w.treatment_p95_ms,
            control_p95_ms=w.control_p95_ms,
            verdict=verdict,
            reason=reason,
        )

    if w.treatment_requests < spec.min_requests:
        return check(
            "wait", f"waiting for {spec.min_requests} requests ({w.treatment_requests} so far)"
        )
    if t_rate - c_rate > spec.max_error_rate:
        return check("fail", f"{errors}: more than {_points(spec.max_error_rate)} above")
    slower = _slower(w, spec.max_p95_ratio)
    if slower is not None and w.treatment_p95_ms is not None and w.control_p95_ms:
        return check(
            "fail",
            f"{treatment} p95 {w.treatment_p95_ms:.0f} ms against {control} "
            f"{w.control_p95_ms:.0f} ms ({w.treatment_p95_ms / w.control_p95_ms:.2f} x"
            f"{slower}): more than {spec.max_p95_ratio:g} x; {errors}",
        )
    figures = errors + (f", {latency}" if latency else "")
    if window_s < interval_s:
        return check("wait", f"{figures}: holding until {interval_s:.0f} s")
    return check("pass", f"{figures}: within limits")


def analyse(
    spec: RolloutSpec,
    start: MetricsReport,
    now: MetricsReport,
    *,
    started_at: float,
    at: float,
    interval_s: float,
) -> tuple[Window, RolloutCheck | None]:
    """:func:`window` then :func:`judge`; no check when the counters were reset (the
    window starts again from ``now``)."""
    w = window(spec, start, now)
    if w.reset:
        return w, None
    return w, judge(spec, w, window_s=max(0.0, at - started_at), interval_s=interval_s, at=at)
