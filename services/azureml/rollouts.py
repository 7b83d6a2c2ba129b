"""The rollouts room of :class:`~.workspace.AzureMLWorkspace`: its progressive rollouts are
driven by the daemon of this MODELDECK_HOME (``local/controlplane/cloudrollouts.py``), which
outlives the command that starts one; these calls ask it, with the workspace's
``coordinates`` (its profile settings, never a credential: the daemon signs in with its own
azure-identity chain). The daemon is started on the first call when it does not run, as the
local workspace's calls start it; the reads (``get_rollout``, ``list_rollouts``: ``online-
endpoint show``, the dashboard) start it only when this home has a store already (a daemon
ran here and may have rollouts to resume): a home that never had one has no rollout, and
showing an endpoint starts no process.

When the daemon has no record of an endpoint's rollout, ``get_rollout`` reads the endpoint
from ARM, so an unknown endpoint is NotFound as ``az ml`` says it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import paths

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
        found = None
        if _daemon_ran():
            found = await self._daemon().get_cloud_rollout(self.coordinates, endpoint)
        if found is None:
            await self.get_endpoint(endpoint)  # NotFound: no such endpoint
        return found

    async def list_rollouts(self) -> list[Rollout]:
        if not _daemon_ran():
            return []
        return await self._daemon().list_cloud_rollouts(self.coordinates)

    async def control_rollout(
        self, endpoint: str, action: str, *, if_revision: str | None = None
    ) -> Rollout:
        return await self._daemon().control_cloud_rollout(
            self.coordinates, endpoint, action, if_revision=if_revision
        )


def _daemon_ran() -> bool:
    """This home has a daemon's store: it may hold rollouts (module doc)."""
    return (paths.data_dir() / "workspace.db").exists()
