"""What every room of :class:`~.workspace.AzureMLWorkspace` shares.

The workspace is one object behind the ``Workspace`` API, written in rooms (mixins), one
module per kind of resource: ``clusters``, ``assets`` (models, code, environments),
``endpoints`` (with keys, tokens and scoring), ``deployments`` (with logs), and
``conflicts`` (the revision check of a write). Each room is a subclass of
:class:`Session`, which declares the state :meth:`AzureMLWorkspace.__init__` sets up and
holds the helpers every room uses: the ARM paths, the raw reads several rooms need, and
the tracking of long operations.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from ..api.domain import (
    Operation,
    OperationStatus,
)
from ..api.errors import (
    BackendError,
    NotFound,
    error_from_dict,
    kind_to_group,
)
from ..api.workspace import OperationHandle
from ..retry import RetryPolicy
from ..transport import tls_verify
from . import storage
from .arm import ArmClient, Lro
from .auth import TokenProvider

#: how an ARM resource id starts (a reference already resolved)
ARM_ID_PREFIX = "/subscriptions/"


class Session:
    """The shared state (set by ``AzureMLWorkspace.__init__``) and helpers of the rooms."""

    workspace_name: str
    arm: ArmClient
    tokens: TokenProvider
    _ws: str  # the workspace's ARM resource id
    _timeout: float
    _location: str | None
    _retry: RetryPolicy
    _ops: dict[str, Lro]  # long operations this process follows, by id
    _http: httpx.AsyncClient | None  # scoring and blob uploads (no ARM token)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            storage.redact_httpx_logs()
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(max(self._timeout, 60.0), connect=10.0),
                verify=tls_verify(),
            )
        return self._http

    async def location(self) -> str | None:
        if self._location is None:
            ws = await self.arm.get(self._ws, kind="workspace", name=self.workspace_name)
            self._location = ws.get("location") or None
        return self._location

    async def show_workspace(self) -> dict[str, Any]:
        """``az ml workspace show``: ARM's GET of the workspace, in az's shape."""
        from .mapping import workspace_to_dict

        res = await self.arm.get(self._ws, kind="workspace", name=self.workspace_name)
        self._location = self._location or res.get("location") or None
        return workspace_to_dict(res)

    async def list_workspaces(self) -> list[dict[str, Any]]:
        """``az ml workspace list`` (with -g): the workspaces of this one's resource group
        (ARM's Workspaces_ListByResourceGroup)."""
        from .mapping import workspace_to_dict

        group_workspaces = self._ws.rsplit("/", 1)[0]  # .../providers/PROVIDER/workspaces
        return [
            workspace_to_dict(r)
            for r in await self.arm.list_all(group_workspaces, kind="workspace")
        ]

    async def _begin(self, method: str, path: str, op: str, target: str, **request: Any) -> Lro:
        """Start the long operation ``op`` (``cluster.create``, ``endpoint.update``...) on
        ``target``; its errors name the resource as ``op``'s kind (``cluster`` ``target``).
        ``request``: the ``json=`` body or ``params=``."""
        return await self.arm.begin(
            method,
            path,
            kind=op,
            target=target,
            err_kind=op.split(".", 1)[0],
            err_name=target,
            **request,
        )

    def _track(self, lro: Lro) -> OperationHandle:
        self._ops[lro.id] = lro
        return OperationHandle(lro.to_operation(), self._poll_when_due, interval=0.0)

    async def _poll_when_due(self, op_id: str) -> Operation:
        lro = self._lro(op_id)
        wait = self.arm.seconds_until_due(lro)
        if wait > 0:
            await asyncio.sleep(min(wait, 1.0))
        return (await self.arm.poll(lro)).to_operation()

    def _lro(self, op_id: str) -> Lro:
        lro = self._ops.get(op_id)
        if lro is None:
            raise NotFound(
                "operation", op_id, fix="operations live as long as the process that started them"
            )
        return lro

    async def _wait(self, lro: Lro, limit: float = 600.0) -> Lro:
        deadline = time.monotonic() + limit
        while not lro.done:
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{lro.kind} on {lro.target} did not finish within {limit:.0f}s",
                    fix=f"see where it is later with: {_show_command(lro)}",
                )
            wait = self.arm.seconds_until_due(lro)
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
            await self.arm.poll(lro)
        if lro.status is OperationStatus.FAILED:
            raise error_from_dict(lro.error or {"message": lro.message})
        return lro

    async def _get_or_none(self, path: str, kind: str, name: str) -> dict[str, Any] | None:
        resp = await self.arm.request("GET", path, kind=kind, name=name, allow=(404,))
        if resp.status_code == 404:
            return None
        return resp.json()

    def _ep(self, name: str) -> str:
        return f"{self._ws}/onlineEndpoints/{name}"

    def _dep(self, endpoint: str, name: str) -> str:
        return f"{self._ep(endpoint)}/deployments/{name}"

    async def _raw_endpoint(self, name: str) -> dict[str, Any]:
        return await self.arm.get(self._ep(name), kind="endpoint", name=name)

    async def _raw_endpoints(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(f"{self._ws}/onlineEndpoints", kind="endpoint")

    async def _deployment_names(self, endpoint: str) -> list[str]:
        items = await self.arm.list_all(
            f"{self._ep(endpoint)}/deployments", kind="endpoint", name=endpoint
        )
        return [str(d.get("name")) for d in items]


def _show_command(lro: Lro) -> str:
    """The command that shows the resource ``lro`` changes (ARM keeps no list of operations,
    and this process's list ends with it)."""
    kind = lro.kind.split(".", 1)[0]
    if kind == "deployment" and "/" in lro.target:
        endpoint, name = lro.target.split("/", 1)
        return f"modeldeck online-deployment show -e {endpoint} -n {name}"
    group = kind_to_group(kind)
    return f"modeldeck {group} show -n {lro.target}" if group else "Azure ML studio"
