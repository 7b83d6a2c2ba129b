"""One replica of a local deployment: :mod:`modeldeck.services.scoring.host`.

The supervisor runs the scoring host file itself (``<python> services/scoring/host.py
--code-dir D --scoring-script score.py --model-dir M --socket PATH ...``), so that it can
run in a deployment's own Python environment; see that module for the contract. This
module keeps ``python -m modeldeck.services.local.dataplane.replica ...`` working (same arguments).
"""

from __future__ import annotations

from ...scoring.host import (
    AZMLINFSRV_PACKAGE,
    EXIT_BAD_SCRIPT,
    EXIT_BIND_FAILED,
    EXIT_INIT_FAILED,
    EXIT_RUNTIME_MISSING,
    main,
)

__all__ = [
    "AZMLINFSRV_PACKAGE",
    "EXIT_BAD_SCRIPT",
    "EXIT_BIND_FAILED",
    "EXIT_INIT_FAILED",
    "EXIT_RUNTIME_MISSING",
    "main",
]

if __name__ == "__main__":
    main()
