"""The rollouts room of :class:`~.workspace.AzureMLWorkspace`: its progressive rollouts are
driven by the daemon of this MODELDECK_HOME (``local/controlplane/cloudrollouts.py``), which
outlives the command that starts one; these calls ask it, with the workspace's
``coordinates`` (its profile settings, never a credential: the daemon signs in with its own
azure-identity chain). The daemon is started on the first call when it does not run, as the
local workspace's calls start it.

When the daemon has no record of an endpoint's rollout, ``get_rollout`` reads the endpoint
from ARM, so an unknown endpoint is NotFound as ``az ml`` says it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..api.domain import Endpoint
    from ..api.rollouts import Rollout, RolloutSpec
    from ..local.client import LocalWorkspace


class RolloutRoom:
    coordinates: dict[str, Any]
    _rollouts_client: LocalWorkspace | None

    if TYPE_CHECKING:

        async def get_endpoint(self, name: str) -> Endpoint: ...

    def _daemon(self) -> LocalWorkspace:
        if self._rollouts_client is None:
            from ..local.client import LocalWorkspace

            self._rollouts_client = LocalWorkspace()
        return self._rollouts_client

    async def start_rollout(self, spec: RolloutSpec) -> Rollout:
        return await self._daemon().start_cloud_rollout(self.coordinates, spec)

    async def get_rollout(self, endpoint: str) -> Rollout | None:
        found = await self._daemon().get_cloud_rollout(self.coordinates, endpoint)
        if found is None:
            await self.get_endpoint(endpoint)  # NotFound: no such endpoint
        return found

    async def list_rollouts(self) -> list[Rollout]:
        return await self._daemon().list_cloud_rollouts(self.coordinates)

    async def control_rollout(
        self, endpoint: str, action: str, *, if_revision: str | None = None
    ) -> Rollout:
        return await self._daemon().control_cloud_rollout(
            self.coordinates, endpoint, action, if_revision=if_revision
        )
