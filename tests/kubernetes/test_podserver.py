"""The scoring server of the pods, run as a real process laid out as the manifests mount it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from modeldeck.services.drivers.kubernetes import manifests as mf
from modeldeck.services.drivers.kubernetes.metrics import parse_prometheus
from modeldeck.services.scoring.host import mint_token

KEY1 = "primary-" + "x" * 30
KEY2 = "secondary-" + "y" * 30
HTTP_TIMEOUT_S = 60.0  # only to avoid hangs
START_TIMEOUT_S = 90.0  # only to avoid hangs: a loaded CI machine starts Python slowly


def _get(url: str, **kw: Any) -> httpx.Response:
    return httpx.get(url, timeout=HTTP_TIMEOUT_S, **kw)


def _post(url: str, **kw: Any) -> httpx.Response:
    return httpx.post(url, timeout=HTTP_TIMEOUT_S, **kw)


def start(tmp_path: Path, k: Any, mode: str = "key") -> tuple[subprocess.Popen, str, Path]:
    rt = k.runtime()
    app_files = mf.collect_files(rt.spec, rt.model, rt.code_dir)
    app = tmp_path / "app"
    for rel, content in app_files.files.items():  # as the ConfigMap volume's items lay them out
        target = app / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    keys = tmp_path / "keys"
    keys.mkdir()
    for name, value in (
        ("auth-mode", mode),
        ("primary-key", KEY1),
        ("secondary-key", KEY2),
        ("token-secret", "t" * 32),
    ):
        (keys / name).write_text(value)
    env = dict(
        os.environ,
        PORT="0",
        MODELDECK_ENTRY_SCRIPT=str(app / "code" / "score.py"),
        AZUREML_MODEL_DIR=str(app / "model"),
        MODELDECK_KEYS_DIR=str(keys),
        MODELDECK_ENDPOINT="ep",
        MODELDECK_DEPLOYMENT="blue",
        MODELDECK_MAX_CONCURRENCY="2",
    )
    proc = subprocess.Popen(
        [sys.executable, str(app / mf.PODSERVER_NAME)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = wait_for_port(proc, START_TIMEOUT_S)
    return proc, f"http://127.0.0.1:{port}", keys


def wait_for_port(proc: subprocess.Popen, timeout: float) -> int:
    """The port the pod server says it listens on; its output is read by a thread (a
    blocking readline cannot hang the test), and shown if it never says so in time."""
    assert proc.stdout is not None
    out: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # until EOF (the process ended or was killed)
            out.append(line)
            if "listening on port" in line:
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    found.wait(timeout)
    listening = [line for line in out if "listening on port" in line]
    if listening:
        return int(listening[0].rsplit(" ", 1)[1])
    proc.kill()
    proc.wait(10)
    raise AssertionError(
        f"pod server did not say 'listening on port' within {timeout:g} s "
        f"(exit code {proc.returncode}); its output:\n{''.join(out)}"
    )


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (as the kubelet does), then SIGKILL if it lingers: no server outlives a test."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def pod(tmp_path: Path, k: Any) -> Iterator[tuple[str, Path]]:
    proc, url, keys = start(tmp_path, k)
    try:
        yield url, keys
    finally:
        stop(proc)


def test_scoring_needs_a_key_and_takes_either(pod: tuple[str, Path], examples: Path) -> None:
    url, _ = pod
    body = (examples / "sample-request.json").read_bytes()
    assert _get(url + "/").text == "Healthy"
    assert _post(url + "/score", content=body).status_code == 401
    assert (
        _post(url + "/score", content=body, headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    for key in (KEY1, KEY2):
        r = _post(
            url + "/api/v1/endpoint/ep/score",
            content=body,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200
        assert r.json()["version"] == "blue"
        assert r.headers["azureml-model-deployment"] == "blue"

    # the endpoint's openapi_uri (.../swagger.json under the route's prefix): the same keys
    spec_url = url + "/api/v1/endpoint/ep/swagger.json"
    assert _get(spec_url).status_code == 401
    spec = _get(spec_url + "?version=3", headers={"Authorization": f"Bearer {KEY2}"})
    assert spec.status_code == 200
    assert spec.json()["openapi"] == "3.0.3"


def test_rotated_key_reaches_the_running_pod(pod: tuple[str, Path], examples: Path) -> None:
    url, keys = pod
    body = (examples / "sample-request.json").read_bytes()
    new = "rotated-" + "z" * 30
    tmp = keys / ".primary-key.tmp"
    tmp.write_text(new)
    os.replace(tmp, keys / "primary-key")  # the kubelet swaps Secret volume files atomically
    assert (
        _post(url + "/score", content=body, headers={"Authorization": f"Bearer {KEY1}"}).status_code
        == 401
    )
    assert (
        _post(url + "/score", content=body, headers={"Authorization": f"Bearer {new}"}).status_code
        == 200
    )


def test_metrics_count_requests_by_code(pod: tuple[str, Path], examples: Path) -> None:
    url, _ = pod
    body = (examples / "sample-request.json").read_bytes()
    for _ in range(3):
        _post(url + "/score", content=body, headers={"Authorization": f"Bearer {KEY1}"})
    _post(url + "/score", content=b"not json", headers={"Authorization": f"Bearer {KEY1}"})
    _post(url + "/score", content=body)
    scrape = parse_prometheus(_get(url + "/metrics").text)
    assert scrape.codes == {"200": 3, "500": 1, "401": 1}
    assert scrape.errors == 1
    assert scrape.count == 5


def test_aml_token_endpoint_takes_tokens_minted_by_the_control_plane(
    tmp_path: Path, k: Any, examples: Path
) -> None:
    proc, url, _ = start(tmp_path, k, mode="aml_token")
    try:
        body = (examples / "sample-request.json").read_bytes()
        token, _, _ = mint_token("t" * 32, "ep", 60)
        other, _, _ = mint_token("t" * 32, "another-endpoint", 60)
        expired, _, _ = mint_token("t" * 32, "ep", 60, now=time.time() - 120)
        ok = _post(url + "/score", content=body, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        for bad in (other, expired, KEY1):
            r = _post(url + "/score", content=body, headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401
            assert "t" * 32 not in r.text
    finally:
        stop(proc)


def test_init_failure_exits_before_listening(tmp_path: Path, k: Any) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(
        "def init():\n    raise RuntimeError('model.pkl missing')\n\ndef run(x):\n    return x\n"
    )
    env = dict(
        os.environ,
        PORT="0",
        MODELDECK_ENTRY_SCRIPT=str(code / "score.py"),
        MODELDECK_KEYS_DIR=str(tmp_path),
    )
    shutil.copy(mf.PODSERVER, tmp_path / "podserver.py")
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "podserver.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 3
    assert "model.pkl missing" in proc.stderr
    assert "listening" not in proc.stdout


FAKE_AZMLINFSRV = '''#!{python}
"""Stands in for Azure ML's inference server CLI: same flags, same routes; like its
gunicorn, it serves a socket passed by systemd socket activation (fd 3) if there is one,
else binds its own (the real one 0.0.0.0:PORT; loopback here)."""
import argparse, importlib.util, json, os, socket, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
p = argparse.ArgumentParser()
p.add_argument("--entry_script")
p.add_argument("--port", type=int)
a = p.parse_args()
spec = importlib.util.spec_from_file_location("score", a.entry_script)
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.init()
class H(BaseHTTPRequestHandler):
    def log_message(self, *x): pass
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"Healthy")
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        try:
            out, code = json.dumps(m.run(body)).encode(), 200
        except Exception as e:
            out, code = json.dumps({{"error": str(e)}}).encode(), 502
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("x-served-by", "azmlinfsrv"); self.end_headers(); self.wfile.write(out)
if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
    LISTENER = "inherited"
    server = HTTPServer(("127.0.0.1", a.port), H, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=3)
    server.socket.listen(16)
else:
    LISTENER = "own"
    server = HTTPServer(("127.0.0.1", a.port), H)
with open(os.environ["FAKE_AZMLINFSRV_REPORT"], "w") as f:
    f.write(LISTENER)
server.serve_forever()
'''


def test_azmlinfsrv_runtime_is_fronted_for_auth_and_metrics(
    tmp_path: Path, k: Any, examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "azmlinfsrv"
    tool.write_text(FAKE_AZMLINFSRV.format(python=sys.executable))
    tool.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        upstream = s.getsockname()[1]
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MODELDECK_RUNTIME", "azmlinfsrv")
    monkeypatch.setenv("MODELDECK_UPSTREAM_PORT", str(upstream))
    monkeypatch.setenv("MODELDECK_UPSTREAM_WAIT_S", "60")
    report = tmp_path / "listener"
    monkeypatch.setenv("FAKE_AZMLINFSRV_REPORT", str(report))
    proc, url, _ = start(tmp_path, k)
    try:
        body = (examples / "sample-request.json").read_bytes()
        assert _post(url + "/score", content=body).status_code == 401
        r = _post(url + "/score", content=body, headers={"Authorization": f"Bearer {KEY1}"})
        assert r.status_code == 200 and r.json()["version"] == "blue"
        # the pod server bound 127.0.0.1 itself: azmlinfsrv did not bind (0.0.0.0 if left alone)
        assert report.read_text() == "inherited"
        bad = _post(url + "/score", content=b"{}", headers={"Authorization": f"Bearer {KEY1}"})
        assert bad.status_code == 502  # the upstream's status is passed through
        assert parse_prometheus(_get(url + "/metrics").text).codes == {
            "401": 1,
            "200": 1,
            "502": 1,
        }
    finally:
        stop(proc)


def test_pod_server_parses_as_python_3_8() -> None:
    import ast

    ast.parse(mf.PODSERVER.read_text(), feature_version=(3, 8))  # the default image has 3.9


def test_key_and_token_checks_are_constant_time_comparisons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key check compares with hmac.compare_digest, against both keys whatever the
    first gave (no early exit that times which key matched); a token's signature too."""
    import hmac as real_hmac
    import importlib.util

    spec = importlib.util.spec_from_file_location("podserver_ct", mf.PODSERVER)
    assert spec and spec.loader
    ps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ps)
    calls: list[tuple[bytes, bytes]] = []
    compare = real_hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(ps.hmac, "compare_digest", recording)
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    for name, value in (("auth-mode", "key"), ("primary-key", KEY1), ("secondary-key", KEY2)):
        (keys_dir / name).write_text(value)
    keys = ps.Keys(str(keys_dir))
    for given, verdict in (("wrong", "invalid key"), (KEY1, None), (KEY2, None)):
        calls.clear()
        assert keys.check(f"Bearer {given}", "ep") == verdict
        assert calls == [(given.encode(), KEY1.encode()), (given.encode(), KEY2.encode())]
    calls.clear()
    assert keys.check("", "ep") == "missing Authorization: Bearer header"
    (keys_dir / "auth-mode").write_text("aml_token")
    (keys_dir / "token-secret").write_text("t" * 32)
    os.utime(keys_dir / "auth-mode", ns=(1, 1))  # a new stamp: the Secret changed
    token, _, _ = mint_token("t" * 32, "ep", 60)
    calls.clear()
    assert keys.check(f"Bearer {token}", "ep") is None
    assert len(calls) == 1  # the signature, compared in constant time
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert keys.check(f"Bearer {forged}", "ep") is not None
    assert len(calls) == 2
