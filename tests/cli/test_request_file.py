"""``online-endpoint invoke --request-file``: a regular file within the gateway's body limit,
refused by name otherwise (a device never ends, a FIFO with no writer never answers)."""

from __future__ import annotations

import os

import pytest

from .conftest import Cli

pytestmark = pytest.mark.e2e

FIX = "give the path of a regular file holding the request body"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("/dev/zero", "a character device"),  # read whole, it took 10.8 GB before
        ("pipe", "a FIFO (named pipe)"),  # no writer: read whole, it hung
        ("folder", "a folder"),
    ],
)
def test_a_request_file_that_is_not_a_regular_file_is_refused(
    cli: Cli, name: str, kind: str
) -> None:
    os.mkfifo(cli.cwd / "pipe")
    (cli.cwd / "folder").mkdir()
    r = cli(f"online-endpoint invoke -n my-endpoint --request-file {name}", ok=False)
    assert r.code == 2, r
    assert f"invalid --request-file '{name}': is {kind}, not a regular file" in r.err, r
    assert f"fix: {FIX}" in r.err, r


def test_a_request_file_over_the_gateways_limit_is_refused_before_sending(cli: Cli) -> None:
    cli.env["MODELDECK_GATEWAY_MAX_BODY_MB"] = "1"
    limit = 1024 * 1024
    (cli.cwd / "big.json").write_bytes(b"[" + b"0," * (limit // 2) + b"0]")
    (cli.cwd / "fits.json").write_bytes(b" " * (limit - 2) + b"{}")
    r = cli("online-endpoint invoke -n my-endpoint --request-file big.json", ok=False)
    assert r.code == 2, r
    size = (cli.cwd / "big.json").stat().st_size
    assert f"is 1 MiB ({size:,} bytes), over the gateway's request body limit of 1 MiB" in r.err
    assert "MODELDECK_GATEWAY_MAX_BODY_MB=20" in r.err and "daemon stop" in r.err, r
    # exactly at the limit: read and sent (no such endpoint here, so the workspace says so)
    r = cli("online-endpoint invoke -n my-endpoint --request-file fits.json", ok=False)
    assert r.code == 3 and "endpoint 'my-endpoint' not found" in r.err, r
