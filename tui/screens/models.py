"""Models: every version of every registered model; register from a path."""

from __future__ import annotations

from textual.binding import Binding

from ...services.api.domain import Model, ModelSpec
from .dialogs import ConfirmScreen
from .resource_list import ResourceListScreen


class ModelsScreen(ResourceListScreen):
    VIEW_NAME = "Models"
    EMPTY_TEXT = "no models: press c to register a file or folder"
    COLUMNS = [
        ("name", "NAME"),
        ("version", "VERSION"),
        ("ref", "REFERENCE"),
        ("description", "DESCRIPTION"),
    ]
    MUTATING = frozenset({"register", "delete"})
    BINDINGS = [
        Binding("c", "register", "Register"),
        Binding("ctrl+d", "delete", "Delete version"),
    ]

    async def fetch(self) -> list[Model]:
        return await self.workspace.list_models()

    def show(self, models: list[Model]) -> None:
        self.models = {f"{m.name}:{m.version}": m for m in models}
        self.sync_rows(
            {
                f"{m.name}:{m.version:06d}": (m.name, str(m.version), m.ref, m.description)
                for m in models
            }
        )

    def action_register(self) -> None:
        if not self.mdapp.allow_mutation("register model"):
            return
        from .forms import model_form

        def register(spec: ModelSpec) -> None:
            self.mdapp.run_call(
                f"register model {spec.name}", lambda: self.workspace.create_model(spec)
            )

        self.on_answer(model_form(), register)

    def action_delete(self) -> None:
        key = self.need_selection()
        if key is None or not self.mdapp.allow_mutation("delete model"):
            return
        name, _, version = key.partition(":")
        ver = int(version)
        self.on_answer(
            ConfirmScreen(
                f"Delete {name}:{ver}?",
                f"Delete model version {name}:{ver}. Refused while a deployment uses it.",
                "Delete",
            ),
            lambda _: self.mdapp.run_call(
                f"delete model {name}:{ver}", lambda: self.workspace.delete_model(name, ver)
            ),
        )
