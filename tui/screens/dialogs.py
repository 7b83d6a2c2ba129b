"""Confirmation and one-line prompt dialogs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..css import css_path
from ..widgets.inputs import OrderedInput

if TYPE_CHECKING:
    from ...services.api.health import DeploymentHealth


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = css_path("dialogs.tcss")
    """Asks before a destructive action; says what happens and what keeps running."""

    BINDINGS = [
        Binding("escape", "answer(False)", "Cancel"),
        Binding("n", "answer(False)", "No", show=False),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, message: str, confirm: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/]", classes="dialog-title")
            yield Static(self.message, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm} (y)", variant="error", compact=True, id="yes")
                yield Button("Cancel (esc)", compact=True, id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TypedConfirmScreen(ModalScreen[bool]):
    """A dangerous action (deleting what serves traffic) is confirmed by typing the name of
    what goes, not by one ``y`` (the Azure portal asks so before deleting a resource group)."""

    CSS_PATH = css_path("dialogs.tcss")
    BINDINGS = [Binding("escape", "answer(False)", "Cancel")]

    def __init__(self, title: str, message: str, name: str, confirm: str = "Delete") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.expected = name
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/]", classes="dialog-title")
            yield Static(self.message, classes="dialog-body")
            yield Label(f"Type [b]{escape(self.expected)}[/] to confirm:", classes="typed-label")
            yield OrderedInput(placeholder="the name, then Enter", compact=True, id="typed-name")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm, variant="error", compact=True, id="yes", disabled=True)
                yield Button("Cancel (esc)", compact=True, id="no")

    def on_mount(self) -> None:
        self.query_one("#typed-name", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#yes", Button).disabled = event.value.strip() != self.expected

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.expected:
            self.dismiss(True)
        else:
            self.notify(f"type '{self.expected}' exactly, or Esc", severity="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitConfirm(ConfirmScreen):
    """Asked before quitting with work not applied (``ModeldeckScreen.unsaved``)."""


class PromptScreen(ModalScreen[str | None]):
    CSS_PATH = css_path("dialogs.tcss")
    """One value (e.g. a replica count or a file name)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, label: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.label = label
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/]", classes="dialog-title")
            yield Label(self.label)
            yield OrderedInput(
                self.value, placeholder=self.placeholder, compact=True, id="prompt-input"
            )
            yield Static("Enter: OK   Esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


def risky_traffic_dialog(risks: Sequence[DeploymentHealth]) -> ConfirmScreen:
    """Asks before a traffic change that gives deployments not ready or failing more traffic
    (``services.api.health.traffic_risks_now``), naming each, its READY x/y and last error;
    no answer applies nothing (as ``update --traffic`` without --force)."""
    lines = "\n".join(f"[b]{escape(h.name)}[/]: {escape(h.detail())}" for h in risks)
    return ConfirmScreen(
        "Send traffic to a deployment that is not ready?",
        f"{lines}\n\nRequests sent there will fail. Nothing is applied unless you confirm.",
        "Apply anyway",
    )
