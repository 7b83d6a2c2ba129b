"""Runs replica processes: start, probe, capture their output, restart with backoff, stop.

A :class:`Replica` owns one scoring-host process at a time (``services/scoring/host.py``,
run by the deployment's Python) and
its lifecycle::

    starting --(status "ready" + GET / answers 200)--> ready
    starting --(init() fails / exits / readiness probe budget spent)--> failed
    ready    --(process exits / liveness probe fails failure_threshold times)--> failed
    failed   --(backoff: base * 2^n, capped)--> starting ...
    any      --(stop())--> stopped

Every line the process writes (stdout, stderr, its Python logging) goes to the
deployment's log with a timestamp, the replica's name and the stream; the
supervisor adds ``system`` lines for what it does (started, ready, exited, restart).

Reachable only through the gateway: a replica has no auth of its own, so it listens on
a Unix socket, never on a TCP port. The sockets live in a directory of the supervisor's
own, mode 0700, made with ``mkdtemp`` inside ``socket_dir`` (also 0700; the pool driver
puts it in the workspace's data dir): another local user can neither connect nor list
them. Names are short (``<socket_dir>/<8 random>/<n in hex>``) because a Unix socket
path has at most :data:`MAX_SOCKET_PATH` bytes; when ``socket_dir`` is too deep for
that, the directory goes to ``$XDG_RUNTIME_DIR`` (else the temp dir), still 0700, and
when even that is too long the replica fails with an error naming the fix. Replica
addresses (``unix:PATH``) are for the gateway only: logs and status never show them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...api.domain import Probe
from ...api.errors import BackendError
from ...scoring import HOST as SCORING_HOST
from .logstore import DeploymentLog, LogStore

_READ_CHUNK = 64 * 1024
_MAX_LINE = 16 * 1024
_STABLE_S = 10.0  # a replica ready this long has its backoff reset
#: bytes a Unix socket path may have (sun_path is 108 on Linux, 104 on macOS, with its NUL)
MAX_SOCKET_PATH = 103
#: how a local replica is probed when its deployment gives no probe: every second from the
#: start (a replica answers only once init() returned), so a local rollout is ready as soon
#: as the replica is (bench/rollout.py); 30 failures (~30 s) to become ready or be restarted
LOCAL_PROBE = Probe(initial_delay=0, period=1, timeout=2, failure_threshold=30)


class ReplicaState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ReplicaConfig:
    endpoint: str
    deployment: str
    name: str  # e.g. "blue-0"
    code_dir: str
    scoring_script: str
    model_dir: str  # becomes AZUREML_MODEL_DIR
    environment: dict[str, str] = field(default_factory=dict)
    runtime: str = "default"  # "default" | "azmlinfsrv"
    max_concurrency: int = 1
    readiness: Probe = LOCAL_PROBE
    liveness: Probe = LOCAL_PROBE
    #: the interpreter that runs the scoring host: the deployment's built environment
    #: (``services.environments``); None = modeldeck's own
    python: str | None = None


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return str(code)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {-code} ({_signal_name(-code)})"
    return f"exited with code {code}"


class Replica:
    """One replica and its process, restarted with backoff until stopped."""

    def __init__(
        self,
        config: ReplicaConfig,
        supervisor: Supervisor,
        on_change: Callable[[Replica], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.sup = supervisor
        self.log: DeploymentLog = supervisor.logstore.log(config.endpoint, config.deployment)
        self.on_change = on_change
        self.state = ReplicaState.STARTING
        self.error: str | None = None
        self.last_error: str | None = None  # why the last attempt failed, kept while retrying
        self._reason: str | None = None
        self.socket_path: str | None = None  # set by the supervisor before the first start
        self.pid: int | None = None
        self.failures = 0  # consecutive failed starts/runs (drives the backoff)
        self.restarts = 0
        self.retry_at: float | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._ready_signal = asyncio.Event()
        self._status_error: str | None = None
        self._ps: Any = None  # psutil.Process of the current pid
        self._status_transport: asyncio.BaseTransport | None = None
        self._listening = False

    # ----------------------------------------------------------------- public
    @property
    def address(self) -> str | None:
        """``unix:PATH`` for the gateway (never shown to users); None before the first start."""
        return f"unix:{self.socket_path}" if self.socket_path else None

    @property
    def ready(self) -> bool:
        return self.state is ReplicaState.READY

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"replica {self.name}")

    async def stop(self, grace: float | None = None) -> None:
        """Stop for good: SIGTERM (the replica finishes what is in flight), SIGKILL after ``grace``."""
        self._stopping = True
        grace = self.sup.stop_grace if grace is None else grace
        await self._terminate(grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.state is not ReplicaState.STOPPED:
            self._system("stopped")
            self._set(ReplicaState.STOPPED, self.error)

    async def wait_change(self, timeout: float) -> None:
        """Return when the state changes (or after ``timeout``)."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def usage(self) -> tuple[float | None, float | None]:
        """(CPU percent since the last call, 100 = one core; RSS in MiB) of the process."""
        if self.pid is None or self._proc is None or self._proc.returncode is not None:
            return None, None
        import psutil  # deferred: not on the CLI's path

        try:
            if self._ps is None or self._ps.pid != self.pid:
                self._ps = psutil.Process(self.pid)
                self._ps.cpu_percent(None)
            return self._ps.cpu_percent(None), self._ps.memory_info().rss / (1024 * 1024)
        except psutil.Error:
            return None, None

    def describe(self) -> str:
        text = f"{self.name}: {self.state.value}"
        if self.error and self.state is not ReplicaState.READY:
            text += f" ({self.error})"
        return text

    # ----------------------------------------------------------------- internals
    def _set(self, state: ReplicaState, error: str | None = None) -> None:
        self.state = state
        self.error = error
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception as exc:  # a listener bug must not stop supervision
                self._system(f"state listener failed: {exc!r}")

    def _system(self, text: str) -> None:
        self.log.write(self.name, "system", text)

    async def _loop(self) -> None:
        while not self._stopping:
            ready_at = await self._run_once()
            if self._stopping:
                break
            if ready_at is not None and time.monotonic() - ready_at >= _STABLE_S:
                self.failures = 0
            self.failures += 1
            delay = min(self.sup.backoff_cap, self.sup.backoff_base * 2 ** (self.failures - 1))
            self.retry_at = time.time() + delay
            self._system(f"restarting in {delay:g} s (attempt {self.failures + 1})")
            self._set(ReplicaState.FAILED, self.error)
            await asyncio.sleep(delay)
            self.retry_at = None
            self.restarts += 1

    async def _spawn(self) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader | None]:
        cfg = self.config
        env = dict(os.environ)
        if cfg.python:  # the deployment's own environment: none of modeldeck's paths leak in
            for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
                env.pop(name, None)
        env.update(cfg.environment)
        env["AZUREML_MODEL_DIR"] = cfg.model_dir
        env["PYTHONUNBUFFERED"] = "1"
        argv = [
            cfg.python or self.sup.python,
            str(SCORING_HOST),
            "--code-dir",
            cfg.code_dir,
            "--scoring-script",
            cfg.scoring_script,
            "--model-dir",
            cfg.model_dir,
            "--socket",
            self.socket_path or "",
            "--max-concurrency",
            str(cfg.max_concurrency),
            "--runtime",
            cfg.runtime,
            "--parent-pid",
            str(os.getpid()),
        ]
        self._listening = False
        read_fd, write_fd = os.pipe()
        argv += ["--status-fd", str(write_fd)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=cfg.code_dir,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_CHUNK * 4)
        self._status_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0)
        )
        return proc, reader

    async def _run_once(self) -> float | None:
        """One process, from spawn to exit. Returns when it became ready (monotonic) or None."""
        self._ready_signal = asyncio.Event()
        self._status_error = None
        self._reason = None
        self._set(ReplicaState.STARTING, None)
        try:
            self.socket_path = self.sup.socket_path(self)
            proc, status = await self._spawn()
        except BackendError as exc:
            self.error = self.last_error = exc.message
            self._system(f"{exc.message}; fix: {exc.fix}")
            return None
        except OSError as exc:
            self.error = self.last_error = f"cannot start the replica process: {exc}"
            self._system(self.error)
            return None
        self._proc = proc
        self.pid = proc.pid
        self._system(f"started (pid {proc.pid})")
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            asyncio.create_task(self._pump(proc.stdout, "stdout")),
            asyncio.create_task(self._pump(proc.stderr, "stderr")),
        ]
        if status is not None:
            pumps.append(asyncio.create_task(self._read_status(status)))
        exited = asyncio.create_task(proc.wait())
        ready_at: float | None = None
        try:
            if await self._wait_ready(proc, exited):
                ready_at = time.monotonic()
                await self._monitor(exited)
            elif exited.done():
                pass
            else:
                await self._kill(proc)
            await asyncio.wait({exited})
            if self.state is ReplicaState.READY and not self._stopping:
                # out of the gateway at once; the full reason follows when the pipes are drained
                self._set(ReplicaState.FAILED, f"replica process {describe_exit(proc.returncode)}")
            # the last lines (an init() traceback) are in the log before anyone reads the error
            await asyncio.wait(pumps, timeout=2.0)
            if not self._stopping:
                self.error = self.last_error = self._exit_error(proc.returncode)
                self._system(f"{describe_exit(proc.returncode)}: {self.error}")
        finally:
            for t in pumps:
                t.cancel()
            if not exited.done():
                exited.cancel()
            if self._status_transport is not None:
                self._status_transport.close()
                self._status_transport = None
        return ready_at

    def _exit_error(self, code: int | None) -> str:
        if self._status_error:
            return f"{self._status_error} (see log {self.log.path})"
        if self._reason:
            return self._reason
        return f"replica process {describe_exit(code)} (see log {self.log.path})"

    async def _wait_ready(
        self, proc: asyncio.subprocess.Process, exited: asyncio.Task[int]
    ) -> bool:
        probe = self.config.readiness
        budget = probe.initial_delay + max(1, probe.period) * max(1, probe.failure_threshold)
        deadline = time.monotonic() + budget
        if probe.initial_delay > 0:
            await asyncio.wait({exited}, timeout=probe.initial_delay)
        last = "no answer yet"
        successes = 0
        while not exited.done():
            now = time.monotonic()
            if now >= deadline:
                self._reason = (
                    f"not ready after {budget:g} s (readiness probe GET /: {last}; "
                    f"see log {self.log.path})"
                )
                self._system(self._reason)
                return False
            if self._listening and (
                self._ready_signal.is_set() or self.config.runtime != "default"
            ):
                ok, last = await self._probe(probe)
                if ok:
                    successes += 1
                    if successes >= max(1, probe.success_threshold):
                        self.last_error = None
                        self._set(ReplicaState.READY, None)
                        self._system("ready")
                        return True
                    continue
                successes = 0
            waiters: set[asyncio.Future[Any]] = {exited}
            signal_wait: asyncio.Task[Any] | None = None
            if not self._ready_signal.is_set():
                signal_wait = asyncio.create_task(self._ready_signal.wait())
                waiters.add(signal_wait)
            await asyncio.wait(
                waiters,
                timeout=min(max(0.05, probe.period), deadline - now),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if signal_wait is not None:
                signal_wait.cancel()
        return False

    async def _monitor(self, exited: asyncio.Task[int]) -> None:
        probe = self.config.liveness
        failures = 0
        while True:
            await asyncio.wait({exited}, timeout=max(0.1, probe.period))
            if exited.done():
                return
            ok, last = await self._probe(probe)
            if ok:
                failures = 0
                continue
            failures += 1
            if failures >= max(1, probe.failure_threshold) and not exited.done():
                self._reason = f"liveness probe failed {failures} times: {last}"
                self._system(self._reason + "; killing the replica")
                assert self._proc is not None
                await self._kill(self._proc)
                return

    async def _probe(self, probe: Probe) -> tuple[bool, str]:
        import aiohttp

        if self.socket_path is None:
            return False, "no socket yet"
        connector = aiohttp.UnixConnector(path=self.socket_path, force_close=True)
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, cookie_jar=aiohttp.DummyCookieJar()
                ) as session,
                session.get(
                    "http://replica/", timeout=aiohttp.ClientTimeout(total=max(0.1, probe.timeout))
                ) as resp,
            ):
                await resp.read()
                return resp.status == 200, f"HTTP {resp.status}"
        except TimeoutError:
            return False, f"no answer within {probe.timeout} s"
        except aiohttp.ClientConnectorError as exc:  # its text names the socket path
            why = exc.os_error.strerror if exc.os_error is not None else None
            return False, f"cannot connect ({why or type(exc.os_error).__name__})"
        except aiohttp.ClientError as exc:
            return False, f"{type(exc).__name__}: {exc}"

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        buffer = b""
        while True:
            chunk = await stream.read(_READ_CHUNK)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self.log.write(self.name, name, line.decode("utf-8", "replace"))
            if len(buffer) > _MAX_LINE:
                self.log.write(self.name, name, buffer.decode("utf-8", "replace"))
                buffer = b""
        if buffer:
            self.log.write(self.name, name, buffer.decode("utf-8", "replace"))

    async def _read_status(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            kind = msg.get("t")
            if kind == "log":
                for text in str(msg.get("text", "")).splitlines() or [""]:
                    self.log.write(self.name, "log", text)
            elif kind == "listening":
                self._listening = True
            elif kind == "ready":
                self._ready_signal.set()
            elif kind == "failed":
                self._status_error = str(msg.get("error", "failed"))

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _terminate(self, grace: float) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._system("stopping")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            await self._kill(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5.0)


class Supervisor:
    """Creates replicas; holds what they share (the log store, their socket directory)."""

    def __init__(
        self,
        logstore: LogStore,
        *,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        stop_grace: float = 10.0,
        python: str = sys.executable,
        socket_dir: Path | None = None,
    ) -> None:
        self.logstore = logstore
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.stop_grace = stop_grace
        self.python = python
        #: where this supervisor makes its private socket directory (None: the temp dir)
        self.socket_dir = socket_dir
        self._sockets: Path | None = None
        self._socket_names: dict[Replica, str] = {}
        self._next_socket = 0
        self.replicas: set[Replica] = set()

    def _socket_root(self) -> Path:
        """This supervisor's own 0700 directory of replica sockets (made once)."""
        if self._sockets is not None and self._sockets.is_dir():
            return self._sockets
        room = MAX_SOCKET_PATH - len("/12345678/ffff")
        base = self.socket_dir
        if base is not None:
            base = Path(base)
            base.mkdir(parents=True, exist_ok=True)
            os.chmod(base, 0o700)
        if base is None or len(os.fsencode(base)) > room:
            runtime = os.environ.get("XDG_RUNTIME_DIR")
            base = Path(runtime if runtime and os.path.isdir(runtime) else tempfile.gettempdir())
            if len(os.fsencode(base)) > room:
                raise BackendError(
                    "no directory short enough for the replicas' Unix sockets: "
                    f"{self.socket_dir} and {base} are both over {room} bytes",
                    fix="set MODELDECK_HOME (or TMPDIR) to a shorter path, then "
                    "modeldeck daemon stop",
                )
        # mkdtemp: a fresh name, mode 0700, owned by us, whatever the umask
        self._sockets = Path(tempfile.mkdtemp(prefix="", dir=base))
        return self._sockets

    def socket_path(self, replica: Replica) -> str:
        """The replica's socket path (the same for all its restarts)."""
        name = self._socket_names.get(replica)
        if name is None:
            name = self._socket_names[replica] = f"{self._next_socket:x}"
            self._next_socket += 1
        path = str(self._socket_root() / name)
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise BackendError(
                f"the replica socket path is {len(os.fsencode(path))} bytes, over the "
                f"{MAX_SOCKET_PATH} a Unix socket allows",
                fix="set MODELDECK_HOME to a shorter path, then modeldeck daemon stop",
            )
        return path

    def create(
        self, config: ReplicaConfig, on_change: Callable[[Replica], None] | None = None
    ) -> Replica:
        replica = Replica(config, self, on_change)
        self.replicas.add(replica)
        return replica

    async def stop(self, replica: Replica, grace: float | None = None) -> None:
        await replica.stop(grace)
        self.replicas.discard(replica)
        name = self._socket_names.pop(replica, None)
        if name is not None and self._sockets is not None:
            with contextlib.suppress(OSError):
                (self._sockets / name).unlink()

    async def close(self) -> None:
        await asyncio.gather(
            *(r.stop(grace=5.0) for r in list(self.replicas)), return_exceptions=True
        )
        self.replicas.clear()
        self._socket_names.clear()
        if self._sockets is not None:
            import shutil

            shutil.rmtree(self._sockets, ignore_errors=True)
            self._sockets = None
