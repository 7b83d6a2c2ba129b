"""The gateway: auth, exact traffic split, pinning, mirroring, limits, metrics, real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modeldeck.services.api.domain import RequestSettings
from modeldeck.services.api.errors import Conflict
from modeldeck.services.local.dataplane.endpoints import RoutedEndpoint as _Endpoint
from modeldeck.services.local.dataplane.gateway import Gateway
from modeldeck.services.local.dataplane.supervisor import Supervisor
from modeldeck.services.scoring.host import TokenError, mint_token, verify_token
from multidict import CIMultiDict

from tests.support import dataplane as dp

supervisor = dp.supervisor
gateway = dp.gateway
http = dp.http

FAST = RequestSettings(
    request_timeout_ms=10000, max_concurrent_requests_per_instance=8, max_queue_wait_ms=5000
)


async def _backends(
    tmp_path: Path,
    sup: Supervisor,
    gw: Gateway,
    names: tuple[str, ...] = ("blue", "green"),
    request: RequestSettings = FAST,
) -> None:
    replicas = await asyncio.gather(
        *(
            dp.start_replica(
                sup,
                tmp_path,
                dp.versioned(tmp_path, n),
                name=f"{n}-0",
                deployment=n,
                max_concurrency=8,
            )
            for n in names
        )
    )
    for n, r in zip(names, replicas, strict=True):
        gw.set_backends("ep", n, [r.address], request)


async def _score(
    http: aiohttp.ClientSession,
    gw: Gateway,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict, CIMultiDict[str]]:
    data = json.dumps(body if body is not None else {}).encode()
    async with http.post(gw.scoring_uri("ep"), data=data, headers=headers or {}) as resp:
        payload = await resp.json(content_type=None)
        return resp.status, payload, CIMultiDict(resp.headers)


# --------------------------------------------------------------------------- split, pin, mirror


async def test_exact_90_10_split_over_100_requests(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(tmp_path, supervisor, gateway)
    gateway.set_endpoint(dp.route(traffic={"blue": 90, "green": 10}))
    answered: Counter[str] = Counter()
    for _ in range(100):
        status, body, headers = await _score(http, gateway)
        assert status == 200
        assert headers["azureml-model-deployment"] == body["version"]
        answered[body["version"]] += 1
    assert answered == {"blue": 90, "green": 10}

    # a traffic update applies at once, and again exactly
    gateway.set_endpoint(dp.route(traffic={"blue": 50, "green": 50}))
    answered.clear()
    for _ in range(10):
        _, body, _ = await _score(http, gateway)
        answered[body["version"]] += 1
    assert answered == {"blue": 5, "green": 5}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=6), st.integers(0, 250)
)
def test_swrr_hits_the_ratio_over_any_window(raw: list[int], offset: int) -> None:
    total = sum(raw)
    if total == 0:
        return
    weights = {f"d{i}": w for i, w in enumerate(raw)}
    ep = _Endpoint(dp.route(traffic=weights))
    picks = [ep.pick() for _ in range(offset + total)][offset:]
    assert Counter(picks) == {k: w for k, w in weights.items() if w > 0}


async def test_header_pins_a_deployment(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(tmp_path, supervisor, gateway)
    gateway.set_endpoint(dp.route(traffic={"blue": 100, "green": 0}))
    for _ in range(5):
        status, body, headers = await _score(
            http, gateway, headers={"azureml-model-deployment": "green"}
        )
        assert status == 200
        assert body["version"] == "green"
        assert headers["azureml-model-deployment"] == "green"
    status, body, _ = await _score(http, gateway, headers={"azureml-model-deployment": "purple"})
    assert status == 404
    assert "purple" in body["error"]["message"]


async def test_mirror_copies_its_share_and_drops_the_answers(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(tmp_path, supervisor, gateway)
    # a copy beyond the mirror's in-flight limit is dropped (by design); room for all ten
    # copies at once, should green stall while blue answers the next 90 (a loaded machine)
    roomy = RequestSettings(request_timeout_ms=10000, max_concurrent_requests_per_instance=16)
    gateway.set_backends("ep", "green", gateway.backend_urls("ep", "green"), roomy)
    gateway.set_endpoint(dp.route(traffic={"blue": 100}, mirror={"green": 10}))
    for _ in range(100):
        status, body, headers = await _score(http, gateway)
        assert status == 200
        assert body["version"] == "blue"
        assert headers["azureml-model-deployment"] == "blue"
    green = gateway.stats("ep", "green")
    assert green is not None
    await dp.wait_for(
        lambda: green.requests_total + green.mirror_dropped >= 10,
        what=f"mirror copies (answered {green.codes}, dropped {green.mirror_dropped})",
    )
    await asyncio.sleep(0.2)
    assert (green.requests_total, green.mirror_dropped) == (10, 0)
    assert green.codes == {200: 10}
    assert gateway.stats("ep", "blue").requests_total == 100


# --------------------------------------------------------------------------- auth


async def test_key_auth(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(tmp_path, supervisor, gateway, ("blue",))
    gateway.set_endpoint(dp.route(traffic={"blue": 100}, mode="key"))
    for key in (dp.PRIMARY, dp.SECONDARY):
        status, body, _ = await _score(http, gateway, headers={"Authorization": f"Bearer {key}"})
        assert status == 200, body
    cases = {
        None: "missing Authorization header",
        "Bearer wrong-key": "invalid key",
        f"Basic {dp.PRIMARY}": "malformed Authorization header",
        "Bearer": "malformed Authorization header",
        f"Bearer {dp.PRIMARY} extra": "malformed Authorization header",
        dp.PRIMARY: "malformed Authorization header",
    }
    for header, reason in cases.items():
        status, body, headers = await _score(
            http, gateway, headers={"Authorization": header} if header else {}
        )
        assert status == 401, header
        assert reason in body["error"]["message"]
        assert dp.PRIMARY not in json.dumps(body)
        assert headers["WWW-Authenticate"].startswith("Bearer")

    # after a key is regenerated the old one stops working at once
    gateway.set_endpoint(dp.route(traffic={"blue": 100}, mode="key", primary="new-primary-key"))
    status, _, _ = await _score(http, gateway, headers={"Authorization": f"Bearer {dp.PRIMARY}"})
    assert status == 401
    status, _, _ = await _score(http, gateway, headers={"Authorization": "Bearer new-primary-key"})
    assert status == 200


async def test_token_auth_and_expiry(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(tmp_path, supervisor, gateway, ("blue",))
    gateway.set_endpoint(dp.route(traffic={"blue": 100}, mode="aml_token"))
    token, expiry, refresh_after = mint_token(dp.SECRET, "ep", ttl_s=600)
    assert refresh_after < expiry
    status, body, _ = await _score(http, gateway, headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body

    expired, _, _ = mint_token(dp.SECRET, "ep", ttl_s=60, now=1_000_000.0)  # expired long ago
    other_endpoint, _, _ = mint_token(dp.SECRET, "other", ttl_s=600)
    other_secret, _, _ = mint_token("another-secret", "ep", ttl_s=600)
    for credential, reason in (
        (expired, "token expired"),
        (other_endpoint, "another endpoint"),
        (other_secret, "bad signature"),
        (dp.PRIMARY, "malformed token"),  # keys are not tokens
    ):
        status, body, _ = await _score(
            http, gateway, headers={"Authorization": f"Bearer {credential}"}
        )
        assert status == 401
        assert reason in body["error"]["message"]


def test_token_verification() -> None:
    token, expiry, _ = mint_token("s3cret", "ep", ttl_s=10, now=1000.0)
    assert verify_token("s3cret", token, "ep", now=1005.0)["aud"] == "ep"
    with pytest.raises(TokenError, match="expired"):
        verify_token("s3cret", token, "ep", now=expiry)
    head, payload, sig = token.split(".")
    with pytest.raises(TokenError, match="bad signature"):
        verify_token("s3cret", f"{head}.{payload}x.{sig}", "ep", now=1005.0)
    with pytest.raises(TokenError, match="malformed"):
        verify_token("s3cret", "not-a-jwt", "ep")


# --------------------------------------------------------------------------- limits


async def test_request_timeout_is_504(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(
        tmp_path,
        supervisor,
        gateway,
        ("blue",),
        RequestSettings(request_timeout_ms=200, max_concurrent_requests_per_instance=4),
    )
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    status, body, headers = await _score(http, gateway, {"sleep": 1.5})
    assert status == 504
    assert "request_timeout_ms=200" in body["error"]["message"]
    assert headers["azureml-model-deployment"] == "blue"
    assert gateway.stats("ep", "blue").codes[504] == 1


async def test_queue_full_is_429(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(
        tmp_path,
        supervisor,
        gateway,
        ("blue",),
        RequestSettings(
            request_timeout_ms=10000, max_concurrent_requests_per_instance=1, max_queue_wait_ms=100
        ),
    )
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    results = await asyncio.gather(*(_score(http, gateway, {"sleep": 1.5}) for _ in range(3)))
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 429, 429]
    rejected = next(r[1] for r in results if r[0] == 429)
    assert "max_queue_wait_ms=100" in rejected["error"]["message"]
    assert "max_concurrent_requests_per_instance=1" in rejected["error"]["message"]


async def test_queued_request_waits_its_turn(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(
        tmp_path,
        supervisor,
        gateway,
        ("blue",),
        RequestSettings(
            request_timeout_ms=10000,
            max_concurrent_requests_per_instance=1,
            max_queue_wait_ms=20000,
        ),
    )
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    results = await asyncio.gather(*(_score(http, gateway, {"sleep": 0.2}) for _ in range(3)))
    assert [r[0] for r in results] == [200, 200, 200]


async def test_body_over_the_limit_is_413(
    tmp_path: Path, supervisor: Supervisor, http: aiohttp.ClientSession
) -> None:
    gw = Gateway("127.0.0.1", 0, max_body_bytes=1024)
    await gw.start()
    try:
        await _backends(tmp_path, supervisor, gw, ("blue",))
        gw.set_endpoint(dp.route(traffic={"blue": 100}))
        status, _, _ = await _score(http, gw, {"pad": "x" * 500})
        assert status == 200
        status, body, _ = await _score(http, gw, {"pad": "x" * 5000})
        assert status == 413
        assert "1024 bytes" in body["error"]["message"]

        async def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b"x" * 512

        async with http.post(gw.scoring_uri("ep"), data=chunks()) as resp:
            assert resp.status == 413
    finally:
        await gw.close()


async def test_port_in_use_is_a_conflict() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        gw = Gateway("127.0.0.1", port)
        with pytest.raises(Conflict) as info:
            await gw.start()
        assert str(port) in info.value.message
        assert "in use" in info.value.message
        assert info.value.fix and "another port" in info.value.fix


async def test_request_id_and_unavailable_answers(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(tmp_path, supervisor, gateway, ("blue",))
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    _, _, headers = await _score(http, gateway, headers={"x-request-id": "abc-123"})
    assert headers["x-request-id"] == "abc-123"
    _, _, headers = await _score(http, gateway)
    assert len(headers["x-request-id"]) == 36  # a uuid4 was made

    gateway.set_endpoint(dp.route(traffic={}))
    status, body, _ = await _score(http, gateway)
    assert status == 503
    assert "no traffic" in body["error"]["message"]

    gateway.set_backends("ep", "blue", [], FAST)  # no ready replica
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    status, body, _ = await _score(http, gateway)
    assert status == 503
    assert "no ready replica" in body["error"]["message"]

    async with http.post(gateway.scoring_uri("nope"), data=b"{}") as resp:
        assert resp.status == 404


async def test_made_up_endpoint_names_are_counted_under_one_label(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """Anyone on this host can reach the gateway: a flood of made-up endpoint names must
    not grow what the gateway keeps (nor /metrics) by one entry per name."""
    for i in range(50):
        async with http.post(gateway.scoring_uri(f"made-up-{i}"), data=b"{}") as resp:
            assert resp.status == 404
    async with http.get(f"{gateway.base_url}/metrics", headers=dp.METRICS_AUTH) as resp:
        text = await resp.text()
    rejected = [line for line in text.splitlines() if line.startswith("modeldeck_rejected_total")]
    assert rejected == ['modeldeck_rejected_total{endpoint="(unknown)",code="404"} 50']
    assert "made-up-" not in text


async def test_openapi_spec_behind_the_key_without_moving_the_split(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """GET .../swagger.json (the endpoint's openapi_uri): the endpoint's auth, then the
    spec of the pinned deployment or of the one with the most traffic; the query goes
    along; reading it leaves the exact traffic split as it was."""
    codes = {}
    for name in ("blue", "green"):
        codes[name] = dp.versioned(tmp_path, name)
        spec = {"swagger": "2.0", "info": {"title": f"{name} service", "version": "1.0"}}
        (codes[name] / "swagger2.json").write_text(json.dumps(spec))
    replicas = await asyncio.gather(
        *(
            dp.start_replica(supervisor, tmp_path, codes[n], name=f"{n}-0", deployment=n)
            for n in codes
        )
    )
    for n, r in zip(codes, replicas, strict=True):
        gateway.set_backends("ep", n, [r.address], FAST)
    gateway.set_endpoint(dp.route(traffic={"blue": 30, "green": 70}, mode="key"))
    uri = gateway.openapi_uri("ep")
    assert uri == gateway.scoring_uri("ep")[: -len("/score")] + "/swagger.json"
    auth = {"Authorization": f"Bearer {dp.PRIMARY}"}
    async with http.get(uri) as resp:
        assert resp.status == 401
    async with http.get(uri, headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
    for _ in range(3):
        async with http.get(uri, headers=auth) as resp:
            assert resp.status == 200
            assert (await resp.json())["info"]["title"] == "green service"
            assert resp.headers["azureml-model-deployment"] == "green"
    async with http.get(uri, headers={**auth, "azureml-model-deployment": "blue"}) as resp:
        assert (await resp.json())["info"]["title"] == "blue service"
    async with http.get(uri, params={"version": "3"}, headers=auth) as resp:
        assert resp.status == 200
        assert (await resp.json())["openapi"] == "3.0.3"  # generated: no swagger3.json
    async with http.get(uri, params={"version": "9"}, headers=auth) as resp:
        assert resp.status == 404
        assert "Swagger version [9] is not valid" in (await resp.json())["message"]

    answered: Counter[str] = Counter()
    for _ in range(10):
        _, body, _ = await _score(http, gateway, headers=auth)
        answered[body["version"]] += 1
    assert answered == {"blue": 3, "green": 7}


async def test_client_request_ids_reach_the_replica_and_come_back(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """As on Azure ML: x-ms-client-request-id is echoed, x-ms-request-id too (or made from
    it), and the scoring host's x-ms-run-function-failed says whose error a 500 is."""
    await _backends(tmp_path, supervisor, gateway, ("blue",))
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    status, _, headers = await _score(
        http, gateway, headers={"x-ms-client-request-id": "client-7", "x-request-id": "r-7"}
    )
    assert status == 200
    assert headers["x-request-id"] == "r-7"
    assert headers["x-ms-client-request-id"] == "client-7"
    assert headers["x-ms-request-id"] == "client-7"
    assert headers["x-ms-run-function-failed"] == "False"
    status, body, headers = await _score(http, gateway, {"fail": True})
    assert status == 500
    assert headers["x-ms-run-function-failed"] == "True"
    assert body == {
        "message": "An unexpected error occurred in scoring script. Check the logs for more info."
    }


async def test_balances_across_replicas(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    code = dp.versioned(tmp_path, "blue")
    replicas = await asyncio.gather(
        *(
            dp.start_replica(supervisor, tmp_path, code, name=f"blue-{i}", deployment="blue")
            for i in range(2)
        )
    )
    gateway.set_backends("ep", "blue", [r.address for r in replicas], FAST)
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    pids = Counter()
    for _ in range(10):
        _, body, _ = await _score(http, gateway)
        pids[body["pid"]] += 1
    assert sorted(pids.values()) == [5, 5]
    assert set(pids) == {r.pid for r in replicas}


async def test_prometheus_metrics(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await _backends(tmp_path, supervisor, gateway, ("blue",))
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    for _ in range(7):
        await _score(http, gateway)
    await _score(http, gateway, {"fail": True})
    async with http.get(f"{gateway.base_url}/metrics", headers=dp.METRICS_AUTH) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert 'modeldeck_requests_total{endpoint="ep",deployment="blue",code="200"} 7' in text
    assert 'modeldeck_requests_total{endpoint="ep",deployment="blue",code="500"} 1' in text
    assert 'modeldeck_request_errors_total{endpoint="ep",deployment="blue"} 1' in text
    assert 'modeldeck_request_duration_seconds_count{endpoint="ep",deployment="blue"} 8' in text
    assert (
        'modeldeck_request_duration_seconds_bucket{endpoint="ep",deployment="blue",le="+Inf"} 8'
        in text
    )
    assert "# TYPE modeldeck_request_duration_seconds histogram" in text
    stats = gateway.stats("ep", "blue")
    p50, p95, p99 = stats.percentiles()
    assert p50 is not None and p50 <= p95 <= p99
    rps, error_rate = stats.rate()
    assert rps > 0
    assert error_rate == pytest.approx(1 / 8)
    async with http.get(f"{gateway.base_url}/") as resp:
        assert resp.status == 200


async def test_a_dead_replica_is_skipped_without_failing_requests(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """A refused or dropped connection (nothing was answered) is tried on another replica."""
    code = dp.versioned(tmp_path, "blue")
    dead, alive = await asyncio.gather(
        *(
            dp.start_replica(supervisor, tmp_path, code, name=f"blue-{i}", deployment="blue")
            for i in range(2)
        )
    )
    gateway.set_backends("ep", "blue", [dead.address, alive.address], FAST)
    gateway.set_endpoint(dp.route(traffic={"blue": 100}))
    for _ in range(4):  # keep-alive connections to both
        assert (await _score(http, gateway))[0] == 200
    dead_address = dead.address
    await supervisor.stop(dead, grace=0.1)
    # the gateway has not heard yet
    gateway.set_backends("ep", "blue", [dead_address, alive.address], FAST)
    answers = [await _score(http, gateway) for _ in range(10)]
    assert [a[0] for a in answers] == [200] * 10
    assert {a[1]["pid"] for a in answers} == {alive.pid}


def test_metrics_of_several_pools_are_one_family_each() -> None:
    # each pool (cluster) provides its replicas' gauges; a scrape must still be valid text
    # format: one HELP and one TYPE per metric, and all of its samples together
    gateway = Gateway()
    for pool in ("one", "two"):
        gateway.add_metrics_provider(
            lambda pool=pool: [
                "# HELP modeldeck_replica_cpu_percent CPU of a replica process.",
                "# TYPE modeldeck_replica_cpu_percent gauge",
                f'modeldeck_replica_cpu_percent{{endpoint="{pool}",deployment="d",replica="d-0"}} 1',
                "# HELP modeldeck_replicas_desired Replicas the deployment should have.",
                "# TYPE modeldeck_replicas_desired gauge",
                f'modeldeck_replicas_desired{{endpoint="{pool}",deployment="d"}} 1',
            ]
        )
    lines = gateway.prometheus().splitlines()
    meta = [tuple(line.split()[1:3]) for line in lines if line.startswith("#")]
    assert len(meta) == len(set(meta))  # no HELP or TYPE twice
    families = [line.split("{")[0].split()[0] for line in lines if not line.startswith("#")]
    runs = [name for i, name in enumerate(families) if i == 0 or families[i - 1] != name]
    assert len(runs) == len(set(runs))  # each family's samples in one group
    assert families.count("modeldeck_replica_cpu_percent") == 2
    cpu = lines.index("# TYPE modeldeck_replica_cpu_percent gauge")
    assert lines[cpu + 1].startswith('modeldeck_replica_cpu_percent{endpoint="one"')
    assert lines[cpu + 2].startswith('modeldeck_replica_cpu_percent{endpoint="two"')


async def _raw_status(gw: Gateway, authorization: bytes) -> tuple[bytes, bytes]:
    """POST with an Authorization header of arbitrary bytes (no HTTP client sends those)."""
    path = gw.scoring_uri("ep").split(str(gw.port), 1)[1].encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    body = b'{"data": [[1, 2, 3, 4]]}'
    writer.write(
        b"POST " + path + b" HTTP/1.1\r\nHost: gw\r\nAuthorization: " + authorization
        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
        + body
    )  # fmt: skip
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], rest


@pytest.mark.parametrize("mode", ["key", "aml_token"])
async def test_undecodable_authorization_is_malformed_not_a_crash(
    tmp_path: Path, supervisor: Supervisor, gateway: Gateway, mode: str
) -> None:
    await _backends(tmp_path, supervisor, gateway, ("blue",))
    gateway.set_endpoint(dp.route(traffic={"blue": 100}, mode=mode))
    for credential in (b"\xff\xfeabc", "ключ".encode()):
        status, body = await _raw_status(gateway, b"Bearer " + credential)
        assert status.endswith(b"401 Unauthorized"), (status, body)
        assert b"malformed Authorization header" in body


async def test_metrics_need_the_token_and_are_off_without_one(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.base_url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 401
            body = await resp.json()
            assert "metrics token" in body["error"]["message"]
            assert "metrics_token_file" in body["error"]["fix"]
            assert "modeldeck_" not in json.dumps(body)
    async with http.get(url, headers=dp.METRICS_AUTH) as resp:
        assert resp.status == 200
        assert "# TYPE modeldeck_requests_total counter" in await resp.text()
    off = Gateway("127.0.0.1", 0)  # no token: the route is off
    await off.start()
    try:
        async with http.get(f"{off.base_url}/metrics", headers=dp.METRICS_AUTH) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "MetricsOff"
    finally:
        await off.close()
