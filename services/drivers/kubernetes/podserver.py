"""The scoring server of modeldeck's Kubernetes pods: :mod:`modeldeck.services.scoring.host`.

The pods run the same scoring host as local replicas (shipped in the deployment's
ConfigMap as ``host.py`` and run with the image's ``python``, no arguments: it reads its
settings from the environment, see ``host.pod_main``). This module only keeps the names
other code imported from here.
"""

from __future__ import annotations

from ...scoring.host import BUCKETS, Keys, Stats, pod_main

__all__ = ["BUCKETS", "Keys", "Stats", "main"]

main = pod_main
