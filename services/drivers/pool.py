"""The ``pool`` cluster driver: deployments as local replica processes behind the gateway.

A pool is a named share of this host sized as AKS sizes a cluster (``agent_count`` x
``vm_size``). Each deployment is a set of replica processes (``replica.py``), run by a
:class:`Supervisor`; the ready ones are the deployment's backends in the shared
:class:`Gateway`.

Updates without downtime: when the model, code, scoring script, environment
variables, resources or runtime change, a new replica set is started next to the old
one; only when all of it is ready does the gateway switch to it (one assignment),
then the old set is drained (requests in flight finish) and stopped. If the new set
cannot become ready (a replica failed ``start_attempts`` times in a row: init() keeps
failing, or its readiness probe budget ran out), it is stopped, the old set keeps
serving, and :class:`BackendError` says why, with the last lines of the log. A change
of the replica count only starts or stops the difference.

Autoscale (``scale_settings.type == "target_utilization"``): every
``polling_interval`` seconds the driver averages the deployment's utilisation,
defined as *(requests in flight + requests queued at the gateway) / (ready replicas x
max_concurrent_requests_per_instance)*, sampled every 50 ms over the interval, and
sets the replica count as the Kubernetes HPA does:
``ceil(current x utilisation / target)``, within ``[min_instances, max_instances]``
(at least 1: with no replica there is no load to measure, so no scale from zero),
ignoring a deviation of up to 10 % from the target. It scales up at once, and down
only after three intervals in a row asked for fewer replicas.

Files: ``DATA_DIR/logs/ENDPOINT/DEPLOYMENT/deployment.log*`` (see ``logstore.py``),
``DATA_DIR/run/ENDPOINT/DEPLOYMENT/gN/model/`` (each generation's
``AZUREML_MODEL_DIR``: a symlink to the registered model under its own base name) and
``DATA_DIR/sock/XXXXXXXX/N`` (the replicas' Unix sockets, in 0700 directories: only the
gateway reaches a replica, see ``supervisor.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from ... import __version__
from .. import vmsizes
from ..api.domain import ClusterSpec, DeploymentSpec, LogLine, MetricSample
from ..api.errors import BackendError, InvalidInput, NotFound
from ..local.dataplane.logstore import ENVIRONMENT, Keep, LogStore
from ..local.dataplane.supervisor import (
    LOCAL_PROBE,
    Replica,
    ReplicaConfig,
    ReplicaState,
    Supervisor,
)
from ..prometheus import family, labels
from .base import (
    Capacity,
    ClusterDriver,
    DeploymentRuntime,
    DeploymentStatus,
    EndpointRoute,
    KeepsLogs,
    Progress,
)

if TYPE_CHECKING:
    from ..local.dataplane.gateway import Gateway

_SAMPLE_S = 0.05
_SCALE_DOWN_AFTER = 3  # polling intervals in a row
_TOLERANCE = 0.1


def _restart_key(runtime: DeploymentRuntime) -> tuple[object, ...]:
    """What, when changed, needs new replica processes (everything else is applied live)."""
    s = runtime.spec
    return (
        runtime.model.path,
        runtime.model.name,
        runtime.model.version,
        runtime.code_dir,
        s.code_configuration.scoring_script,
        tuple(sorted(s.environment_variables.items())),
        s.resources,
        s.runtime,
        s.environment,
        runtime.python,
        s.request_settings.max_concurrent_requests_per_instance,
    )


def _autoscaled(spec: DeploymentSpec) -> bool:
    return spec.scale_settings.type == "target_utilization"


class _Deployment:
    def __init__(
        self, endpoint: str, name: str, runtime: DeploymentRuntime, run_root: Path
    ) -> None:
        self.endpoint = endpoint
        self.name = name
        self.runtime = runtime
        self.replicas: list[Replica] = []  # the active set (its ready ones are in the gateway)
        self.desired = 0
        self.next_index = 0
        self.generation = 0
        self.model_dir: Path | None = None
        self.run_root = run_root
        self.lock = asyncio.Lock()
        self.autoscaler: asyncio.Task[None] | None = None
        self.utilization: float | None = None  # last measured, percent


class PoolDriver(ClusterDriver, KeepsLogs):
    """Runs a pool's deployments as local processes behind ``gateway``."""

    #: the data plane's own fast probing, not az ml's 10 s (a local rollout waits on it)
    default_probe = LOCAL_PROBE

    def __init__(
        self,
        spec: ClusterSpec,
        *,
        gateway: Gateway,
        data_dir: Path,
        start_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        stop_grace: float = 10.0,
    ) -> None:
        super().__init__(spec)
        self.gateway = gateway
        self.data_dir = Path(data_dir)
        self.logstore = LogStore(self.data_dir / "logs")
        self.supervisor = Supervisor(
            self.logstore,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            stop_grace=stop_grace,
            socket_dir=self.data_dir / "sock",
        )
        self.start_attempts = max(1, start_attempts)
        self._deps: dict[tuple[str, str], _Deployment] = {}
        self._endpoints: set[str] = set()
        gateway.add_metrics_provider(self._prometheus)

    # ----------------------------------------------------------------- cluster
    async def capacity(self) -> Capacity:
        size = vmsizes.lookup(self.spec.vm_size)
        if size is None:
            raise InvalidInput(
                "vm_size",
                self.spec.vm_size,
                "not a known Azure VM size",
                "pick one of: " + ", ".join(vmsizes.names()[:8]) + ", ...",
            )
        n = self.spec.agent_count
        return Capacity(
            nodes=n,
            vcpus=float(n * size.vcpus),
            memory_gb=float(n * size.memory_gb),
            version=__version__,
        )

    def scoring_uri(self, endpoint: str) -> str:
        return self.gateway.scoring_uri(endpoint)

    # ----------------------------------------------------------------- endpoints
    async def apply_endpoint(self, route: EndpointRoute) -> None:
        self.gateway.set_endpoint(route)
        self._endpoints.add(route.name)

    async def delete_endpoint(self, name: str) -> None:
        self.gateway.remove_endpoint(name)
        self._endpoints.discard(name)

    # ----------------------------------------------------------------- deployments
    def log_path(self, endpoint: str, name: str) -> Path:
        return self.logstore.log(endpoint, name).path

    async def apply_deployment(
        self, endpoint: str, runtime: DeploymentRuntime, progress: Progress
    ) -> None:
        name = runtime.spec.name
        key = (endpoint, name)
        dep = self._deps.get(key)
        fresh = dep is None
        if dep is None:
            dep = _Deployment(endpoint, name, runtime, self.data_dir / "run" / endpoint / name)
            self._deps[key] = dep
            shutil.rmtree(dep.run_root, ignore_errors=True)  # left by a previous control plane
        async with dep.lock:
            spec = runtime.spec
            if _autoscaled(spec):
                ss = spec.scale_settings
                low = max(1, ss.min_instances)  # no scale from zero: nothing would measure load
                base = dep.desired if not fresh and dep.desired else low
                target = min(max(base, low), max(low, ss.max_instances))
            else:
                target = spec.instance_count
            if fresh or not dep.replicas or _restart_key(dep.runtime) != _restart_key(runtime):
                await self._rollout(dep, runtime, target, progress, fresh)
            else:
                dep.runtime = runtime  # request settings, probes, scale settings: live
                self._publish(dep)
                await self._scale_to(dep, target, progress)
            self._ensure_autoscaler(dep)
        ready = sum(r.ready for r in dep.replicas)
        progress(1.0, f"{ready}/{dep.desired} replicas ready")

    async def delete_deployment(self, endpoint: str, name: str) -> None:
        dep = self._deps.pop((endpoint, name), None)
        if dep is None:
            self.gateway.remove_backends(endpoint, name)
            return
        async with dep.lock:
            if dep.autoscaler is not None:
                dep.autoscaler.cancel()
                dep.autoscaler = None
            addresses = [r.address for r in dep.replicas if r.address]
            self.gateway.set_backends(endpoint, name, [], dep.runtime.spec.request_settings)
            await self.gateway.drain(endpoint, name, addresses, timeout=2.0)
            self.gateway.remove_backends(endpoint, name)
            await asyncio.gather(*(self.supervisor.stop(r, grace=2.0) for r in dep.replicas))
            dep.replicas = []
            shutil.rmtree(dep.run_root, ignore_errors=True)
            self.logstore.remove(endpoint, name)

    async def deployment_status(self, endpoint: str, name: str) -> DeploymentStatus:
        dep = self._get(endpoint, name)
        ready = sum(r.ready for r in dep.replicas)
        error = None
        if ready < dep.desired:
            for r in dep.replicas:
                if not r.ready:
                    why = r.error or r.last_error
                    if why:
                        error = f"{r.name}: {why}"
                        if r.retry_at is not None:
                            error += f"; retrying in {max(0.0, r.retry_at - time.time()):.0f} s"
                        break
        return DeploymentStatus(ready_replicas=ready, desired_replicas=dep.desired, error=error)

    def replicas(self, endpoint: str, name: str) -> list[Replica]:
        """The active replicas of a deployment (for status views and tests)."""
        return list(self._get(endpoint, name).replicas)

    async def read_logs(
        self,
        endpoint: str,
        name: str,
        lines: int,
        *,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        return self.logstore.read(endpoint, name, lines, since, _container(container))

    def follow_logs(
        self,
        endpoint: str,
        name: str,
        lines: int,
        *,
        since: float | None = None,
        container: str | None = None,
    ) -> AsyncIterator[LogLine]:
        return self.logstore.follow(endpoint, name, lines, since, _container(container))

    async def metrics(self, endpoint: str | None = None) -> list[MetricSample]:
        now = time.time()
        mono = time.monotonic()
        out: list[MetricSample] = []
        for (ep, name), dep in sorted(self._deps.items()):
            if endpoint is not None and ep != endpoint:
                continue
            cpu = mem = 0.0
            measured = False
            for r in dep.replicas:
                c, m = r.usage()
                if c is not None and m is not None:
                    cpu += c
                    mem += m
                    measured = True
            stats = self.gateway.stats(ep, name)
            ready = sum(r.ready for r in dep.replicas)
            if stats is None:
                out.append(
                    MetricSample(
                        ts=now,
                        endpoint=ep,
                        deployment=name,
                        cpu_percent=cpu if measured else None,
                        memory_mb=mem if measured else None,
                        replicas_ready=ready,
                        replicas_desired=dep.desired,
                    )
                )
                continue
            rps, error_rate = stats.rate(10, mono)
            p50, p95, p99 = stats.percentiles(60.0, mono)
            out.append(
                MetricSample(
                    ts=now,
                    endpoint=ep,
                    deployment=name,
                    requests_total=stats.requests_total,
                    requests_per_second=rps,
                    errors_total=stats.errors_total,
                    error_rate=error_rate,
                    latency_p50_ms=p50,
                    latency_p95_ms=p95,
                    latency_p99_ms=p99,
                    status_codes={str(k): v for k, v in sorted(stats.codes.items())},
                    cpu_percent=cpu if measured else None,
                    memory_mb=mem if measured else None,
                    replicas_ready=ready,
                    replicas_desired=dep.desired,
                )
            )
        return out

    async def close(self) -> None:
        for dep in self._deps.values():
            if dep.autoscaler is not None:
                dep.autoscaler.cancel()
            self.gateway.remove_backends(dep.endpoint, dep.name)
        for dep in self._deps.values():
            if dep.autoscaler is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await dep.autoscaler
        self._deps.clear()
        self.gateway.remove_metrics_provider(self._prometheus)
        await self.supervisor.close()
        self.logstore.close()

    # ----------------------------------------------------------------- internals
    def _get(self, endpoint: str, name: str) -> _Deployment:
        dep = self._deps.get((endpoint, name))
        if dep is None:
            raise NotFound("deployment", f"{endpoint}/{name}")
        return dep

    def _publish(self, dep: _Deployment) -> None:
        addresses = [r.address for r in dep.replicas if r.ready and r.address]
        self.gateway.set_backends(
            dep.endpoint, dep.name, addresses, dep.runtime.spec.request_settings
        )

    def _prepare_model_dir(
        self, dep: _Deployment, runtime: DeploymentRuntime, generation: int
    ) -> Path:
        model_dir = dep.run_root / f"g{generation}" / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.mkdir(parents=True, exist_ok=True)
        source = Path(runtime.model.path)
        (model_dir / source.name).symlink_to(source.resolve(), target_is_directory=source.is_dir())
        return model_dir

    def _new_replica(
        self, dep: _Deployment, runtime: DeploymentRuntime, model_dir: Path
    ) -> Replica:
        spec = runtime.spec
        config = ReplicaConfig(
            endpoint=dep.endpoint,
            deployment=dep.name,
            name=f"{dep.name}-{dep.next_index}",
            code_dir=str(Path(runtime.code_dir).resolve()),
            scoring_script=spec.code_configuration.scoring_script,
            model_dir=str(model_dir),
            environment=dict(spec.environment_variables),
            runtime=spec.runtime,
            max_concurrency=spec.request_settings.max_concurrent_requests_per_instance,
            readiness=spec.readiness_probe or self.default_probe,
            liveness=spec.liveness_probe or self.default_probe,
            python=runtime.python,
        )
        dep.next_index += 1

        def on_change(replica: Replica) -> None:
            if replica in dep.replicas:
                self._publish(dep)

        return self.supervisor.create(config, on_change)

    async def _wait_ready(
        self, dep: _Deployment, new: list[Replica], progress: Progress, base: int = 0
    ) -> Replica | None:
        """Wait until every replica of ``new`` is ready; returns the one that gave up, if any."""
        total = base + len(new)
        shown = -1
        while True:
            ready = sum(r.ready for r in new)
            if ready != shown:
                shown = ready
                progress(
                    0.05 + 0.9 * (base + ready) / max(1, total),
                    f"{base + ready}/{total} replicas ready",
                )
            if ready == len(new):
                return None
            for r in new:
                if r.failures >= self.start_attempts:
                    return r
            waits = [asyncio.ensure_future(r.wait_change(0.5)) for r in new]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()

    def _failure(self, dep: _Deployment, replica: Replica, keeps_serving: bool) -> BackendError:
        log = self.logstore.log(dep.endpoint, dep.name)
        attempt: list[str] = []  # what the replica wrote during its last attempt
        for line in log.read(500):
            if line.replica != replica.name:
                continue
            if line.stream == "system":
                if line.text.startswith("started (pid"):
                    attempt = []
                continue
            attempt.append(line.text)
        tail = attempt[-25:]
        starts = [t for t in attempt if t.startswith("Traceback (most recent call last)")]
        if starts and starts[-1] not in tail:
            tail = [starts[-1], "...", *attempt[-23:]]
        why = replica.last_error or replica.error or "it did not become ready"
        message = f"deployment '{dep.name}' of endpoint '{dep.endpoint}' did not become ready: {replica.name}: {why}"
        if tail:
            message += "\nlast lines of its log:\n" + "\n".join(f"  {t}" for t in tail)
        message += f"\nlog: {log.path}"
        if keeps_serving:
            message += "\nthe previous version keeps serving"
        return BackendError(
            message,
            fix=(
                "fix the scoring script or model and update the deployment again; full log: "
                f"modeldeck online-deployment get-logs -n {dep.name} -e {dep.endpoint}"
            ),
            log=str(log.path),
        )

    async def _rollout(
        self,
        dep: _Deployment,
        runtime: DeploymentRuntime,
        count: int,
        progress: Progress,
        fresh: bool,
    ) -> None:
        generation = dep.generation + 1
        progress(0.0, f"starting {count} replica(s)")
        model_dir = self._prepare_model_dir(dep, runtime, generation)
        new = [self._new_replica(dep, runtime, model_dir) for _ in range(count)]
        first = fresh or not dep.replicas

        def switch() -> None:
            """The new replicas become the deployment's: one assignment in the gateway."""
            dep.replicas, dep.runtime, dep.generation, dep.model_dir = (
                new,
                runtime,
                generation,
                model_dir,
            )
            dep.desired = count
            self._publish(dep)

        if first:
            old: list[Replica] = []
            old_model_dir = dep.model_dir
            switch()
        for r in new:
            r.start()
        failed = await self._wait_ready(dep, new, progress)
        if failed is not None:
            error = self._failure(dep, failed, keeps_serving=not first)
            if not first:
                await asyncio.gather(*(self.supervisor.stop(r, grace=1.0) for r in new))
                shutil.rmtree(model_dir.parent, ignore_errors=True)
            # a first version keeps retrying with backoff: its status shows why
            raise error
        if not first:
            old, old_model_dir = dep.replicas, dep.model_dir
            switch()
            progress(0.97, f"{count}/{count} replicas ready; stopping the previous {len(old)}")
            await self._retire(dep, old)
        if old_model_dir is not None and old_model_dir != model_dir:
            shutil.rmtree(old_model_dir.parent, ignore_errors=True)

    async def _retire(self, dep: _Deployment, old: list[Replica]) -> None:
        addresses = [r.address for r in old if r.address]
        timeout = dep.runtime.spec.request_settings.request_timeout_ms / 1000 + 1.0
        await self.gateway.drain(dep.endpoint, dep.name, addresses, timeout=timeout)
        await asyncio.gather(*(self.supervisor.stop(r) for r in old))

    async def _scale_to(self, dep: _Deployment, target: int, progress: Progress) -> None:
        current = len(dep.replicas)
        if target > current:
            assert dep.model_dir is not None
            new = [
                self._new_replica(dep, dep.runtime, dep.model_dir) for _ in range(target - current)
            ]
            dep.replicas = dep.replicas + new
            dep.desired = target
            for r in new:
                r.start()
            ready_before = sum(r.ready for r in dep.replicas if r not in new)
            failed = await self._wait_ready(dep, new, progress, base=ready_before)
            if failed is not None:
                error = self._failure(dep, failed, keeps_serving=True)
                dep.replicas = [r for r in dep.replicas if r not in new]
                dep.desired = len(dep.replicas)
                self._publish(dep)
                await asyncio.gather(*(self.supervisor.stop(r, grace=1.0) for r in new))
                raise error
        elif target < current:
            # the ones not ready go first, then the newest
            order = sorted(dep.replicas, key=lambda r: (r.ready, -dep.replicas.index(r)))
            victims = order[: current - target]
            dep.replicas = [r for r in dep.replicas if r not in victims]
            dep.desired = target
            self._publish(dep)
            progress(0.5, f"stopping {len(victims)} replica(s)")
            await self._retire(dep, victims)
        dep.desired = target

    def _ensure_autoscaler(self, dep: _Deployment) -> None:
        wanted = _autoscaled(dep.runtime.spec)
        if wanted and dep.autoscaler is None:
            dep.autoscaler = asyncio.create_task(
                self._autoscale(dep), name=f"autoscale {dep.endpoint}/{dep.name}"
            )
        elif not wanted and dep.autoscaler is not None:
            dep.autoscaler.cancel()
            dep.autoscaler = None

    def measure(self, dep: _Deployment) -> float | None:
        inflight, queued, capacity = self.gateway.load(dep.endpoint, dep.name)
        if capacity <= 0:
            return None
        return 100.0 * (inflight + queued) / capacity

    async def _autoscale(self, dep: _Deployment) -> None:
        low = 0  # polling intervals in a row that asked for fewer replicas
        log = self.logstore.log(dep.endpoint, dep.name)
        while True:
            ss = dep.runtime.spec.scale_settings
            interval = max(0.1, float(ss.polling_interval))
            samples: list[float] = []
            end = time.monotonic() + interval
            while time.monotonic() < end:
                value = self.measure(dep)
                if value is not None:
                    samples.append(value)
                await asyncio.sleep(min(_SAMPLE_S, interval / 4))
            if not samples or dep.lock.locked():
                continue
            utilization = sum(samples) / len(samples)
            dep.utilization = utilization
            current = dep.desired
            target_pct = max(1, ss.target_utilization_percentage)
            ratio = utilization / target_pct
            if abs(ratio - 1.0) <= _TOLERANCE:
                low = 0
                continue
            floor = max(1, ss.min_instances)
            wanted = max(floor, min(max(floor, ss.max_instances), math.ceil(current * ratio)))
            if wanted > current:
                low = 0
            elif wanted < current:
                low += 1
                if low < _SCALE_DOWN_AFTER:
                    continue
                low = 0
            else:
                continue
            log.write(
                "autoscaler",
                "system",
                f"utilisation {utilization:.0f}% (target {target_pct}%): scaling {current} -> {wanted} replicas",
            )
            try:
                async with dep.lock:
                    if dep.autoscaler is not asyncio.current_task():
                        return
                    await self._scale_to(dep, wanted, lambda _f, _m: None)
            except BackendError as exc:
                log.write("autoscaler", "system", f"scaling failed: {exc.message.splitlines()[0]}")

    def _prometheus(self) -> list[str]:
        lines = family(
            "modeldeck_replica_cpu_percent", "gauge", "CPU of a replica process (100 = one core)."
        )
        memory = family(
            "modeldeck_replica_memory_bytes", "gauge", "Resident memory of a replica process."
        )
        desired = family(
            "modeldeck_replicas_desired",
            "gauge",
            "Replicas the deployment should have (autoscale included).",
        )
        for dep in list(self._deps.values()):
            base = labels(endpoint=dep.endpoint, deployment=dep.name)
            desired.append(f"modeldeck_replicas_desired{{{base}}} {dep.desired}")
            for r in list(dep.replicas):
                if r.state is not ReplicaState.READY:
                    continue
                cpu, mem = r.usage()
                if cpu is None or mem is None:
                    continue
                replica = f"{base},{labels(replica=r.name)}"
                lines.append(f"modeldeck_replica_cpu_percent{{{replica}}} {cpu:.1f}")
                memory.append(
                    f"modeldeck_replica_memory_bytes{{{replica}}} {int(mem * 1024 * 1024)}"
                )
        return lines + memory + desired


def _container(container: str | None) -> Keep:
    """az ml's ``--container`` on a pool, as the Kubernetes driver reads it: its replicas
    are processes of this host with one log per deployment; ``inference-server`` is the
    scoring hosts' lines (az ml's default container), ``storage-initializer`` what runs
    before them, the environment build's (the model is read where it lies, not
    downloaded); no container, the whole log."""
    if container is None:
        return None
    before = container == "storage-initializer"
    return lambda line: (line.replica == ENVIRONMENT) == before


def default_data_dir() -> Path:
    """Where a daemon keeps pool files by default: ``<data dir>/pools``."""
    from ..paths import data_dir

    return data_dir() / "pools"


__all__ = ["PoolDriver", "default_data_dir"]
