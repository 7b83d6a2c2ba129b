"""The installed ``modeldeck`` console script as a user runs it, and what a run answered."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
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


class ConsoleScript:
    """The real ``modeldeck`` console script, run in ``cwd`` with its own MODELDECK_HOME
    (plus ``env``); the subclass says what a command must answer."""

    def __init__(self, home: Path, cwd: Path, **env: str) -> None:
        self.home = home
        self.cwd = cwd
        self.env = {**os.environ, "MODELDECK_HOME": str(home), **env}
        self.env.pop("MODELDECK_WORKSPACE", None)

    def run(self, command: str, stdin: str | None = None) -> Result:
        """Run ``modeldeck COMMAND`` (split as a shell would); never a traceback."""
        argv = shlex.split(command)
        proc = subprocess.run(
            [*modeldeck_command(), *argv],
            cwd=self.cwd,
            env=self.env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        result = Result(list(argv), proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, str(result)
        return result

    def answered(self, command: str, answer: str) -> Result:
        """Run ``modeldeck COMMAND`` with a terminal (a pty) as its input and type ``answer``
        and Enter there, as an operator answers a confirmation."""
        primary, replica = os.openpty()
        try:
            proc = self.popen(command, stdin=replica)
            os.write(primary, answer.encode() + b"\n")
            out, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            os.close(primary)
            os.close(replica)
        result = Result(shlex.split(command), proc.returncode, out, err)
        assert "Traceback" not in err, str(result)
        return result

    def popen(self, command: str, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
        """A command left running (``--follow``), or one that talks to a terminal."""
        return subprocess.Popen(
            [*modeldeck_command(), *shlex.split(command)],
            cwd=self.cwd,
            env=self.env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
