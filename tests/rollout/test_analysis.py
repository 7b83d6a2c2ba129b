"""The analysis rules of services/rollout/analysis.py, each both ways (pure)."""

from __future__ import annotations

import math
from dataclasses import replace

from modeldeck.services.api.domain import MetricSample, MetricsReport
from modeldeck.services.api.rollouts import RolloutCheck, RolloutSpec
from modeldeck.services.drivers.kubernetes import metrics as kmetrics
from modeldeck.services.rollout import analysis
from modeldeck.services.scoring.host import BUCKETS

SPEC = RolloutSpec(
    endpoint="ep",
    to="green",
    from_="blue",
    interval_s=10.0,
    max_error_rate=1.0,
    max_p95_ratio=1.3,
    min_requests=100,
)


def report(**deps: tuple[int, int] | tuple[int, int, float | None]) -> MetricsReport:
    """name=(requests_total, errors_total[, p95 ms])."""
    samples = []
    for name, figures in deps.items():
        req, err, *p95 = figures
        samples.append(
            MetricSample(
                ts=0.0,
                endpoint="ep",
                deployment=name,
                requests_total=req,
                errors_total=err,
                latency_p95_ms=p95[0] if p95 else None,
            )
        )
    samples.append(MetricSample(ts=0.0, endpoint="other", deployment="green", requests_total=9))
    return MetricsReport(samples=samples)


START = report(blue=(1000, 5, 10.0), green=(50, 0, 10.0))


def check(now: MetricsReport, *, window_s: float = 4.0, spec: RolloutSpec = SPEC):
    _, result = analysis.analyse(
        spec, START, now, started_at=100.0, at=100.0 + window_s, interval_s=spec.interval_s
    )
    return result


def test_no_verdict_below_the_minimum_of_treatment_requests_even_when_failing() -> None:
    c = check(report(blue=(1900, 5), green=(149, 99)), window_s=60)
    assert c.verdict == "wait"
    assert c.reason == "waiting for 100 requests (99 so far)"
    assert (c.treatment_requests, c.treatment_errors) == (99, 99)
    c = check(report(blue=(1900, 5), green=(150, 0)), window_s=60)
    assert c.verdict == "pass"


def test_error_rate_above_the_control_by_more_than_the_points_fails_at_once() -> None:
    # 31% against 0% after 4 s of a 10 s step: fail fast, the numbers in the reason
    c = check(report(blue=(1912, 5), green=(350, 93)))
    assert c.verdict == "fail"
    assert c.reason == (
        "green 31.0% errors (93 of 300) against blue 0.0% (0 of 912) over 4 s: "
        "more than 1 point above"
    )
    assert (c.control_requests, c.control_errors, c.window_s) == (912, 0, 4.0)


def test_error_rate_within_the_points_of_the_control_does_not_fail() -> None:
    # green 2.0% against blue 1.5%: 0.5 points above, within 1
    c = check(report(blue=(1200, 8), green=(250, 4)), window_s=10)
    assert c.verdict == "pass", c.reason
    assert "green 2.0% errors (4 of 200) against blue 1.5% (3 of 200)" in c.reason
    # the same rates, a stricter rule: 0.25 points
    strict = RolloutSpec(**{**SPEC.__dict__, "max_error_rate": 0.25})
    assert check(report(blue=(1200, 8), green=(250, 4)), spec=strict).verdict == "fail"


def test_p95_above_the_ratio_of_the_control_fails_and_within_it_passes() -> None:
    slow = check(report(blue=(1200, 5, 40.0), green=(200, 0, 60.0)))
    assert slow.verdict == "fail"
    assert slow.reason.startswith("green p95 60 ms against blue 40 ms (1.50 x): more than 1.3 x")
    ok = check(report(blue=(1200, 5, 40.0), green=(200, 0, 50.0)), window_s=10)
    assert ok.verdict == "pass", ok.reason
    assert "p95 50 ms against 40 ms" in ok.reason


def histogram_p95(latencies_ms: list[float]) -> MetricSample:
    """A sample whose p95 is as the Kubernetes driver reads it: the pods' histogram (the
    scoring host's own buckets, cumulative, with +Inf) interpolated, with its bucket's bounds."""
    bounds = [*BUCKETS, math.inf]
    buckets = {le: float(sum(1 for x in latencies_ms if x / 1000.0 <= le)) for le in bounds}
    return MetricSample(
        ts=0.0,
        endpoint="ep",
        deployment="",
        latency_p95_ms=kmetrics.quantile(buckets, 0.95),
        latency_p95_bounds_ms=kmetrics.quantile_bucket(buckets, 0.95),
    )


def on_histograms(blue_ms: float, green_ms: float) -> RolloutCheck:
    blue, green = histogram_p95([blue_ms] * 200), histogram_p95([green_ms] * 200)
    now = report(blue=(1200, 5), green=(250, 0))
    samples = {s.deployment: s for s in now.samples if s.endpoint == "ep"}
    for name, p95 in (("blue", blue), ("green", green)):
        samples[name] = replace(
            samples[name],
            latency_p95_ms=p95.latency_p95_ms,
            latency_p95_bounds_ms=p95.latency_p95_bounds_ms,
        )
    return check(MetricsReport(samples=list(samples.values())), window_s=10)


def test_p95_interpolated_in_histogram_buckets_fails_only_beyond_their_resolution() -> None:
    # 4.9 ms against 5.1 ms real: one bucket apart, read 4.75 against 9.75 ms (2.05 x)
    near = on_histograms(4.9, 5.1)
    assert (near.control_p95_ms, near.treatment_p95_ms) == (4.75, 9.75)
    assert near.verdict == "pass", near.reason
    assert "p95 10 ms against 5 ms" in near.reason
    # a real 3x slowdown, 4 ms to 12 ms: its bucket starts above 1.3 x the control's end
    slow = on_histograms(4.0, 12.0)
    assert slow.verdict == "fail"
    assert slow.reason.startswith(
        "green p95 24 ms against blue 5 ms (5.11 x, its histogram bucket above 10 ms against "
        "at most 5 ms): more than 1.3 x"
    ), slow.reason
    # measured p95s (no bounds) are compared as they are, as before
    assert check(report(blue=(1200, 5, 4.75), green=(250, 0, 9.75))).verdict == "fail"


def test_p95_is_not_judged_unless_both_are_known_and_the_control_above_zero() -> None:
    for blue_p95, green_p95 in ((None, 500.0), (40.0, None), (0.0, 500.0)):
        c = check(report(blue=(1200, 5, blue_p95), green=(200, 0, green_p95)), window_s=10)
        assert c.verdict == "pass", (blue_p95, green_p95, c.reason)


def test_pass_only_once_the_interval_has_elapsed() -> None:
    now = report(blue=(1200, 5), green=(200, 0))
    held = check(now, window_s=9.5)
    assert held.verdict == "wait"
    assert held.reason.endswith(": holding until 10 s")
    assert check(now, window_s=10).verdict == "pass"


def test_a_counter_that_went_down_restarts_the_window() -> None:
    w, c = analysis.analyse(
        SPEC,
        START,
        report(blue=(1200, 5), green=(20, 0)),
        started_at=0,
        at=30,
        interval_s=10,
    )
    assert w.reset and c is None
    w, c = analysis.analyse(
        SPEC, START, report(blue=(1200, 1), green=(400, 0)), started_at=0, at=30, interval_s=10
    )
    assert w.reset and c is None  # errors_total went down: the control's counters restarted
    w, c = analysis.analyse(
        SPEC, START, report(blue=(1200, 5), green=(400, 0)), started_at=0, at=30, interval_s=10
    )
    assert not w.reset and c is not None and c.verdict == "pass"


def test_a_control_without_requests_counts_as_no_errors() -> None:
    c = check(report(blue=(1000, 5), green=(250, 1)), window_s=10)
    assert c.verdict == "pass"
    assert "against blue 0.0% (0 of 0)" in c.reason
    c = check(report(blue=(1000, 5), green=(250, 3)), window_s=10)
    assert c.verdict == "fail"
