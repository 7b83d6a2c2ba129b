"""Keys and token of one endpoint: masked, revealed for a few seconds, copied via OSC 52.

Regenerating one key asks first and names the key that keeps working, so a
client can move to it before the other is replaced (rotation without downtime).
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ...services.api.domain import AuthMode, Endpoint, EndpointKeys, EndpointToken, KeyType
from ..css import css_path
from ..widgets.secret import SecretField
from .base import ModeldeckScreen
from .dialogs import ConfirmScreen


def countdown(seconds: float) -> str:
    if seconds <= 0:
        return "now"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


class KeysScreen(ModeldeckScreen):
    CSS_PATH = css_path("views.tcss")
    VIEW_NAME = "Keys"
    POLL_INTERVAL = 30.0
    #: read-only: no key is regenerated, and none is read, revealed or copied either
    MUTATING = frozenset({"regenerate", "reveal", "copy"})
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("v", "reveal", "Reveal 5s"),
        Binding("y", "copy('primary')", "Copy primary"),
        Binding("Y", "copy('secondary')", "Copy secondary", key_display="Y"),
        Binding("r", "regenerate('primary')", "Regen primary"),
        Binding("R", "regenerate('secondary')", "Regen secondary", key_display="R"),
    ]

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.auth_mode: AuthMode | None = None
        self.token: EndpointToken | None = None

    def title_text(self) -> str:
        return f"Keys {self.endpoint_name}"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="keys-info")
        yield SecretField("primary", id="key-primary")
        yield SecretField("secondary", id="key-secondary")
        yield SecretField("token", id="key-token")
        yield Static("", id="token-times")
        yield Static(
            "[dim]Rotation without downtime: move clients to the secondary key, regenerate the primary, "
            "move them back, regenerate the secondary.[/]",
            id="keys-hint",
        )

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#key-token").display = False
        if self.mdapp.readonly:
            for field in self.query(SecretField):
                field.empty_text = "(not shown: read-only)"
        self.set_interval(1.0, self._tick)

    async def fetch(self) -> tuple[Endpoint, EndpointKeys | None, EndpointToken | None]:
        endpoint = await self.workspace.get_endpoint(self.endpoint_name)
        keys = token = None
        if self.mdapp.readonly:
            pass  # the secrets are not read at all: nothing to reveal, copy or leave on screen
        elif endpoint.auth_mode is AuthMode.KEY:
            keys = await self.workspace.get_keys(self.endpoint_name)
        elif endpoint.auth_mode is AuthMode.AML_TOKEN:
            token = await self.workspace.get_token(self.endpoint_name)
        return endpoint, keys, token

    def show(self, data: tuple[Endpoint, EndpointKeys | None, EndpointToken | None]) -> None:
        endpoint, keys, token = data
        self.auth_mode = endpoint.auth_mode
        self.token = token
        is_key = endpoint.auth_mode is AuthMode.KEY
        self.query_one("#key-primary").display = is_key
        self.query_one("#key-secondary").display = is_key
        token_auth = endpoint.auth_mode is AuthMode.AML_TOKEN
        self.query_one("#key-token").display = token is not None or (
            token_auth and self.mdapp.readonly
        )
        self.query_one("#keys-hint").display = is_key  # rotation is about keys
        info = f"endpoint [b]{endpoint.name}[/]  auth mode [b]{endpoint.auth_mode}[/]"
        if endpoint.auth_mode is AuthMode.NONE:
            info += "\n[yellow]auth mode none: the scoring URI answers without a key[/]"
        self.query_one("#keys-info", Static).update(info)
        if keys is not None:
            self.query_one("#key-primary", SecretField).set_secret(keys.primaryKey)
            self.query_one("#key-secondary", SecretField).set_secret(keys.secondaryKey)
        if token is not None:
            self.query_one("#key-token", SecretField).set_secret(token.accessToken)
        self._tick()

    def _tick(self) -> None:
        if self.token is None:
            text = ""
        else:
            now = time.time()
            text = (
                f"expires in [b]{countdown(self.token.expiryTimeUtc - now)}[/]   "
                f"refresh by: in [b]{countdown(self.token.refreshAfterTimeUtc - now)}[/]"
            )
        if text != getattr(self, "_times_text", None):  # key auth: nothing redrawn each second
            self._times_text = text
            self.query_one("#token-times", Static).update(text, layout=False)
        if self.token is not None and self.token.refreshAfterTimeUtc <= time.time() and self.loaded:
            self.poll_now()

    def set_error(self, exc: BaseException | None) -> None:
        """The keys cannot be read now (the endpoint was deleted elsewhere, the control
        plane is down): the ones shown may be dead or someone else's now; forget them."""
        super().set_error(exc)
        if exc is not None:
            for field in self.query(SecretField):
                field.hide()
                field.set_secret("")
            self.token = None

    def _fields(self) -> list[SecretField]:
        return [f for f in self.query(SecretField) if f.display]

    def action_reveal(self) -> None:
        if not self.mdapp.allow_mutation("revealing keys"):
            return
        for field in self._fields():
            field.toggle()

    def action_copy(self, which: str) -> None:
        if not self.mdapp.allow_mutation("copying keys"):
            return
        field_id = "#key-token" if self.token is not None else f"#key-{which}"
        field = self.query_one(field_id, SecretField)
        if field.copy():
            self.notify(f"{field.label} copied to the terminal clipboard (OSC 52)")
        else:
            self.notify("nothing to copy", severity="warning")

    def action_regenerate(self, which: str) -> None:
        if not self.mdapp.allow_mutation("regenerate key"):
            return
        if self.auth_mode is not AuthMode.KEY:
            self.notify(
                f"auth mode is {self.auth_mode}: there are no keys to regenerate",
                severity="warning",
            )
            return
        other = "secondary" if which == "primary" else "primary"
        msg = (
            f"Regenerate the [b]{which}[/] key of '{self.endpoint_name}'.\n\n"
            f"The current {which} key stops working at once.\n"
            f"The [b]{other}[/] key keeps working: move clients to it first."
        )
        name = self.endpoint_name
        key_type = KeyType(which)

        def shown(keys: EndpointKeys) -> None:
            self.query_one("#key-primary", SecretField).set_secret(keys.primaryKey)
            self.query_one("#key-secondary", SecretField).set_secret(keys.secondaryKey)

        self.on_answer(
            ConfirmScreen(f"Regenerate {which} key?", msg, "Regenerate"),
            lambda _: self.mdapp.run_call(
                f"regenerate {which} key of {name}",
                lambda: self.workspace.regenerate_keys(name, key_type),
                shown,
            ),
        )
