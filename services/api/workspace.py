"""The one async Workspace API that the CLI and the dashboard both call.

Back ends implement :class:`Workspace`:

* ``local``: :class:`modeldeck.services.local.client.LocalWorkspace`, a client of
  the local control plane (``modeldeck serve``) over its Unix socket;
* ``azureml``: :class:`modeldeck.services.azureml.workspace.AzureMLWorkspace`,
  through the ARM REST API.

Long operations return an :class:`OperationHandle`; the CLI prints a progress
line from it and the TUI a progress bar, from the same handle.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .domain import (
    Endpoint,
    EndpointKeys,
    EndpointPatch,
    EndpointSpec,
    EndpointToken,
    KeyType,
    OperationStatus,
)
from .errors import ModeldeckError, error_from_dict

if TYPE_CHECKING:  # types only: a command that lists endpoints imports none (cold start)
    from ..armids import Scope
    from .assets import Environment, Model, ModelSpec
    from .clusters import Cluster, ClusterSpec
    from .deployments import Deployment, DeploymentSpec
    from .operations import ChangeHistory, Operation
    from .rollouts import Rollout, RolloutSpec
    from .streams import InvokeResult, LogLine, MetricsHistory, MetricsReport


class OperationHandle:
    """A long operation in flight: await it, or watch its progress.

    ``poll`` fetches the operation's current state from the back end.
    """

    def __init__(
        self,
        operation: Operation,
        poll: Callable[[str], Awaitable[Operation]],
        *,
        interval: float = 0.1,
    ) -> None:
        self.operation = operation
        self._poll = poll
        self._interval = interval

    @property
    def id(self) -> str:
        return self.operation.id

    async def refresh(self) -> Operation:
        if not self.operation.done:
            self.operation = await self._poll(self.operation.id)
        return self.operation

    async def watch(self) -> AsyncIterator[Operation]:
        """Yield each change of state until the operation is done (the last one included)."""
        last: tuple[object, ...] | None = None
        while True:
            op = await self.refresh()
            key = (op.status, op.progress, op.message)
            if key != last:
                last = key
                yield op
            if op.done:
                return
            await asyncio.sleep(self._interval)

    async def wait(self, on_progress: Callable[[Operation], None] | None = None) -> Operation:
        """Wait until done; raise the operation's typed error if it failed."""
        async for op in self.watch():
            if on_progress is not None:
                on_progress(op)
        op = self.operation
        if op.status is OperationStatus.FAILED:
            raise error_from_dict(op.error or {"message": op.message or "operation failed"})
        return op


class Workspace(abc.ABC):
    """Where models, endpoints and deployments are recorded, and their clusters."""

    #: "local" | "azureml"
    kind: str = "local"

    def __init__(self, name: str) -> None:
        self.name = name

    # -- lifecycle ---------------------------------------------------------------------
    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def watch(self, after: str | None = None, timeout: float = 25.0) -> str | None:
        """The workspace's revision once a change past ``after`` is recorded (any
        endpoint, deployment or cluster), or after ``timeout`` seconds as it is; ``after``
        None: at once. None: this back end cannot tell (a reader polls instead; Azure ML)."""
        return None

    async def __aenter__(self) -> Workspace:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def arm_scope(self) -> Scope:
        """Where this workspace's resources are in ARM terms, for the ids az ml prints; the
        local workspace's are placeholders (``services/armids.py`` says which)."""
        from ..armids import local_scope

        return local_scope(self.name)

    def capabilities(self) -> frozenset[str]:
        """What this back end can do, so the UI asks rather than checks the kind.

        Names: "cluster.create", "cluster.attach", "cluster.scale", "cluster.delete",
        "model.create", "endpoint.invoke", "deployment.logs.follow", "metrics",
        "operations.detached" (every step of a long operation goes on after the caller
        exits, as the local control plane's do).

        Not here, declared by the back ends that have them: "assets.remote" (a model path, a
        deployment's model or code naming a registered asset or a datastore URI:
        ``azureml:NAME:VERSION``, ``azureml://...``, ``https://...``, registered as given);
        the YAML keys a back end sends (``specs.schema.Key.sent_by``):
        "endpoint.public_network_access", "deployment.instance_type",
        "deployment.app_insights_enabled" (the others warn that they are not used).
        """
        return frozenset(
            {
                "cluster.create",
                "cluster.attach",
                "cluster.scale",
                "cluster.delete",
                "model.create",
                "endpoint.invoke",
                "deployment.logs.follow",
                "metrics",
                "operations.detached",
            }
        )

    # -- clusters ------------------------------------------------------------------------
    @abc.abstractmethod
    async def list_clusters(self) -> list[Cluster]: ...

    @abc.abstractmethod
    async def get_cluster(self, name: str) -> Cluster: ...

    @abc.abstractmethod
    async def create_cluster(self, spec: ClusterSpec) -> OperationHandle:
        """A pool (driver ``pool``), or an AKS compute on Azure ML."""

    @abc.abstractmethod
    async def attach_cluster(self, spec: ClusterSpec) -> OperationHandle:
        """Record an existing Kubernetes cluster (driver ``kubernetes``)."""

    @abc.abstractmethod
    async def detach_cluster(self, name: str, *, delete_resources: bool = False) -> OperationHandle:
        """Forget a cluster; what runs on it keeps running unless delete_resources."""

    @abc.abstractmethod
    async def scale_cluster(self, name: str, agent_count: int) -> OperationHandle: ...

    async def update_cluster(
        self,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        remove_tags: list[str] | None = None,
    ) -> Cluster:
        """Set ``tags`` on a cluster (merged into its tags), then remove ``remove_tags``. On
        a Kubernetes cluster of a local workspace, ``modeldeck.io/gateway`` and
        ``modeldeck.io/gateway-url`` take effect at once (docs/kubernetes.md). Optional."""
        from .errors import BackendError

        raise BackendError(
            f"a cluster's tags cannot be changed on this back end ({self.kind})",
            fix="set them when the cluster is attached or created (--tag KEY=VALUE)",
        )

    @abc.abstractmethod
    async def delete_cluster(self, name: str) -> OperationHandle:
        """Refused (Conflict) while the cluster has endpoints."""

    # -- models --------------------------------------------------------------------------
    @abc.abstractmethod
    async def list_models(self, name: str | None = None) -> list[Model]:
        """Every version of every model, or of one model."""

    @abc.abstractmethod
    async def get_model(self, name: str, version: int | None = None) -> Model:
        """One version; the latest when version is None."""

    @abc.abstractmethod
    async def create_model(self, spec: ModelSpec) -> Model:
        """Register a file or folder as the next version (its files are copied in)."""

    @abc.abstractmethod
    async def archive_model(self, name: str, version: int, *, archived: bool = True) -> Model:
        """az ml's ``model archive`` (``archived=False``: ``model restore``): an archived
        version is left out of ``list_models`` unless asked for and is never the latest;
        deployments that name it keep working."""

    @abc.abstractmethod
    async def delete_model(self, name: str, version: int) -> None:
        """Refused (Conflict) while a deployment uses it."""

    # -- environments ----------------------------------------------------------------------
    # Not abstract: a back end without them (Azure ML, for now) says so in one clear error.
    async def list_environments(self, name: str | None = None) -> list[Environment]:
        """Registered environments (every version, or one name's), with the size of their
        built Python environment and the deployments using it."""
        raise self._no_environments()

    async def get_environment(self, name: str, version: str | None = None) -> Environment:
        """One version; the latest not archived when version is None."""
        raise self._no_environments()

    async def create_environment(self, env: Environment) -> Environment:
        """Register ``env`` (the next version when ``env.version`` is empty); its conda file
        is resolved first (InvalidInput if it cannot be built)."""
        raise self._no_environments()

    async def archive_environment(self, name: str, version: str) -> Environment:
        """Hide a version from ``@latest``; deployments naming it keep working."""
        raise self._no_environments()

    async def prune_environments(self) -> list[Environment]:
        """Remove the built environments no deployment uses; what was removed."""
        raise self._no_environments()

    def _no_environments(self) -> ModeldeckError:
        from .errors import BackendError

        return BackendError(
            f"environments are not available on this workspace yet ({type(self).__name__})",
            fix="use the local workspace (modeldeck environment ... with no --workspace), or "
            "az ml environment for an Azure ML workspace",
        )

    # -- endpoints -----------------------------------------------------------------------
    @abc.abstractmethod
    async def list_endpoints(self) -> list[Endpoint]: ...

    @abc.abstractmethod
    async def get_endpoint(self, name: str) -> Endpoint: ...

    @abc.abstractmethod
    async def create_endpoint(self, spec: EndpointSpec) -> OperationHandle: ...

    @abc.abstractmethod
    async def update_endpoint(
        self, name: str, patch: EndpointPatch, *, if_revision: str | None = None
    ) -> OperationHandle:
        """Change what the patch gives, keep the rest. ``traffic`` is always a full map (atomic).

        With ``if_revision`` (the ``revision`` of the endpoint as read), the change is refused
        with :class:`Conflict` if the endpoint changed since: no lost writes.
        """

    @abc.abstractmethod
    async def delete_endpoint(self, name: str) -> OperationHandle:
        """Deletes its deployments too."""

    @abc.abstractmethod
    async def get_keys(self, name: str) -> EndpointKeys: ...

    @abc.abstractmethod
    async def regenerate_keys(self, name: str, key_type: KeyType) -> EndpointKeys:
        """The old key of that type stops working before this returns."""

    @abc.abstractmethod
    async def get_token(self, name: str) -> EndpointToken:
        """For auth_mode aml_token."""

    @abc.abstractmethod
    async def invoke(
        self,
        name: str,
        body: bytes,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        via: str | None = None,
    ) -> InvokeResult:
        """Call the scoring URI with the endpoint's key or token. ``via="api"``: through the
        Kubernetes API server's service proxy (Kubernetes clusters of a local workspace;
        they also fall back to it when the scoring URI does not answer)."""

    # -- deployments ---------------------------------------------------------------------
    @abc.abstractmethod
    async def list_deployments(self, endpoint: str | None = None) -> list[Deployment]:
        """Of one endpoint, or across all endpoints."""

    @abc.abstractmethod
    async def get_deployment(self, endpoint: str, name: str) -> Deployment: ...

    @abc.abstractmethod
    async def create_deployment(
        self,
        spec: DeploymentSpec,
        *,
        all_traffic: bool = False,
        skip_script_validation: bool = False,
    ) -> OperationHandle:
        """Starts the replicas; with all_traffic the endpoint's map becomes {name: 100}.

        ``skip_script_validation`` (az ml's ``--skip-script-validation``): the scoring
        script is not parsed for ``init``/``run`` before anything runs (it must still be a
        file in the code folder); a broken one fails the deployment when it starts."""

    @abc.abstractmethod
    async def update_deployment(
        self,
        spec: DeploymentSpec,
        *,
        if_revision: str | None = None,
        skip_script_validation: bool = False,
    ) -> OperationHandle:
        """Replace the deployment's spec (rolling: new replicas ready before old ones stop).

        With ``if_revision``, refused with :class:`Conflict` if the deployment changed since.
        ``skip_script_validation``: as :meth:`create_deployment`'s.
        """

    @abc.abstractmethod
    async def delete_deployment(self, endpoint: str, name: str) -> OperationHandle:
        """Refused (Conflict) while it has live or mirrored traffic."""

    @abc.abstractmethod
    async def get_logs(
        self,
        endpoint: str,
        name: str,
        *,
        lines: int = 100,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        """The last ``lines`` lines across the deployment's replicas, oldest first (0: none);
        ``since`` (epoch seconds): only lines written at or after it; ``container``: one of
        ``validation.LOG_CONTAINERS`` (az ml's ``--container``), or None for the usual log;
        a back end without that container refuses it (InvalidInput), never ignores it.
        A line whose ``replica`` is empty is the text as the service gave it (Azure ML)."""

    @abc.abstractmethod
    def stream_logs(
        self,
        endpoint: str,
        name: str,
        *,
        lines: int = 100,
        follow: bool = True,
        since: float | None = None,
        container: str | None = None,
    ) -> AsyncIterator[LogLine]:
        """The last ``lines`` lines, then new ones as they are written (when follow);
        ``since`` (epoch seconds): none written before it; ``container``: as in get_logs."""

    async def render_manifests(
        self,
        spec: EndpointSpec | DeploymentSpec,
        *,
        update: bool = False,
        all_traffic: bool = False,
        model: ModelSpec | None = None,
    ) -> list[dict]:
        """``--dry-run``: the Kubernetes objects that creating (or, for a deployment with
        ``update``, updating) ``spec`` would apply, Secret values redacted; nothing is applied.
        ``model``: an inline model the real command would register first. Optional."""
        from .errors import BackendError

        raise BackendError(
            f"--dry-run is not supported by this back end ({self.kind})",
            fix="run the command without --dry-run",
        )

    # -- metrics -------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_metrics(self, endpoint: str | None = None) -> MetricsReport:
        """One sample per deployment (of one endpoint, or all), as of now, and why some
        metrics are missing, if they are."""

    async def get_metrics_history(
        self, endpoint: str | None = None, deployment: str | None = None, *, window: str = "1h"
    ) -> MetricsHistory:
        """The history of one deployment (or of one endpoint's, or all) over the last
        ``window`` (``5m``, ``1h``, ``24h``, ``7d``: ``domain.METRICS_WINDOWS``), at the
        resolution the window picks (see ``MetricsHistory``). The local control plane samples
        every 10 s into bounded storage whether or not anyone watches; Azure ML asks Azure
        Monitor for the window. Raises ``InvalidInput`` for another window."""
        from .errors import BackendError

        raise BackendError(
            f"metrics history is not available on this back end ({self.kind})",
            fix="watch the live figures (dashboard: Metrics)",
        )

    async def stream_metrics(
        self, endpoint: str | None = None, *, interval: float = 1.0
    ) -> AsyncIterator[MetricsReport]:
        """A report every ``interval`` seconds."""
        while True:
            yield await self.get_metrics(endpoint)
            await asyncio.sleep(interval)

    # -- history -------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_history(self, endpoint: str | None = None) -> ChangeHistory:
        """The audit history of an endpoint and its deployments (deleted ones included),
        or of the whole workspace; oldest first, bounded by the back end."""

    # -- rollouts (issue 14; services/api/rollouts.py) ---------------------------------
    async def start_rollout(self, spec: RolloutSpec) -> Rollout:
        """Start a progressive rollout of ``spec.to`` on ``spec.endpoint``; the control plane
        drives it from then on. Raises InvalidInput / NotFound for bad input (nothing
        changes) and Conflict when the endpoint has a rollout in progress."""
        raise self._no_rollouts()

    async def get_rollout(self, endpoint: str) -> Rollout | None:
        """The endpoint's rollout in progress, else its last one; None: it never had one."""
        raise self._no_rollouts()

    async def list_rollouts(self) -> list[Rollout]:
        """Every endpoint's current or last rollout."""
        raise self._no_rollouts()

    async def control_rollout(
        self, endpoint: str, action: str, *, if_revision: str | None = None
    ) -> Rollout:
        """``action`` (``rollouts.ACTIONS``): pause, resume, promote (the treatment gets 100%
        now) or abort (traffic back on the control). ``if_revision``: the rollout's revision
        the caller read (Conflict when it moved)."""
        raise self._no_rollouts()

    def _no_rollouts(self) -> ModeldeckError:
        from .errors import BackendError

        return BackendError(
            f"rollouts are not supported by this back end ({self.kind})",
            fix="move traffic by hand: modeldeck online-endpoint update --traffic ...",
        )

    # -- the workspace itself ------------------------------------------------------------
    async def show_workspace(self) -> dict[str, Any]:
        """The workspace as ``az ml workspace show`` prints it (``services/workspaceview.py``
        says which keys); the local workspace's Azure resources are placeholders."""
        from ..workspaceview import local_workspace

        return local_workspace(self.name)

    async def list_workspaces(self) -> list[dict[str, Any]]:
        """``az ml workspace list``: the workspaces beside this one (its resource group's on
        Azure ML); the local workspace lists itself."""
        return [await self.show_workspace()]

    # -- operations ----------------------------------------------------------------------
    @abc.abstractmethod
    async def get_operation(self, op_id: str) -> Operation: ...

    async def list_operations(self) -> list[Operation]:
        return []


__all__ = ["ModeldeckError", "OperationHandle", "Workspace"]
