"""Run one parsed command: open the workspace, call the handler, print its result."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from ..services.api.errors import ModeldeckError, NotFound

Handler = Callable[[argparse.Namespace, Any], Awaitable[Any]]


def error_text(exc: ModeldeckError) -> str:
    """The ``ERROR:`` text. A missing resource in az's shape: az ml lets the service's 404
    through, which azure-cli prints as azure-core renders ARM's OData error
    (``ODataV4Format.__str__``: ``(Code) message``, then ``Code:`` and ``Message:`` lines)
    and exits 3 (``ResourceNotFoundError``, azure-cli-core ``util.handle_exception``).
    ARM's own code and message when it answered (Azure ML), else ours in that frame."""
    if isinstance(exc, NotFound):
        arm = exc.details.get("arm_error") or {}
        code = str(arm.get("code") or "ResourceNotFound")
        message = str(arm.get("message") or exc.message)
        return f"({code}) {message}\nCode: {code}\nMessage: {message}"
    return exc.message


def _print_error(exc: ModeldeckError) -> None:
    sys.stderr.write(f"ERROR: {error_text(exc)}\n")
    if exc.fix:
        sys.stderr.write(f"  fix: {exc.fix}\n")
    sys.stderr.flush()


#: the loggers ``--debug`` shows at DEBUG: ours, httpx's one line per request, and
#: azure-identity's sign-in (none of them logs a key, token or SAS: see
#: tests/azureml/test_secrets_not_logged.py); httpcore's per-socket steps stay out
DEBUG_LOGGERS = ("modeldeck", "httpx", "azure")


def debug_logging(level: int = 10) -> None:
    """``--debug``: log lines on stderr as az prints them (``DEBUG: logger: message``),
    the HTTP requests included; az logs its requests the same way (``az ... --debug``).
    ``--verbose`` is the same at INFO (20): az's "increase logging verbosity" (knack's
    ``--verbose`` sets its loggers to INFO), the requests without the details."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
    handler.set_name("modeldeck --debug")
    for name in DEBUG_LOGGERS:
        log = logging.getLogger(name)
        log.setLevel(level)
        # once per process (main() may run again in it: the tests, an embedding app)
        log.handlers = [h for h in log.handlers if h.get_name() != handler.get_name()]
        log.addHandler(handler)
        log.propagate = False


def run(args: argparse.Namespace, resume_gc: Callable[[], None] | None = None) -> int:
    """``resume_gc``: turns the garbage collector on again (main() turns it off while a
    command starts), called once the command's workspace is open, or before a command
    that opens none runs."""
    module_name, _, func_name = args._cmd.partition(":")
    debug = bool(getattr(args, "debug", False))
    if debug:
        debug_logging()
    elif getattr(args, "verbose", False):
        debug_logging(20)  # logging.INFO, without importing logging on the cold path
    try:
        module = importlib.import_module(f"modeldeck.cli.{module_name}")
        handler = getattr(module, func_name)
        if getattr(handler, "standalone", False):
            if resume_gc is not None:
                resume_gc()
            result = handler(args)
        else:
            result = asyncio.run(_with_workspace(handler, args, resume_gc))
        if isinstance(result, int) and not isinstance(result, bool):
            return result
        if result is not None:
            from .output import render

            text = render(result, args.output, args.query, args._columns)
            if text:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
        return 0
    except ModeldeckError as exc:  # a typed error is an answer, not a bug: no traceback
        if debug:
            import logging

            logging.getLogger("modeldeck.cli").debug(
                "%s (exit %d): %s", exc.code, exc.exit_code, exc.details or "no details"
            )
        _print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        if getattr(args, "follow", False):
            return 0  # Ctrl-C is how a --follow ends
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # `modeldeck ... | head`: the reader went away, that is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # an unexpected failure: one line, the traceback with --debug
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"ERROR: unexpected {type(exc).__name__}: {exc}\n")
        sys.stderr.write("  fix: run again with --debug for the traceback, and report it\n")
        return 1


async def _with_workspace(
    handler: Handler, args: argparse.Namespace, resume_gc: Callable[[], None] | None = None
) -> Any:
    from .common import open_ws

    try:
        ws = open_ws(args)
    finally:
        if resume_gc is not None:
            resume_gc()
    try:
        return await handler(args, ws)
    finally:
        await ws.close()
