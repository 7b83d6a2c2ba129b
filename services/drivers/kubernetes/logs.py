"""Pod logs of a deployment, multiplexed: tail of every pod, and follow with pods joining.

Lines are read with ``timestamps=true`` so that the pods' lines can be merged in
time order and a re-opened stream (after a container restart, or a stream the
server closed) does not repeat what was already shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from ...api.domain import LogLine
from ...api.errors import ModeldeckError, NotFound
from .client import KubeApi
from .errors import Call

CONTAINER = "scoring"


def parse_line(raw: bytes | str) -> tuple[float, str]:
    """``2026-11-26T16:00:00.123456789Z text`` -> (epoch seconds, text)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.rstrip("\r")
    stamp, sep, rest = text.partition(" ")
    if sep and stamp[:1].isdigit() and "T" in stamp:
        ts = parse_time(stamp)
        if ts is not None:
            return ts, rest
    return time.time(), text


def parse_time(stamp: str) -> float | None:
    s = stamp.rstrip("Z")
    frac = 0.0
    if "." in s:
        s, _, digits = s.partition(".")
        digits = "".join(ch for ch in digits if ch.isdigit())
        frac = float("0." + digits) if digits else 0.0
    try:
        dt = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return dt.timestamp() + frac


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/log"


async def pod_log(
    api: KubeApi,
    namespace: str,
    pod: str,
    *,
    tail: int | None = None,
    previous: bool = False,
    container: str = CONTAINER,
    since: float | None = None,
) -> list[tuple[float, str]]:
    """Lines of one pod's container: ``(time, text)``; ``since`` (epoch seconds) keeps the
    lines written at or after it (``sinceTime`` has whole seconds: the rest is cut here)."""
    query: list[tuple[str, Any]] = [("container", container), ("timestamps", "true")]
    if since is not None:
        query.append(("sinceTime", rfc3339(since)))
    if tail is not None:
        query.append(("tailLines", tail))
    if previous:
        query.append(("previous", "true"))
    data = await api.request(
        "GET",
        _log_path(namespace, pod),
        Call("get", "pods/log", namespace, pod),
        query=query,
        accept="*/*",
        raw=True,
    )
    got = [parse_line(line) for line in (data or b"").splitlines() if line.strip()]
    return got if since is None else [(ts, text) for ts, text in got if ts >= since]


async def last_run_log(
    api: KubeApi,
    namespace: str,
    pod: str,
    container: str,
    *,
    tail: int,
    since: float | None = None,
    skip_empty: bool = False,
) -> list[tuple[float, str]] | None:
    """The lines of ``container``'s last run, else those of the run before (when the last
    run's log cannot be read, or, with ``skip_empty``, is empty); None when neither can."""
    for previous in (False, True):
        try:
            got = await pod_log(
                api,
                namespace,
                pod,
                tail=tail,
                previous=previous,
                container=container,
                since=since,
            )
        except ModeldeckError:
            continue
        if got or not skip_empty:
            return got
    return None


async def read(
    api: KubeApi,
    namespace: str,
    pods: list[str],
    endpoint: str,
    deployment: str,
    lines: int,
    *,
    since: float | None = None,
) -> list[LogLine]:
    """The last ``lines`` lines over all the deployment's pods, in time order.

    A pod whose container is not running (CrashLoopBackOff) gives its previous
    container's log instead, as stream ``previous``: where a failed ``init()`` shows."""

    async def one(pod: str) -> list[LogLine]:
        stream = "stdout"
        try:
            got = await pod_log(api, namespace, pod, tail=lines, since=since)
        except NotFound:
            return []
        except ModeldeckError as exc:
            if "waiting to start" not in exc.message:
                raise
            # Not running (CrashLoopBackOff, ...): the previous container's log says why.
            try:
                got = await pod_log(api, namespace, pod, tail=lines, previous=True, since=since)
            except ModeldeckError:
                return []
            stream = "previous"
        return [LogLine(ts, endpoint, deployment, pod, stream, text) for ts, text in got]

    results = await asyncio.gather(*(one(p) for p in pods))
    merged = sorted((line for group in results for line in group), key=lambda x: x.ts)
    return merged[-lines:] if lines > 0 else merged


async def follow(
    api: KubeApi,
    namespace: str,
    selector: str,
    endpoint: str,
    deployment: str,
    lines: int,
    *,
    retry_delay: float = 0.5,
    since: float | None = None,
) -> AsyncIterator[LogLine]:
    """Follow every pod of the deployment; pods that appear later join, restarts are followed.

    ``lines``: how many earlier lines of each pod there at the start to show first;
    ``since`` (epoch seconds): none written before it."""
    out: asyncio.Queue[LogLine | BaseException] = asyncio.Queue(maxsize=10_000)
    followers: dict[str, asyncio.Task[None]] = {}

    async def emit(item: LogLine | BaseException) -> None:
        await out.put(item)

    async def follow_pod(pod: str, first_tail: int | None) -> None:
        last_ts = 0.0
        tail: int | None = first_tail
        try:
            restarts = _restart_count(
                await api.request(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/pods/{pod}",
                    Call("get", "pods", namespace, pod),
                )
            )
        except NotFound:
            return
        while True:
            query: list[tuple[str, Any]] = [
                ("container", CONTAINER),
                ("follow", "true"),
                ("timestamps", "true"),
            ]
            if tail is not None:
                query.append(("tailLines", tail))
            elif last_ts:
                query.append(("sinceTime", rfc3339(last_ts)))
            if since is not None and not last_ts:
                query.append(("sinceTime", rfc3339(since)))
            try:
                async for raw in api.stream_lines(
                    _log_path(namespace, pod), Call("get", "pods/log", namespace, pod), query=query
                ):
                    if not raw.strip():
                        continue
                    ts, text = parse_line(raw)
                    if ts <= last_ts or (since is not None and ts < since):
                        continue
                    last_ts = ts
                    tail = None
                    await emit(LogLine(ts, endpoint, deployment, pod, "stdout", text))
            except NotFound:
                return
            except ModeldeckError as exc:
                if "waiting to start" not in exc.message and "ContainerCreating" not in exc.message:
                    await emit(exc)
                    return
            # The stream ended: the container exited (restart) or the server closed it.
            try:
                pod_obj = await api.request(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/pods/{pod}",
                    Call("get", "pods", namespace, pod),
                )
            except NotFound:
                return
            except ModeldeckError as exc:
                await emit(exc)
                return
            if (pod_obj.get("metadata") or {}).get("deletionTimestamp"):
                return
            count = _restart_count(pod_obj)
            if count > restarts:
                tail = None  # a new container: all of its log
                await emit(
                    LogLine(
                        time.time(),
                        endpoint,
                        deployment,
                        pod,
                        "system",
                        f"container restarted (restart {count}); following the new container",
                    )
                )
            restarts = count
            await asyncio.sleep(retry_delay)

    def start(pod: str, tail: int | None) -> None:
        task = followers.get(pod)
        if task is None or task.done():
            followers[pod] = asyncio.create_task(follow_pod(pod, tail))

    async def watch_pods() -> None:
        first = True
        try:
            while True:
                listed = await api.request(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/pods",
                    Call("list", "pods", namespace),
                    query=[("labelSelector", selector)],
                )
                for pod in listed.get("items") or []:
                    start(pod["metadata"]["name"], lines if first else None)
                first = False
                rv = (listed.get("metadata") or {}).get("resourceVersion")
                async for raw in api.stream_lines(
                    f"/api/v1/namespaces/{namespace}/pods",
                    Call("watch", "pods", namespace),
                    query=[
                        ("labelSelector", selector),
                        ("watch", "true"),
                        ("resourceVersion", rv),
                        ("allowWatchBookmarks", "true"),
                        ("timeoutSeconds", 60),
                    ],
                ):
                    try:
                        event = json.loads(raw)
                    except ValueError:
                        continue
                    if event.get("type") == "ERROR":  # e.g. 410 Gone: list again
                        break
                    obj = event.get("object") or {}
                    name = (obj.get("metadata") or {}).get("name")
                    if not name:
                        continue
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        start(name, None)
                    elif event.get("type") == "DELETED":
                        task = followers.pop(name, None)
                        if task is not None:
                            task.cancel()
                await asyncio.sleep(retry_delay)
        except ModeldeckError as exc:
            await emit(exc)

    watcher = asyncio.create_task(watch_pods())
    try:
        while True:
            item = await out.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        watcher.cancel()
        for task in followers.values():
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(watcher, *followers.values(), return_exceptions=True)


def _restart_count(pod: dict) -> int:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            return int(cs.get("restartCount") or 0)
    return 0
