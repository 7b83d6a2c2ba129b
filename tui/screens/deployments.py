"""Deployments across endpoints, and the actions on one deployment.

The actions (new from YAML or a form, scale, change model, delete, logs) are a
mixin shared with the endpoint detail screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.binding import Binding

from ...services.api import validation
from ...services.api.domain import Deployment, DeploymentRole
from .. import glyphs
from ..format import Name, error_detail, failed_state
from .dialogs import ConfirmScreen, PromptScreen
from .resource_list import ResourceListScreen

if TYPE_CHECKING:
    from ...services.api.workspace import Workspace
    from ...services.specs.deployment import LoadedDeployment


def deployment_state(d: Deployment) -> Text:
    state = str(d.provisioning_state)
    if d.error:  # the cause goes to the status line (row_detail): the word fits at 80
        if state == "Succeeded":
            state = "Degraded" if d.ready_replicas < d.desired_replicas else "Error"
        return failed_state(state)
    if state == "Succeeded":
        return (
            Text("Ready", style="green")
            if d.ready_replicas >= d.desired_replicas
            else Text("Degraded", style="yellow")
        )
    return failed_state(state) if state == "Failed" else Text(state, style="yellow")


def deployment_traffic(d: Deployment) -> str:
    text = f"{d.traffic}%"
    if d.mirror_traffic:
        text += f" (mirror {d.mirror_traffic}%)"
    return text


def resources_text(d: Deployment) -> str:
    req = d.spec.resources.requests
    dash = glyphs.current().dash
    cpu = dash if req.cpu is None else f"{req.cpu:g}"
    mem = dash if req.memory_gb is None else f"{req.memory_gb:g}G"
    return f"{cpu}/{mem}"


def deployment_cells(d: Deployment, *, with_endpoint: bool = True) -> tuple[Any, ...]:
    role = "control" if d.spec.role is DeploymentRole.CONTROL else ""
    cells: tuple[Any, ...] = (
        Name(d.name),
        deployment_state(d),
        f"{d.ready_replicas}/{d.desired_replicas}",
        validation.strip_azureml(d.spec.model),
        resources_text(d),
        deployment_traffic(d),
        role,
    )
    return (Name(d.endpoint_name), *cells) if with_endpoint else cells


class DeploymentActions:
    """Mixin for screens whose table rows are deployments (keys ``endpoint/name``)."""

    MUTATING_DEPLOYMENT = frozenset({"new_yaml", "new_form", "scale", "set_model", "delete"})

    def selected_deployment(self) -> tuple[str, str] | None:
        key = self.need_selection()  # type: ignore[attr-defined]
        if key is None:
            return None
        endpoint, _, name = key.partition("/")
        return endpoint, name

    def target_endpoint(self) -> str | None:
        sel = self.selected()  # type: ignore[attr-defined]
        return sel.partition("/")[0] if sel else None

    def row_detail(self, key: str | None) -> str | None:
        """The highlighted deployment's error, else the first failing one's: a cause is
        on screen whichever row the cursor is on."""
        deployments = getattr(self, "deployments", {})
        dep = deployments.get(key)
        if dep is None or not dep.error:
            dep = next((d for _, d in sorted(deployments.items()) if d.error), None)
        return error_detail(f"{dep.endpoint_name}/{dep.name}", dep.error) if dep else None

    def action_logs(self) -> None:
        sel = self.selected_deployment()
        if sel:
            self.mdapp.open_logs(*sel)  # type: ignore[attr-defined]

    def action_new_yaml(self) -> None:
        app = self.mdapp  # type: ignore[attr-defined]
        if not app.allow_mutation("create deployment"):
            return
        from .forms import yaml_form

        ws = app.workspace

        def create(loaded: LoadedDeployment) -> None:
            self._create(ws, loaded, loaded.spec.endpoint_name)

        self.on_answer(yaml_form(self.target_endpoint()), create)  # type: ignore[attr-defined]

    def action_new_form(self) -> None:
        app = self.mdapp  # type: ignore[attr-defined]
        if not app.allow_mutation("create deployment"):
            return
        endpoint = self.target_endpoint()
        if endpoint is None:
            self.notify("select an endpoint's row first (or use :endpoints)", severity="warning")  # type: ignore[attr-defined]
            return
        self._load_deployment_form(endpoint)

    @work(group="form", exclusive=True, exit_on_error=False)
    async def _load_deployment_form(self, endpoint: str) -> None:
        app = self.mdapp  # type: ignore[attr-defined]
        ws = app.workspace
        try:
            models = [
                m.ref for m in sorted(await ws.list_models(), key=lambda m: (m.name, -m.version))
            ]
            existing = [d.name for d in await ws.list_deployments(endpoint)]
        except Exception as exc:
            app.show_error(exc)
            return
        from ...services.specs.deployment import LoadedDeployment
        from .forms import deployment_form

        self.on_answer(  # type: ignore[attr-defined]
            deployment_form(endpoint, models, existing),
            lambda spec: self._create(ws, LoadedDeployment(spec), endpoint),
        )

    def _create(self, ws: Workspace, loaded: LoadedDeployment, endpoint: str) -> None:
        """Start creating the deployment (its inline model registered first) on ``ws``."""
        from ...services import apply

        self.mdapp.run_operation(  # type: ignore[attr-defined]
            f"create deployment {endpoint}/{loaded.spec.name}",
            lambda: apply.create_deployment(ws, loaded),
        )

    def _update(
        self, endpoint: str, name: str, override: str, title: str, revision: str | None
    ) -> None:
        """Apply a prompt's change, carrying the revision the prompt was opened on: a change
        of the same field by someone else since is refused (Conflict notice), not overwritten."""
        from ...services import apply

        app = self.mdapp  # type: ignore[attr-defined]
        ws = app.workspace
        app.run_operation(
            title,
            lambda: apply.update_deployment_from(
                ws, endpoint, name, overrides=[override], if_revision=revision or None
            ),
        )

    def _prompt_field(
        self,
        verb: str,
        field: str,
        title: str,
        label: str,
        current: Callable[[Deployment | None], str],
        describe: Callable[[str, str], str],
    ) -> None:
        """Prompt for one field of the selected deployment (``title`` names it as
        ``{target}``) and apply the answer with the revision the prompt was opened on."""
        sel = self.selected_deployment()
        app = self.mdapp  # type: ignore[attr-defined]
        if sel is None or not app.allow_mutation(verb):
            return
        endpoint, name = sel
        target = f"{endpoint}/{name}"
        dep = self.deployments.get(target)  # type: ignore[attr-defined]
        revision = dep.revision if dep else None  # what the prompt shows

        def done(text: str | None) -> None:
            if text:
                self._update(endpoint, name, f"{field}={text}", describe(target, text), revision)

        app.push_screen(PromptScreen(title.format(target=target), label, current(dep)), done)

    def action_scale(self) -> None:
        self._prompt_field(
            "scale deployment",
            "instance_count",
            "Scale {target}",
            "Instance count:",
            lambda d: str(d.spec.instance_count) if d else "1",
            lambda target, text: f"scale {target} to {text}",
        )

    def action_set_model(self) -> None:
        self._prompt_field(
            "update deployment",
            "model",
            "Change the model of {target}",
            "Model (azureml:NAME:VERSION), rolled out replica by replica:",
            lambda d: d.spec.model if d else "",
            lambda target, text: f"update {target} to {validation.strip_azureml(text)}",
        )

    def action_delete(self) -> None:
        sel = self.selected_deployment()
        app = self.mdapp  # type: ignore[attr-defined]
        if sel is None or not app.allow_mutation("delete deployment"):
            return
        endpoint, name = sel
        current = self.deployments.get(f"{endpoint}/{name}")  # type: ignore[attr-defined]
        extra = ""
        if current is not None and (current.traffic or current.mirror_traffic):
            extra = (
                f"\n\n[b yellow]It still takes {deployment_traffic(current)} of traffic:[/] the service "
                "refuses to delete it. Move its traffic first (t)."
            )
        msg = f"Delete deployment '{name}' of endpoint '{endpoint}': its replicas stop.{extra}"
        self.confirm_operation(  # type: ignore[attr-defined]
            ConfirmScreen(f"Delete {name}?", msg, "Delete"),
            f"delete deployment {endpoint}/{name}",
            lambda: app.workspace.delete_deployment(endpoint, name),
        )


DEPLOYMENT_BINDINGS = [
    Binding("l", "logs", "Logs"),
    # c creates on every screen that creates (endpoints, clusters, models); n/N, the keys
    # of old, still work
    Binding("c", "new_yaml", "Create (YAML)"),
    Binding("C", "new_form", "Create (form)", key_display="C"),
    Binding("n", "new_yaml", "Create (YAML)", show=False),
    Binding("N", "new_form", "Create (form)", show=False, key_display="N"),
    Binding("s", "scale", "Scale"),
    Binding("u", "set_model", "Model"),
    Binding("ctrl+d", "delete", "Delete"),
]


class DeploymentsScreen(DeploymentActions, ResourceListScreen):
    VIEW_NAME = "Deployments"
    NOUN = "deployments"
    EMPTY_TEXT = "no deployments: press c to create one from a YAML file, C with a form"
    COLUMNS = [
        ("endpoint", "ENDPOINT"),
        ("name", "NAME"),
        ("state", "STATE"),
        ("ready", "READY"),
        ("model", "MODEL"),
        ("res", "CPU/MEM"),
        ("traffic", "TRAFFIC"),
        ("role", "ROLE"),
    ]
    MUTATING = DeploymentActions.MUTATING_DEPLOYMENT
    BINDINGS = [Binding("enter", "open", "Endpoint"), *DEPLOYMENT_BINDINGS]

    async def fetch(self) -> list[Deployment]:
        return await self.workspace.list_deployments()

    def show(self, deployments: list[Deployment]) -> None:
        self.deployments = {f"{d.endpoint_name}/{d.name}": d for d in deployments}
        self.sync_rows({k: deployment_cells(d) for k, d in self.deployments.items()})

    def action_open(self) -> None:
        endpoint = self.target_endpoint()
        if endpoint:
            self.mdapp.open_endpoint(endpoint)
