"""What a command that reads (``endpoint list``) imports on its way: not the modules only
other commands need (bench/cli.py times it against ``python -c "import httpx"``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    ):
        assert module not in loaded, module
