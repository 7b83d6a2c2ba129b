"""The grammar of ``workspace``: the workspace itself, as ``az ml workspace show/list``
print it (azext_mlv2 _workspace_params: ``show -n/--name -g``, ``list -g --filtered-kinds
--max-results/-r``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..parser import PROG
from . import flags

if TYPE_CHECKING:
    from ..parser import Leaf


def build(leaf: Leaf) -> None:
    cols = ["name", "location", "resource_group", "display_name"]
    p = leaf(
        "show",
        "cmd_workspace:show",
        "Show the workspace: id, location, container_registry, mlflow_tracking_uri, ...",
        [
            f"{PROG} workspace show",
            f"{PROG} workspace show --query container_registry -o tsv | cut -d'/' -f9-",
            f"{PROG} workspace show -w prod --query location -o tsv",
        ],
        description=(
            "Show the workspace as az ml prints it. On Azure ML: the workspace's ARM resource.\n"
            "The local workspace has no Azure resources: its id, resource group and\n"
            "dependent resources (container_registry, storage_account, key_vault,\n"
            "application_insights) are placeholders in ARM form (subscription 0000...,\n"
            "resource group modeldeck-local, resources named modeldecklocal);\n"
            "mlflow_tracking_uri and discovery_url are null."
        ),
        columns=cols,
    )
    p.add_argument(
        "-n",
        "--name",
        dest="workspace_name",
        metavar="NAME",
        help="the Azure ML workspace's name, as az ml's (the same as --workspace-name)",
    )
    flags.finish(p)

    p = leaf(
        "list",
        "cmd_workspace:list_",
        "List the workspaces: the Azure ML workspaces of the resource group, or the local one",
        [f"{PROG} workspace list -o table", f"{PROG} workspace list -g my-rg --query [].name"],
        columns=cols,
    )
    p.add_argument("-r", "--max-results", type=int, metavar="N", help="list at most N workspaces")
    p.add_argument(
        "--filtered-kinds",
        metavar="KINDS",
        help="az ml's hub/project filter: refused, modeldeck lists default workspaces only",
    )
    flags.finish(p)
