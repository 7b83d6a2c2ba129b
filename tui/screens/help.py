"""``?``: every key of the screen underneath, and the global ones."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from ..css import css_path

GLOBAL_KEYS = [
    (":", "jump: :endpoints :deployments :clusters :models"),
    ("", r":metrics \[EP]  :logs NAME  :traffic EP  :keys EP"),  # \[: not markup
    ("", r":history \[EP]  :rollout \[EP]  :workspace NAME"),
    ("", ":theme light|dark  :quit"),
    ("/", "filter: case-insensitive regex, !regex inverts; Esc clears"),
    ("?", "this help"),
    ("ctrl+p", "command palette: every action"),
    ("1-5", "endpoints, deployments, clusters, models, metrics"),
    ("escape", "clear the filter, then back"),
    ("ctrl+t", "light/dark theme"),
    ("S", "start the local control plane (after modeldeck daemon stop)"),
    ("q, ctrl+c", "quit (deployments keep running)"),
]


class HelpScreen(ModalScreen[None]):
    CSS_PATH = css_path("dialogs.tcss")
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        readonly = getattr(self.app, "readonly", False)
        mutating = getattr(self.under, "MUTATING", frozenset())
        lines = [f"[b]{getattr(self.under, 'VIEW_NAME', '') or 'Screen'} keys[/]"]
        seen: set[str] = set()
        for binding in self.under.BINDINGS:
            if not isinstance(binding, Binding) or binding.action in (
                "command_mode",
                "filter_mode",
                "help",
            ):
                continue
            name = binding.action.split("(")[0]
            key = binding.key_display or binding.key
            if key in seen:
                continue
            seen.add(key)
            off = "  [dim](read-only: disabled)[/]" if readonly and name in mutating else ""
            lines.append(f"  [b]{key:<12}[/] {binding.description}{off}")
        lines.append("")
        lines.append("[b]Everywhere[/]")
        lines.extend(f"  [b]{k:<12}[/] {d}" for k, d in GLOBAL_KEYS)
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines), id="help-text")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
