"""A scoring script that starts failing on demand: the treatment of the rollout tests
(tests/local/test_rollout_acceptance.py) and of bench/rollout_analysis.py.

Azure ML's entry-script contract: ``init()`` once per replica, ``run(raw_data)`` once per
request; an exception raised by ``run()`` is answered 500 (azmlinfsrv's, and the scoring
host's, "run() failed"). While the file named by ``MODELDECK_TEST_FAIL_FLAG`` exists, 3 of
every 10 requests this replica answers (the 1st, 2nd and 3rd of each ten, counted from the
moment the flag appeared) fail; otherwise (no variable, no file) every request succeeds.
"""

import itertools
import os

FLAG = os.environ.get("MODELDECK_TEST_FAIL_FLAG", "")
_failing = itertools.count()  # next() is atomic under the GIL: run() is called from threads


def init() -> None:
    pass


def run(raw_data: str) -> dict:
    if FLAG and os.path.exists(FLAG) and next(_failing) % 10 < 3:
        raise RuntimeError("failing on purpose: the flag file exists")
    return {"ok": True}
