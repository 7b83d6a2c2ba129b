"""``modeldeck online-deployment metrics`` (issue 13, point 4): a deployment's history from
the control plane, ``-o json`` and ``-o table``, windows 5m/1h/24h/7d; modeldeck's own
command (az ml has none), and its help says so."""

from __future__ import annotations

import time

import pytest
from modeldeck.services.local.controlplane.metricstore import MetricStore, Row

from tests.cli.conftest import Cli

pytestmark = pytest.mark.e2e


def test_metrics_prints_the_history_as_json_and_as_a_table(cli: Cli) -> None:
    cli("cluster create --name myaks -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("online-endpoint create -f endpoint.yml -o none")
    cli("online-deployment create -n blue -e my-endpoint -f blue.yml --all-traffic -o none")
    # 30 minutes of history, as the sampler writes it: 60 requests a minute, 1 a 5xx
    now = int(time.time()) // 60 * 60
    store = MetricStore(cli.home / "data" / "metrics.db")
    store.write(
        Row(
            "my-endpoint",
            "blue",
            ts,
            10,
            9 if ts % 60 == 0 else 10,
            0,
            1 if ts % 60 == 0 else 0,
            1 if ts % 60 == 0 else 0,
            4.0,
            12.5,
            30.0,
            25.0,
            120.0,
            1,
            1,
        )
        # up to the last 10 s step before the commands below, not the minute's start: the 5m
        # table counts the steps of the last 5 minutes (rows up to 'now' left as few as 24
        # of them when the minute was nearly over: CI, once)
        for ts in range(now - 1800 + 10, int(time.time()) // 10 * 10 + 1, 10)
    )
    store.maintain(now)
    store.close()

    out = cli("online-deployment metrics -e my-endpoint -n blue").json()
    assert (out["endpoint"], out["deployment"], out["window"], out["step_s"]) == (
        "my-endpoint",
        "blue",
        "1h",
        60,
    )
    full = [p for p in out["points"] if p["requests"] == 60]
    assert len(full) >= 29
    p = full[-1]
    assert p["time"].endswith("+00:00") and p["requests_per_second"] == 1.0
    assert p["status_classes"] == {"2xx": 59, "5xx": 1}
    assert p["latency_p95_ms"] == 12.5 and p["cpu_percent"] == 25.0 and p["memory_mb"] == 120.0

    table = cli("online-deployment metrics -e my-endpoint -n blue --window 5m -o table").out
    header = table.splitlines()[0]
    for column in ("Time", "Req/s", "2xx", "4xx", "5xx", "Err%", "P95 ms", "Cpu%", "Ready"):
        assert column in header, header
    assert len(table.splitlines()) >= 2 + 25  # 10 s steps over 5 minutes

    bad = cli("online-deployment metrics -e my-endpoint -n blue --window 2h", ok=False)
    assert bad.code == 2 and "must be one of: 5m, 1h, 24h, 7d" in bad.err
    missing = cli("online-deployment metrics -e my-endpoint -n nope", ok=False)
    assert missing.code == 3 and "nope" in missing.err


def test_metrics_help_says_az_ml_has_no_such_command(cli: Cli) -> None:
    text = cli("online-deployment metrics --help").out
    assert "az ml has none" in text and "--window" in text
