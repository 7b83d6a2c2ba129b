"""One replica of a local deployment: a scoring server following Azure ML's entry-script contract.

Run as its own process by the supervisor::

    python -m modeldeck.services.local.replica --code-dir D --scoring-script score.py \\
        --model-dir M --socket PATH [--max-concurrency 1] \\
        [--runtime default|azmlinfsrv] [--status-fd N] [--parent-pid PID]

* ``--socket PATH``: the replica listens on a Unix socket at ``PATH`` (mode 0600, and
  the supervisor puts it in a 0700 directory), so only the workspace's owner (that is,
  the gateway) can reach it: a replica has no auth of its own, the gateway checks the
  keys. This is how the supervisor always starts it. ``--host``/``--port`` (TCP) are
  only for running one by hand: anyone on the host can reach a TCP port;

* ``AZUREML_MODEL_DIR`` is set to ``--model-dir`` (prepared by the pool: it holds the
  registered model under its own base name);
* the scoring script is imported from the code dir (on ``sys.path``, and the cwd),
  ``init()`` runs once, then ``GET /`` answers ``Healthy`` and ``POST /score`` calls
  ``run(raw_data)`` with the body as a string (at most ``--max-concurrency`` calls at
  once, each in a worker thread so that liveness probes are answered meanwhile);
* the socket is bound before ``init()`` but only listened on after it, so a probe gets
  "connection refused" until the replica is ready;
* ``--runtime azmlinfsrv`` execs Azure's inference server (gunicorn) on the same socket,
  handed over as systemd socket activation (fd 3, ``LISTEN_FDS=1``,
  ``LISTEN_PID``=this pid): gunicorn then serves that socket and binds nothing else
  (left alone, ``azmlinfsrv`` binds ``0.0.0.0:PORT``, reachable from other machines);
* ``--status-fd``: a pipe to the supervisor, one JSON object per line:
  ``{"t": "listening"}``, ``{"t": "ready"}``, ``{"t": "failed", "error": ...}``
  and ``{"t": "log", "text": ...}`` (the script's ``logging`` records, INFO and above).
  Without it, logging goes to stderr;
* the replica exits when its parent dies (``PR_SET_PDEATHSIG``, and polling ``getppid``).

Keep the imports light: this module's start-up time is most of a rollout's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

AZMLINFSRV_PACKAGE = "azureml-inference-server-http"
EXIT_INIT_FAILED = 3
EXIT_BAD_SCRIPT = 4
EXIT_RUNTIME_MISSING = 5
EXIT_BIND_FAILED = 6


class _Status:
    """The pipe to the supervisor (or nothing)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, kind: str, **fields: Any) -> None:
        if self.fd is None:
            return
        data = (json.dumps({"t": kind, **fields}) + "\n").encode()
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except OSError:
            self.fd = None


class _StatusLogHandler(logging.Handler):
    def __init__(self, status: _Status) -> None:
        super().__init__(logging.INFO)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format string must not kill run()
            text = str(record.msg)
        self.status.send("log", text=text)


def _watch_parent(parent_pid: int | None) -> None:
    """Die with the parent: PR_SET_PDEATHSIG on Linux; the caller also polls getppid."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent_pid and os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(0)


def _print_script_traceback(exc: BaseException, script: str) -> None:
    """The traceback from the scoring script's first frame on (not this module's)."""
    tb = exc.__traceback__
    frame = tb
    while frame is not None and frame.tb_frame.f_code.co_filename != script:
        frame = frame.tb_next
    traceback.print_exception(type(exc), exc, frame or tb, file=sys.stderr)
    sys.stderr.flush()


def _fail(status: _Status, message: str, code: int) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    status.send("failed", error=message)
    sys.exit(code)


def load_entry_script(
    code_dir: str, scoring_script: str
) -> tuple[Callable[[], Any], Callable[[str], Any], str]:
    """Import the scoring script; returns ``(init, run, path)``. Raises ``LookupError``."""
    import importlib.util

    code_dir = os.path.abspath(code_dir)
    path = os.path.join(code_dir, scoring_script)
    if not os.path.isfile(path):
        raise LookupError(
            f"scoring script {path} does not exist (code: {code_dir}, scoring_script: {scoring_script})"
        )
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    module_name = os.path.splitext(os.path.basename(path))[0] or "score"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LookupError(f"scoring script {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    missing = [n for n in ("init", "run") if not callable(getattr(module, n, None))]
    if missing:
        names = " and ".join(f"{n}()" for n in missing)
        raise LookupError(
            f"scoring script {path} has no {names} function: the Azure ML entry-script "
            "contract needs init() (run once at start) and run(raw_data) (run per request)"
        )
    return module.init, module.run, path


def _encode(result: Any) -> tuple[bytes, str]:
    if isinstance(result, bytes | bytearray):
        return bytes(result), "application/octet-stream"
    if isinstance(result, str):
        stripped = result.lstrip()
        kind = "application/json" if stripped[:1] in ("{", "[", '"') else "text/plain"
        return result.encode("utf-8"), kind
    return json.dumps(result, default=str).encode("utf-8"), "application/json"


async def _serve(
    sock: socket.socket,
    run: Callable[[str], Any],
    max_concurrency: int,
    status: _Status,
    parent_pid: int | None,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from aiohttp import web

    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="run")

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="Healthy")

    script = getattr(run, "__code__", None)
    script_path = script.co_filename if script is not None else ""

    async def score(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            result = await loop.run_in_executor(pool, run, raw.decode("utf-8", "replace"))
            body, content_type = _encode(result)
        except Exception as exc:
            _print_script_traceback(exc, script_path)
            message = f"run() failed: {type(exc).__name__}: {exc}"
            return web.json_response(
                {"error": {"code": "ScoringError", "message": message}}, status=500
            )
        return web.Response(body=body, content_type=content_type)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/", health)
    app.router.add_post("/score", score)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=30.0)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    status.send("ready")

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch_parent() -> None:
        while not stop.is_set():
            await asyncio.sleep(1.0)
            if parent_pid and os.getppid() != parent_pid:
                stop.set()

    watcher = asyncio.create_task(watch_parent())
    await stop.wait()
    watcher.cancel()
    await runner.cleanup()  # finishes the requests in flight
    pool.shutdown(wait=False, cancel_futures=True)


def _bind(args: argparse.Namespace, status: _Status) -> socket.socket:
    """The listening socket, bound but not listened on: ``--socket`` (Unix) or TCP."""
    if args.socket:
        path = args.socket
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by a previous run of this replica
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # 0600 from the moment it exists
        try:
            sock.bind(path)
        except OSError as exc:
            _fail(status, f"cannot bind the replica socket: {exc.strerror}", EXIT_BIND_FAILED)
        finally:
            os.umask(old_umask)
        return sock
    sock = socket.socket(
        socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        _fail(status, f"cannot bind {args.host}:{args.port}: {exc.strerror}", EXIT_BIND_FAILED)
    return sock


def _run_azmlinfsrv(args: argparse.Namespace, status: _Status) -> None:
    exe = shutil.which("azmlinfsrv")
    if exe is None:
        _fail(
            status,
            f"runtime azmlinfsrv needs Azure's inference server, package {AZMLINFSRV_PACKAGE}, "
            f"which is not installed; install it (pip install {AZMLINFSRV_PACKAGE}) "
            "or use runtime: default",
            EXIT_RUNTIME_MISSING,
        )
    if not args.socket:
        # azmlinfsrv binds 0.0.0.0:PORT by itself: any user (and any machine) could score
        _fail(
            status,
            "runtime azmlinfsrv needs --socket: left alone, azmlinfsrv listens on 0.0.0.0",
            EXIT_BIND_FAILED,
        )
    sock = _bind(args, status)
    # systemd socket activation, which gunicorn (azmlinfsrv's server) honours: it serves
    # fd 3 and binds none of its own addresses. exec keeps the pid, so LISTEN_PID holds.
    if status.fd == 3:
        status.fd = os.dup(3)
    if sock.fileno() != 3:
        os.dup2(sock.fileno(), 3)
        sock.close()
    os.set_inheritable(3, True)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ.pop("LISTEN_FDNAMES", None)
    entry = os.path.join(os.path.abspath(args.code_dir), args.scoring_script)
    os.chdir(args.code_dir)
    status.send("listening")
    os.execv(exe, [exe, "--entry_script", entry])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modeldeck-replica", description=__doc__.split("\n")[0])
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--scoring-script", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument(
        "--socket", default=None, help="Unix socket path (what the supervisor uses)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--runtime", default="default", choices=["default", "azmlinfsrv"])
    parser.add_argument("--status-fd", type=int, default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)

    status = _Status(args.status_fd)
    _watch_parent(args.parent_pid)
    os.environ["AZUREML_MODEL_DIR"] = os.path.abspath(args.model_dir)

    if args.runtime == "azmlinfsrv":
        _run_azmlinfsrv(args, status)
        return

    # Bind now, listen only once init() succeeded.
    sock = _bind(args, status)
    status.send("listening")

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler: logging.Handler = (
        _StatusLogHandler(status) if status.fd is not None else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)

    code_dir = os.path.abspath(args.code_dir)
    try:
        os.chdir(code_dir)
        init, run, path = load_entry_script(code_dir, args.scoring_script)
    except LookupError as exc:
        _fail(status, str(exc), EXIT_BAD_SCRIPT)
    except BaseException as exc:  # the script's import itself failed
        path = os.path.join(code_dir, args.scoring_script)
        _print_script_traceback(exc, path)
        _fail(status, f"importing {path} failed: {type(exc).__name__}: {exc}", EXIT_BAD_SCRIPT)

    try:
        init()
    except BaseException as exc:
        _print_script_traceback(exc, path)
        _fail(status, f"init() failed: {type(exc).__name__}: {exc}", EXIT_INIT_FAILED)

    asyncio.run(_serve(sock, run, args.max_concurrency, status, args.parent_pid))


if __name__ == "__main__":
    main()
