"""The scoring host on its own: what the differential test does not reach (the transport,
the standard-library-only rule, run() in worker threads, the shims' details).

The host runs as its users run it: a file, started by an interpreter with no site
packages at all (``python -I -S host.py``), on a Unix socket.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parents[2] / "services" / "scoring" / "host.py"
START_TIMEOUT_S = 30
#: the host as its users start it: a file, no site-packages at all
ARGV = [sys.executable, "-I", "-S", str(HOST), "--code-dir"]

SCRIPT = """
import json, logging, os, threading, time

lock = threading.Lock()
active = [0, 0]  # now, most at once

def init():
    logging.info("model dir %s, entry %s", os.environ["AZUREML_MODEL_DIR"], os.environ["AZUREML_ENTRY_SCRIPT"])

def run(raw_data, request_headers):
    data = json.loads(raw_data or "{}")
    if data.get("most"):
        return {"most": active[1]}
    with lock:
        active[0] += 1
        active[1] = max(active)
    try:
        if data.get("until"):  # hold a worker until the file exists (10 s at most)
            for _ in range(1000):
                if os.path.exists(data["until"]):
                    break
                time.sleep(0.01)
        if data.get("sleep"):
            time.sleep(data["sleep"])
        return {"len": len(raw_data), "custom": request_headers.get("X-Custom"),
                "model_dir": os.environ["AZUREML_MODEL_DIR"]}
    finally:
        with lock:
            active[0] -= 1
"""

RAW = """
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

@rawhttp
def run(req: AMLRequest):
    if req.args.get("as") == "text":
        return AMLResponse("plain", 201, {"X-Extra": "a, b"})
    if req.args.get("as") == "json":
        return AMLResponse({"k": [1]}, 200, json_str=True)
    if req.args.get("as") == "none":
        return AMLResponse(None, 503)
    if req.args.get("as") == "form":
        return {"form": req.form.get("name"), "files": [f.filename for f in req.files.getlist("f")]}
    return {"method": req.method, "body": req.get_data(as_text=True), "json": req.get_json(silent=True),
            "header": req.headers.get("x-custom")}
"""


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=20)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Host:
    def __init__(self, proc: subprocess.Popen[str], path: str, output: list[str]) -> None:
        self.proc = proc
        self.path = path
        self.output = output

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        conn: UnixHTTP | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        own = conn is None
        c = conn or UnixHTTP(self.path)
        try:
            c.request(method, url, body=body, headers=headers or {})
            resp = c.getresponse()
            headers: dict[str, str] = {}
            for k, v in resp.getheaders():  # a repeated header's values joined, as sent
                headers[k.lower()] = f"{headers[k.lower()]}, {v}" if k.lower() in headers else v
            return resp.status, headers, resp.read()
        finally:
            if own:
                c.close()


def _start(tmp: Path, source: str, *extra: str) -> Host:
    code = tmp / "code"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(textwrap.dedent(source))
    (tmp / "model").mkdir(exist_ok=True)
    path = str(tmp / "h.sock")
    argv = [sys.executable, "-I", "-S", str(HOST), "--code-dir", str(code)]
    argv += ["--scoring-script", "score.py", "--model-dir", str(tmp / "model"), "--socket", path]
    proc = subprocess.Popen(
        [*argv, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)

    threading.Thread(target=pump, daemon=True).start()
    host = Host(proc, path, out)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if host.request("GET", "/")[0] == 200:
                return host
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the host did not start: {''.join(out)}")


@pytest.fixture()
def tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mdh-") as d:  # AF_UNIX paths are short
        yield Path(d)


def _stop(host: Host) -> None:
    host.proc.terminate()
    host.proc.wait(10)


def test_runs_with_the_standard_library_only(tmp: Path) -> None:
    """Started with no site-packages at all (-I -S), the host serves: nothing of modeldeck's
    or of any package is imported; request_headers and AZUREML_* reach the script."""
    host = _start(tmp, SCRIPT)
    try:
        status, headers, body = host.request(
            "POST", "/score", b'{"a": 1}', {"X-Custom": "yes", "Content-Type": "application/json"}
        )
        assert status == 200 and headers["content-type"] == "application/json"
        answer = json.loads(body)
        assert answer == {"len": 8, "custom": "yes", "model_dir": str(tmp / "model")}
    finally:
        _stop(host)
    assert f"entry {tmp / 'code' / 'score.py'}" in "".join(host.output)


def test_keep_alive_pipelining_chunked_and_expect_continue(tmp: Path) -> None:
    host = _start(tmp, SCRIPT)
    try:
        conn = UnixHTTP(host.path)
        for i in range(3):  # one connection, three requests
            status, _, body = host.request("POST", "/score", b"{}" + b" " * i, conn=conn)
            assert status == 200 and json.loads(body)["len"] == 2 + i
        conn.close()

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(host.path)
            chunked = b'4\r\n{"a"\r\n4\r\n: 1}\r\n0\r\n\r\n'
            s.sendall(
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunked
                + b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        answers = data.split(b"HTTP/1.1 ")[1:]
        assert [a[:3] for a in answers] == [b"200", b"200", b"404"]  # in order
        assert answers[0].endswith(b"Healthy")
        assert b'{"len": 8,' in answers[1]

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(host.path)
            s.sendall(
                b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
            s.sendall(b"{}")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK")
    finally:
        _stop(host)


def test_run_in_bounded_workers_while_liveness_answers(tmp: Path) -> None:
    """--max-concurrency 2: four run() calls that hold their worker; never more than two
    run at once, the others wait their turn, and GET / is answered meanwhile."""
    host = _start(tmp, SCRIPT, "--max-concurrency", "2")
    gate = tmp / "open"
    try:
        results: list[int] = []

        def call() -> None:
            body = json.dumps({"until": str(gate)}).encode()
            results.append(host.request("POST", "/score", body)[0])

        callers = [threading.Thread(target=call) for _ in range(4)]
        for t in callers:
            t.start()
        for _ in range(5):
            assert host.request("GET", "/")[0] == 200  # the event loop is not held
        assert not results  # all four wait: two on the gate, two for a worker
        gate.touch()
        for t in callers:
            t.join(30)
        assert results == [200, 200, 200, 200]
        assert json.loads(host.request("POST", "/score", b'{"most": 1}')[2]) == {"most": 2}
    finally:
        _stop(host)


def test_scoring_timeout_is_azmlinfsrvs_500(tmp: Path) -> None:
    host_env = dict(os.environ, SCORING_TIMEOUT_MS="200")
    code = tmp / "code"
    code.mkdir()
    (code / "score.py").write_text(textwrap.dedent(SCRIPT))
    (tmp / "model").mkdir()
    path = str(tmp / "h.sock")
    proc = subprocess.Popen(
        [
            *ARGV,
            str(code),
            "--scoring-script",
            "score.py",
            "--model-dir",
            str(tmp / "model"),
            "--socket",
            path,
        ],
        env=host_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = Host(proc, path, [])  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if host.request("GET", "/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        status, headers, body = host.request("POST", "/score", b'{"sleep": 1}')
        assert status == 500
        assert json.loads(body) == {"message": "Scoring timeout after 200 ms"}
        assert headers["x-ms-run-function-failed"] == "True"
    finally:
        _stop(host)


def test_rawhttp_shims_without_flask_or_werkzeug(tmp: Path) -> None:
    """@rawhttp with the standard-library AMLRequest/AMLResponse, as azmlinfsrv's behave."""
    host = _start(tmp, RAW)
    try:
        status, headers, body = host.request("GET", "/score?as=text")
        assert (status, headers["content-type"], body) == (
            201,
            "text/html; charset=utf-8",
            b"plain",
        )
        assert headers["x-extra"] == "a, b"  # werkzeug joins a repeated header's values
        assert headers["x-ms-run-function-failed"] == "False"
        status, headers, body = host.request("GET", "/score?as=json")
        assert (status, headers["content-type"], body) == (200, "application/json", b'{"k": [1]}')
        status, headers, body = host.request("GET", "/score?as=none")
        assert (status, body) == (503, b"{}")
        assert headers["x-ms-run-function-failed"] == "True"  # a 5xx from run() is its own
        status, _, body = host.request(
            "PUT", "/score?x=1", b'{"a": 2}', {"Content-Type": "application/json", "X-Custom": "c"}
        )
        assert status == 405  # azmlinfsrv routes GET, POST and OPTIONS only
        status, _, body = host.request(
            "POST", "/score", b'{"a": 2}', {"Content-Type": "application/json", "X-Custom": "c"}
        )
        assert json.loads(body) == {
            "method": "POST",
            "body": '{"a": 2}',
            "json": {"a": 2},
            "header": "c",
        }
        form = (
            b'--XX\r\nContent-Disposition: form-data; name="name"\r\n\r\nvalue\r\n'
            b'--XX\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--XX--\r\n"
        )
        status, _, body = host.request(
            "POST", "/score?as=form", form, {"Content-Type": "multipart/form-data; boundary=XX"}
        )
        assert json.loads(body) == {"form": "value", "files": ["a.bin"]}
    finally:
        _stop(host)


def test_a_bad_run_signature_fails_the_start_clearly(tmp: Path) -> None:
    code = tmp / "code"
    code.mkdir()
    (code / "score.py").write_text("def init():\n    pass\n\ndef run(*args):\n    return 1\n")
    proc = subprocess.run(
        [
            *ARGV,
            str(code),
            "--scoring-script",
            "score.py",
            "--model-dir",
            str(tmp),
            "--socket",
            str(tmp / "s.sock"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 4
    assert "run() cannot accept positional-only arguments, *args, or **kwargs." in proc.stderr
