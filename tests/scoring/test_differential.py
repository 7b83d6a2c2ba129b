"""modeldeck's scoring host against Azure's own inference server (azmlinfsrv), byte for byte.

The official online examples (tests/scoring/examples, from Azure/azureml-examples) run
under both servers, in the same Python environment (scoring_env.py); the same requests
go to each and the answers must match: status, Content-Type, body, and the request-id
headers. azmlinfsrv is started on a loopback socket this test binds (systemd socket
activation), so it listens nowhere else.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.scoring.scoring_env import scoring_python

EXAMPLES = Path(__file__).parent / "examples"
HOST = Path(__file__).resolve().parents[2] / "services" / "scoring" / "host.py"
#: the script modeldeck serves MLflow no-code deployments with (run from a copy: the servers
#: import it from its folder and must not leave a __pycache__ in modeldeck's)
MLFLOW_SCRIPT = HOST.parent / "mlflow_ncd" / "score.py"
START_TIMEOUT_S = 120

_SOCKET_ACTIVATION = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "os.dup2(fd, 3)\n"
    "os.set_inheritable(3, True)\n"
    "os.environ['LISTEN_FDS'] = '1'\n"
    "os.environ['LISTEN_PID'] = str(os.getpid())\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


@dataclass
class Call:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def label(self) -> str:
        return f"{self.method} {self.path} {self.body[:40]!r}"


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _multipart(files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = b""
    for name, filename, data in files:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


JSON = {"Content-Type": "application/json"}
COMMON = [
    Call("GET", "/"),
    Call("GET", "/swagger.json"),
    Call("GET", "/swagger.json?version=3"),
    Call("GET", "/swagger.json?version=3.1"),
    Call("GET", "/swagger.json?version=7"),
    Call("GET", "/no/such/path"),
    Call("POST", "/score", b"\xff\xfe not utf-8", JSON),
    Call("GET", "/score?data=[[1,2,3,4,5,6,7,8,9,10]]"),
    Call("POST", "/score", b"{}", {**JSON, "x-request-id": "r" * 101}),
    Call("POST", "/score", b"not json at all", {"Content-Type": "text/plain"}),
    Call("POST", "/score", b"[1, 2]", JSON),
]


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _cases() -> dict[str, tuple[Path, Path, list[Call]]]:
    """name: (scoring script, AZUREML_MODEL_DIR, requests beyond COMMON)."""
    m1 = EXAMPLES / "model-1"
    sample = _read(m1 / "sample-request.json")
    iris = EXAMPLES / "inference-schema"
    jpg = _read(EXAMPLES / "binary-payloads" / "input.jpg")
    one, one_type = _multipart([("file", "input.jpg", jpg)])
    two, two_type = _multipart([("file[]", "a.jpg", jpg), ("file[]", "b.jpg", jpg)])
    none, none_type = _multipart([("other", "x.jpg", jpg)])
    ids = {
        **JSON,
        "x-request-id": "req-1",
        "x-ms-client-request-id": "client-1",
    }
    legacy = {**JSON, "x-ms-request-id": "legacy-1"}
    multimodel = EXAMPLES / "multimodel"
    ncd = EXAMPLES / "ncd"
    ncd_sample = _read(ncd / "sample-request-sklearn.json")
    cols = json.loads(ncd_sample)["input_data"]["columns"]
    columns, row = {"columns": cols}, [float(i) for i in range(1, 11)]
    return {
        "ncd-sklearn-mlflow": (
            MLFLOW_SCRIPT,
            ncd / "sklearn-diabetes",  # AZUREML_MODEL_DIR holds model/ (MLmodel, conda.yaml...)
            [
                Call("POST", "/score", ncd_sample, ids),
                # the older list form: a pandas-signature model refuses it on Azure too
                Call("POST", "/score", b'{"input_data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]}', JSON),
                Call("POST", "/score", b'{"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]}', JSON),
                # split with no index (accepted), records (refused by the split-oriented
                # pandas type, a 500 on Azure too)
                Call("POST", "/score", _json({"input_data": {**columns, "data": [row]}}), JSON),
                Call(
                    "POST",
                    "/score",
                    _json({"input_data": [dict(zip(cols, row, strict=True))]}),
                    JSON,
                ),
            ],
        ),
        "model-1": (
            m1 / "onlinescoring" / "score.py",
            m1,
            [Call("POST", "/score", sample, ids), Call("POST", "/score", sample, legacy)],
        ),
        "model-2": (
            EXAMPLES / "model-2" / "onlinescoring" / "score.py",
            m1,
            [Call("POST", "/score", _read(EXAMPLES / "model-2" / "sample-request.json"), ids)],
        ),
        "openapi-code-custom": (
            EXAMPLES / "openapi" / "code-custom" / "score.py",
            m1,
            [Call("POST", "/score", sample, ids)],
        ),
        "openapi-code-decorated": (
            EXAMPLES / "openapi" / "code-decorated" / "score.py",
            m1,
            [
                Call("POST", "/score", sample, ids),
                Call("POST", "/score", sample, {"Content-Type": "text/plain"}),
                Call("POST", "/score", b"", JSON),
                Call("POST", "/score", b'{"other": 1}', JSON),
            ],
        ),
        "inference-schema-numpy": (
            iris / "code" / "score-numpy.py",
            iris,
            [Call("POST", "/score", _read(iris / "sample-inputs" / "numpy.json"), ids)],
        ),
        "inference-schema-pandas": (
            iris / "code" / "score-pandas.py",
            iris,
            [Call("POST", "/score", _read(iris / "sample-inputs" / "pandas.json"), ids)],
        ),
        "inference-schema-standard": (
            iris / "code" / "score-standard.py",
            iris,
            [Call("POST", "/score", _read(iris / "sample-inputs" / "standard.json"), ids)],
        ),
        "binary-payloads-single": (
            EXAMPLES / "binary-payloads" / "code" / "single-file-to-file-score.py",
            EXAMPLES / "binary-payloads",
            [
                Call("POST", "/score", one, {"Content-Type": one_type, "x-request-id": "b1"}),
                Call("POST", "/score", none, {"Content-Type": none_type}),
            ],
        ),
        "binary-payloads-multi": (
            EXAMPLES / "binary-payloads" / "code" / "multi-file-to-json-score.py",
            EXAMPLES / "binary-payloads",
            [Call("POST", "/score", two, {"Content-Type": two_type, "x-request-id": "b2"})],
        ),
        "minimal-multimodel": (
            multimodel / "code" / "minimal-multimodel-score.py",
            multimodel,
            [
                Call("POST", "/score", _read(multimodel / "test-data" / name), ids)
                for name in ("iris-test-data.json", "diabetes-test-data.json")
            ]
            + [Call("POST", "/score", b'{"model": "nope", "data": {}}', JSON)],
        ),
    }


CASES = _cases()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


@dataclass
class Server:
    proc: subprocess.Popen
    connect: object  # () -> HTTPConnection
    output: list[str]

    def ask(self, call: Call) -> tuple[int, str, bytes, dict[str, str]]:
        conn = self.connect()  # type: ignore[operator]
        try:
            conn.request(call.method, call.path, body=call.body or None, headers=call.headers)
            resp = conn.getresponse()
            body = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, headers.get("content-type", ""), body, headers
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _pump(proc: subprocess.Popen, out: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)


def _wait_healthy(server: Server, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            status, _, _, _ = server.ask(Call("GET", "/"))
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"{what} did not become healthy ({last}):\n{''.join(server.output[-40:])}")


def _env(model_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZUREML_", "AML_"))}
    env["AZUREML_MODEL_DIR"] = str(model_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_azmlinfsrv(python: Path, script: Path, model_dir: Path) -> Server:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    exe = python.parent / "azmlinfsrv"
    argv = [str(python), "-c", _SOCKET_ACTIVATION, str(listener.fileno()), str(exe)]
    argv += ["--entry_script", str(script), "--model_dir", str(model_dir), "--port", str(port)]
    proc = subprocess.Popen(
        argv,
        cwd=script.parent,
        env=_env(model_dir),
        pass_fds=(listener.fileno(),),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    listener.close()
    out: list[str] = []
    threading.Thread(target=_pump, args=(proc, out), daemon=True).start()
    server = Server(proc, lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=60), out)
    _wait_healthy(server, "azmlinfsrv")
    return server


def start_host(
    python: Path, script: Path, model_dir: Path, sock_dir: Path, only: tuple[str, ...] = ()
) -> Server:
    """``only``: run without site-packages but these of its packages (no azureml, flask or
    werkzeug: the host's standard-library shims serve ``@rawhttp``)."""
    path = str(sock_dir / f"{uuid.uuid4().hex[:8]}.sock")
    env = _env(model_dir)
    argv = [str(python)]
    if only:
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        visible = sock_dir / "site"
        visible.mkdir()
        for name in only:
            (visible / name).symlink_to(Path(site) / name)
        argv.append("-S")
        env["PYTHONPATH"] = str(visible)
    argv += [str(HOST), "--code-dir", str(script.parent)]
    argv += ["--scoring-script", script.name, "--model-dir", str(model_dir), "--socket", path]
    proc = subprocess.Popen(
        argv,
        cwd=script.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: list[str] = []
    threading.Thread(target=_pump, args=(proc, out), daemon=True).start()
    server = Server(proc, lambda: _UnixConnection(path, 60), out)
    _wait_healthy(server, "modeldeck's scoring host")
    return server


@pytest.fixture(scope="session")
def env_python() -> Path:
    return scoring_python()


@pytest.fixture()
def short_tmp() -> Iterator[Path]:
    """A socket directory with a short path (AF_UNIX paths are at most 107 bytes)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mdk-") as d:
        yield Path(d)


COMPARED_HEADERS = (
    "x-request-id",
    "x-ms-request-id",
    "x-ms-client-request-id",
    "x-ms-run-function-failed",
)


@pytest.mark.parametrize(
    ("case", "only"),
    [(name, ()) for name in sorted(CASES)]
    + [
        # @rawhttp in an environment without Azure's server, flask or werkzeug: the shims
        ("binary-payloads-single", ("PIL",)),
        ("binary-payloads-multi", ("PIL",)),
    ],
    ids=[*sorted(CASES), "binary-payloads-single-shim", "binary-payloads-multi-shim"],
)
def test_examples_answer_as_azmlinfsrv_does(
    case: str, only: tuple[str, ...], env_python: Path, short_tmp: Path
) -> None:
    script, model_dir, extra = CASES[case]
    if script == MLFLOW_SCRIPT:
        (short_tmp / "code").mkdir()
        script = Path(shutil.copy(script, short_tmp / "code" / script.name))
    theirs = start_azmlinfsrv(env_python, script, model_dir)
    try:
        ours = start_host(env_python, script, model_dir, short_tmp, only)
    except BaseException:
        theirs.stop()
        raise
    differences = []
    try:
        for call in COMMON + extra:
            a_status, a_type, a_body, a_headers = theirs.ask(call)
            b_status, b_type, b_body, b_headers = ours.ask(call)
            if (a_status, a_type, a_body) != (b_status, b_type, b_body):
                differences.append(
                    f"{call.label()}:\n  azmlinfsrv: {a_status} {a_type} {a_body[:300]!r}"
                    f"\n  modeldeck:  {b_status} {b_type} {b_body[:300]!r}"
                )
                continue
            for name in COMPARED_HEADERS:
                given = any(h.lower() == name for h in call.headers)
                any_id = any(h.lower() in COMPARED_HEADERS[:3] for h in call.headers)
                made_up = (name == "x-request-id" and not given) or (
                    name == "x-ms-request-id" and not any_id
                )
                if not made_up and a_headers.get(name) != b_headers.get(name):
                    differences.append(
                        f"{call.label()}: header {name}: azmlinfsrv {a_headers.get(name)!r}, "
                        f"modeldeck {b_headers.get(name)!r}"
                    )
            if a_status == 200 and call.path.startswith("/score"):
                assert "x-ms-run-fn-exec-ms" in b_headers
    finally:
        ours.stop()
        theirs.stop()
    assert not differences, "\n".join(differences)


_LAZY_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import host
out = {}
for name in sys.argv[2:]:
    script = host.Script(name, sys.argv[1])
    script.load()
    out[name.rsplit("/", 1)[-1]] = [script.parser, "azureml_inference_server_http" in sys.modules]
print(json.dumps(out))
"""


def test_azures_modules_load_only_for_a_script_that_imports_them(env_python: Path) -> None:
    """Importing Azure's aml_request costs ~0.5 s of a replica's start (it imports flask):
    a script that does not use @rawhttp must not pay it, one that does still gets raw mode."""
    plain = EXAMPLES / "model-1" / "onlinescoring" / "score.py"
    raw = EXAMPLES / "binary-payloads" / "code" / "single-file-to-file-score.py"
    result = subprocess.run(
        [str(env_python), "-c", _LAZY_PROBE, str(HOST.parent), str(plain), str(raw)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AZUREML_MODEL_DIR": str(EXAMPLES / "model-1" / "model")},
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["score.py"] == ["json", False]  # loaded without Azure's modules
    assert seen["single-file-to-file-score.py"] == ["raw", True]  # Azure's, and @rawhttp seen
