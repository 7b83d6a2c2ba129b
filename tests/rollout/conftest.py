"""Fixtures of the rollout runner's tests: a real daemon in a temporary home (one per module,
tests/support/daemon.py) and a client of it."""

from __future__ import annotations

from tests.support.daemon import daemon_home, workspace

__all__ = ["daemon_home", "workspace"]
