"""``modeldeck``: the entry point. Parse, run one command, print, exit with its code.

Only argparse and json are imported on the way to a command; the command's own module
(``cli/cmd_*.py``) and what it needs are imported when it runs. Typed errors print as
``ERROR: message`` and ``fix: ...`` on stderr with the error's exit code; anything else
prints one line too (a traceback only with ``--debug``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: flags that open the dashboard without naming the ``ui`` command (``modeldeck --readonly``)
UI_FLAGS = ("--readonly", "--workspace", "-w")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] in UI_FLAGS:
        args_list = ["ui", *args_list]  # no command: the dashboard
    import gc

    # no garbage collection while the program starts: a command's imports (httpx, asyncio,
    # the workspace client) make ~25,000 objects that live as long as the process, over
    # which the collector's passes freed next to nothing and took ~7 ms of endpoint list's
    # ~140 ms (bench/cli.py; gc.disable() in the same run); the dashboard's start-up makes
    # ~70,000, its ~90 passes freed ~1,200 and took 16-20 ms of the ~200 ms to its first
    # frame (gc.callbacks, tui_cold_start.py). On again, those objects frozen (else the
    # first pass scans them all: 2 passes, 9-13 ms), once a command's workspace is open
    # (runner.py), before its work (a --watch or --follow runs for hours); the dashboard's
    # app at its first frame, tuned (tui/app.py); and on every way out of here.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        if args_list == ["ui"]:
            # no arguments: the dashboard with the ui command's defaults, no parser built
            # (argparse and the grammar, ~4 ms of the dashboard's start: tui_cold_start.py)
            from types import SimpleNamespace

            from .cmd_daemon import ui

            return ui(SimpleNamespace(workspace=None, readonly=False))
        from .parser import build_parser

        parser = build_parser(args_list, full=args_list[0] in ("-h", "--help"))
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exc:  # --help, --version, usage errors
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if getattr(args, "_cmd", None) is None:
            # a group without a command: its help
            group_parser = getattr(args, "_group_parser", parser)
            group_parser.print_help(sys.stderr)
            return 2
        from .runner import run

        dashboard = args_list[0] == "ui"  # its app turns the collector on
        return run(args, resume_gc=_resume_gc if paused and not dashboard else None)
    finally:
        if paused:
            gc.enable()


def _resume_gc() -> None:
    import gc

    gc.freeze()
    gc.enable()


if __name__ == "__main__":
    raise SystemExit(main())
