"""The grammar of ``compute`` (alias ``cluster``): local pools and attached Kubernetes clusters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..parser import PROG
from . import flags

if TYPE_CHECKING:
    from ..parser import Leaf


def build(leaf: Leaf) -> None:
    cols = [
        "name",
        "driver",
        "purpose",
        "provisioning_state",
        "agent_count",
        "vm_size",
        "vcpus_total",
        "vcpus_used",
        "endpoints",
    ]

    p = leaf(
        "create",
        "cmd_compute:create",
        "Create a local pool: agent_count x vm_size of this host's capacity",
        [
            f"{PROG} compute create --name myaks",
            f"{PROG} compute create --name devpool --agent-count 1 --vm-size Standard_D2_v2 --purpose DevTest",
        ],
        description=(
            "Create a cluster (a pool of this host's capacity, sized as AKS sizes its nodes).\n"
            "A FastProd cluster needs at least 12 vCPU (3 x Standard_D3_v2 by default);\n"
            "a DevTest cluster needs at least 2 and is not meant for production traffic."
        ),
    )
    flags.name_or_first(p, "cluster")
    p.add_argument("--agent-count", type=int, default=3, help="number of nodes (default: 3)")
    p.add_argument(
        "--vm-size",
        default="Standard_D3_v2",
        help="Azure VM size of each node (default: Standard_D3_v2 = 4 vCPU, 14 GiB)",
    )
    flags.purpose(p)
    p.add_argument(
        "-t",
        "--type",
        help="what is made: pool on a local workspace, aks on Azure ML (the only one each "
        "makes); az ml's AmlCompute and ComputeInstance are refused",
    )
    p.add_argument("--description", help="description of the cluster")
    flags.tags(p)
    flags.finish(p, no_wait=True)

    p = leaf(
        "list",
        "cmd_compute:list_",
        "List the clusters",
        [f"{PROG} compute list -o table", f"{PROG} compute list --type kubernetes"],
        columns=cols,
    )
    p.add_argument(
        "--type", help="only computes of this type (as list prints it: pool, kubernetes)"
    )
    flags.finish(p)

    p = leaf(
        "show",
        "cmd_compute:show",
        "Show a cluster: nodes, vCPUs used and free, endpoints",
        [f"{PROG} compute show --name myaks", f"{PROG} compute show -n myaks --query vcpus_total"],
        columns=cols,
    )
    flags.name_or_first(p, "cluster")
    flags.finish(p)

    p = leaf(
        "scale",
        "cmd_compute:scale",
        "Change the number of nodes of a pool",
        [f"{PROG} compute scale --name myaks --agent-count 4"],
    )
    flags.name_or_first(p, "cluster")
    p.add_argument("--agent-count", type=int, required=True, help="new number of nodes")
    flags.finish(p, no_wait=True)

    p = leaf(
        "update",
        "cmd_compute:update",
        "Change a cluster's tags (Kubernetes: the Gateway and the scoring URL)",
        [
            f"{PROG} compute update prod-aks --tag modeldeck.io/gateway-url=https://ml.example.com",
            f"{PROG} compute update prod-aks --tag modeldeck.io/gateway=infra/public",
            f"{PROG} compute update prod-aks --remove-tag modeldeck.io/gateway-url",
        ],
        description=(
            "Set tags on a cluster (merged into its tags) and remove others. On a Kubernetes\n"
            "cluster, modeldeck.io/gateway (NAMESPACE/NAME of the Gateway the routes attach to)\n"
            "and modeldeck.io/gateway-url (the scoring URL's base) take effect at once."
        ),
        columns=cols,
    )
    flags.name_or_first(p, "cluster")
    flags.tags(p)
    p.add_argument(
        "--remove-tag",
        action="append",
        default=[],
        metavar="KEY",
        help="remove this tag (repeatable)",
    )
    flags.finish(p, no_wait=True)

    p = leaf(
        "delete",
        "cmd_compute:delete",
        "Delete a pool (refused while it has endpoints)",
        [f"{PROG} compute delete --name devpool --yes"],
    )
    flags.name_or_first(p, "cluster")
    flags.finish(p, yes=True, no_wait=True)

    p = leaf(
        "attach",
        "cmd_compute:attach",
        "Attach an existing Kubernetes cluster (a kubeconfig context and namespace)",
        [
            f"{PROG} compute attach --name prod-aks --kube-context prod --namespace models",
            f"{PROG} compute attach --name dev-k8s --kube-context kind-dev --purpose DevTest",
            f"{PROG} compute attach prod-aks --kube-context prod --namespace models --print-role",
            f"{PROG} compute attach -w my-azureml --type Kubernetes --name prod-aks --resource-id "
            "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ContainerService/"
            "managedClusters/prod-aks --namespace models",
        ],
        description=(
            "Record an existing Kubernetes cluster and check its capacity against its purpose.\n"
            "Attaching one cluster twice under two names is refused. A local workspace reaches\n"
            "the cluster through a kubeconfig context (--kube-context); an azureml workspace\n"
            "attaches it by its ARM resource id (--resource-id), as az ml does."
        ),
    )
    flags.name_or_first(p, "cluster")
    p.add_argument(
        "--kube-context",
        help="kubeconfig context of the cluster (local workspaces; required there)",
    )
    p.add_argument(
        "--resource-id",
        help="ARM resource id of the AKS or Arc-enabled cluster (azureml workspaces; required "
        "there; see: az aks show --query id)",
    )
    p.add_argument("--namespace", help="namespace for the deployments (default: the context's)")
    flags.purpose(p)
    p.add_argument("-t", "--type", help="Kubernetes (az ml's value; the only one), any letter case")
    flags.tags(p)
    p.add_argument(
        "--print-role",
        action="store_true",
        help="print the Role (and RoleBinding) granting what modeldeck needs in the namespace, "
        "as YAML for kubectl apply -f, and attach nothing",
    )
    flags.finish(p, no_wait=True)

    p = leaf(
        "detach",
        "cmd_compute:detach",
        "Detach a Kubernetes cluster (what runs on it keeps running)",
        [
            f"{PROG} compute detach prod-aks",
            f"{PROG} compute detach --name prod-aks --yes",
            f"{PROG} compute detach --name dev-k8s --delete-resources --yes",
        ],
        description=(
            "Forget an attached Kubernetes cluster and the records of its endpoints and\n"
            "deployments; everything on the cluster keeps running. With --delete-resources,\n"
            "what modeldeck created there (labelled app.kubernetes.io/managed-by=modeldeck) is\n"
            "deleted first. Asks for confirmation (--yes in scripts). Pools: cluster delete."
        ),
    )
    flags.name_or_first(p, "cluster")
    p.add_argument(
        "--delete-resources",
        action="store_true",
        help="also delete what modeldeck created on the cluster",
    )
    flags.finish(p, yes=True, no_wait=True)
