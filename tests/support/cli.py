"""The installed ``modeldeck`` console script as a user runs it, and what a run answered."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TIMEOUT_S = 120.0  # only to avoid hangs, never asserted on


def modeldeck_command() -> list[str]:
    """The console script of this interpreter's environment (else PATH's, else ``-m``)."""
    script = Path(sys.executable).parent / "modeldeck"
    if script.exists():
        return [str(script)]
    found = shutil.which("modeldeck")
    if found:
        return [found]
    return [sys.executable, "-m", "modeldeck.cli.main"]


@dataclass
class Result:
    argv: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def docs(self) -> list[dict]:
        """The YAML documents of stdout (``-o yaml`` of a list)."""
        return [d for d in yaml.safe_load_all(self.out) if d]

    def __str__(self) -> str:
        return (
            f"$ modeldeck {' '.join(self.argv)}\nexit {self.code}\n"
            f"--- stdout\n{self.out}\n--- stderr\n{self.err}"
        )
