"""The scoring host: Azure ML's entry-script contract, for local replicas and pods alike.

``host.py`` is run as a file by the deployment's own Python (standard library only).
"""

from __future__ import annotations

from pathlib import Path

#: the file to run: ``<python> HOST ...``
HOST = Path(__file__).with_name("host.py")
