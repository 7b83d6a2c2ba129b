"""The command palette (ctrl+p): every action of the current screen, then every action of
the other views (run after switching to that view, on its highlighted row), every view."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .screens.base import ModeldeckScreen


def _view_classes() -> dict[str, type[ModeldeckScreen]]:
    """The top-level views' classes (imported now: the palette opens after the first frame)."""
    import importlib

    from .app import VIEWS

    return {
        name: getattr(importlib.import_module(f"modeldeck.tui.screens.{module}"), cls)
        for name, (module, cls) in VIEWS.items()
    }


def _in_view(app: Any, view: str, action: str) -> None:
    """Switch to ``view`` (its list), then run ``action`` there once it is on screen."""
    app.action_view(view)
    app.call_after_refresh(lambda: app.screen.run_action(action))


class ModeldeckCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        out: list[tuple[str, str, Callable[[], Any]]] = []
        screen = self.screen
        if isinstance(screen, ModeldeckScreen):
            for title, help_text, action in screen.actions_for_palette():
                out.append((title, help_text, partial(screen.run_action, action)))
        app = self.app
        for view, cls in _view_classes().items():
            if isinstance(screen, cls):
                continue
            for title, help_text, action in cls.palette_actions(getattr(app, "readonly", False)):
                out.append((title, help_text, partial(_in_view, app, view, action)))
        for title, action in (
            (":endpoints", "view('endpoints')"),
            (":deployments", "view('deployments')"),
            (":clusters", "view('clusters')"),
            (":models", "view('models')"),
            (":metrics", "view('metrics')"),
            ("Help: keys of this screen", "screen.help"),
            ("Start the local control plane", "start_control_plane"),
            ("Quit", "quit"),
        ):
            out.append((title, "", partial(app.run_action, action)))
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text or None)
