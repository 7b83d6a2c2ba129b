"""The dashboard's attach form takes the cluster's tags (issue 15, point 1), as ``cluster
attach --tag KEY=VALUE`` does: ``modeldeck.io/gateway-url`` and ``modeldeck.io/gateway``."""

from __future__ import annotations

from modeldeck.services.api.domain import DriverKind
from modeldeck.tui.screens.forms import FormScreen, attach_form
from textual.app import App
from textual.widgets import Input


async def test_the_attach_form_takes_tags() -> None:
    app: App[None] = App()
    async with app.run_test(size=(120, 40)) as pilot:
        form = attach_form()
        await app.push_screen(form)
        form.query_one("#f-name", Input).value = "prod"
        form.query_one("#f-kube_context", Input).value = "aks-prod"
        form.query_one(
            "#f-tags", Input
        ).value = (
            "modeldeck.io/gateway-url=https://ml.example.com, modeldeck.io/gateway=infra/public"
        )
        await pilot.pause()
        assert isinstance(app.screen, FormScreen)
        spec = form.result
        assert spec is not None and spec.driver is DriverKind.KUBERNETES
        assert spec.tags == {
            "modeldeck.io/gateway-url": "https://ml.example.com",
            "modeldeck.io/gateway": "infra/public",
        }
        form.query_one("#f-tags", Input).value = "=nokey"
        await pilot.pause()
        assert form.result is None
        assert "KEY=VALUE" in str(form.query_one("#form-error").render())
