"""The command line grammar: ``az ml`` v2's groups, commands and flags.

Only the group named on the command line gets its commands built (the others are one
line each), so a command starts fast; :func:`build_parser` with ``full=True`` builds
everything (``--help`` of the top level, and ``docgen``).

Each group's commands are declared in its module of :mod:`.grammar` (the flags they share
in :mod:`.grammar.flags`), imported only when that group is built. Each command names its
handler as ``"module:function"`` (in ``modeldeck.cli``), imported only when that command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, NoReturn

from .grammar import flags

PROG = "modeldeck"


class Parser(argparse.ArgumentParser):
    """argparse with our error format: ``ERROR: ...`` and a ``fix:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"ERROR: {message}\n  fix: see '{self.prog} --help'\n")
        raise SystemExit(2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


# --------------------------------------------------------------------------- building


Leaf = Callable[..., argparse.ArgumentParser]


class _Sink:
    """Stands in for the parser of a command that was not asked for: its arguments are not
    built (a command starts faster); it is listed in its group's help all the same."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _Sink:
        return self

    def add_mutually_exclusive_group(self, *args: Any, **kwargs: Any) -> _Sink:
        return self

    def set_defaults(self, **kwargs: Any) -> None:
        return None


def _leaf_factory(subs: Any, group: str) -> Leaf:
    wanted = getattr(subs, "modeldeck_wanted", None)

    def leaf(
        name: str,
        cmd: str,
        summary: str,
        examples: Sequence[str],
        *,
        description: str = "",
        columns: Sequence[str] | None = None,
        aliases: Sequence[str] = (),
    ) -> argparse.ArgumentParser:
        if wanted is not None and name != wanted:
            subs.add_parser(name, aliases=list(aliases), help=summary, add_help=False)
            return _Sink()  # type: ignore[return-value]
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
        p = subs.add_parser(
            name,
            aliases=list(aliases),
            help=summary,
            description=(description or summary),
            epilog=epilog,
            formatter_class=_Formatter,
        )
        p.set_defaults(_cmd=cmd, _columns=list(columns) if columns else None, _group=group)
        return p

    return leaf


# name -> (aliases, summary, the module of .grammar whose build(leaf) declares its commands)
GROUPS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "compute": (("cluster",), "Clusters: local pools and attached Kubernetes clusters", "compute"),
    "model": ((), "Registered models and their versions", "model"),
    "environment": (
        (),
        "Registered environments: what deployments' Python is built from",
        "environment",
    ),
    "online-endpoint": (("endpoint",), "Online endpoints: traffic, keys, invoke", "endpoint"),
    "online-deployment": (
        ("deployment",),
        "Deployments of an endpoint: create, update, logs",
        "deployment",
    ),
    "workspace": ((), "The workspace itself: show, list (az ml's shape)", "workspace"),
    "daemon": ((), "The local control plane (status, stop)", "daemon"),
}
ALIASES = {alias: name for name, (aliases, _, _) in GROUPS.items() for alias in aliases}

DESCRIPTION = """\
modeldeck: run machine-learning model deployments from the terminal.

With no arguments it opens the dashboard. The commands are az ml v2's (online-endpoint,
online-deployment, model, compute) with their flags and output field names, so an
existing az ml script runs with only the program name changed.
"""

EPILOG = f"""\
walkthrough:
  {PROG} cluster create --name myaks
  {PROG} model create --name sklearn-demo --path ./model
  {PROG} online-endpoint create -f endpoint.yml
  {PROG} online-deployment create --name blue --endpoint my-endpoint -f blue.yml --all-traffic
  {PROG} online-endpoint invoke --name my-endpoint --request-file sample-request.json
  {PROG} online-deployment create --name green --endpoint my-endpoint -f green.yml
  {PROG} online-endpoint update --name my-endpoint --traffic "blue=90 green=10"
  {PROG} online-endpoint update --name my-endpoint --traffic "blue=0 green=100"
  {PROG} online-deployment delete --name blue --endpoint my-endpoint --yes

see '{PROG} GROUP --help' and '{PROG} GROUP COMMAND --help'.
"""


def selected_group(argv: Sequence[str]) -> str | None:
    return selected(argv)[0]


def selected(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """(group, command) named by the first two words of ``argv``, if they are there."""
    words = [t for t in argv if not t.startswith("-")][:2]
    group = ALIASES.get(words[0], words[0]) if words else None
    if group not in GROUPS:
        return None, None
    return group, (words[1] if len(words) > 1 else None)


def build_parser(argv: Sequence[str] = (), *, full: bool = False) -> Parser:
    """The parser; only the group named in ``argv`` is built in full unless ``full``."""
    wanted, wanted_cmd = (None, None) if full else selected(argv)
    parser = Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subs = parser.add_subparsers(dest="_top", metavar="COMMAND")
    for name, (aliases, summary, module) in GROUPS.items():
        gp = subs.add_parser(
            name,
            aliases=list(aliases),
            help=summary,
            description=summary,
            formatter_class=_Formatter,
        )
        gp.set_defaults(_group_parser=gp)
        if full or wanted == name:
            gsubs = gp.add_subparsers(dest="_sub", metavar="COMMAND")
            gsubs.modeldeck_wanted = wanted_cmd  # type: ignore[attr-defined]
            import_module(f".grammar.{module}", __package__).build(_leaf_factory(gsubs, name))
            from . import azml  # az ml's flags and commands modeldeck refuses, by name

            azml.add_refused(name, gsubs, wanted_cmd)

    p = subs.add_parser(
        "serve",
        help="Run the local control plane in the foreground",
        description=(
            "Run the local control plane (state, replicas, gateway) in the foreground.\n"
            "The CLI and the dashboard start it in the background when needed."
        ),
        epilog=f"examples:\n  {PROG} serve\n  {PROG} serve --port 8080",
        formatter_class=_Formatter,
    )
    p.add_argument("--host", help="gateway address (default 127.0.0.1; others get a warning)")
    p.add_argument("--port", type=int, help="gateway port (default: a free one)")
    p.set_defaults(_cmd="cmd_daemon:serve", _columns=None, _group="serve")
    flags.add_common(p)

    p = subs.add_parser(
        "ui",
        help="Open the dashboard (also: no arguments)",
        description="Open the terminal dashboard on a workspace.",
        epilog=f"examples:\n  {PROG}\n  {PROG} --readonly\n  {PROG} ui --workspace prod --readonly",
        formatter_class=_Formatter,
    )
    p.add_argument(
        "--readonly",
        action="store_true",
        help="hide and refuse every action that changes something (safe with production)",
    )
    p.set_defaults(_cmd="cmd_daemon:ui", _columns=None, _group="ui")
    flags.add_common(p)
    return parser


def iter_commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (path, parser) pair, depth first, without aliases (docgen, tests)."""
    out: list[tuple[tuple[str, ...], argparse.ArgumentParser]] = [(prefix, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:
                    continue
                seen.add(id(sub))
                out += iter_commands(sub, (*prefix, name))
    return out
