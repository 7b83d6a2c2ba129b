"""Logs (multiplexed, follow, restarts, pods joining) and metrics (metrics.k8s.io, /metrics via proxy)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import LogLine
from modeldeck.services.drivers.kubernetes import metrics as metrics_mod
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

NS = "ml"


async def deployed(driver: KubernetesDriver, k: Any, instances: int = 1) -> None:
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment(
        "ep", k.runtime("blue", instance_count=instances), k.ProgressLog()
    )


async def next_matching(
    stream: Any, predicate: Callable[[LogLine], bool], timeout: float = 30
) -> LogLine:
    async def find() -> LogLine:
        async for line in stream:
            if predicate(line):
                return line
        raise AssertionError("log stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_read_logs_merges_pods_in_time_order(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deployed(driver, k, instances=2)
    a, b = (p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue"))
    fake.add_log(NS, a, "request 1 on a")
    fake.add_log(NS, b, "request 2 on b")
    fake.add_log(NS, a, "request 3 on a")
    lines = await driver.read_logs("ep", "blue", 3)
    assert [(line.replica, line.text) for line in lines] == [
        (a, "request 1 on a"),
        (b, "request 2 on b"),
        (a, "request 3 on a"),
    ]
    assert all(line.endpoint == "ep" and line.deployment == "blue" for line in lines)


async def test_since_keeps_only_later_lines_when_reading_and_following(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    import time

    await deployed(driver, k, instances=2)
    a, b = (p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue"))
    fake.add_log(NS, a, "before on a")
    await asyncio.sleep(0.01)
    cut = time.time()  # as `kubectl logs --since-time`: whole seconds go to the server
    await asyncio.sleep(0.01)
    fake.add_log(NS, b, "after on b")
    lines = await driver.read_logs("ep", "blue", 50, since=cut)
    assert [(ln.replica, ln.text) for ln in lines] == [(b, "after on b")]
    assert "before on a" in {ln.text for ln in await driver.read_logs("ep", "blue", 50)}
    stream = driver.follow_logs("ep", "blue", 50, since=cut)
    try:
        first = await next_matching(stream, lambda ln: True)
        assert (first.replica, first.text) == (b, "after on b")
        fake.add_log(NS, a, "new on a")
        await next_matching(stream, lambda ln: ln.text == "new on a")
    finally:
        await stream.aclose()


async def test_follow_survives_a_restart_and_joins_new_pods(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deployed(driver, k)
    (pod,) = (p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue"))
    stream = driver.follow_logs("ep", "blue", 10)
    try:
        first = await next_matching(stream, lambda ln: True)
        assert first.text.startswith("modeldeck podserver: loading")
        fake.add_log(NS, pod, "scored 1 request")
        await next_matching(stream, lambda ln: ln.text == "scored 1 request")
        fake.restart_pod(NS, pod, first_line="modeldeck podserver: loading (after restart)")
        notice = await next_matching(stream, lambda ln: ln.stream == "system")
        assert "restarted" in notice.text and notice.replica == pod
        await next_matching(
            stream, lambda ln: ln.text == "modeldeck podserver: loading (after restart)"
        )
        fake.add_log(NS, pod, "scored after restart")
        await next_matching(stream, lambda ln: ln.text == "scored after restart")
        # scale out: the new pod joins the stream from its first line
        await driver.apply_deployment("ep", k.runtime("blue", instance_count=2), k.ProgressLog())
        joined = await next_matching(stream, lambda ln: ln.replica != pod)
        assert joined.text.startswith("modeldeck podserver")
        fake.add_log(NS, joined.replica, "hello from the new pod")
        await next_matching(stream, lambda ln: ln.text == "hello from the new pod")
    finally:
        await stream.aclose()


async def test_follow_shows_no_line_twice_when_the_stream_is_reopened(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deployed(driver, k)
    (pod,) = (p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue"))
    stream = driver.follow_logs("ep", "blue", 10)
    seen: list[str] = []
    try:
        await next_matching(stream, lambda ln: "listening" in ln.text)
        for i in range(3):
            fake.add_log(NS, pod, f"line {i}")
        await next_matching(stream, lambda ln: ln.text == "line 2")
        fake.drop_log_streams(NS, pod)  # the client re-opens with sinceTime (whole seconds)
        fake.add_log(NS, pod, "end")

        async def collect() -> None:
            async for line in stream:
                seen.append(line.text)
                if line.text == "end":
                    return

        await asyncio.wait_for(collect(), 30)
    finally:
        await stream.aclose()
    assert seen == ["end"]


async def test_metrics_from_the_pods_and_the_metrics_server(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deployed(driver, k, instances=2)
    a, b = (p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue"))
    fake.set_usage(NS, a, "250000000n", "102400Ki")
    fake.set_usage(NS, b, "500m", "200Mi")
    (first,) = await driver.metrics("ep")
    assert first.cpu_percent == pytest.approx(75.0)
    assert first.memory_mb == pytest.approx(300.0)
    assert (first.replicas_ready, first.replicas_desired) == (2, 2)
    assert driver.metrics_note is None
    fake.record_requests(NS, a, 200, 90, 0.02)
    fake.record_requests(NS, b, 200, 5, 0.3)
    fake.record_requests(NS, b, 500, 5, 0.3)
    (second,) = await driver.metrics("ep")
    assert second.requests_total == 100
    assert second.status_codes == {"200": 95, "500": 5}
    assert second.errors_total == 5
    assert second.error_rate == pytest.approx(0.05)
    assert second.requests_per_second > 0
    assert second.latency_p50_ms is not None and 10 <= second.latency_p50_ms <= 25
    assert second.latency_p99_ms is not None and second.latency_p99_ms > 250


async def test_the_figures_are_over_the_last_minute_however_often_they_are_read(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    """A rollout reads the figures every half second, the metrics history every 10 s, the
    dashboards every few: each read's p95 and rate are over about the last minute's requests,
    not over the few since someone else's read (issue 14: a treatment must not fail its
    rollout on the p95 of the one slow request that came after the sampler's read)."""
    await deployed(driver, k)
    (pod,) = (p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue"))
    await driver.metrics("ep")
    fake.record_requests(NS, pod, 200, 99, 0.02)
    await driver.metrics("ep")  # another reader
    fake.record_requests(NS, pod, 200, 1, 0.9)
    (sample,) = await driver.metrics("ep")
    assert sample.latency_p95_ms is not None and sample.latency_p95_ms <= 25, sample
    assert sample.latency_p99_ms is not None and sample.latency_p99_ms <= 25, sample
    assert sample.requests_total == 100


def test_the_window_slides_over_the_scrapes_of_the_last_minute() -> None:
    def scrape(requests: int) -> metrics_mod.Scrape:
        return metrics_mod.Scrape(codes={"200": requests}, count=float(requests))

    recent = metrics_mod.Recent(window_s=60.0)
    assert recent.add(0.0, scrape(5)) == (scrape(5), 0.0)  # since the pod started
    assert recent.add(30.0, scrape(10)) == (scrape(5), 30.0)
    assert recent.add(70.0, scrape(20)) == (scrape(15), 70.0)  # from 0: the newest >= 60 s old
    window, elapsed = recent.add(95.0, scrape(40))  # from 30 s: 0 s is no longer needed
    assert (window.requests, elapsed) == (30, 65.0)


async def test_metrics_without_metrics_server_say_so(
    fake_factory: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_driver: Callable[..., KubernetesDriver],
    k: Any,
) -> None:
    bare = fake_factory(metrics_server=False)
    cfg = k.write_kubeconfig(tmp_path / "kc", {"bare": (bare.url, "")})
    monkeypatch.setenv("KUBECONFIG", str(cfg))
    driver = make_driver(context="bare")
    _, notes = await driver.attach_check()  # `cluster attach` says so already
    assert any("metrics server is not installed" in n and "components.yaml" in n for n in notes)
    await deployed(driver, k)
    (pod,) = (p["metadata"]["name"] for p in bare.pods_of(NS, "ep-blue"))
    bare.record_requests(NS, pod, 200, 3, 0.01)
    (sample,) = await driver.metrics()
    assert sample.cpu_percent is None and sample.memory_mb is None
    assert sample.requests_total == 3  # the pods' own metrics still come through the proxy
    assert driver.metrics_note and "metrics server is not installed" in driver.metrics_note
    assert "components.yaml" in driver.metrics_note
