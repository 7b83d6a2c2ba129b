"""Clusters: pools and attached Kubernetes clusters, with capacity bars.

A cluster that cannot be reached shows its error in its own row; the rest keep
updating.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from ...services.api.domain import Cluster, DriverKind
from ..format import capacity_bar, error_detail, failed_state
from .dialogs import ConfirmScreen, PromptScreen
from .resource_list import ResourceListScreen


def cluster_cells(c: Cluster) -> tuple[Any, ...]:
    if c.error:  # the cause goes to the status line (row_detail)
        ok = str(c.provisioning_state) == "Succeeded"
        state = failed_state("Error" if ok else str(c.provisioning_state))
    elif str(c.provisioning_state) == "Succeeded":
        state = Text("Ready", style="green")
    else:
        state = Text(str(c.provisioning_state), style="yellow")
    # a figure the back end does not know (an Azure ML Kubernetes compute's) is shown as
    # "-", never a made-up FastProd or 0 vCPU; an Azure ML compute's type beside its driver
    unknown = Text("-", style="dim")
    return (
        c.name,
        f"{c.driver}/{c.type}" if c.type else str(c.driver),
        str(c.purpose) if c.purpose is not None else unknown,
        state,
        str(c.agent_count) if c.agent_count is not None else unknown,
        capacity_bar(c.vcpus_used, c.vcpus_total, 6) if c.vcpus_total is not None else unknown,
        capacity_bar(round(c.memory_gb_used, 1), round(c.memory_gb_total, 1), 6, "G")
        if c.memory_gb_total is not None
        else unknown,
        str(c.endpoints),
    )


class ClustersScreen(ResourceListScreen):
    VIEW_NAME = "Clusters"
    EMPTY_TEXT = "no clusters: press c to create a pool, a to attach a Kubernetes cluster"
    COLUMNS = [
        ("name", "NAME"),
        ("driver", "DRIVER"),
        ("purpose", "PURPOSE"),
        ("state", "STATE"),
        ("nodes", "NODES"),
        ("vcpu", "vCPU"),
        ("memory", "MEMORY"),
        ("endpoints", "EPS"),
    ]
    MUTATING = frozenset({"create", "attach", "detach", "scale", "delete"})
    BINDINGS = [
        Binding("c", "create", "Create pool"),
        Binding("a", "attach", "Attach"),
        Binding("s", "scale", "Scale"),
        Binding("x", "detach", "Detach"),
        Binding("ctrl+d", "delete", "Delete", show=False),
        Binding("enter", "open", "Endpoints"),
    ]

    async def fetch(self) -> list[Cluster]:
        return await self.workspace.list_clusters()

    def show(self, clusters: list[Cluster]) -> None:
        self.clusters = {c.name: c for c in clusters}
        self.sync_rows({c.name: cluster_cells(c) for c in clusters})

    def row_detail(self, key: str | None) -> str | None:
        cluster = getattr(self, "clusters", {}).get(key)
        return error_detail(cluster.name, cluster.error) if cluster else None

    def action_create(self) -> None:
        if not self.mdapp.allow_mutation("create cluster"):
            return
        from .forms import cluster_form

        self.form_operation(
            cluster_form(), "create cluster", lambda spec: self.workspace.create_cluster(spec)
        )

    def action_attach(self) -> None:
        if not self.mdapp.allow_mutation("attach cluster"):
            return
        from .forms import attach_form

        self.form_operation(
            attach_form(), "attach cluster", lambda spec: self.workspace.attach_cluster(spec)
        )

    def action_detach(self) -> None:
        name = self.need_selection()
        if name is None or not self.mdapp.allow_mutation("detach"):
            return
        cluster = getattr(self, "clusters", {}).get(name)
        if cluster is not None and cluster.driver is DriverKind.POOL:
            message = (
                f"'{name}' is a local pool: detaching does not apply.\n"
                "Delete it instead (ctrl+d), once its endpoints are deleted."
            )
            self.notify(message, severity="warning")
            return
        msg = (
            f"Forget cluster '{name}' in this workspace.\n\n"
            "What keeps running: the cluster itself and everything deployed on it "
            "(Deployments, Services, routes) keep running and serving; modeldeck stops "
            "managing them. Attach it again to manage them."
        )
        self.confirm_operation(
            ConfirmScreen(f"Detach {name}?", msg, "Detach"),
            f"detach cluster {name}",
            lambda: self.workspace.detach_cluster(name),
        )

    def action_delete(self) -> None:
        name = self.need_selection()
        if name is None or not self.mdapp.allow_mutation("delete cluster"):
            return
        msg = f"Delete cluster '{name}'. Refused while it has endpoints."
        self.confirm_operation(
            ConfirmScreen(f"Delete {name}?", msg, "Delete"),
            f"delete cluster {name}",
            lambda: self.workspace.delete_cluster(name),
        )

    def action_scale(self) -> None:
        name = self.need_selection()
        if name is None or not self.mdapp.allow_mutation("scale"):
            return
        cluster = getattr(self, "clusters", {}).get(name)
        current = str(cluster.agent_count) if cluster and cluster.agent_count is not None else ""

        def done(value: str | None) -> None:
            if not value:
                return
            try:
                from ...services.api.validation import integer

                count = integer(value, "agent_count", 1, 100)
            except Exception as exc:
                self.mdapp.show_error(exc)
                return
            self.mdapp.run_operation(
                f"scale cluster {name} to {count}",
                lambda: self.workspace.scale_cluster(name, count),
            )

        self.app.push_screen(PromptScreen(f"Scale {name}", "Agent count (nodes):", current), done)

    def action_open(self) -> None:
        name = self.need_selection()
        if name:
            self.app.switch_mode("endpoints")
            view = self.mdapp.top_view()
            if view is not None:
                view.apply_filter(name)
