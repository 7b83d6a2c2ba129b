"""The client stays light: the CLI's cold start imports it on every command."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("aiohttp", "yaml", "psutil", "anyio", "textual", "kubernetes", "sqlite3", "jmespath")


def test_importing_the_client_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import modeldeck.services.local.client\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_daemon_helpers_import_without_the_server() -> None:
    code = (
        "import sys\n"
        "from modeldeck.services.local.controlplane.daemon import daemon_status, ensure_daemon, stop_daemon\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'sqlite3', 'httpx'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
