"""The grammar of ``environment``: registered environments and the built Python environments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..parser import PROG
from . import flags

if TYPE_CHECKING:
    from ..parser import Leaf


def build(leaf: Leaf) -> None:
    cols = ["name", "version", "image", "stage", "size_bytes", "users"]
    p = leaf(
        "create",
        "cmd_environment:create",
        "Register an environment (image, conda file, or both) as its next version",
        [
            f"{PROG} environment create -f env.yml",
            f"{PROG} environment create --name sklearn-env --conda-file conda.yaml --version 2",
        ],
        description=(
            "Register an environment, as az ml environment create does. Its conda file is read\n"
            "and resolved now (conda packages mapped to pip, python=3.X matched to an\n"
            "interpreter here): a package no Python environment can hold is refused, conda-only\n"
            "ones are named in a warning. Deployments name it as environment: azureml:NAME:VERSION\n"
            "or azureml:NAME@latest; local pools build it with uv when a deployment first uses it."
        ),
        columns=cols,
    )
    flags.name(p, "environment", required=False)
    flags.version(p, "version (default: the next one)")
    p.add_argument("-i", "--image", help="container image (Kubernetes uses it)")
    p.add_argument("-c", "--conda-file", help="conda environment file (its pip: list and packages)")
    p.add_argument(
        "--os-type",
        help="linux (the default, as az ml's); windows is refused: environments are Linux here",
    )
    flags.description(p)
    flags.tags(p)
    flags.file(p, "environment")
    flags.set_(p)
    flags.finish(p)

    p = leaf(
        "list",
        "cmd_environment:list_",
        "List environments: registered ones, then the inline ones built here",
        [f"{PROG} environment list -o table", f"{PROG} environment list --name sklearn-env"],
        description=(
            "List registered environments (every version), with the size of their built Python\n"
            "environment (size_bytes: empty until a deployment first uses it) and the\n"
            "deployments that run in it (users). Inline environments of deployment YAML files\n"
            "are listed as CliV2AnonymousEnvironment, their version the content's key."
        ),
        columns=cols,
    )
    flags.name(p, "environment", required=False)
    flags.finish(p)

    p = leaf(
        "show",
        "cmd_environment:show",
        "Show one version of an environment (the latest not archived by default)",
        [
            f"{PROG} environment show --name sklearn-env --version 1",
            f"{PROG} environment show -n sklearn-env --label latest",
        ],
        columns=cols,
    )
    flags.name(p, "environment")
    flags.version(p, "version (default: latest)")
    p.add_argument("-l", "--label", help="latest (the newest version not archived)")
    flags.finish(p)

    p = leaf(
        "archive",
        "cmd_environment:archive",
        "Archive a version: @latest skips it; deployments that name it keep working",
        [f"{PROG} environment archive --name sklearn-env --version 1"],
        columns=cols,
    )
    flags.name(p, "environment")
    flags.version(p, "version to archive (or --label latest)")
    p.add_argument("-l", "--label", help="latest: the newest version not archived")
    flags.finish(p)

    p = leaf(
        "prune",
        "cmd_environment:prune",
        "Delete the built Python environments that no deployment uses",
        [f"{PROG} environment prune --yes"],
        description=(
            "Delete the built Python environments (DATA_DIR/envs) that no deployment runs in.\n"
            "They are built again when a deployment needs them. The control plane also prunes\n"
            "them by itself once unused for MODELDECK_ENV_GRACE_S seconds (default 86400)."
        ),
        columns=["name", "version", "size_bytes"],
    )
    flags.finish(p, yes=True)
