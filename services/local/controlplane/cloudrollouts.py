"""Progressive rollouts on Azure ML workspaces, driven by this daemon (issue 14).

An ``AzureMLWorkspace`` (``services/azureml/rollouts.py``) has no process of its own that
outlives a command, so its ``start_rollout``/``get_rollout``/``list_rollouts``/
``control_rollout`` ask the daemon of its MODELDECK_HOME, sending the workspace's
coordinates (the profile's settings, never a credential: :data:`COORDINATES`).
:class:`CloudRollouts` opens the workspace from them (``AzureMLWorkspace.from_settings``; one
per coordinates, shared by its rollouts) and drives each rollout with a
:class:`~...rollout.runner.RolloutRunner` over a
:class:`~...rollout.workspace_target.WorkspaceTarget` (``cumulative=False``: Azure Monitor's
one-minute grains added up; ``poll_s``: the profile's ``rollout_poll``, 30 s by default).

* **Credentials**: the daemon's own azure-identity chain (``DefaultAzureCredential`` in the
  daemon's process: ``az login``'s session, the ``AZURE_*`` variables of the shell that
  started the daemon, a managed identity). ARM's activity log has each traffic write by
  that identity.
* **Writes**: each step is an ARM PUT of the endpoint's traffic maps. ARM online endpoints
  have no etag (``services/azureml/conflicts.py``): the write is checked against a GET just
  before it (the revision the runner read); a change by someone else pauses the rollout.
* **State**: the daemon's store, keyed by :data:`.store.rollouts.CLOUD_PREFIX` + the
  endpoint's ARM id (lower case, as ARM compares ids): never a local endpoint's name, so the
  local rollouts' list and resume never see these. The coordinates are kept beside it (the
  ``settings`` table, by rollout id) so a restarted daemon resumes each rollout in progress where it was.
* **Interval**: no shorter than the profile's ``rollout_min_interval`` (5 minutes by default):
  the checks read Azure Monitor, whose grain is one minute and whose figures arrive 1 to 3
  minutes late.
* No history rows: the daemon's audit history is the local workspace's; the Azure activity
  log records the PUTs, the webhook each event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from ...api.domain import Endpoint
from ...api.errors import InvalidInput
from ...api.rollouts import (
    Rollout,
    RolloutSpec,
    already_running,
    check_start,
    duration_text,
    validate_spec,
)
from ...armids import workspace_id
from ...rollout.workspace_target import WorkspaceTarget
from .rollouts import (
    StoreBook,
    act,
    check_action,
    check_control,
    drive,
    new_rollout,
    no_rollout,
    rollout_actor,
    stop_runners,
)
from .store.rollouts import CLOUD_PREFIX

if TYPE_CHECKING:
    from ...azureml.workspace import AzureMLWorkspace
    from ...rollout.runner import RolloutRunner
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")

#: the profile settings a workspace's rollouts are driven with (no credential among them)
COORDINATES = (
    "subscription_id",
    "resource_group",
    "workspace_name",
    "arm_endpoint",
    "metrics_endpoint",
    "authority",
    "arm_audience",
    "ml_audience",
    "location",
    "timeout",
    "poll_interval",
    "max_retries",
    "metrics_ttl",
    "rollout_poll",
    "rollout_min_interval",
)
_SETTING = "azureml-rollout:"  # + rollout id: its coordinates (settings table)


def coordinates(where: Any) -> dict[str, Any]:
    """The coordinates of a request, checked: the three names ARM needs, scalars only."""
    if not isinstance(where, dict):
        raise InvalidInput("workspace", where, "must be the workspace's settings", "{...}")
    out = {
        k: where[k]
        for k in COORDINATES
        if isinstance(where.get(k), str | int | float) and where.get(k) != ""
    }
    for k in ("subscription_id", "resource_group", "workspace_name"):
        if not isinstance(out.get(k), str):
            raise InvalidInput(f"workspace.{k}", where.get(k), "is required", f"send {k}")
    return out


def cloud_key(where: dict[str, Any], endpoint: str = "") -> str:
    """The store's key of an endpoint's rollouts (``endpoint`` empty: the workspace's prefix)."""
    ws = workspace_id(where["subscription_id"], where["resource_group"], where["workspace_name"])
    return f"{CLOUD_PREFIX}{ws}/onlineEndpoints/{endpoint}".lower()


class CloudBook(StoreBook):
    """The store's book under the endpoint's ARM key; nothing published to a cluster."""

    def __init__(self, engine: Engine, where: dict[str, Any]) -> None:
        super().__init__(engine)
        self.where = where

    def key(self, endpoint: str) -> str:
        return cloud_key(self.where, endpoint)

    def record_event(
        self, rollout: Rollout, before: dict[str, Any] | None, view: dict[str, Any]
    ) -> None:
        """None here: Azure's activity log has each traffic write (module doc)."""

    async def _to_cluster(self, rollout: Rollout | None, name: str) -> None:
        """No cluster: the state is the daemon's store's."""


class CloudRollouts:
    """The daemon's Azure ML rollouts (module doc)."""

    def __init__(self, engine: Engine, driven_by: str) -> None:
        self.engine = engine
        self.driven_by = driven_by
        #: coordinates (as JSON) -> the workspace opened and its book
        self._open: dict[str, tuple[AzureMLWorkspace, CloudBook]] = {}
        self._runners: dict[str, RolloutRunner] = {}  # by key
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._starting = asyncio.Lock()

    def _workspace(self, where: dict[str, Any]) -> tuple[AzureMLWorkspace, CloudBook]:
        text = json.dumps(where, sort_keys=True)
        if text not in self._open:
            from ...azureml.workspace import AzureMLWorkspace

            # credential: none given, the daemon's own azure-identity chain
            ws = AzureMLWorkspace.from_settings("azureml", dict(where))
            self._open[text] = (ws, CloudBook(self.engine, where))
        return self._open[text]

    # ------------------------------------------------------------------ operations
    async def start(self, where: Any, spec: RolloutSpec) -> Rollout:
        """Check, record and start driving a rollout on the workspace at ``where``; bad input
        or another rollout in progress writes nothing."""
        where = coordinates(where)
        spec = validate_spec(spec)
        ws, book = self._workspace(where)
        minimum = ws.rollout_min_interval
        for name, seconds in (("interval", spec.interval_s), ("mirror_first", spec.mirror_first_s)):
            if 0 < seconds < minimum:
                raise InvalidInput(
                    name,
                    duration_text(seconds),
                    f"is shorter than {duration_text(minimum)}: on Azure ML a step is judged "
                    "on Azure Monitor's figures, counted by the minute and 1 to 3 minutes late",
                    f"give --{name.replace('_', '-')} {duration_text(minimum)} or more (the "
                    "profile's rollout_min_interval sets the least)",
                )
        key = book.key(spec.endpoint)
        async with self._starting:
            ep: Endpoint = await ws.get_endpoint(spec.endpoint)
            current = self.engine.store.rollout(key)
            if current is not None and current.state.active:
                raise already_running(current)
            spec = check_start(spec, ep, await ws.list_deployments(spec.endpoint))
            rollout = new_rollout(spec, ep, self.driven_by)
            self.engine.store.set_setting(_SETTING + rollout.id, json.dumps(where))
            rollout = book.save(rollout)
        await book.notify(rollout, "started", None)
        self._spawn(rollout, ws, book)
        return rollout

    def get(self, where: Any, endpoint: str) -> Rollout | None:
        """The endpoint's rollout in progress, else its last one; None: it never had one
        driven by this daemon."""
        return self.engine.store.rollout(cloud_key(coordinates(where), endpoint))

    def list(self, where: Any) -> list[Rollout]:
        """Each endpoint's current or last rollout on the workspace."""
        return self.engine.store.rollouts(under=cloud_key(coordinates(where)))

    async def control(
        self, where: Any, endpoint: str, action: str, *, if_revision: str | None = None
    ) -> Rollout:
        """Pause, resume, promote or abort the endpoint's rollout in progress."""
        check_action(action)
        where = coordinates(where)
        key = cloud_key(where, endpoint)
        current = self.engine.store.rollout(key)
        if current is None:
            raise no_rollout(endpoint)
        check_control(current, action, if_revision)
        runner = self._runners.get(key)
        if runner is None or runner.rollout.id != current.id:
            runner = self._spawn(current, *self._workspace(where))  # its task died
        return await act(runner, action, if_revision)

    # ------------------------------------------------------------------ lifecycle
    def resume(self) -> None:
        """Drive every Azure ML rollout in progress again (daemon start), with the
        coordinates it was started with."""
        for rollout in self.engine.store.rollouts(active=True, under=CLOUD_PREFIX):
            try:
                saved = self.engine.store.get_setting(_SETTING + rollout.id) or "null"
                self._spawn(rollout, *self._workspace(coordinates(json.loads(saved))))
            except Exception as exc:  # the others are resumed all the same
                log.warning("%s: not resumed: %s", rollout_actor(rollout), exc)

    async def close(self) -> None:
        """Stop driving (daemon stop): the records stay, resumed at the next start."""
        await stop_runners(self._tasks, self._runners)
        for ws, book in self._open.values():
            await book.close()
            await ws.close()
        self._open.clear()

    def _spawn(self, rollout: Rollout, ws: AzureMLWorkspace, book: CloudBook) -> RolloutRunner:
        from ...rollout.runner import RolloutRunner

        target = WorkspaceTarget(ws, poll_s=ws.rollout_poll, cumulative=False)
        runner = RolloutRunner(rollout, target, book)
        return drive(self._tasks, self._runners, book.key(rollout.spec.endpoint), runner)
