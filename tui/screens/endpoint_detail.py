"""One endpoint: scoring URI (copy), traffic, its deployments' health (Degraded in words,
READY x/y, error rate, p95 now), its deployments, recent errors."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ...services.api.domain import Deployment, Endpoint, MetricSample
from ...services.api.health import DeploymentHealth, endpoint_health, read_endpoint
from .. import glyphs
from ..css import css_path
from ..format import cluster_text, degraded_text, error_rate_text, p95_text
from ..widgets.bars import TrafficBar
from ..widgets.resource_table import ResourceTable
from .deployments import DEPLOYMENT_BINDINGS, DeploymentActions, deployment_cells
from .resource_list import ResourceListScreen


def _with_figures(cells: tuple[Any, ...], h: DeploymentHealth | None) -> tuple[Any, ...]:
    """The deployment's cells with its error rate and p95 now after READY (a dash: none)."""
    return (*cells[:3], error_rate_text(h), p95_text(h), *cells[3:])


class EndpointDetailScreen(DeploymentActions, ResourceListScreen):
    CSS_PATH = css_path("views.tcss")
    VIEW_NAME = "Endpoint"
    NOUN = "deployments"
    EMPTY_TEXT = "no deployments yet: press c to create one from a YAML file, C with a form"
    COLUMNS = [
        ("name", "DEPLOYMENT"),
        ("state", "STATE"),
        ("ready", "READY"),
        ("err", "ERR"),
        ("p95", "P95"),
        ("model", "MODEL"),
        ("res", "CPU/MEM"),
        ("traffic", "TRAFFIC"),
        ("role", "ROLE"),
    ]
    MUTATING = DeploymentActions.MUTATING_DEPLOYMENT
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("t", "traffic", "Traffic"),
        Binding("k", "keys", "Keys"),
        Binding("y", "copy_uri", "Copy URI"),
        Binding("m", "metrics", "Metrics"),
        Binding("h", "history", "History", show=False),  # ? and ctrl+p list it
        Binding("R", "rollout", "Rollout", show=False, key_display="R"),  # ? and ctrl+p list it
        *DEPLOYMENT_BINDINGS,
    ]

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.endpoint: Endpoint | None = None
        self.deployments: dict[str, Deployment] = {}

    def title_text(self) -> str:
        return f"Endpoint {self.endpoint_name}"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="endpoint-info")
        yield TrafficBar(id="endpoint-traffic")
        yield Static("", id="endpoint-health")
        self._table = ResourceTable(self.COLUMNS, id="table")
        yield self._table
        yield Static("", id="status-line")
        yield Static("", id="recent-errors")

    async def fetch(self) -> tuple[Endpoint, list[Deployment], list[MetricSample] | None]:
        return await read_endpoint(self.workspace, self.endpoint_name)

    def show(self, data: tuple[Endpoint, list[Deployment], list[MetricSample] | None]) -> None:
        endpoint, deployments, metrics = data
        self.endpoint = endpoint
        self.deployments = {f"{d.endpoint_name}/{d.name}": d for d in deployments}
        mirror = " ".join(f"{k}={v}%" for k, v in endpoint.mirror_traffic.items() if v) or "none"
        info = (
            f"[b]{endpoint.name}[/]  cluster [b]{cluster_text(endpoint)}[/]  auth [b]{endpoint.auth_mode}[/]  "
            f"state [b]{endpoint.provisioning_state}[/]\n"
            f"control [b]{endpoint.control or glyphs.current().dash}[/]  mirror [b]{mirror}[/]\n"
            f"scoring URI [u]{endpoint.scoring_uri}[/]"  # y copies it (the footer says so)
        )
        self.query_one("#endpoint-info", Static).update(info)
        self.query_one("#endpoint-traffic", TrafficBar).set_traffic(endpoint.traffic)
        healths = {h.name: h for h in endpoint_health(endpoint, deployments, metrics)}
        box = self.query_one("#endpoint-health", Static)
        box.update(degraded := degraded_text(list(healths.values())))
        box.display = bool(degraded.plain)
        self.sync_rows(
            {
                k: _with_figures(deployment_cells(d, with_endpoint=False), healths.get(d.name))
                for k, d in self.deployments.items()
            }
        )
        errors = []
        if endpoint.error:
            errors.append(f"endpoint: {endpoint.error}")
        errors += [f"{d.name}: {d.error}" for d in deployments if d.error]
        for s in metrics or []:
            if s.error_rate > 0:
                codes = " ".join(
                    f"{c}{glyphs.current().times}{n}"
                    for c, n in sorted(s.status_codes.items())
                    if not c.startswith("2")
                )
                errors.append(
                    f"{s.deployment}: {s.error_rate:.0%} of requests failed {codes}".rstrip()
                )
        box = self.query_one("#recent-errors", Static)
        box.update(
            "[b red]Recent errors[/]\n" + "\n".join(errors[-5:])
            if errors
            else "[dim]no recent errors[/]"
        )

    def target_endpoint(self) -> str | None:
        return self.endpoint_name

    def action_traffic(self) -> None:
        self.mdapp.open_traffic(self.endpoint_name)

    def action_keys(self) -> None:
        self.mdapp.open_keys(self.endpoint_name)

    def action_metrics(self) -> None:
        self.mdapp.open_metrics(self.endpoint_name)

    def action_history(self) -> None:
        self.mdapp.open_history(self.endpoint_name)

    def action_rollout(self) -> None:
        self.mdapp.open_rollout(self.endpoint_name)

    def action_copy_uri(self) -> None:
        if self.endpoint is not None:
            self.app.copy_to_clipboard(self.endpoint.scoring_uri)
            self.notify("scoring URI copied to the terminal clipboard (OSC 52)")

    def action_open(self) -> None:
        self.action_logs()
