"""Progressive rollouts in the local control plane (issue 14): where each one lives and runs.

:class:`Rollouts` is the engine's room the API calls (start, get, list, control) and the
daemon resumes (:meth:`Rollouts.resume` after restore: every Running or Paused rollout gets
its runner again, a Running one at the same step with its window started again;
:meth:`Rollouts.close` cancels them and leaves their state). One
:class:`~...rollout.runner.RolloutRunner` task drives each active rollout; an operator's
action goes through it (its lock orders the action with its ticks).

:class:`EngineTarget` is the runner's back end: the engine's endpoint, deployments and
figures, and each traffic step written as ``engine.update_endpoint`` on the revision the
runner read, so it takes the same path as an operator's change (the driver first, then the
record) and is an audited change: action ``rollout``, by ``rollout ID of EP (started by
WHO)``. :class:`StoreBook` keeps the record in the store and tells of each event: a change
of kind ``rollout`` in the endpoint's history (which wakes the dashboards' watch), the
webhook (posted in the background, never holding the runner), and, on a cluster that
:class:`~...drivers.base.RecordsRollouts`, the state on the cluster, where another
workspace's control plane sees it and starts no second rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import getpass
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ... import paths
from ...api.domain import Endpoint, EndpointPatch, ProvisioningState, from_dict, to_dict
from ...api.errors import Conflict, InvalidInput, NotFound, Unreachable
from ...api.health import deployment_health
from ...api.rollouts import (
    ACTIONS,
    Rollout,
    RolloutCheck,
    RolloutSpec,
    RolloutState,
    already_running,
    changed_since,
    check_start,
    redact_url,
    validate_spec,
)
from ...drivers.base import RecordsRollouts
from ...rollout.workspace_target import WorkspaceTarget
from .store.history import ACTION, ACTOR, StaleRevision

if TYPE_CHECKING:
    from ...rollout.runner import RolloutRunner
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")

#: How often a runner reads the endpoint and its figures (the gateway's counters: cheap).
POLL_S = 0.5
#: How long a restarted daemon waits for a rollout's deployments to be Ready again before it
#: drives the rollout anyway.
RESTORE_WAIT_S = 600.0
#: How long a cluster may take to take a rollout's state.
PUBLISH_TIMEOUT_S = 10.0
#: How old a read of another workspace's rollout on a shared cluster may be for get and list
#: (a start reads it again).
CLUSTER_READ_S = 2.0
#: A rollout in progress is published on its cluster at least this often (its
#: ``heartbeat_at``: another workspace sees that its driver is alive), besides each event.
HEARTBEAT_S = 30.0
#: Who acted on a rollout (an operator's pause, promote, abort): added to the audit's actor.
_OPERATOR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modeldeck_rollout_operator", default=None
)


def rollout_actor(rollout: Rollout) -> str:
    """Who a rollout's changes are by, as the audit history says."""
    by = f" (started by {rollout.started_by})" if rollout.started_by else ""
    return f"rollout {rollout.id} of {rollout.spec.endpoint}{by}"


def _remote_view(rollout: Rollout) -> dict[str, Any]:
    """Another workspace's rollout as this workspace's history records it: where it is
    (its message only once it is not Running: a running one's changes with each request)."""
    return {
        "state": rollout.state.value,
        "phase": rollout.phase,
        "weight": rollout.weight,
        "message": "" if rollout.state is RolloutState.RUNNING else rollout.message,
    }


#: the event another workspace's rollout had when its state became this one
_REMOTE_EVENTS = {
    RolloutState.RUNNING.value: "resumed",
    RolloutState.PAUSED.value: "paused",
    RolloutState.SUCCEEDED.value: "promoted",
    RolloutState.FAILED.value: "failed",
    RolloutState.ABORTED.value: "aborted",
}


def _remote_event(was: dict[str, Any] | None, now: dict[str, Any]) -> str:
    """Which event took another workspace's rollout from ``was`` to ``now`` (its views),
    named as its driver's own rows name it."""
    if was is None:
        return "started"
    if was["state"] != now["state"]:
        return _REMOTE_EVENTS[now["state"]]
    return "mirror" if now["phase"] == "mirror" else "step"


def driven_by() -> str:
    """``user@host:STATE_DIR``: this control plane, as a rollout it drives names it."""
    return f"{getpass.getuser()}@{socket.gethostname()}:{paths.state_dir()}"


def new_rollout(spec: RolloutSpec, ep: Endpoint, by: str) -> Rollout:
    """A rollout of ``spec`` (checked) starting now on ``ep`` as read, driven by ``by``,
    started by the request's actor."""
    now = time.time()
    return Rollout(
        id=uuid.uuid4().hex[:12],
        spec=spec,
        state=RolloutState.RUNNING,
        step=-1 if spec.mirror_first_s > 0 else 0,
        weight=ep.traffic.get(spec.to, 0),
        started_at=now,
        step_started_at=now,
        updated_at=now,
        started_by=ACTOR.get(),
        driven_by=by,
        message="starting",
        # the maps it was checked on: the runner's first write pauses instead when an
        # operator changed them since
        traffic=dict(ep.traffic),
        mirror_traffic=dict(ep.mirror_traffic),
    )


def check_action(action: str) -> None:
    if action not in ACTIONS:
        raise InvalidInput(
            "action", action, "is not a rollout action", "one of: " + ", ".join(ACTIONS)
        )


def no_rollout(endpoint: str) -> NotFound:
    return NotFound(
        "rollout",
        endpoint,
        message=f"endpoint '{endpoint}' has no rollout",
        fix=f"start one: modeldeck online-endpoint rollout -n {endpoint} --to NAME",
    )


def check_control(current: Rollout, action: str, if_revision: str | None) -> None:
    """Refuse ``action`` on ``current`` when it moved since the operator read it
    (``if_revision``) or has ended."""
    endpoint = current.spec.endpoint
    stale = changed_since(current, if_revision)
    if stale is not None:
        raise stale
    if not current.state.active:
        raise Conflict(
            f"the rollout of {current.spec.to} on '{endpoint}' is "
            f"{current.state.value}: nothing to {action}",
            fix=f"start a new one: modeldeck online-endpoint rollout -n {endpoint} --to NAME",
        )


async def act(runner: RolloutRunner, action: str, if_revision: str | None = None) -> Rollout:
    """An operator's ``action`` through the rollout's runner, by the request's actor; with
    ``if_revision``, only while the rollout is still at that revision (checked again in the
    runner's lock: a step taken since the operator's check refuses it)."""
    operator = ACTOR.get()
    token = _OPERATOR.set(f"{action} by {operator}")
    try:
        if action == "pause":
            return await runner.pause(f"paused by {operator}", if_revision=if_revision)
        return await getattr(runner, action)(if_revision=if_revision)  # type: ignore[no-any-return]
    finally:
        _OPERATOR.reset(token)


async def stop_runners(tasks: dict[str, asyncio.Task[None]], runners: dict[str, Any]) -> None:
    """Cancel the runners' tasks and forget them (their records stay as they are)."""
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    tasks.clear()
    runners.clear()


def drive(
    tasks: dict[str, asyncio.Task[None]],
    runners: dict[str, Any],
    key: str,
    runner: RolloutRunner,
    on_error: Callable[[Rollout], Awaitable[None]] | None = None,
) -> RolloutRunner:
    """Run ``runner`` as the task of ``key`` (a task it replaces is cancelled), in a context of
    its own: the store writes it makes are by the rollout, not by the request that started it.
    ``on_error``: what to do with the rollout when its run raised (logged either way). The local
    and the Azure ML hosts both drive their runners here."""
    old = tasks.pop(key, None)
    if old is not None:
        old.cancel()
    runners[key] = runner
    context = contextvars.copy_context()
    context.run(ACTOR.set, rollout_actor(runner.rollout))
    context.run(_OPERATOR.set, None)
    tasks[key] = asyncio.get_running_loop().create_task(
        _run_to_end(tasks, runners, key, runner, on_error), context=context
    )
    return runner


async def _run_to_end(
    tasks: dict[str, asyncio.Task[None]],
    runners: dict[str, Any],
    key: str,
    runner: RolloutRunner,
    on_error: Callable[[Rollout], Awaitable[None]] | None,
) -> None:
    try:
        ended = await runner.run()
        log.info("%s: %s (%s)", rollout_actor(ended), ended.state.value, ended.message)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s stopped", rollout_actor(runner.rollout))
        if on_error is not None:
            await on_error(runner.rollout)
    finally:
        if runners.get(key) is runner:
            runners.pop(key, None)
            tasks.pop(key, None)


class EngineTarget(WorkspaceTarget):
    """The runner's :class:`~...rollout.target.RolloutTarget` over the engine: reads as any
    Workspace's (the engine answers the same calls), a traffic step as below."""

    def __init__(self, engine: Engine, rollout: Rollout) -> None:
        super().__init__(engine, poll_s=POLL_S)  # type: ignore[arg-type]
        self.engine = engine
        self.actor = rollout_actor(rollout)

    async def set_traffic(
        self,
        endpoint: str,
        traffic: dict[str, int],
        mirror_traffic: dict[str, int],
        *,
        if_revision: str,
        why: str,
    ) -> Endpoint:
        operator = _OPERATOR.get()
        actor = ACTOR.set(self.actor + (f", {operator}" if operator else ""))
        action = ACTION.set("rollout")
        try:
            log.info("%s on %s", why, endpoint)  # why: "rollout ID: step 2/5, green 10%"
            # shielded: a daemon stop lets the write it began finish (driver and record)
            await asyncio.shield(
                self.engine.update_endpoint(
                    endpoint,
                    EndpointPatch(traffic=traffic, mirror_traffic=mirror_traffic),
                    if_revision=if_revision,
                )
            )
        finally:
            ACTION.reset(action)
            ACTOR.reset(actor)
        return await self.engine.get_endpoint(endpoint)


class StoreBook:
    """The runner's :class:`~...rollout.target.RolloutBook` over the store (module doc)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: each rollout's view as last notified: the next event is recorded against it
        self._told: dict[str, dict[str, Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}  # see _in_order
        self._heard: dict[str, float] = {}  # each rollout's last publication (monotonic)

    def key(self, endpoint: str) -> str:
        """Where the store keeps the endpoint's rollouts (a local endpoint: its name)."""
        return endpoint

    def save(self, rollout: Rollout) -> Rollout:
        try:
            saved = self.engine.store.save_rollout(rollout, self.key(rollout.spec.endpoint))
        except StaleRevision as exc:
            raise Conflict(
                f"the rollout of {rollout.spec.to} on '{rollout.spec.endpoint}' changed "
                f"meanwhile (revision {exc.sent} -> {exc.now})",
                fix=f"read it again: modeldeck online-endpoint rollout -n {rollout.spec.endpoint}",
            ) from None
        if saved.state.active and time.monotonic() - self._heard.get(saved.id, 0.0) > HEARTBEAT_S:
            self._in_order(f"publish {saved.spec.endpoint}", self.publish(saved))  # heartbeat
        return saved

    def load(self, endpoint: str) -> Rollout | None:
        return self.engine.store.rollout(self.key(endpoint))

    async def notify(self, rollout: Rollout, event: str, check: RolloutCheck | None) -> None:
        view = {
            "event": event,
            "state": rollout.state.value,
            "phase": rollout.phase,
            "weight": rollout.weight,
            "message": rollout.message,
            "check": check.reason if check is not None else "",
        }
        told = self._told.get(rollout.id)
        # what changed since the last event, and always which event it is (the same twice:
        # two steps); the rest of the view as it was is not repeated
        before = None if told is None else {**told, "event": None}
        self.record_event(rollout, before, view)
        if rollout.state.active:
            self._told[rollout.id] = view
        else:
            self._told.pop(rollout.id, None)
        if rollout.spec.webhook:
            self._in_order(f"post {rollout.id}", self._post(rollout, event, check))
        self._in_order(f"publish {rollout.spec.endpoint}", self.publish(rollout))

    def record_event(
        self, rollout: Rollout, before: dict[str, Any] | None, view: dict[str, Any]
    ) -> None:
        """The event as a change of kind rollout in the endpoint's history."""
        token = ACTOR.set(rollout_actor(rollout))
        try:
            self.engine.store.record_rollout_event(rollout.spec.endpoint, before, view)
        finally:
            ACTOR.reset(token)

    def _in_order(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, after the work last given the same ``key`` (one
        rollout's webhook posts, one endpoint's states on its cluster: in the order made)."""
        before = self._last.get(key)

        async def after_the_one_before() -> None:
            try:
                if before is not None:
                    await asyncio.wait({before})
            except BaseException:
                work.close()
                raise
            await work

        task = asyncio.get_running_loop().create_task(after_the_one_before())
        self._last[key] = task
        self._background.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._background.discard(t)
            if self._last.get(key) is t:
                del self._last[key]

        task.add_done_callback(done)

    async def _post(self, rollout: Rollout, event: str, check: RolloutCheck | None) -> None:
        from ...rollout import webhook

        url = rollout.spec.webhook or ""
        try:
            error = await webhook.post(url, webhook.payload(rollout, event, check))
        except Exception as exc:  # a notification never stops a rollout
            error = f"{type(exc).__name__}: {exc}"
        if error:
            log.warning("rollout %s: webhook %s (%s): %s", rollout.id, redact_url(url), event,
                        error)  # fmt: skip

    async def publish(self, rollout: Rollout | None, endpoint: str | None = None) -> None:
        """The rollout's state on its endpoint's cluster, when its driver keeps it."""
        name = endpoint or (rollout.spec.endpoint if rollout is not None else "")
        if rollout is not None:
            self._heard[rollout.id] = time.monotonic()
            if not rollout.state.active:
                self._heard.pop(rollout.id, None)
        try:
            await self._to_cluster(rollout, name)
        except Exception as exc:  # the record stands; the cluster misses one state
            log.warning("rollout of %s: not shown on its cluster: %s", name, exc)

    async def claim(self, rollout: Rollout) -> None:
        """A new rollout on its endpoint's cluster before it is recorded here, when the
        cluster's driver keeps rollouts: Conflict when another control plane's rollout in
        progress is there (the driver's compare-and-set under the route's resourceVersion)."""
        try:
            await self._to_cluster(rollout, rollout.spec.endpoint)
        except TimeoutError:
            raise Unreachable(
                f"the cluster of endpoint '{rollout.spec.endpoint}' did not take the rollout "
                f"within {PUBLISH_TIMEOUT_S:g} s: nothing was started",
                fix="check the cluster (modeldeck cluster show), then start it again",
            ) from None

    async def _to_cluster(self, rollout: Rollout | None, name: str) -> None:
        driver = self.engine.drivers.get(getattr(self.engine.store.endpoint(name), "cluster", ""))
        if not isinstance(driver, RecordsRollouts):
            return
        # the driver redacts the webhook (its path and query are often its secret)
        data = None if rollout is None else to_dict(rollout)
        await asyncio.wait_for(driver.publish_rollout(name, data), PUBLISH_TIMEOUT_S)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._background, return_exceptions=True)


class Rollouts:
    """The engine's rollouts room (module doc)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.book = StoreBook(engine)
        self.driven_by = driven_by()
        self._runners: dict[str, RolloutRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._starting = asyncio.Lock()
        #: the last read of each endpoint's rollout on its cluster (monotonic time, rollout)
        self._read: dict[str, tuple[float, Rollout | None]] = {}
        from .cloudrollouts import CloudRollouts

        #: the rollouts this daemon drives on Azure ML workspaces
        self.azureml = CloudRollouts(engine, self.driven_by)

    # ------------------------------------------------------------------ operations
    async def start(self, spec: RolloutSpec) -> Rollout:
        """Check, record and start driving a rollout; bad input or another rollout in
        progress changes nothing."""
        spec = validate_spec(spec)
        async with self._starting:
            ep = await self.engine.get_endpoint(spec.endpoint)
            current = self.engine.store.rollout(spec.endpoint)
            if current is not None and current.state.active:
                raise already_running(current)
            other = await self._on_cluster(spec.endpoint, max_age=0.0)
            if other is not None and other.state.active:
                raise already_running(other)
            spec = check_start(spec, ep, await self.engine.list_deployments(spec.endpoint))
            rollout = new_rollout(spec, ep, self.driven_by)
            # on a shared cluster the rollout is claimed there first: of two operators
            # starting one at the same time, the second is refused (Conflict)
            await self.book.claim(rollout)
            rollout = self.book.save(rollout)
        await self.book.notify(rollout, "started", None)
        self._spawn(rollout)
        return rollout

    async def get(self, endpoint: str) -> Rollout | None:
        """The endpoint's rollout in progress, else its last one (this workspace's, or on a
        shared cluster another's, whichever started last); None: never had one."""
        mine = self.engine.store.rollout(endpoint)
        if mine is None and self.engine.store.endpoint(endpoint) is None:
            raise NotFound("endpoint", endpoint)
        if mine is not None and mine.state.active:
            return mine
        other = await self._on_cluster(endpoint)
        if other is not None and (mine is None or other.started_at > mine.started_at):
            return other
        return mine

    async def list(self) -> list[Rollout]:
        """Every endpoint's current or last rollout."""
        names = sorted(
            {r.spec.endpoint for r in self.engine.store.rollouts()}
            | {e.name for e in self.engine.store.endpoints() if self._on_shared_cluster(e.name)}
        )
        found = [await self.get(name) for name in names]
        return [r for r in found if r is not None]

    async def control(
        self, endpoint: str, action: str, *, if_revision: str | None = None
    ) -> Rollout:
        """Pause, resume, promote or abort the endpoint's rollout in progress."""
        check_action(action)
        current = await self.get(endpoint)
        if current is None:
            raise no_rollout(endpoint)
        ours = self.engine.store.rollout(endpoint)
        if (ours is None or ours.id != current.id) and current.state.active:
            raise Conflict(
                f"the rollout of {current.spec.to} on '{endpoint}' is driven by "
                f"{current.driven_by}",
                fix="pause, resume, promote or abort it from that workspace",
            )
        check_control(current, action, if_revision)
        runner = self._runners.get(endpoint)
        if runner is None or runner.rollout.id != current.id:
            runner = self._spawn(current)  # its task died: drive it again
        return await act(runner, action, if_revision)

    # ------------------------------------------------------------------ lifecycle
    def resume(self) -> None:
        """Drive every rollout in progress again (daemon start), each once its control and
        treatment are restored: the 503s of replicas still starting are not the treatment's
        to be judged on (an operator's action drives it at once)."""
        for rollout in self.engine.store.rollouts(active=True):
            endpoint = rollout.spec.endpoint
            if rollout.driven_by != self.driven_by:  # this state dir's, on a renamed host
                rollout = self.book.save(replace(rollout, driven_by=self.driven_by))

            async def when_restored(rollout: Rollout = rollout, endpoint: str = endpoint) -> None:
                await self._restored(rollout)
                self._tasks.pop(endpoint, None)  # this task: _spawn must not cancel it
                self._spawn(rollout)

            self._tasks[endpoint] = asyncio.get_running_loop().create_task(when_restored())
        self.azureml.resume()

    async def _restored(self, rollout: Rollout) -> None:
        """Once both deployments of ``rollout`` are Ready again (or one failed, or is gone:
        the runner judges that), within :data:`RESTORE_WAIT_S`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESTORE_WAIT_S
        names = {rollout.spec.to, rollout.control}
        while loop.time() < deadline:
            try:
                deps = {
                    d.name: d for d in await self.engine.list_deployments(rollout.spec.endpoint)
                }
            except NotFound:
                return
            if not names <= set(deps):
                return
            healths = [deployment_health(deps[n]) for n in names]
            if all(not d.sick or d.provisioning_state is ProvisioningState.FAILED for d in healths):
                return
            await asyncio.sleep(POLL_S)
        log.warning("%s: its deployments are not Ready after %g s; driven anyway",
                    rollout_actor(rollout), RESTORE_WAIT_S)  # fmt: skip

    async def close(self) -> None:
        """Stop driving (daemon stop): each record stays as it is, resumed at the next start."""
        await stop_runners(self._tasks, self._runners)
        await self.book.close()
        await self.azureml.close()

    def _spawn(self, rollout: Rollout) -> RolloutRunner:
        from ...rollout.runner import RolloutRunner

        runner = RolloutRunner(rollout, EngineTarget(self.engine, rollout), self.book)
        return drive(self._tasks, self._runners, rollout.spec.endpoint, runner, self._end_if_gone)

    async def _end_if_gone(self, rollout: Rollout) -> None:
        """A rollout whose endpoint was deleted ends Aborted, with the reason (its runner
        stopped on an error the endpoint's delete caused)."""
        endpoint = rollout.spec.endpoint
        current = self.engine.store.rollout(endpoint)
        if self.engine.store.endpoint(endpoint) is not None or current is None:
            return
        if current.id != rollout.id or not current.state.active:
            return
        now = time.time()
        ended = self.book.save(
            replace(
                current,
                state=RolloutState.ABORTED,
                message=f"stopped: endpoint '{endpoint}' was deleted",
                finished_at=now,
                updated_at=now,
            )
        )
        await self.book.notify(ended, "aborted", None)

    # ------------------------------------------------------------------ shared clusters
    def seen_on_cluster(self, cluster: str, endpoints: dict[str, dict[str, Any]]) -> None:
        """The rollouts a followed cluster holds (``list_state``'s endpoints, each with its
        ``rollout``, read by :func:`.adopt.sync` at each change of the cluster): another
        workspace's is fresh for get and list, and each of its changes of state or step is a
        row of kind rollout in this workspace's history (by that rollout, driven by the
        other workspace, taken in from ``cluster``: not written back there), which wakes the
        dashboards here as the driver's own events do."""
        for name, info in endpoints.items():
            try:
                data = info.get("rollout")
                theirs = None if data is None else from_dict(Rollout, data)
            except (TypeError, ValueError, KeyError, AttributeError):
                continue  # another version's record: get reads it again
            before = self._read.get(name, (0.0, None))[1]
            self._read[name] = (time.monotonic(), theirs)
            if theirs is None or theirs.driven_by == self.driven_by:
                continue
            if self.engine.store.endpoint(name) is None:
                continue
            was = _remote_view(before) if before is not None and before.id == theirs.id else None
            now = _remote_view(theirs)
            if now == was or (was is None and not theirs.state.active):
                continue  # nothing new, or a rollout that ended before this workspace saw it
            # "... on cluster 'C'": the audit publisher knows it came from there
            by = f"{rollout_actor(theirs)}, driven by {theirs.driven_by} on cluster '{cluster}'"
            event = _remote_event(was, now)  # as the driver's rows: the event always named
            token = ACTOR.set(by)
            try:
                self.engine.store.record_rollout_event(
                    name, None if was is None else {**was, "event": None}, {**now, "event": event}
                )
            finally:
                ACTOR.reset(token)

    def _on_shared_cluster(self, endpoint: str) -> bool:
        row = self.engine.store.endpoint(endpoint)
        return row is not None and isinstance(self.engine.drivers.get(row.cluster), RecordsRollouts)

    async def _on_cluster(self, endpoint: str, max_age: float = CLUSTER_READ_S) -> Rollout | None:
        """Another workspace's rollout of ``endpoint``, as published on its cluster (read
        again when the last read is older than ``max_age`` seconds: dashboards list often)."""
        row = self.engine.store.endpoint(endpoint)
        driver = self.engine.drivers.get(row.cluster) if row is not None else None
        if not isinstance(driver, RecordsRollouts):
            return None
        at, theirs = self._read.get(endpoint, (-max_age - 1.0, None))
        if time.monotonic() - at > max_age:
            try:
                data = await asyncio.wait_for(driver.read_rollout(endpoint), PUBLISH_TIMEOUT_S)
                theirs = None if data is None else from_dict(Rollout, data)
            except Exception as exc:  # unreadable: this workspace's own record still rules
                log.warning("rollout of %s: the cluster's state is unreadable: %s", endpoint, exc)
                return None
            self._read[endpoint] = (time.monotonic(), theirs)
        if theirs is None or theirs.driven_by == self.driven_by:
            return None
        return replace(theirs, revision="")
