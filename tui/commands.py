"""The command palette (ctrl+p): every action of the current screen and every view."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .screens.base import ModeldeckScreen


class ModeldeckCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        out: list[tuple[str, str, Callable[[], Any]]] = []
        screen = self.screen
        if isinstance(screen, ModeldeckScreen):
            for title, help_text, action in screen.actions_for_palette():
                out.append((title, help_text, partial(screen.run_action, action)))
        app = self.app
        for title, action in (
            (":endpoints", "view('endpoints')"),
            (":deployments", "view('deployments')"),
            (":clusters", "view('clusters')"),
            (":models", "view('models')"),
            (":metrics", "view('metrics')"),
            ("Help: keys of this screen", "screen.help"),
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
