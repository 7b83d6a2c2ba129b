"""Create forms: validated as you type with the service layer's own rules.

A form builds a domain spec from its fields; the spec's validator (the same one
the CLI and the control plane use) raises InvalidInput naming the field, value,
rule and fix, which is shown under the form; Create stays disabled until valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, Select, Static

from ...services import vmsizes
from ...services.api import validation
from ...services.api.domain import (
    AuthMode,
    ClusterPurpose,
    ClusterSpec,
    CodeConfiguration,
    Deployment,
    DeploymentSpec,
    DriverKind,
    Endpoint,
    EndpointSpec,
    ModelSpec,
    Resources,
    ResourceSet,
)
from ...services.api.errors import InvalidInput
from .. import glyphs
from ..css import css_path
from ..format import describe_error
from ..widgets.inputs import OrderedInput


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    default: str = ""
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    picker: bool = False  # a file/folder picker fills this field


def _picker(name: str) -> DirectoryTree:
    tree = DirectoryTree(str(Path.cwd()), id=f"pick-{name}", classes="picker")
    if not glyphs.current().emoji:  # the Linux console, a C locale: no folder emoji
        tree.ICON_NODE, tree.ICON_NODE_EXPANDED, tree.ICON_FILE = "+ ", "- ", "  "
    return tree


class FormScreen(ModalScreen[Any]):
    CSS_PATH = css_path("dialogs.tcss")
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Create"),
    ]

    def __init__(
        self,
        title: str,
        fields: list[Field],
        build: Callable[[dict[str, str]], Any],
        submit: str = "Create",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.build = build
        self.submit_label = submit
        self.result: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Static(f"[b]{self.title_text}[/]", classes="dialog-title")
            with VerticalScroll(classes="form-fields"):
                for f in self.fields:
                    with Horizontal(classes="form-row"):
                        yield Label(f.label, classes="form-label")
                        if f.choices:
                            yield Select(
                                [(c, c) for c in f.choices],
                                value=f.default or f.choices[0],
                                allow_blank=False,
                                compact=True,
                                id=f"f-{f.name}",
                            )
                        else:
                            yield OrderedInput(
                                f.default, placeholder=f.placeholder, compact=True, id=f"f-{f.name}"
                            )
                    if f.picker:
                        yield _picker(f.name)
            yield Static("", id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    f"{self.submit_label} (ctrl+s)", variant="primary", compact=True, id="submit"
                )
                yield Button("Cancel (esc)", compact=True, id="cancel")

    def on_resize(self) -> None:
        """The fields scroll, the buttons stay on screen (at 80x24 the frame, title, error
        and buttons take 12 rows)."""
        fields = self.query_one(".form-fields")
        fields.styles.max_height = max(4, min(16, self.size.height - 12))

    def on_mount(self) -> None:
        self.on_resize()
        self.validate_form()
        first = self.query(Input)
        if first:
            first.first().focus()

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self.fields:
            widget = self.query_one(f"#f-{f.name}")
            value = widget.value if isinstance(widget, Input | Select) else ""
            out[f.name] = "" if value is Select.BLANK else str(value).strip()
        return out

    def validate_form(self) -> bool:
        error = self.query_one("#form-error", Static)
        try:
            self.result = self.build(self.values())
        except Exception as exc:
            self.result = None
            error.update(f"[b]{describe_error(exc)}[/]")
            error.add_class("-invalid")
            self.query_one("#submit", Button).disabled = True
            return False
        error.update("[green]ready[/]")
        error.remove_class("-invalid")
        self.query_one("#submit", Button).disabled = False
        return True

    def on_input_changed(self, event: Input.Changed) -> None:
        self.validate_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.validate_form()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self._picked(event.control, event.path)

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self._picked(event.control, event.path)

    def _picked(self, tree: DirectoryTree, path: Path) -> None:
        name = (tree.id or "").removeprefix("pick-")
        self.query_one(f"#f-{name}", Input).value = str(path)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        if self.validate_form():
            self.dismiss(self.result)

    def action_cancel(self) -> None:
        self.dismiss(None)


# --------------------------------------------------------------------------- builders


def _int(value: str, field: str) -> int:
    return validation.integer(value, field)


def _cluster_spec(v: dict[str, str], driver: DriverKind, **fields: Any) -> ClusterSpec:
    """The cluster form's values (name, purpose, the driver's own fields), validated."""
    spec = ClusterSpec(
        name=v["name"],
        driver=driver,
        purpose=ClusterPurpose.parse(v["purpose"]),  # type: ignore[arg-type]
        **fields,
    )
    return validation.cluster_spec(spec)


def _tags(text: str) -> dict[str, str]:
    """``KEY=VALUE, KEY=VALUE`` (the CLI's ``--tag`` items, comma-separated), validated."""
    from ...services.specs.flags import parse_tags

    items = [item.strip() for item in text.split(",") if item.strip()]
    return validation.tags(parse_tags(items, flag="tags"))


def cluster_form() -> FormScreen:
    def build(v: dict[str, str]) -> ClusterSpec:
        return _cluster_spec(
            v,
            DriverKind.POOL,
            agent_count=_int(v["agent_count"], "agent_count"),
            vm_size=v["vm_size"],
        )

    return FormScreen(
        "Create a pool cluster",
        [
            Field("name", "Name", placeholder="e.g. pool-1"),
            Field("agent_count", "Agent count", "3"),
            Field("vm_size", "VM size", "Standard_D3_v2", choices=tuple(vmsizes.names())),
            Field("purpose", "Purpose", "FastProd", choices=("FastProd", "DevTest")),
        ],
        build,
    )


def attach_form() -> FormScreen:
    def build(v: dict[str, str]) -> ClusterSpec:
        return _cluster_spec(
            v,
            DriverKind.KUBERNETES,
            kube_context=v["kube_context"] or None,
            namespace=v["namespace"] or None,
            tags=_tags(v["tags"]),
        )

    return FormScreen(
        "Attach a Kubernetes cluster",
        [
            Field("name", "Name", placeholder="e.g. aks-prod"),
            Field("kube_context", "Kube context", placeholder="kubectl config get-contexts"),
            Field("namespace", "Namespace", "default"),
            Field("purpose", "Purpose", "FastProd", choices=("FastProd", "DevTest")),
            Field("tags", "Tags", placeholder="KEY=VALUE, ... (modeldeck.io/gateway-url=URL)"),
        ],
        build,
        submit="Attach",
    )


def model_form() -> FormScreen:
    def build(v: dict[str, str]) -> ModelSpec:
        return validation.model_spec(
            ModelSpec(name=v["name"], path=v["path"], description=v["description"])
        )

    return FormScreen(
        "Register a model",
        [
            Field("name", "Name", placeholder="e.g. sklearn-demo"),
            Field("path", "Path", placeholder="a file or folder (pick below)", picker=True),
            Field("description", "Description"),
        ],
        build,
        submit="Register",
    )


def endpoint_form(clusters: list[str]) -> FormScreen:
    def build(v: dict[str, str]) -> EndpointSpec:
        return validation.endpoint_spec(
            EndpointSpec(
                name=v["name"],
                compute=v["compute"],
                auth_mode=AuthMode.parse(v["auth_mode"]),  # type: ignore[arg-type]
                description=v["description"],
            )
        )

    return FormScreen(
        "Create an endpoint",
        [
            Field("name", "Name", placeholder="e.g. my-endpoint"),
            Field("compute", "Cluster", clusters[0] if clusters else "", choices=tuple(clusters))
            if clusters
            else Field("compute", "Cluster", placeholder="create a cluster first"),
            Field("auth_mode", "Auth mode", "key", choices=("key", "aml_token", "none")),
            Field("description", "Description"),
        ],
        build,
    )


def deployment_form(endpoint: str, models: list[str], existing: list[str]) -> FormScreen:
    def build(v: dict[str, str]) -> DeploymentSpec:
        if not v["model"]:
            raise InvalidInput(
                "model", "", "is required", "register a model first (:models, then c)"
            )
        cpu = validation.cpu_quantity(v["cpu"] or "0.1", "resources.requests.cpu")
        mem = validation.memory_quantity(v["memory"] or "512Mi", "resources.requests.memory")
        code = v["code"]
        if code and not Path(code).is_dir():
            raise InvalidInput(
                "code", code, "is not a folder", "give the folder that holds the scoring script"
            )
        if code and not (Path(code) / v["scoring_script"]).is_file():
            raise InvalidInput(
                "scoring_script",
                v["scoring_script"],
                f"is not a file in {code}",
                "name the scoring script inside the code folder",
            )
        validation.deployment_count(existing, v["name"])
        spec = DeploymentSpec(
            name=v["name"],
            endpoint_name=endpoint,
            model=v["model"],
            code_configuration=CodeConfiguration(
                code=str(Path(code).resolve()) if code else "", scoring_script=v["scoring_script"]
            ),
            instance_count=_int(v["instance_count"], "instance_count"),
            resources=Resources(requests=ResourceSet(cpu=cpu, memory_gb=mem)),
        )
        return validation.deployment_spec(spec)

    return FormScreen(
        f"New deployment on {endpoint}",
        [
            Field("name", "Name", placeholder="e.g. blue"),
            Field("model", "Model", models[0] if models else "", choices=tuple(models))
            if models
            else Field("model", "Model", placeholder="azureml:NAME:VERSION"),
            Field(
                "code",
                "Code folder",
                placeholder="folder with the scoring script (pick below)",
                picker=True,
            ),
            Field("scoring_script", "Scoring script", "score.py"),
            Field("instance_count", "Instances", "1"),
            Field("cpu", "CPU request", "0.1"),
            Field("memory", "Memory request", "512Mi"),
        ],
        build,
    )


def yaml_form(endpoint: str | None) -> FormScreen:
    """Create a deployment from an Azure ML v2 YAML file (read by services/specs)."""
    from ...services.specs.deployment import LoadedDeployment, load_deployment

    def build(v: dict[str, str]) -> LoadedDeployment:
        if not v["path"]:
            raise InvalidInput("file", "", "is required", "pick a deployment YAML file")
        return load_deployment(v["path"], endpoint_name=endpoint or None)

    return FormScreen(
        "New deployment from a YAML file" + (f" on {endpoint}" if endpoint else ""),
        [
            Field(
                "path", "YAML file", placeholder="e.g. examples/blue.yml (pick below)", picker=True
            )
        ],
        build,
    )


def _decimal(value: str, field: str) -> float:
    """A number typed in a form (``1``, ``1.3``); the rule's own checks follow."""
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(field, value, "must be a number", "write a number, e.g. 1.3") from None


AUTO_CONTROL = "(auto)"


def rollout_form(endpoint: Endpoint, deployments: list[Deployment]) -> FormScreen:
    """Start a progressive rollout on ``endpoint`` (issue 14): the fields of ``online-endpoint
    rollout``, checked with ``services.api.rollouts``' rules (``check_start``: the spec's own,
    then against the endpoint and deployments as read) before anything is sent."""
    from ...services.api import rollouts

    names = sorted(d.name for d in deployments)
    live = {k: v for k, v in endpoint.traffic.items() if v}
    idle = [n for n in names if not live.get(n)]  # the likely treatment: no live traffic yet

    def build(v: dict[str, str]) -> rollouts.RolloutSpec:
        if not v["to"]:
            raise InvalidInput("to", "", "is required", "create the new deployment first")
        spec = rollouts.RolloutSpec(
            endpoint=endpoint.name,
            to=v["to"],
            from_=None if v["from"] in ("", AUTO_CONTROL) else v["from"],
            steps=rollouts.steps(v["steps"]),
            interval_s=rollouts.duration(v["interval"], "interval"),
            max_error_rate=_decimal(v["max_error_rate"], "max_error_rate"),
            max_p95_ratio=_decimal(v["max_p95_ratio"], "max_p95_ratio"),
            min_requests=_int(v["min_requests"], "min_requests"),
            mirror_first_s=rollouts.duration(v["mirror_first"] or "0", "mirror_first"),
            webhook=v["webhook"] or None,
        )
        spec = rollouts.validate_spec(spec)
        rollouts.check_start(spec, endpoint, deployments)  # as the control plane will
        return spec

    def choice(name: str, label: str, options: list[str], default: str) -> Field:
        if options:
            return Field(name, label, default, choices=tuple(options))
        return Field(name, label, placeholder="no deployment on this endpoint")

    return FormScreen(
        f"Roll out on {endpoint.name}",
        [
            choice("to", "To (treatment)", names, (idle or names or [""])[0]),
            choice("from", "From (control)", [AUTO_CONTROL, *names], AUTO_CONTROL),
            Field("steps", "Steps (%)", ",".join(map(str, rollouts.DEFAULT_STEPS))),
            Field("interval", "Interval", rollouts.duration_text(rollouts.DEFAULT_INTERVAL_S)),
            Field("max_error_rate", "Max error rate", f"{rollouts.DEFAULT_MAX_ERROR_RATE:g}"),
            Field("max_p95_ratio", "Max p95 ratio", f"{rollouts.DEFAULT_MAX_P95_RATIO:g}"),
            Field("min_requests", "Min requests", str(rollouts.DEFAULT_MIN_REQUESTS)),
            Field("mirror_first", "Mirror first", "0", placeholder="e.g. 10m; 0: none"),
            Field("webhook", "Webhook", placeholder="https://... (optional)"),
        ],
        build,
        submit="Start",
    )
