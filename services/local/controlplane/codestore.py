"""The code store: each deployment's copy of its code folder, checked before it is copied.

``DATA_DIR/code/ENDPOINT/DEPLOYMENT/DIGEST``: a copy is named by its content's digest,
so an update with the same code reuses it, and a rollback keeps the old one until the
new version runs (then the others are pruned). Replicas run from these copies, never
from the user's folder.
"""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import threading
import uuid
from pathlib import Path

from ... import inputs
from ...api.domain import DeploymentSpec
from ...api.errors import InvalidInput


class CodeStore:
    def __init__(self, root: Path, copies: set[threading.Event]) -> None:
        self.root = root
        #: the copies in progress (shared with the model copies: the daemon's stop ends them)
        self.copies = copies

    def check(self, spec: DeploymentSpec, *, parse: bool = True) -> Path:
        """The deployment's code folder, once it holds an entry script with ``init`` and
        ``run`` (parsed, not run); InvalidInput naming the field otherwise. ``parse=False``
        (az ml's --skip-script-validation): the script must be there, it is not parsed."""
        code = Path(spec.code_configuration.code or "")
        field = "code_configuration.code"
        if not spec.code_configuration.code or not code.is_absolute():
            raise InvalidInput(
                field,
                spec.code_configuration.code,
                "must be the absolute path of a folder",
                "give the folder that holds the scoring script",
            )
        if not code.is_dir():
            raise InvalidInput(
                field,
                str(code),
                "is not a folder that exists",
                "give the folder that holds the scoring script",
            )
        sfield = "code_configuration.scoring_script"
        # relative, no '..', a regular file inside the folder (links resolved)
        script = inputs.check_code(str(code), spec.code_configuration.scoring_script)
        if not parse:
            return code
        try:
            tree = ast.parse(script.read_bytes(), filename=str(script))
        except SyntaxError as exc:
            raise InvalidInput(
                sfield,
                spec.code_configuration.scoring_script,
                f"is not valid Python (line {exc.lineno}: {exc.msg})",
                "fix the syntax error",
            ) from None
        except (OSError, ValueError) as exc:
            raise InvalidInput(sfield, str(script), f"cannot be read ({exc})") from None
        defined: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.ImportFrom | ast.Import):
                defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        missing = [f for f in ("init", "run") if f not in defined]
        if missing:
            raise InvalidInput(
                sfield,
                spec.code_configuration.scoring_script,
                "an entry script defines init() and run(raw_data); this one has no "
                + " and no ".join(f"{m}()" for m in missing),
                "add def init(): (runs once) and def run(raw_data): (runs per request)",
            )
        return code

    async def destination(self, endpoint: str, name: str, src: Path) -> str:
        """The path :meth:`copy` gives ``src`` (named by its content), without copying it:
        what ``--dry-run`` prints as the deployment's code."""
        checked = await asyncio.to_thread(inputs.scan, str(src), "code_configuration.code", "code")
        digest = await asyncio.to_thread(inputs.digest, checked)
        return str(self.root / endpoint / name / digest[:16])

    async def copy(self, endpoint: str, name: str, src: Path) -> str:
        """Copy ``src`` for a deployment (the same content is stored once): its path."""
        base = self.root / endpoint / name

        field = "code_configuration.code"
        tmp = base / f".tmp-{uuid.uuid4().hex}"
        try:
            # the same rules as a model's (inputs.scan), with the code's own size cap
            checked = await asyncio.to_thread(inputs.scan, str(src), field, "code")
            base.mkdir(parents=True, exist_ok=True)
            digest = await inputs.copy_async(checked, tmp, digest=True, running=self.copies)
            dest = base / digest[:16]
            if dest.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                try:
                    os.replace(tmp, dest)
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)
                    if not dest.exists():
                        raise
            return str(dest)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise InvalidInput(
                "code_configuration.code", str(src), f"cannot be copied ({exc.strerror or exc})"
            ) from None

    def prune(self, endpoint: str, name: str, keep: str) -> None:
        """Remove the deployment's copies other than ``keep``."""
        base = self.root / endpoint / name
        if not base.is_dir():
            return
        for child in base.iterdir():
            if str(child) != keep:
                shutil.rmtree(child, ignore_errors=True)

    def remove(self, endpoint: str, name: str | None = None) -> None:
        """Remove the copies of a deployment (no ``name``: of every deployment of ``endpoint``)."""
        target = self.root / endpoint if name is None else self.root / endpoint / name
        shutil.rmtree(target, ignore_errors=True)
