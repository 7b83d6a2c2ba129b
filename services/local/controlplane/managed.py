"""The managed capacity of the local workspace: where an endpoint without ``compute`` runs.

In az ml an online endpoint with no ``compute`` is a *managed* online endpoint: Azure
places each deployment on VMs of its ``instance_type`` (``Standard_DS3_v2``...). On the
local workspace it runs on this host: a built-in cluster record named :data:`NAME`,
driven by the pool driver (replicas are processes here), made the first time an endpoint
needs it, and sized from the host (:func:`host_size`: its vCPUs, and its memory less a
reserve for everything else that runs here). ``compute list`` shows it; no one creates,
scales, detaches or deletes it (:func:`refuse`).

Admission on it (:func:`check`) maps each deployment's ``instance_type`` to the size's
vCPUs and memory (``services/vmsizes.py``) and counts ``instance_count`` (autoscale: its
maximum) of them, with two honest departures from a VM-per-instance cloud:

- **vCPUs are a scheduling share, not a reservation.** Replicas time-share the host's
  cores; CPU is a compressible resource (more replicas than cores make requests slower,
  they do not fail), as Kubernetes treats it. The vCPUs the instance types add up to are
  shown beside the host's (``compute show -n managed``), never refused.
- **Memory is admitted, with an overcommit of** :data:`MEMORY_OVERCOMMIT`. An Azure VM
  size is a whole machine (its OS, agents and the inference server included); a local
  replica is one process whose memory is what its model loads, typically a small part of
  the size, which is then its ceiling, not its use (as a Kubernetes limit may be
  overcommitted where requests may not). The instance sizes may add up to
  ``MEMORY_OVERCOMMIT`` x the host's memory less the reserve; more is refused, naming the
  numbers and the fix. So the azureml-examples safe rollout (blue 2 x DS3_v2 and green
  1 x DS3_v2: 42 GiB of sizes) is admitted on a 16 GiB host and up, and 7 x DS3_v2 on a
  24 GiB one is not.

A deployment with no ``instance_type`` is counted by its ``resources.requests``, as on a
pool. An instance type with GPUs is refused: the managed capacity counts none.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ... import vmsizes
from ...api import validation
from ...api.domain import ClusterPurpose, ClusterSpec, DeploymentSpec, ProvisioningState
from ...api.errors import CapacityExceeded, Conflict, InvalidInput

if TYPE_CHECKING:
    from .engine import Engine

#: the record's name (reserved: ``cluster create`` / ``attach`` refuse it)
NAME = "managed"
#: how many times the usable memory the instance sizes may add up to (see the module doc)
MEMORY_OVERCOMMIT = 4
#: memory kept for the rest of the host: a tenth, at least 1 GiB, at most 4 GiB
RESERVE_FRACTION, RESERVE_MIN_GB, RESERVE_MAX_GB = 0.1, 1.0, 4.0
#: a smaller size named in the capacity refusal's fix
_SMALLER = "Standard_DS2_v2"


class HostSize(NamedTuple):
    vcpus: int
    memory_gb: float  # physical (or the cgroup's limit)
    reserve_gb: float

    @property
    def usable_gb(self) -> float:
        return round(max(0.0, self.memory_gb - self.reserve_gb), 2)


def _cgroup(name: str) -> str | None:
    """A cgroup v2 setting of this process's group (a container's limits), if there is one."""
    with contextlib.suppress(OSError, ValueError):
        rel = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        return (Path("/sys/fs/cgroup") / rel.lstrip("/") / name).read_text().strip()
    return None


def host_size() -> HostSize:
    """This host's vCPUs (those this process may run on, within a container's CPU quota)
    and memory (within a container's limit), and the memory reserve kept out."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    quota = (_cgroup("cpu.max") or "max").split()
    if len(quota) == 2 and quota[0] != "max":
        with contextlib.suppress(ValueError, ZeroDivisionError):
            cpus = min(cpus, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    limit = _cgroup("memory.max")
    if limit and limit.isdigit():
        memory = min(memory, int(limit) / 2**30)
    reserve = min(RESERVE_MAX_GB, max(RESERVE_MIN_GB, RESERVE_FRACTION * memory))
    return HostSize(cpus, round(memory, 2), round(min(reserve, memory), 2))


def record() -> ClusterSpec:
    return ClusterSpec(
        name=NAME,
        purpose=ClusterPurpose.FAST_PROD,
        agent_count=1,
        description="this host's managed capacity: endpoints created without compute run here",
        managed=True,
    )


def is_managed(spec: ClusterSpec) -> bool:
    return spec.managed and spec.name == NAME


def ensure(engine: Engine) -> str:
    """The managed capacity's name; its record and driver made if they are not there yet
    (callers hold the admission lock)."""
    row = engine.store.cluster(NAME)
    if row is not None and not is_managed(row.spec):  # made before the name was reserved
        raise Conflict(
            f"cluster '{NAME}' is a cluster of yours, and an endpoint without compute runs on "
            "the workspace's managed capacity, which has that name",
            fix=f"name the cluster: --set compute={NAME} (or another), or delete or detach "
            f"cluster '{NAME}' to free the name",
        )
    if row is None:
        spec = record()
        engine.store.insert_cluster(spec, ProvisioningState.SUCCEEDED)
        engine.drivers[NAME] = engine.clusters.make_driver(spec)
    return NAME


def reserved(spec: ClusterSpec) -> ClusterSpec:
    """A user's cluster spec: never named :data:`NAME`, never marked managed."""
    if spec.name == NAME:
        raise InvalidInput(
            "name",
            spec.name,
            "is the workspace's managed capacity (where endpoints without compute run)",
            "choose another name",
        )
    return replace(spec, managed=False)


def refuse(spec: ClusterSpec, action: str) -> None:
    """InvalidInput when ``action`` (scale, detach, delete) names the managed capacity."""
    if is_managed(spec):
        raise InvalidInput(
            "name",
            spec.name,
            f"is the workspace's managed capacity: it is sized from this host and cannot be "
            f"{action}",
            "delete its endpoints when you no longer need them; their deployments' "
            "instance_type and instance_count decide what they take",
        )


def usage(spec: DeploymentSpec, instances: int) -> tuple[float, float]:
    """(vCPU, GiB) ``instances`` replicas of ``spec`` take: its instance type's size each,
    or its ``resources.requests`` when it names none (or one not known: refused by
    :func:`check`)."""
    size = vmsizes.lookup(spec.instance_type) if spec.instance_type else None
    if size is not None:
        return float(size.vcpus * instances), float(size.memory_gb * instances)
    req = spec.resources.requests
    return (req.cpu or 0.0) * instances, (req.memory_gb or 0.0) * instances


def check(spec: DeploymentSpec, instances: int, used_gb: float) -> None:
    """The admission of ``instances`` replicas of ``spec`` on the managed capacity, where
    the other deployments' sizes take ``used_gb``; see the module doc for the rule."""
    size = None
    if spec.instance_type:
        size = validation.vm_size(spec.instance_type, "instance_type")
        if size.gpus:
            raise InvalidInput(
                "instance_type",
                spec.instance_type,
                f"has {size.gpus} GPU; the managed capacity of this host counts none",
                "pick a CPU size (e.g. Standard_DS3_v2), or run it on a Kubernetes cluster "
                "with GPUs: create the endpoint with --set compute=NAME",
            )
    _, need = usage(spec, instances)
    host = host_size()
    total = host.usable_gb * MEMORY_OVERCOMMIT
    free = max(0.0, total - used_gb)
    if need <= free + 1e-9:
        return
    each = f"{size.name}: {size.vcpus} vCPU, {size.memory_gb:g} GiB" if size else "requests"
    raise CapacityExceeded(
        f"deployment '{spec.name}' does not fit the managed capacity: {instances} x "
        f"{spec.instance_type or 'resources.requests'} needs {need:g} GiB of memory "
        f"({instances} x {need / max(instances, 1):g} GiB, {each}); {free:g} GiB free of "
        f"{total:g} (this host's {host.memory_gb:g} GiB less {host.reserve_gb:g} GiB kept "
        f"for the host, x {MEMORY_OVERCOMMIT}: instance sizes are ceilings, a replica is one "
        "process)",
        fix=f"lower instance_count, pick a smaller instance_type (e.g. {_SMALLER}: 2 vCPU, "
        "7 GiB), delete a deployment of an endpoint without compute, or run it on a cluster "
        "(create the endpoint with --set compute=NAME)",
        needed_memory_gb=round(need, 3),
        free_memory_gb=round(free, 3),
        total_memory_gb=round(total, 3),
    )
