"""The local control plane: ``modeldeck serve``.

One process per state dir (a pid file held with ``fcntl.flock``) that owns the
records (SQLite), runs the gateway and the replicas, and answers the management
API: HTTP + JSON on a Unix socket in the state dir (0700; the socket is 0600),
so only this user can reach it. Both listeners (the gateway and that socket) close idle
and slow clients and bound connections (:mod:`.connguard`; the settings are
:data:`_CONNECTION_SETTINGS`: env ``MODELDECK_HEADER_TIMEOUT_S`` etc., or the same names
in lower case without ``MODELDECK_`` under ``[daemon]`` in config.toml); at start the
daemon raises its soft open files limit to the hard limit (replicas inherit it).

This module is the process: its files, what the client calls (:func:`ensure_daemon`,
:func:`daemon_status`, :func:`stop_daemon`), the settings it reads, and :func:`serve` (pid
lock, logging, descriptor limit) which runs :mod:`.serving`, the wiring of the running control
plane. aiohttp and the engine are only imported when the daemon itself runs.
``python -m modeldeck.services.local.controlplane.daemon`` runs the daemon in the foreground
(that is what auto-start spawns).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ... import paths
from ...api.errors import InvalidInput, ModeldeckError, Unreachable

SOCKET_NAME = "modeldeck.sock"
PID_NAME = "modeldeck.pid"
LOG_NAME = "daemon.log"
METRICS_TOKEN_NAME = "metrics.token"
START_TIMEOUT_S = 15.0
#: exit status of a daemon that found another one already running on its state dir
EXIT_ALREADY_RUNNING = 3

_spawned: list[subprocess.Popen[bytes]] = []  # keep the child object: no ResourceWarning


def socket_path() -> Path:
    return paths.state_dir() / SOCKET_NAME


def log_path() -> Path:
    return paths.state_dir() / LOG_NAME


def pid_path() -> Path:
    return paths.state_dir() / PID_NAME


# ============================================================================ client side


def _request(method: str, path: str, timeout: float = 2.0) -> tuple[int, Any] | None:
    """One small HTTP/1.1 exchange on the management socket (standard library only:
    status checks must be cheap); None when nothing answers there."""
    import socket

    sock_path = socket_path()
    paths.check_tree(sock_path.parent)  # never talk to a socket others could have replaced
    if not sock_path.exists():
        return None
    raw = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(sock_path))
            sock.sendall(
                f"{method} {path} HTTP/1.1\r\nHost: modeldeck\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            while chunk := sock.recv(65536):
                raw += chunk
    except OSError:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def _get(path: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """GET on the management socket; None when nothing answers there."""
    answer = _request("GET", path, timeout)
    if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
        return None
    return answer[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _open_log_for_child() -> int:
    log = log_path()
    paths.private_dir(log.parent)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def ensure_daemon(timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
    """Make sure the control plane answers; start it detached if it does not.

    Returns its status. Raises :class:`Unreachable` naming why it could not start
    (the last lines of its log) and where its log is.
    """
    status = _get("/v1/status")
    if status is not None:
        return status
    try:
        paths.private_dir(paths.state_dir())
        log = log_path()
        offset = log.stat().st_size if log.exists() else 0
        fd = _open_log_for_child()
    except OSError as exc:
        where = exc.filename or paths.state_dir()
        raise Unreachable(
            f"the modeldeck control plane cannot start: its state directory {where} cannot "
            f"be used ({exc.strerror or exc})",
            fix="make it a directory this user can write, or set MODELDECK_HOME to one"
            + (f" (MODELDECK_HOME is {paths.home()})" if paths.home() else ""),
        ) from None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modeldeck.services.local.controlplane.daemon", "--detached"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fd,
            start_new_session=True,
            cwd=str(paths.state_dir()),
            env=dict(os.environ),
            close_fds=True,
        )
    finally:
        os.close(fd)
    _spawned.append(proc)
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        status = _get("/v1/status")
        if status is not None:
            return status
        code = proc.poll()
        if code is not None and code != EXIT_ALREADY_RUNNING:
            break  # it died; another daemon did not take its place either
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    else:
        code = None
    status = _get("/v1/status")
    if status is not None:
        return status
    why = _log_since(log, offset) or _tail(log)
    what = (
        f"exited with status {code}" if code is not None else f"did not answer within {timeout:g} s"
    )
    raise Unreachable(
        f"the modeldeck control plane could not start: it {what}."
        + (f"\nlast lines of its log:\n{why}" if why else "")
        + f"\nits log: {log}",
        fix=f"read {log}, or run it in the foreground to see why: modeldeck serve",
        log=str(log),
    )


def _log_since(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read(64 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-15:])


def daemon_status() -> dict[str, Any]:
    """What ``modeldeck daemon status`` prints; never starts the daemon."""
    status = _get("/v1/status")
    if status is None:
        return {
            "running": False,
            "socket": str(socket_path()),
            "log": str(log_path()),
        }
    return {"running": True, **status}


def stop_daemon(timeout: float = 30.0) -> bool:
    """Stop the daemon gracefully (replicas too). False when it was not running."""
    status = _get("/v1/status")
    if status is None:
        return False
    pid = int(status.get("pid") or 0)
    if _request("POST", "/v1/shutdown", timeout=5.0) is None and pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid or not _alive(pid):
            return True
        time.sleep(0.05)
    if pid and _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


# ============================================================================ server side


def _setup_logging(foreground_tty: bool) -> None:
    import logging
    import logging.handlers

    path = log_path()
    paths.private_dir(path.parent)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2 * 1024 * 1024, backupCount=3, encoding="utf-8"
    )
    os.chmod(path, 0o600)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    if foreground_tty:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        root.addHandler(console)
    # never let a library log request headers (keys, tokens)
    logging.getLogger("aiohttp.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # retries are reported by our errors


def _config() -> dict[str, Any]:
    from ... import profiles

    profiles.check_config()  # a config others can write is refused, never read nor skipped
    try:
        cfg = profiles.load_config()
    except InvalidInput:
        return {}
    daemon = cfg.get("daemon")
    return daemon if isinstance(daemon, dict) else {}


def gateway_address(store: Any) -> tuple[str, int, bool]:
    """(host, port, remember): env wins, then config.toml [daemon], then the remembered port."""
    cfg = _config()
    host = os.environ.get("MODELDECK_GATEWAY_HOST") or str(cfg.get("gateway_host") or "127.0.0.1")
    raw = os.environ.get("MODELDECK_GATEWAY_PORT") or cfg.get("gateway_port")
    if raw not in (None, ""):
        try:
            port = int(str(raw))
            if not 0 <= port <= 65535:
                raise ValueError
        except ValueError:
            raise InvalidInput(
                "MODELDECK_GATEWAY_PORT",
                raw,
                "must be a port number 0..65535",
                "set it to a free port, or unset it to let modeldeck choose one",
            ) from None
        return host, port, port == 0
    remembered = store.get_setting("gateway_port")
    if remembered:
        return host, int(remembered), False
    return host, 0, True


def max_body_bytes() -> int:
    """The gateway's request body limit: env wins, then config.toml [daemon]; 5 MiB."""
    raw = os.environ.get("MODELDECK_GATEWAY_MAX_BODY_MB") or _config().get("gateway_max_body_mb")
    if raw in (None, ""):
        return 5 * 1024 * 1024
    try:
        mb = float(str(raw))
        if not 0 < mb <= 4096:
            raise ValueError
    except ValueError:
        raise InvalidInput(
            "MODELDECK_GATEWAY_MAX_BODY_MB",
            raw,
            "must be a number of MiB above 0 and at most 4096",
            "set it to e.g. 20, or unset it for the default of 5",
        ) from None
    return int(mb * 1024 * 1024)


#: connection settings: (env name, default, (min, max), example); the config.toml [daemon]
#: key is the env name without MODELDECK_, in lower case
_CONNECTION_SETTINGS: dict[str, tuple[str, float, tuple[float, float], str]] = {
    "header_timeout": ("MODELDECK_HEADER_TIMEOUT_S", 10.0, (0.05, 3600.0), "10"),
    "keepalive_timeout": ("MODELDECK_KEEPALIVE_TIMEOUT_S", 30.0, (0.05, 3600.0), "30"),
    "body_timeout": ("MODELDECK_BODY_TIMEOUT_S", 30.0, (0.05, 3600.0), "30"),
    "gateway_max_connections": ("MODELDECK_GATEWAY_MAX_CONNECTIONS", 4096, (1, 1 << 20), "4096"),
    "gateway_max_connections_per_client": (
        "MODELDECK_GATEWAY_MAX_CONNECTIONS_PER_CLIENT",
        512,
        (1, 1 << 20),
        "512",
    ),
    "control_max_connections": ("MODELDECK_CONTROL_MAX_CONNECTIONS", 256, (1, 1 << 16), "256"),
    "control_max_connections_per_client": (
        "MODELDECK_CONTROL_MAX_CONNECTIONS_PER_CLIENT",
        64,
        (1, 1 << 16),
        "64",
    ),
}


def _connection_setting(name: str, cfg: dict[str, Any]) -> float:
    """One of :data:`_CONNECTION_SETTINGS`: env wins, then config.toml [daemon]
    (the env name without ``MODELDECK_``, lower case), then the default."""
    env, default, (low, high), example = _CONNECTION_SETTINGS[name]
    key = env.removeprefix("MODELDECK_").lower()
    raw = os.environ.get(env) or cfg.get(key)
    if raw in (None, ""):
        return default
    integral = isinstance(default, int)
    try:
        value = int(str(raw)) if integral else float(str(raw))
        if not low <= value <= high:
            raise ValueError
    except ValueError:
        what = "a whole number" if integral else "a number of seconds"
        shown = f"from {low:,} to {high:,}" if integral else f"from {low:g} to {high:g}"
        raise InvalidInput(
            env,
            raw,
            f"must be {what} {shown}",
            f"set it (or {key} under [daemon] in config.toml) to e.g. {example}, "
            f"or unset it for the default of {default:g}",
        ) from None
    return value


def connection_limits() -> tuple[Any, Any]:
    """(gateway, control socket) :class:`ConnectionLimits`; the gateway's bound is kept
    within what the descriptor limit allows (a warning says when it is lowered)."""
    import logging

    from ..connguard import ConnectionLimits, fd_budget

    cfg = _config()
    values = {name: _connection_setting(name, cfg) for name in _CONNECTION_SETTINGS}
    timeouts = {
        "header_timeout": values["header_timeout"],
        "keepalive_timeout": values["keepalive_timeout"],
        "body_timeout": values["body_timeout"],
    }
    control_total = int(values["control_max_connections"])
    budget = fd_budget() - control_total
    total = int(values["gateway_max_connections"])
    if total > budget:
        logging.getLogger("modeldeck.daemon").warning(
            "gateway max_connections lowered from %d to %d to stay within the descriptor "
            "limit (raise the hard limit, ulimit -Hn, to allow more)",
            total,
            max(1, budget),
        )
        total = max(1, budget)
    gateway = ConnectionLimits(
        **timeouts,
        max_connections=total,
        max_connections_per_client=int(values["gateway_max_connections_per_client"]),
    )
    control = ConnectionLimits(
        **timeouts,
        max_connections=control_total,
        max_connections_per_client=int(values["control_max_connections_per_client"]),
    )
    return gateway, control


def metrics_token_path() -> Path:
    return paths.state_dir() / METRICS_TOKEN_NAME


def metrics_token() -> str:
    """The token GET /metrics on the gateway needs: made once, kept 0600 in the state dir."""
    import secrets

    path = metrics_token_path()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            token = path.read_text().strip()
            if len(token) >= 32 and token.isascii():
                return token
    token = secrets.token_urlsafe(32)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a file another user could read or swap is not reused
    paths.write_private(path, (token + "\n").encode())
    return token


class _PidLock:
    """``state_dir/modeldeck.pid`` held with flock for the daemon's whole life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> int | None:
        """None when acquired; else the pid of the daemon that holds it (0 if unknown)."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            try:
                other = int(os.read(fd, 32).decode().strip() or 0)
            except ValueError:
                other = 0
            os.close(fd)
            return other
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self.fd = fd
        return None

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def serve(foreground: bool = True) -> int:
    """Run the control plane until SIGTERM/SIGINT or ``POST /v1/shutdown``; the exit status."""
    import asyncio

    os.umask(0o077)  # everything the control plane writes is this user's only
    try:  # 0700 whatever the umask it was started with; refused if others can write them
        state = paths.private_dir(paths.state_dir())
        paths.private_dir(paths.data_dir())
    except (ModeldeckError, OSError) as exc:
        print(f"modeldeck: the control plane will not start: {exc}", file=sys.stderr)
        return 1
    lock = _PidLock(state / PID_NAME)
    other = lock.acquire()
    if other is not None:
        print(
            f"modeldeck: a control plane is already running on {state} (pid {other or '?'})",
            file=sys.stderr,
        )
        return EXIT_ALREADY_RUNNING
    _setup_logging(foreground and sys.stderr.isatty())
    import logging

    log = logging.getLogger("modeldeck.daemon")
    from ..connguard import raise_fd_limit

    before, after, hard = raise_fd_limit()  # replicas inherit it too
    log.info("open files limit (RLIMIT_NOFILE): soft %d (was %d; hard %d)", after, before, hard)
    try:
        from .serving import run

        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        text = str(exc) if isinstance(exc, ModeldeckError) else f"{type(exc).__name__}: {exc}"
        log.error(
            "the control plane could not start: %s",
            text,
            exc_info=not isinstance(exc, ModeldeckError),
        )
        if foreground:  # detached, stderr is the log itself: say it once
            print(f"modeldeck: the control plane could not start: {text}", file=sys.stderr)
            print(f"modeldeck: its log: {log_path()}", file=sys.stderr)
        return 1
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(serve(foreground="--detached" not in sys.argv[1:]))
