"""Progressive rollouts: the use cases the CLI and the dashboard share.

:func:`start` fills the profile's default webhook (``rollout_webhook`` in config.toml) when
the spec names none, then asks the workspace; :func:`start_declared` starts the rollout an
endpoint YAML's ``modeldeck.rollout`` block declares, once ``online-endpoint create/update
-f`` applied the endpoint, unless there is nothing to start (each case said through
``warn``). The rules of the rollout itself are the contract's (``services/api/rollouts.py``)
and the control plane's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import profiles
from ..api.rollouts import Rollout, RolloutSpec, RolloutState, already_running

if TYPE_CHECKING:
    from ..api.workspace import Workspace

Warn = Callable[[str], None]


def with_default_webhook(spec: RolloutSpec, profile: str) -> RolloutSpec:
    """The spec, its webhook the profile's ``rollout_webhook`` when it names none."""
    if spec.webhook is not None:
        return spec
    default = profiles.rollout_webhook(profile)
    return spec if default is None else dataclasses.replace(spec, webhook=default)


async def start(ws: Workspace, spec: RolloutSpec) -> Rollout:
    """Start a rollout (``online-endpoint rollout --to``, the dashboard's form)."""
    return await ws.start_rollout(with_default_webhook(spec, ws.name))


async def start_declared(
    ws: Workspace, spec: RolloutSpec, source: str, warn: Warn
) -> Rollout | None:
    """After ``online-endpoint create/update -f FILE`` applied the endpoint: start the
    rollout FILE declares (``source``: how to name the file in a hint), or say on ``warn``
    why not: one of the same treatment is in progress already (applying the file again is
    harmless), the treatment does not exist yet (a new endpoint has no deployments), it
    has all the traffic, or the last rollout of it failed or was aborted (a re-apply of the
    file to change a tag must not send traffic to a treatment that was rolled back: start it
    anew with ``online-endpoint rollout``). A rollout of another treatment in progress is a
    Conflict, as a second ``rollout --to`` is."""
    name, to = spec.endpoint, spec.to
    anew = f"modeldeck online-endpoint rollout -n {name} --to {to}"
    last = await ws.get_rollout(name)
    if last is not None and last.state.active:
        if last.spec.to != to:
            raise already_running(last)
        warn(
            f"the rollout of {to} on {name} is {last.state.value.lower()} already "
            f"({last.phase}): not started again"
        )
        return last
    if to not in {d.name for d in await ws.list_deployments(name)}:
        warn(
            f"the modeldeck.rollout block was not started: endpoint '{name}' has no "
            f"deployment '{to}' yet; once it is deployed and Ready, `modeldeck online-endpoint "
            f"update -f {source}` (or `{anew}`) starts it"
        )
        return None
    if (await ws.get_endpoint(name)).traffic.get(to, 0) >= 100:
        warn(f"{to} has all of {name}'s traffic already: no rollout started")
        return None
    if last is not None and last.spec.to == to and last.state in _ENDED_BADLY:
        why = f": {last.message}" if last.message else ""
        warn(
            f"the last rollout of {to} on {name} {last.state.value.lower()}{why}; the file "
            f"does not start it again: start a new one with `{anew}`"
        )
        return None
    rollout = await start(ws, spec)
    warn(
        f"rollout of {to} on {name} started ({rollout.phase}); follow it with "
        f"`modeldeck online-endpoint rollout -n {name} --watch`"
    )
    return rollout


_ENDED_BADLY = (RolloutState.FAILED, RolloutState.ABORTED)
