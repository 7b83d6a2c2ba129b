"""Endpoints: name, cluster, auth, state, traffic as a stacked bar, requests/s."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.binding import Binding

from .. import glyphs
from ..format import (
    Name,
    TrafficCell,
    alarm,
    cluster_text,
    error_detail,
    failed_state,
    health_figures,
)
from .resource_list import ResourceListScreen

if TYPE_CHECKING:  # the first screen: domain types load with the workspace, after the first frame
    from ...services.api.domain import Endpoint


def state_text(state: object, error: str | None) -> Text:
    value = str(state)
    if error or value == "Failed":  # the cause goes to the status line (row_detail)
        return failed_state("Error" if value == "Succeeded" else value)
    if value == "Succeeded":
        return Text("Ready", style="green")
    return Text(value, style="yellow")


def endpoint_cells(e: Endpoint, rps: float | None, degraded: bool = False) -> tuple[Any, ...]:
    return (
        Name(e.name),
        cluster_text(e),
        str(e.auth_mode),
        failed_state("Degraded")  # in words; why is on the status line (row_detail)
        if degraded and not e.error and str(e.provisioning_state) == "Succeeded"
        else state_text(e.provisioning_state, e.error),
        TrafficCell.of(e.traffic),
        glyphs.current().dash if rps is None else f"{rps:.1f}",
    )


class EndpointsScreen(ResourceListScreen):
    VIEW_NAME = "Endpoints"
    EMPTY_TEXT = "no endpoints: press c to create one (a cluster is needed first: :clusters)"
    COLUMNS = [
        ("name", "NAME"),
        ("cluster", "CLUSTER"),
        ("auth", "AUTH"),
        ("state", "STATE"),
        ("traffic", "TRAFFIC"),
        ("rps", "REQ/S"),
    ]
    MUTATING = frozenset({"create", "delete"})
    BINDINGS = [
        Binding("enter", "open", "Detail"),
        Binding("c", "create", "Create"),
        Binding("t", "traffic", "Traffic"),
        Binding("k", "keys", "Keys"),
        Binding("m", "metrics", "Metrics"),
        Binding("h", "history", "History", show=False),  # ? and ctrl+p list it
        Binding("R", "rollout", "Rollout", show=False, key_display="R"),  # ? and ctrl+p list it
        Binding("ctrl+d", "delete", "Delete", show=False),
    ]

    async def fetch(self) -> tuple[list[Endpoint], dict[str, float] | None, dict[str, Any]]:
        endpoints, metrics, deployments = await asyncio.gather(
            self.workspace.list_endpoints(),
            self.workspace.get_metrics(),
            self.workspace.list_deployments(),
            return_exceptions=True,
        )
        if isinstance(endpoints, BaseException):
            raise endpoints
        rps: dict[str, float] | None = None
        samples = None
        if not isinstance(metrics, BaseException):
            samples = metrics.samples
            rps = {}
            for s in metrics.samples:
                if hasattr(s, "requests_per_second"):
                    rps[s.endpoint] = rps.get(s.endpoint, 0.0) + s.requests_per_second
        healths: dict[str, Any] = {}
        if not isinstance(deployments, BaseException):
            from ...services.api.health import endpoint_health

            healths = {e.name: endpoint_health(e, deployments, samples) for e in endpoints}
        return endpoints, rps, healths

    def show(self, data: tuple[Any, ...]) -> None:
        """``(endpoints, requests/s by endpoint or None, endpoint -> its deployments' health)``;
        the health may be left out (then no endpoint reads Degraded)."""
        from ...services.api.health import degraded

        endpoints, rps, *rest = data
        self.endpoints = {e.name: e for e in endpoints}
        self.healths = rest[0] if rest else {}
        self.sync_rows(
            {
                e.name: endpoint_cells(
                    e,
                    None if rps is None else rps.get(e.name, 0.0),
                    bool(degraded(self.healths.get(e.name, []))),
                )
                for e in endpoints
            }
        )

    def row_detail(self, key: str | None) -> str | None:
        """The highlighted endpoint's error, else why it is Degraded, else the first failing
        one's error, else the highlighted one's deployments: READY x/y, error rate, p95 now."""
        from rich.markup import escape

        from ...services.api.health import degraded

        endpoints = getattr(self, "endpoints", {})
        endpoint = endpoints.get(key)
        if endpoint is not None and endpoint.error:
            return error_detail(endpoint.name, endpoint.error)
        healths = getattr(self, "healths", {}).get(key, [])
        if sick := degraded(healths):
            why = escape("; ".join(h.reason() for h in sick))
            return f"[{alarm()}]{glyphs.current().warn} Degraded:[/] {why}"
        failing = next((e for _, e in sorted(endpoints.items()) if e.error), None)
        if failing is not None:
            return error_detail(failing.name, failing.error)
        if not healths:
            return None
        return escape("   ".join(f"{h.name} {health_figures(h)}" for h in healths))

    def action_open(self) -> None:
        name = self.need_selection()
        if name:
            self.mdapp.open_endpoint(name)

    def action_traffic(self) -> None:
        name = self.need_selection()
        if name:
            self.mdapp.open_traffic(name)

    def action_keys(self) -> None:
        name = self.need_selection()
        if name:
            self.mdapp.open_keys(name)

    def action_metrics(self) -> None:
        self.mdapp.open_metrics(self.selected())

    def action_history(self) -> None:
        self.mdapp.open_history(self.selected())

    def target_endpoint(self) -> str | None:
        return self.selected()

    def action_rollout(self) -> None:
        name = self.need_selection()
        if name:
            self.mdapp.open_rollout(name)

    def action_create(self) -> None:
        if not self.mdapp.allow_mutation("create endpoint"):
            return
        self._open_create_form()

    @work(group="form", exclusive=True, exit_on_error=False)
    async def _open_create_form(self) -> None:
        try:
            clusters = sorted(c.name for c in await self.workspace.list_clusters())
        except Exception as exc:
            self.mdapp.show_error(exc)
            return
        from .forms import endpoint_form

        self.form_operation(
            endpoint_form(clusters),
            "create endpoint",
            lambda spec: self.workspace.create_endpoint(spec),
        )

    def action_delete(self) -> None:
        name = self.need_selection()
        if name is None or not self.mdapp.allow_mutation("delete endpoint"):
            return
        self._confirm_delete(name)

    @work(group="form", exclusive=True, exit_on_error=False)
    async def _confirm_delete(self, name: str) -> None:
        """Ask with what the endpoint serves now: one ``y`` when it is idle, its name typed
        when it takes traffic (a share, or requests in the last minute)."""
        endpoint = getattr(self, "endpoints", {}).get(name)
        try:
            report = await self.workspace.get_metrics(name)
            rps = sum(getattr(s, "requests_per_second", 0.0) for s in report.samples)
        except Exception:
            rps = None  # not known: the share alone decides
        msg = (
            f"Delete endpoint '{name}' and all its deployments.\n"
            "Its scoring URI stops answering; its keys stop working."
        )
        split = {k: v for k, v in (endpoint.traffic if endpoint else {}).items() if v}
        serving = bool(rps) or bool(split)
        if serving:
            shares = " ".join(f"{k}={v}" for k, v in sorted(split.items())) or "none"
            rate = "unknown" if rps is None else f"{rps:.1f} req/s"
            msg += f"\n\n[{alarm()}]It is serving: {rate} now, traffic {shares}.[/]"
        from .dialogs import ConfirmScreen, TypedConfirmScreen  # not before the first frame

        dialog = (
            TypedConfirmScreen(f"Delete {name}?", msg, name)
            if serving
            else ConfirmScreen(f"Delete {name}?", msg, "Delete")
        )
        self.confirm_operation(
            dialog,  # type: ignore[arg-type]
            f"delete endpoint {name}",
            lambda: self.workspace.delete_endpoint(name),
        )
