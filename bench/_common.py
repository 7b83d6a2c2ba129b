"""What several benchmarks share: a temporary MODELDECK_HOME for a real daemon.

Imported as ``from _common import ...`` (the bench folder on ``sys.path``, as the
dashboard benches import ``_tui_pty``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def daemon_home(prefix: str) -> Iterator[Path]:
    """MODELDECK_HOME is a new temporary folder for the duration (a short path: a Unix
    socket path is bounded); after, its daemon is stopped, the variable put back as it
    was and the folder removed."""
    from modeldeck.services.local.controlplane import daemon

    home = Path(tempfile.mkdtemp(prefix=prefix))
    saved = os.environ.get("MODELDECK_HOME")
    os.environ["MODELDECK_HOME"] = str(home)
    try:
        yield home
    finally:
        daemon.stop_daemon()
        if saved is None:
            os.environ.pop("MODELDECK_HOME", None)
        else:
            os.environ["MODELDECK_HOME"] = saved
        shutil.rmtree(home, ignore_errors=True)
