"""``--debug`` as az has it (issue 16, point 7): log lines of what is done, the HTTP requests
included, on stderr; a typed error prints as an error (no traceback); the traceback is for
an unexpected failure. az: ``AzCLIError.print_error`` logs the error (``logger.error``),
and ``az ... --debug`` shows each request (azure-core's HttpLoggingPolicy); "The command
failed with an unexpected error. Here is the traceback" is for anything else.

The real console script in a subprocess, signed in through a fake ``az``, against the
fake ARM (tests/azureml/test_cli_e2e.py's harness).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.azureml.test_cli_e2e import AzCli, _profile


def _jwt(claims: dict[str, str]) -> str:
    """A token shaped as Entra ID's (azure-identity decodes its claims to log who signed in)."""
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{part}.c2ln"


TOKEN = _jwt({"tid": "t-1", "oid": "o-1", "upn": "tester@contoso.com", "appid": "a-1"})


@pytest.fixture
def cli(tmp_path: Path, seeded: Any) -> AzCli:
    seeded.valid_tokens.add(TOKEN)
    cli = AzCli(tmp_path, token=TOKEN)
    cli.write_config(_profile(seeded))
    return cli


async def test_debug_logs_the_requests_and_a_typed_error_has_no_traceback(
    cli: AzCli, seeded: Any
) -> None:
    code, _, err = await cli.run("online-endpoint", "show", "-n", "nope", "--debug")
    assert code == 3, err  # NotFound
    assert "Traceback" not in err
    lines = err.splitlines()
    # each ARM request, as az --debug logs them, with the ids ARM's support asks for
    assert any(
        line.startswith("DEBUG: modeldeck.services.azureml.arm: GET ")
        and "/onlineEndpoints/nope -> 404 (x-ms-client-request-id " in line
        for line in lines
    ), err
    assert any(line.startswith("INFO: httpx: HTTP Request: GET ") for line in lines), err
    # the error comes last, as an error (az's shape of a 404: issue 12), with its fix
    assert lines[-4].startswith("ERROR: (ResourceNotFound) ")
    assert lines[-3:-1] == [
        "Code: ResourceNotFound",
        lines[-4].replace("ERROR: (ResourceNotFound)", "Message:"),
    ]
    assert lines[-1] == "  fix: list what exists with: modeldeck online-endpoint list"
    assert TOKEN not in err and TOKEN.split(".")[1] not in err


async def test_without_debug_no_log_lines(cli: AzCli) -> None:
    code, _, err = await cli.run("online-endpoint", "show", "-n", "nope")
    assert code == 3
    assert err.splitlines()[3:] == [
        "  fix: list what exists with: modeldeck online-endpoint list",
    ]
    assert err.startswith("ERROR: (ResourceNotFound) ") and "DEBUG" not in err


async def test_an_unexpected_failure_shows_its_traceback_with_debug_only(
    cli: AzCli, seeded: Any
) -> None:
    seeded.endpoints["broken"] = 42  # a list item that is not an object: a bug's path
    code, _, err = await cli.run("online-endpoint", "list", "--debug")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "ERROR: unexpected " in err
    code, _, err = await cli.run("online-endpoint", "list")
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1] == "  fix: run again with --debug for the traceback, and report it"


async def test_verbose_logs_the_requests_without_the_details(cli: AzCli) -> None:
    """az's ``--verbose`` ("increase logging verbosity"; knack sets its loggers to INFO):
    the requests' INFO lines on stderr, not --debug's DEBUG details; it was accepted and
    ignored (a hidden flag that did nothing)."""
    code, _, err = await cli.run("online-endpoint", "show", "-n", "nope", "--verbose")
    assert code == 3 and "Traceback" not in err
    lines = err.splitlines()
    assert any(line.startswith("INFO: httpx: HTTP Request: GET ") for line in lines), err
    assert not any(line.startswith("DEBUG: ") for line in lines), err
    assert lines[-1] == "  fix: list what exists with: modeldeck online-endpoint list"
    assert TOKEN not in err and TOKEN.split(".")[1] not in err
