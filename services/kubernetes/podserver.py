"""The scoring server that runs inside modeldeck's Kubernetes pods.

It is shipped to the pod in the deployment's ConfigMap and run with the image's
own ``python`` (``python /var/modeldeck/app/podserver.py``), so it uses the
standard library only and runs on Python 3.8+ (the default image,
``mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference``, has 3.9).
It does not need modeldeck in the image.

The Azure ML entry-script contract, as local replicas follow it:

* ``MODELDECK_ENTRY_SCRIPT`` names the scoring script; its folder is put on
  ``sys.path`` and made the working directory; ``init()`` runs once before the
  port is listened on, so the readiness probe fails until the model is loaded;
* ``AZUREML_MODEL_DIR`` holds the registered model under its own base name;
* ``GET /`` answers ``Healthy``; ``POST /score`` (also ``.../score`` under any
  prefix, so a gateway need not rewrite ``/api/v1/endpoint/NAME/score``) calls
  ``run(raw_data)`` with the body as a string;
* ``GET /metrics``: Prometheus text (requests by status code, errors, a latency
  histogram), read by modeldeck through the API server's pod proxy.

Auth is checked here, not by the gateway: ``MODELDECK_KEYS_DIR`` is the mounted
Secret (files ``auth-mode``, ``primary-key``, ``secondary-key``,
``token-secret``), re-read when it changes, so a key rotation reaches running
pods without a restart. ``Authorization: Bearer KEY`` is compared with
``hmac.compare_digest``; ``aml_token`` endpoints take HS256 JWTs signed with
the token secret whose ``aud`` is the endpoint (``MODELDECK_ENDPOINT``) and
whose ``exp`` has not passed. ``/`` and ``/metrics`` need no key (probes and
the API server's proxy reach them).

Environment: ``PORT`` (default 5001, as azmlinfsrv), ``MODELDECK_MAX_CONCURRENCY``
(``max_concurrent_requests_per_instance``), ``MODELDECK_DEPLOYMENT``.

``MODELDECK_RUNTIME=azmlinfsrv`` (a deployment's ``runtime: azmlinfsrv``): the scoring
script runs in Azure ML's own inference server (``azmlinfsrv``, which the image must
have) on ``127.0.0.1:PORT+1``; this server stays in front of it for auth and metrics
and forwards ``/score`` to it. It listens only once ``azmlinfsrv`` answers ``GET /``.
Left alone, ``azmlinfsrv`` binds ``0.0.0.0``, where any pod of the cluster could score
without a key; so this server binds ``127.0.0.1:PORT+1`` itself and hands the socket
over as systemd socket activation (fd 3, ``LISTEN_FDS=1``, ``LISTEN_PID``), which
gunicorn, azmlinfsrv's server, serves instead of binding its own addresses.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_log = logging.getLogger("modeldeck.podserver")


class Keys:
    """The endpoint's keys from the mounted Secret, re-read when a file changes."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._stamp: tuple = ()
        self.mode = "key"
        self.primary = ""
        self.secondary = ""
        self.token_secret = ""

    def _read(self, name: str) -> str:
        try:
            with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return ""

    def refresh(self) -> None:
        stamp = []
        for name in ("auth-mode", "primary-key", "secondary-key", "token-secret"):
            try:
                st = os.stat(os.path.join(self.directory, name))
                stamp.append((name, st.st_mtime_ns, st.st_ino))
            except OSError:
                stamp.append((name, 0, 0))
        if tuple(stamp) == self._stamp:
            return
        self._stamp = tuple(stamp)
        self.mode = self._read("auth-mode") or "key"
        self.primary = self._read("primary-key")
        self.secondary = self._read("secondary-key")
        self.token_secret = self._read("token-secret")

    def check(self, header: str, endpoint: str) -> str | None:
        """None when the request may pass, else why not (no secret in the text)."""
        self.refresh()
        if self.mode == "none":
            return None
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return "missing Authorization: Bearer header"
        value = value.strip().encode()
        if self.mode == "key":
            ok = False
            for key in (self.primary, self.secondary):
                if key and hmac.compare_digest(value, key.encode()):
                    ok = True
            return None if ok else "invalid key"
        return _verify_jwt(self.token_secret, value.decode(), endpoint)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify_jwt(secret: str, token: str, endpoint: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3 or not secret:
        return "malformed token"
    try:
        header = json.loads(_unb64(parts[0]))
        signature = _unb64(parts[2])
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        return "malformed token"
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return "malformed token: only HS256 tokens are accepted"
    expected = hmac.new(
        secret.encode(), (parts[0] + "." + parts[1]).encode("ascii"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(signature, expected):
        return "invalid token"
    if not isinstance(claims, dict) or claims.get("aud") != endpoint:
        return "invalid token: issued for another endpoint"
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or time.time() >= exp:
        return "token expired"
    return None


class Stats:
    """Counters and a latency histogram, printed as Prometheus text."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.total = 0.0

    def record(self, code: int, seconds: float) -> None:
        with self.lock:
            key = str(code)
            self.codes[key] = self.codes.get(key, 0) + 1
            self.count += 1
            self.total += seconds
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    self.buckets[i] += 1

    def text(self, deployment: str) -> str:
        with self.lock:
            lab = f'deployment="{deployment}"'
            out = [
                "# HELP modeldeck_requests_total Scoring requests by status code.",
                "# TYPE modeldeck_requests_total counter",
            ]
            for code, n in sorted(self.codes.items()):
                out.append(f'modeldeck_requests_total{{{lab},code="{code}"}} {n}')
            errors = sum(n for c, n in self.codes.items() if c.startswith("5"))
            out += [
                "# HELP modeldeck_request_errors_total Scoring requests answered 5xx.",
                "# TYPE modeldeck_request_errors_total counter",
                f"modeldeck_request_errors_total{{{lab}}} {errors}",
                "# HELP modeldeck_request_duration_seconds Scoring latency.",
                "# TYPE modeldeck_request_duration_seconds histogram",
            ]
            for le, n in zip(BUCKETS, self.buckets):  # noqa: B905 - runs on Python 3.9
                out.append(f'modeldeck_request_duration_seconds_bucket{{{lab},le="{le:g}"}} {n}')
            out.append(f'modeldeck_request_duration_seconds_bucket{{{lab},le="+Inf"}} {self.count}')
            out.append(f"modeldeck_request_duration_seconds_sum{{{lab}}} {self.total:f}")
            out.append(f"modeldeck_request_duration_seconds_count{{{lab}}} {self.count}")
            return "\n".join(out) + "\n"


#: the socket at fd argv[1] becomes fd 3 of the program argv[2:], as systemd passes it
_SOCKET_ACTIVATION = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "if fd != 3:\n"
    "    os.dup2(fd, 3)\n"
    "    os.close(fd)\n"
    "os.set_inheritable(3, True)\n"
    "os.environ['LISTEN_FDS'] = '1'\n"
    "os.environ['LISTEN_PID'] = str(os.getpid())\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


class App:
    def __init__(self) -> None:
        self.endpoint = os.environ.get("MODELDECK_ENDPOINT", "")
        self.deployment = os.environ.get("MODELDECK_DEPLOYMENT", "")
        self.keys = Keys(os.environ.get("MODELDECK_KEYS_DIR", "/var/modeldeck/keys"))
        self.stats = Stats()
        self.slots = threading.BoundedSemaphore(
            max(1, int(os.environ.get("MODELDECK_MAX_CONCURRENCY", "1") or 1))
        )
        self.queue_wait = float(os.environ.get("MODELDECK_MAX_QUEUE_WAIT_MS", "500")) / 1000
        self.run = None
        self.upstream: str | None = None
        self.child: subprocess.Popen | None = None

    def start_upstream(self, script: str, port: int, wait_s: float) -> None:
        """Run ``azmlinfsrv`` on 127.0.0.1:``port`` only and wait until it answers ``GET /``."""
        folder = os.path.dirname(os.path.abspath(script))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        fd = listener.fileno()
        cmd = [sys.executable, "-c", _SOCKET_ACTIVATION, str(fd), "azmlinfsrv"]
        cmd += ["--entry_script", script, "--port", str(port)]
        try:
            self.child = subprocess.Popen(cmd, cwd=folder, pass_fds=(fd,))
        finally:
            listener.close()  # the child holds it
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.child.poll() is not None:
                raise RuntimeError(f"azmlinfsrv exited with code {self.child.returncode}")
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as resp:
                    if resp.status == 200:
                        self.upstream = url
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"azmlinfsrv did not answer on {url} within {wait_s:g} s")

    def forward(self, body: bytes, ctype: str) -> tuple[int, bytes, str]:
        assert self.upstream is not None
        req = urllib.request.Request(
            self.upstream + "/score", data=body, headers={"Content-Type": ctype}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                return (
                    resp.status,
                    resp.read(),
                    resp.headers.get("Content-Type", "application/json"),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")

    def load(self, script: str) -> None:
        folder = os.path.dirname(os.path.abspath(script))
        sys.path.insert(0, folder)
        os.chdir(folder)
        spec = importlib.util.spec_from_file_location("score", script)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load scoring script {script}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for fn in ("init", "run"):
            if not callable(getattr(module, fn, None)):
                raise RuntimeError(f"scoring script {script} has no {fn}() function")
        module.init()
        self.run = module.run


def make_handler(app: App) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "modeldeck-podserver"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:  # access log off
            return

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if app.deployment:
                self.send_header("azureml-model-deployment", app.deployment)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(
                    200, app.stats.text(app.deployment).encode(), "text/plain; version=0.0.4"
                )
            elif path in ("/", "/healthz"):
                self._send(200, b"Healthy", "text/plain")
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            started = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            if not path.endswith("/score"):
                self._send(404, b'{"error": "not found"}')
                return
            why = app.keys.check(self.headers.get("Authorization", ""), app.endpoint)
            if why is not None:
                self._send(401, json.dumps({"error": why}).encode())
                app.stats.record(401, time.monotonic() - started)
                return
            if not app.slots.acquire(timeout=app.queue_wait):
                self._send(429, b'{"error": "too many concurrent requests"}')
                app.stats.record(429, time.monotonic() - started)
                return
            ctype = "application/json"
            try:
                if app.upstream:
                    code, payload, ctype = app.forward(
                        body, self.headers.get("Content-Type", "application/json")
                    )
                else:
                    result = app.run(body.decode("utf-8", "replace"))
                    if isinstance(result, (bytes, bytearray)):
                        payload, code = bytes(result), 200
                    else:
                        payload, code = json.dumps(result).encode(), 200
            except Exception as exc:
                _log.error("run() failed: %s", traceback.format_exc())
                payload, code = json.dumps({"error": f"run() failed: {exc}"}).encode(), 500
            finally:
                app.slots.release()
            self._send(code, payload, ctype)
            app.stats.record(code, time.monotonic() - started)

    return Handler


class _Stop(Exception):
    """SIGTERM (the kubelet stopping the pod): stop serving, stop azmlinfsrv."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Stop()


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s"
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    script = os.environ.get("MODELDECK_ENTRY_SCRIPT", "")
    port = int(os.environ.get("PORT", "5001"))
    app = App()
    print(f"modeldeck podserver: loading {script}", flush=True)
    try:
        try:
            if os.environ.get("MODELDECK_RUNTIME") == "azmlinfsrv":
                wait = float(os.environ.get("MODELDECK_UPSTREAM_WAIT_S", "600"))
                upstream_port = int(os.environ.get("MODELDECK_UPSTREAM_PORT") or (port + 1))
                app.start_upstream(script, upstream_port, wait)
            else:
                app.load(script)
        except _Stop:
            return 0
        except Exception:
            print(f"init() failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            return 3
        server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(app))
        server.daemon_threads = True
        print(f"modeldeck podserver: listening on port {server.server_address[1]}", flush=True)
        with contextlib.suppress(KeyboardInterrupt, _Stop):
            server.serve_forever()
        return 0
    finally:
        if app.child is not None:
            app.child.terminate()
            with contextlib.suppress(Exception):
                app.child.wait(10)


if __name__ == "__main__":
    sys.exit(main())
