"""Every fix the Azure ML back end can print names a command that exists (issue 16, point 4).

The fix texts are collected statically: every ``fix=`` (and ``InvalidInput``'s fourth
argument) in ``services/azureml/**`` and in each ``services`` module it imports, followed
through local variables and the functions that compute them (``hint_for``), plus the
``NotFound`` fix of every resource kind the Azure ML code names (built by calling the code).
For each ``modeldeck GROUP [COMMAND]`` a text names, the command's ``--help`` runs, and every
flag the text gives it is one that command takes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from modeldeck.cli.main import main
from modeldeck.cli.parser import ALIASES, build_parser, iter_commands
from modeldeck.services.api.errors import NotFound
from modeldeck.services.azureml.arm import Lro, error_from_arm
from modeldeck.services.azureml.session import _show_command

SERVICES = Path(__file__).resolve().parents[2] / "services"
HOLE = "{}"  # what an f-string's {expression} reads as
#: "modeldeck" as a word of a sentence, not a command
PROSE = (
    "modeldeck creates",
    # reached since the Azure ML rollouts ask the local daemon (services/azureml/rollouts.py
    # imports the local client, and through it the control plane's texts)
    "modeldeck made",
    "modeldeck choose",
    "modeldeck dependency",
)


def _module_file(path: Path, node: ast.ImportFrom) -> list[Path]:
    """The files of ``services`` a relative ``from ... import`` in ``path`` names."""
    if not node.level:
        return []
    base = path.parent
    for _ in range(node.level - 1):
        base = base.parent
    parts = (node.module or "").split(".") if node.module else []
    targets = [base.joinpath(*parts)] if parts else [base / a.name for a in node.names]
    out = []
    for t in targets:
        for f in (t.with_suffix(".py"), t / "__init__.py"):
            if f.is_file() and SERVICES in f.parents:
                out.append(f)
    return out


def azureml_modules() -> list[Path]:
    """services/azureml/** and every services module they import, transitively."""
    todo = sorted((SERVICES / "azureml").rglob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                todo += _module_file(path, node)
    return sorted(seen)


class _Texts:
    """Renders the expressions a fix can be built from, as the texts they can be."""

    def __init__(self, tree: ast.Module, imported: dict[str, ast.expr]) -> None:
        self.functions = {
            n.name: n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        self.constants: dict[str, ast.expr] = dict(imported)
        for n in tree.body:
            if (
                isinstance(n, ast.Assign)
                and len(n.targets) == 1
                and isinstance(n.targets[0], ast.Name)
            ):
                self.constants[n.targets[0].id] = n.value

    def of(self, expr: ast.expr, scope: ast.AST | None, depth: int = 0) -> list[str]:
        if depth > 8:
            return []
        if isinstance(expr, ast.Constant):
            return [expr.value] if isinstance(expr.value, str) else []
        if isinstance(expr, ast.JoinedStr):
            texts = [""]
            for part in expr.values:
                if isinstance(part, ast.FormattedValue):  # a helper's text, else a hole
                    pieces = self.of(part.value, scope, depth + 1) or [HOLE]
                    pieces = pieces if isinstance(part.value, ast.Call) else [HOLE]
                else:
                    pieces = self.of(part, scope, depth + 1)
                texts = [t + p for t in texts for p in pieces]
            return texts
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            left = self.of(expr.left, scope, depth + 1) or [HOLE]
            right = self.of(expr.right, scope, depth + 1) or [HOLE]
            return [a + b for a in left for b in right]
        if isinstance(expr, (ast.BoolOp)):
            return [t for v in expr.values for t in self.of(v, scope, depth + 1)]
        if isinstance(expr, ast.IfExp):
            return self.of(expr.body, scope, depth + 1) + self.of(expr.orelse, scope, depth + 1)
        if isinstance(expr, ast.Name):
            found = []
            if scope is not None:  # a local variable: each value it is given
                for n in ast.walk(scope):
                    if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
                        targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                        if any(isinstance(t, ast.Name) and t.id == expr.id for t in targets):
                            found += self.of(n.value, scope, depth + 1)
            if expr.id in self.constants:
                found += self.of(self.constants[expr.id], None, depth + 1)
            return found
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            fn = self.functions.get(expr.func.id)
            if fn is not None:  # a helper that computes the fix: each text it returns
                return [
                    t
                    for r in ast.walk(fn)
                    if isinstance(r, ast.Return) and r.value is not None
                    for t in self.of(r.value, fn, depth + 1)
                ]
        return []


def _imported_constants(path: Path, tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names imported from other services modules (``LOGIN_FIX``)."""
    out: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for f in _module_file(path, node):
                for n in ast.parse(f.read_text()).body:
                    if isinstance(n, ast.Assign) and len(n.targets) == 1:
                        t = n.targets[0]
                        if isinstance(t, ast.Name) and any(a.name == t.id for a in node.names):
                            out[t.id] = n.value
    return out


def fix_texts() -> dict[str, set[str]]:
    """text -> the modules it comes from, for every fix the Azure ML code can produce."""
    out: dict[str, set[str]] = {}
    for path in azureml_modules():
        tree = ast.parse(path.read_text())
        texts = _Texts(tree, _imported_constants(path, tree))
        scopes = [
            n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        for scope in [tree, *scopes]:
            for call in ast.walk(scope):
                if not isinstance(call, ast.Call):
                    continue
                exprs = [k.value for k in call.keywords if k.arg == "fix"]
                name = getattr(call.func, "id", getattr(call.func, "attr", ""))
                if name in ("InvalidInput", "cls") and len(call.args) >= 4:
                    exprs.append(call.args[3])  # InvalidInput(field, value, rule, fix)
                for e in exprs:
                    for t in texts.of(e, scope if scope is not tree else None):
                        out.setdefault(t, set()).add(path.relative_to(SERVICES.parent).as_posix())
    return out


def resource_kinds() -> set[str]:
    """Every resource kind the Azure ML code names in a request or an error."""

    def text(node: ast.AST | None) -> str | None:
        ok = isinstance(node, ast.Constant) and isinstance(node.value, str)
        return node.value.split(".", 1)[0] if ok else None  # type: ignore[union-attr]

    kinds: set[str | None] = set()
    for path in (SERVICES / "azureml").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg in ("kind", "err_kind"):
                kinds.add(text(node.value))
            elif isinstance(node, ast.Call) and node.args:
                called = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if called == "_begin" and len(node.args) > 2:  # _begin(method, path, op, ...)
                    kinds.add(text(node.args[2]))
                elif called == "NotFound":
                    kinds.add(text(node.args[0]))
    return {k for k in kinds if k}


def built_fixes() -> list[str]:
    """The fixes whose command depends on the resource's kind, as the code builds them for
    each kind it names: a 404 (ARM's answer, and NotFound's own), a long operation that
    outlived its wait."""
    out = []
    err = {"code": "ResourceNotFound", "message": "The Resource was not found."}
    for kind in sorted(resource_kinds()):
        for name in ("ep/blue", "thing"):
            out.append(error_from_arm(404, err, kind=kind, name=name).fix or "")
            out.append(_show_command(Lro("op", f"{kind}.create", name, "PUT", "/x")))
        out.append(NotFound(kind, "thing").fix or "")
    return out


COMMAND = re.compile(r"\bmodeldeck((?: +[^\s,;()'\"`]+)+)")


def commands_in(text: str) -> list[tuple[str, ...]]:
    """Each ``modeldeck ...`` in ``text``: the group, the command if one is named, and the
    flags given to it (``-e``, ``--traffic``)."""
    found = []
    for m in COMMAND.finditer(text):
        if m.group(0).startswith(PROSE):
            continue
        words = m.group(1).split()
        path: list[str] = []
        flags: list[str] = []
        in_path = True
        for w in words:
            if in_path and len(path) < 2 and re.fullmatch(r"[a-z][a-z-]*|\{\}", w):
                path.append(w)
                continue
            in_path = False
            if w.startswith("-"):
                flags.append(w.split("=", 1)[0])
            elif re.fullmatch(r"[a-z]+", w):
                break  # prose again ("... and try again")
        found.append((*path, *flags))
    return found


COMMANDS = dict(iter_commands(build_parser(full=True)))


def check(text: str) -> list[str]:
    """What is wrong with the commands ``text`` names (empty: all exist)."""
    problems = []
    for found in commands_in(text):
        path = [w for w in found if not w.startswith("-")]
        flags = [w for w in found if w.startswith("-")]
        if not path:
            problems.append(f"'modeldeck' with no command in: {text}")
            continue
        if HOLE in path:  # the kind's group: built_fixes() gives this text for each kind
            continue
        path[0] = ALIASES.get(path[0], path[0])
        parser = COMMANDS.get(tuple(path))
        if parser is None:
            problems.append(f"no command 'modeldeck {' '.join(path)}' (named in: {text})")
            continue
        taken = set(parser._option_string_actions)
        problems += [
            f"'modeldeck {' '.join(path)}' takes no {f} (named in: {text})"
            for f in flags
            if f not in taken
        ]
    return problems


def test_the_collector_finds_the_fixes_it_must() -> None:
    texts = fix_texts()
    # a literal fix=, one followed through hint_for's returns, an imported constant, an
    # InvalidInput's positional fix and a shared error's own default
    assert any("modeldeck cluster detach -n" in t for t in texts)
    assert any("modeldeck online-deployment get-logs -e" in t for t in texts)
    assert any(t.startswith("run: az login") for t in texts)
    assert any("modeldeck online-deployment list -e" in t for t in texts)
    assert "services/api/errors.py" in set().union(*texts.values())
    assert {"cluster", "model", "endpoint", "deployment", "workspace"} <= resource_kinds()
    # the checker itself
    assert check("scale it: modeldeck cluster scale -n X --agent-count 3") == []
    assert check("modeldeck cluster scale -n X --node-count 3")
    assert check("list them: modeldeck upload list")
    assert check("modeldeck online-endpoint show --nope 1")


@pytest.mark.parametrize("text", sorted(fix_texts()) + sorted(set(built_fixes())))
def test_every_fix_names_a_command_that_exists(text: str) -> None:
    assert check(text) == []


@pytest.mark.parametrize(
    "text", sorted({t for t in [*fix_texts(), *built_fixes()] if "modeldeck " in t})
)
def test_every_command_a_fix_names_has_help(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    for found in commands_in(text):
        path = [w for w in found if not w.startswith("-")]
        if not path or HOLE in path:
            continue
        assert main([*path, "--help"]) == 0, text
        assert capsys.readouterr().out.startswith("usage: modeldeck")


# -- the errors the issue names, against the fake ARM --------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("workspace_name", "no-such-ws", "workspaces/no-such-ws' under resource group"),
        ("resource_group", "no-such-rg", "Resource group 'no-such-rg' could not be found"),
    ],
)
async def test_an_unknown_workspace_is_named_not_an_empty_endpoint(
    fake: Any, seeded: Any, credential: Any, field: str, value: str, said: str
) -> None:
    """A wrong --workspace-name (or resource group) is a missing workspace, named, with
    what to check; not "endpoint '' not found" (the list's 404)."""
    from modeldeck.services.azureml.workspace import AzureMLWorkspace

    from tests.azureml.conftest import settings_for

    ws = AzureMLWorkspace("cloud", **settings_for(fake, credential, **{field: value}))
    try:
        for call in (ws.list_endpoints(), ws.get_endpoint("my-endpoint"), ws.list_clusters()):
            with pytest.raises(NotFound) as caught:
                await call
            err = caught.value
            assert err.kind == "workspace"
            assert err.name == (value if field == "workspace_name" else fake.ws)
            assert str(err).startswith(f"workspace '{err.name}' not found in resource group")
            assert said in str(err)  # ARM's words, verbatim
            assert "endpoint ''" not in str(err)
            assert "--workspace-name" in (err.fix or "") and "az ml workspace list" in err.fix
            assert check(err.fix) == []
    finally:
        await ws.close()


async def test_a_missing_endpoint_in_a_real_workspace_is_still_the_endpoint(ws: Any) -> None:
    with pytest.raises(NotFound) as caught:
        await ws.get_endpoint("nope")
    assert caught.value.kind == "endpoint" and caught.value.name == "nope"
    assert caught.value.fix == "list what exists with: modeldeck online-endpoint list"
    with pytest.raises(NotFound) as caught:  # a list under a missing endpoint: the endpoint
        await ws.list_deployments("nope")
    assert caught.value.kind == "endpoint" and caught.value.name == "nope"


async def test_an_unsupported_api_version_says_what_the_user_can_do(fake: Any, ws: Any) -> None:
    """Nothing a user sets gives the api-version: the fix names what they can change."""
    from modeldeck.services.api.errors import InvalidInput

    ws.arm.api_version = "2099-01-01"  # what an endpoint that lags (Azure Stack Hub) refuses
    with pytest.raises(InvalidInput) as caught:
        await ws.list_endpoints()
    fake.schema_errors.clear()  # the refused api-version, recorded by the fake
    err = caught.value
    assert "InvalidApiVersionParameter" in str(err)
    assert "fix the value ARM names above" not in (err.fix or "")
    assert "2099-01-01" in str(err)  # ARM's words name the version sent
    assert "api-version this release sends" in (err.fix or "") and "arm_endpoint" in (err.fix or "")
    assert "upgrade modeldeck" in (err.fix or "")


async def test_cli_names_an_unknown_workspace_and_how_to_check_it(
    tmp_path: Path, seeded: Any
) -> None:
    """The real console script, signed in through az: a wrong --workspace-name read
    ``endpoint '' not found``."""
    from tests.azureml.test_cli_e2e import AzCli

    cli = AzCli(tmp_path, token="static-token-1")
    code, _out, err = await cli.run(
        "online-endpoint",
        "list",
        "--subscription",
        seeded.sub,
        "-g",
        seeded.rg,
        "--workspace-name",
        "no-such-ws",
        MODELDECK_ARM_ENDPOINT=seeded.base_url,
    )
    assert code == 3, err  # NotFound's exit code
    # az's shape of a 404 (issue 12): ARM's code and words, which name the workspace
    assert err.startswith(
        "ERROR: (ResourceNotFound) The Resource "
        "'Microsoft.MachineLearningServices/workspaces/no-such-ws' under resource group"
    )
    assert "endpoint ''" not in err
    assert (
        "fix: check the workspace's name, resource group and subscription (--workspace-name" in err
    )
    assert f"az ml workspace list -g {seeded.rg}" in err
