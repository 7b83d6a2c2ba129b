"""The ``:`` commands typed at the dashboard's prompt, k9s style: ``:endpoints``, ``:logs
NAME``, ``:traffic EP``, ``:rollout [EP]``, ``:metrics [EP]``, ``:history [EP]``; a prefix
names the one it starts (``:tr`` is ``:traffic``). ``ModeldeckApp.run_command`` hands them
here (imported on the first command)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .app import VIEWS

if TYPE_CHECKING:
    from .app import ModeldeckApp

#: the other ``:`` commands (``run_command``), for prefixes: ``:tr`` is ``:traffic``
VERBS = ("logs", "traffic", "keys", "rollout", "help", "theme", "quit", "workspace")
ALIASES = {
    "ep": "endpoints",
    "endpoint": "endpoints",
    "online-endpoint": "endpoints",
    "dp": "deployments",
    "deploy": "deployments",
    "deployment": "deployments",
    "online-deployment": "deployments",
    "cl": "clusters",
    "cluster": "clusters",
    "compute": "clusters",
    "mo": "models",
    "model": "models",
    "mx": "metrics",
}


def run_command(app: ModeldeckApp, text: str) -> None:
    """``:`` commands, k9s style: ``:endpoints``, ``:logs NAME``, ``:metrics [ENDPOINT]``."""
    words = text.split()
    if not words:
        return
    verb, args = words[0].lower().lstrip(":"), words[1:]
    verb = ALIASES.get(verb, verb)
    if verb not in VIEWS and verb not in VERBS:  # k9s: a prefix names the one it starts
        starting = sorted({v for v in (*VIEWS, *VERBS) if v.startswith(verb)})
        if len(starting) == 1:
            verb = starting[0]
        elif starting:
            app.notify(f"':{verb}' could be :{' :'.join(starting)}", severity="warning")
            return
    if verb in VIEWS and not (verb == "metrics" and args):
        if verb == "endpoints" and args:
            app.open_endpoint(args[0])
        else:
            app.action_view(verb)
    elif verb in ("q", "quit", "exit"):
        app.call_later(app.action_quit)
    elif verb in ("help", "?"):
        app.screen.run_action("help")
    elif verb == "theme":
        app.theme = "textual-light" if args[:1] == ["light"] else "textual-dark"
    elif verb == "metrics":
        app.open_metrics(args[0])
    elif verb == "history":
        app.open_history(args[0] if args else None)
    elif verb in ("workspace", "ws") and args:
        app.switch_workspace(args[0])
    elif verb in ("logs", "log", "traffic", "keys", "rollout", "ep") and args:
        opening = _resolve_and_open(app, verb, args[0])
        app.run_worker(opening, group="resolve", exclusive=True, exit_on_error=False)
    elif verb == "rollout":
        if here := _endpoint_here(app):
            app.open_rollout(here)
        else:
            app.notify("which endpoint?\nfix: :rollout ENDPOINT", severity="warning")
    else:
        app.notify(
            f"unknown command ':{text}'\nfix: try :endpoints :deployments :clusters :models "
            r":metrics :history \[EP] :rollout EP :logs NAME",  # \[: not markup
            severity="warning",
        )


def _endpoint_here(app: ModeldeckApp) -> str | None:
    """The endpoint the screen on top is about (its highlighted row's, on a list)."""
    view = app.top_view()
    target = getattr(view, "target_endpoint", None)
    return getattr(view, "endpoint_name", None) or (target() if target else None)


async def _resolve_and_open(app: ModeldeckApp, verb: str, name: str) -> None:
    """``NAME`` may be ``endpoint/deployment``, a deployment name or an endpoint name."""
    try:
        if verb in ("traffic", "keys", "rollout"):
            endpoint = (await app.workspace.get_endpoint(name.split("/")[0])).name
            opens = {"traffic": app.open_traffic, "rollout": app.open_rollout}
            opens.get(verb, app.open_keys)(endpoint)
            return
        if "/" in name:
            ep, dep = name.split("/", 1)
            await app.workspace.get_deployment(ep, dep)
            app.open_logs(ep, dep)
            return
        matches = [d for d in await app.workspace.list_deployments() if d.name == name]
        if len(matches) == 1:
            app.open_logs(matches[0].endpoint_name, name)
        elif not matches:
            app.notify(
                f"no deployment named '{name}'\nfix: see :deployments, or write ENDPOINT/DEPLOYMENT",
                severity="error",
            )
        else:
            eps = ", ".join(sorted(d.endpoint_name for d in matches))
            app.notify(
                f"'{name}' exists on several endpoints ({eps})\nfix: write ENDPOINT/{name}",
                severity="warning",
            )
    except Exception as exc:
        app.show_error(exc)
