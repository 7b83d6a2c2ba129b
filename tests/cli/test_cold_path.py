"""What a command that reads (``endpoint list``) imports on its way: not the modules only
other commands need (bench/cli.py times it against ``python -c "import httpx"``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.daemon import running_home

PROBE = """
import sys
from modeldeck.cli.parser import build_parser
args = build_parser(["endpoint", "list"]).parse_args(["endpoint", "list", "-o", "json"])
import modeldeck.cli.runner, modeldeck.cli.cmd_endpoint, modeldeck.cli.output
from modeldeck.cli.common import open_ws
ws = open_ws(args)
print(type(ws).__name__)
print(" ".join(sorted(m for m in sys.modules if m.startswith(("modeldeck", "tomllib")))))
"""


def test_listing_endpoints_imports_only_what_it_uses(tmp_path: Path) -> None:
    env = {**os.environ, "MODELDECK_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "LocalWorkspace"
    loaded = set(out[1].split())
    assert "modeldeck.services.local.client" in loaded and "modeldeck.cli.shapes" in loaded
    # the rollout types, the file rules, the VM sizes table, TOML without a config file, the
    # dashboard: each imported by what uses it
    for module in (
        "modeldeck.services.api.rollouts",
        "modeldeck.services.inputs",
        "modeldeck.services.vmsizes",
        "tomllib",
        "modeldeck.tui.app",
        *DOMAIN_GROUPS,
    ):
        assert module not in loaded, module


#: the domain types' groups other than the endpoints' (services/api/domain.py): each frozen
#: dataclass defined costs its methods' compilation, about 1 ms, at every start
DOMAIN_GROUPS = tuple(
    f"modeldeck.services.api.{group}"
    for group in ("assets", "clusters", "deployments", "operations", "streams")
)

LIST = """
import sys
from modeldeck.cli.main import main
import dataclasses
code = main(["endpoint", "list", "-o", "json"])
print(" ".join(m for m in sys.modules if m.startswith("modeldeck")), file=sys.stderr)
api = [m for name, m in sys.modules.items() if name.startswith("modeldeck.services.api.")]
types = {v.__name__ for m in api for v in vars(m).values() if dataclasses.is_dataclass(v)}
print(" ".join(types), file=sys.stderr)
raise SystemExit(code)
"""


def test_endpoint_list_defines_only_the_endpoint_types(tmp_path: Path) -> None:
    """The whole command against a real daemon: the request, the shapes, the JSON."""
    with running_home(tmp_path / "home"):
        md = [sys.executable, "-m", "modeldeck.cli.main"]
        subprocess.run([*md, "endpoint", "create", "-n", "ep1", "-o", "none"], check=True)
        run = subprocess.run(
            [sys.executable, "-c", LIST], capture_output=True, text=True, check=True
        )
    assert [e["name"] for e in json.loads(run.stdout)] == ["ep1"]
    loaded, defined = (set(line.split()) for line in run.stderr.split("\n")[-3:-1])
    assert "modeldeck.services.local.client" in loaded
    assert not loaded & set(DOMAIN_GROUPS), loaded & set(DOMAIN_GROUPS)
    endpoints = {"Endpoint", "EndpointSpec", "EndpointPatch", "EndpointKeys", "EndpointToken"}
    assert defined == {*endpoints, "Identity"}


GC = """
import gc, sys
unfrozen = []  # collections while start-up's objects were not frozen (each pass scans them)
gc.callbacks.append(
    lambda phase, info: phase == "start" and gc.get_freeze_count() == 0 and unfrozen.append(1)
)
first_request = []
def hook(event, args):
    if event == "socket.connect" and not first_request:
        first_request.append((gc.isenabled(), gc.get_freeze_count()))
sys.addaudithook(hook)
from modeldeck.cli.main import main
unfrozen.clear()  # Python's own start-up's, before main()
code = main(["endpoint", "list", "-o", "json"])
print(len(unfrozen), *first_request[0], gc.isenabled(), file=sys.stderr)
raise SystemExit(code)
"""


def test_a_command_starts_without_collections_and_runs_with_the_collector_on(
    tmp_path: Path,
) -> None:
    """No garbage collection over the objects a command makes while it imports and parses
    (they live as long as it: passes over them cost ~7 ms of endpoint list and freed
    nothing); the collector is on, with those objects frozen, when it talks to the control
    plane (a --watch runs for hours) and after main() returns (main runs in other programs
    too)."""
    with running_home(tmp_path / "home"):
        run = subprocess.run([sys.executable, "-c", GC], capture_output=True, text=True, check=True)
    unfrozen, enabled, frozen, after = run.stderr.split()
    assert unfrozen == "0", f"{unfrozen} collections over start-up's objects"
    assert enabled == "True" and int(frozen) > 10_000, (enabled, frozen)
    assert after == "True"
