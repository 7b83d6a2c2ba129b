"""The grammar of ``model``: registered models and their versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..parser import PROG
from . import flags

if TYPE_CHECKING:
    from ..parser import Leaf


def build(leaf: Leaf) -> None:
    cols = ["name", "version", "description", "path"]
    p = leaf(
        "create",
        "cmd_model:create",
        "Register a model file or folder as its next version",
        [
            f"{PROG} model create --name sklearn-demo --path ./model",
            f"{PROG} model create -f model.yml --set version=3",
        ],
        description=(
            "Register a model: its files are copied into the workspace, so deployments never\n"
            "depend on the original path. Versions are 1, 2, ... unless --version is given."
        ),
        columns=cols,
    )
    flags.name(p, "model", required=False)
    p.add_argument("-p", "--path", help="model file or folder")
    flags.version(p, "version (default: the next one)")
    flags.description(p)
    flags.tags(p)
    p.add_argument(
        "-t",
        "--type",
        help="custom_model (default) or mlflow_model (a folder with an MLmodel file: a "
        "deployment with no code_configuration serves it through mlflow.pyfunc)",
    )
    flags.file(p, "model")
    flags.set_(p)
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="taken as az ml takes it: its model create ignores it too (registering returns "
        "once the files are copied)",
    )
    flags.finish(p)

    p = leaf(
        "list",
        "cmd_model:list_",
        "List models (every version), or the versions of one",
        [f"{PROG} model list -o table", f"{PROG} model list --name sklearn-demo"],
        columns=cols,
    )
    flags.name(p, "model", required=False)
    p.add_argument("--include-archived", action="store_true", help="list archived versions too")
    p.add_argument("--archived-only", action="store_true", help="list archived versions only")
    flags.finish(p)

    p = leaf(
        "show",
        "cmd_model:show",
        "Show one version of a model (the latest by default)",
        [
            f"{PROG} model show --name sklearn-demo",
            f"{PROG} model show -n sklearn-demo --version 1",
        ],
        columns=cols,
    )
    flags.name(p, "model")
    flags.version(p, "version (default: latest)")
    p.add_argument("-l", "--label", help="latest: the newest version not archived (not with -v)")
    flags.finish(p)

    for verb, summary in (
        (
            "archive",
            "Archive a version: list and the latest skip it; deployments that name it keep working",
        ),
        ("restore", "Restore an archived version: list and the latest see it again"),
    ):
        p = leaf(
            verb,
            f"cmd_model:{verb}",
            summary,
            [
                f"{PROG} model {verb} --name sklearn-demo --version 1",
                f"{PROG} model {verb} -n sklearn-demo --label latest",
            ],
            columns=cols,
        )
        flags.name(p, "model")
        flags.version(p, f"version to {verb} (or --label latest)")
        p.add_argument("-l", "--label", help="latest: the newest version not archived")
        flags.finish(p)

    p = leaf(
        "delete",
        "cmd_model:delete",
        "Delete one version of a model (refused while a deployment uses it)",
        [f"{PROG} model delete --name sklearn-demo --version 1 --yes"],
    )
    flags.name(p, "model")
    flags.version(p, "version to delete", required=True)
    flags.finish(p, yes=True)
