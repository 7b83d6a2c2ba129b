"""The command line grammar: ``az ml`` v2's groups, commands and flags.

Only the group named on the command line gets its commands built (the others are one
line each), so a command starts fast; :func:`build_parser` with ``full=True`` builds
everything (``--help`` of the top level, and ``docgen``).

Each command names its handler as ``"module:function"`` (in ``modeldeck.cli``), imported
only when that command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

PROG = "modeldeck"
OUTPUTS = ("json", "jsonc", "yaml", "yamlc", "table", "tsv", "none")


class Parser(argparse.ArgumentParser):
    """argparse with our error format: ``ERROR: ...`` and a ``fix:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"ERROR: {message}\n  fix: see '{self.prog} --help'\n")
        raise SystemExit(2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


# --------------------------------------------------------------------------- shared flags


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("global arguments")
    g.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default="json",
        metavar="FORMAT",
        help="output format: json (default), yaml, table, tsv, none",
    )
    g.add_argument(
        "--query", metavar="JMESPATH", help="JMESPath query applied to the output, as az has it"
    )
    g.add_argument(
        "-w",
        "--workspace",
        metavar="PROFILE",
        help="workspace profile (default: $MODELDECK_WORKSPACE, the config's default, or local)",
    )
    g.add_argument(
        "-g", "--resource-group", help="Azure resource group (azureml profiles; ignored locally)"
    )
    g.add_argument(
        "--workspace-name", help="Azure ML workspace name (azureml profiles; ignored locally)"
    )
    g.add_argument(
        "--subscription", help="Azure subscription id (azureml profiles; ignored locally)"
    )
    g.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    g.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    g.add_argument("--only-show-errors", action="store_true", help="do not print warnings")


def _name(p: argparse.ArgumentParser, what: str, required: bool = True) -> None:
    p.add_argument("-n", "--name", required=required, help=f"name of the {what}")


def _name_or_first(p: argparse.ArgumentParser, what: str) -> None:
    """``--name NAME``, or ``NAME`` as the first argument (``cluster attach prod ...``)."""
    p.add_argument("name_arg", nargs="?", metavar="NAME", help=f"the {what}'s name (or --name)")
    p.add_argument("-n", "--name", help=f"name of the {what}")


def _endpoint(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "-e",
        "--endpoint-name",
        "--endpoint",
        dest="endpoint_name",
        required=required,
        help="name of the endpoint",
    )


def _file(p: argparse.ArgumentParser, what: str, required: bool = False) -> None:
    p.add_argument(
        "-f",
        "--file",
        required=required,
        help=f"Azure ML v2 {what} YAML file (paths in it are relative to the file)",
    )


def _set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the YAML (dotted path; repeatable), e.g. --set instance_count=2",
    )


def _if_revision(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--if-revision",
        metavar="REV",
        help=(
            f"apply only if the {what} is still at this revision (as `show` prints it; a "
            "top-level revision: in the -f file means the same, this flag wins); when it "
            "changed since, nothing is applied and the command exits 4 naming the change"
        ),
    )


def _no_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="return the operation at once instead of waiting for it",
    )


def _yes(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the Kubernetes manifests that would be applied (-o yaml for kubectl/GitOps; "
        "keys redacted) and change nothing; Kubernetes clusters only",
    )


# --------------------------------------------------------------------------- building


Leaf = Callable[..., argparse.ArgumentParser]


class _Sink:
    """Stands in for the parser of a command that was not asked for: its arguments are not
    built (a command starts faster); it is listed in its group's help all the same."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _Sink:
        return self

    def set_defaults(self, **kwargs: Any) -> None:
        return None


def _leaf_factory(subs: Any, group: str) -> Leaf:
    wanted = getattr(subs, "modeldeck_wanted", None)

    def leaf(
        name: str,
        cmd: str,
        summary: str,
        examples: Sequence[str],
        *,
        description: str = "",
        columns: Sequence[str] | None = None,
        aliases: Sequence[str] = (),
    ) -> argparse.ArgumentParser:
        if wanted is not None and name != wanted:
            subs.add_parser(name, aliases=list(aliases), help=summary, add_help=False)
            return _Sink()  # type: ignore[return-value]
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
        p = subs.add_parser(
            name,
            aliases=list(aliases),
            help=summary,
            description=(description or summary),
            epilog=epilog,
            formatter_class=_Formatter,
        )
        p.set_defaults(_cmd=cmd, _columns=list(columns) if columns else None, _group=group)
        return p

    return leaf


def _finish(p: argparse.ArgumentParser) -> None:
    _add_common(p)


# --------------------------------------------------------------------------- groups


def _compute(subs: Any) -> None:
    leaf = _leaf_factory(subs, "compute")
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
    _name_or_first(p, "cluster")
    p.add_argument("--agent-count", type=int, default=3, help="number of nodes (default: 3)")
    p.add_argument(
        "--vm-size",
        default="Standard_D3_v2",
        help="Azure VM size of each node (default: Standard_D3_v2 = 4 vCPU, 14 GiB)",
    )
    p.add_argument("--purpose", default="FastProd", help="FastProd (default) or DevTest")
    p.add_argument("--type", help="accepted for az compatibility (aks, kubernetes); ignored")
    p.add_argument("--description", help="description of the cluster")
    p.add_argument(
        "--tag",
        "--tags",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="tag",
        help="tag (repeatable)",
    )
    _no_wait(p)
    _finish(p)

    p = leaf(
        "list",
        "cmd_compute:list_",
        "List the clusters",
        [f"{PROG} compute list -o table"],
        columns=cols,
    )
    _finish(p)

    p = leaf(
        "show",
        "cmd_compute:show",
        "Show a cluster: nodes, vCPUs used and free, endpoints",
        [f"{PROG} compute show --name myaks", f"{PROG} compute show -n myaks --query vcpus_total"],
        columns=cols,
    )
    _name_or_first(p, "cluster")
    _finish(p)

    p = leaf(
        "scale",
        "cmd_compute:scale",
        "Change the number of nodes of a pool",
        [f"{PROG} compute scale --name myaks --agent-count 4"],
    )
    _name_or_first(p, "cluster")
    p.add_argument("--agent-count", type=int, required=True, help="new number of nodes")
    _no_wait(p)
    _finish(p)

    p = leaf(
        "delete",
        "cmd_compute:delete",
        "Delete a pool (refused while it has endpoints)",
        [f"{PROG} compute delete --name devpool --yes"],
    )
    _name_or_first(p, "cluster")
    _yes(p)
    _no_wait(p)
    _finish(p)

    p = leaf(
        "attach",
        "cmd_compute:attach",
        "Attach an existing Kubernetes cluster (a kubeconfig context and namespace)",
        [
            f"{PROG} compute attach --name prod-aks --kube-context prod --namespace models",
            f"{PROG} compute attach --name dev-k8s --kube-context kind-dev --purpose DevTest",
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
    _name_or_first(p, "cluster")
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
    p.add_argument("--purpose", default="FastProd", help="FastProd (default) or DevTest")
    p.add_argument("--type", help="accepted for az compatibility (kubernetes); ignored")
    _no_wait(p)
    _finish(p)

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
    _name_or_first(p, "cluster")
    p.add_argument(
        "--delete-resources",
        action="store_true",
        help="also delete what modeldeck created on the cluster",
    )
    _yes(p)
    _no_wait(p)
    _finish(p)


def _model(subs: Any) -> None:
    leaf = _leaf_factory(subs, "model")
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
    _name(p, "model", required=False)
    p.add_argument("-p", "--path", help="model file or folder")
    p.add_argument("-v", "--version", help="version (default: the next one)")
    p.add_argument("-d", "--description", help="description")
    p.add_argument(
        "--tag",
        "--tags",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="tag",
        help="tag (repeatable)",
    )
    p.add_argument(
        "--type",
        help="custom_model (default) or mlflow_model (a folder with an MLmodel file: a "
        "deployment with no code_configuration serves it through mlflow.pyfunc)",
    )
    _file(p, "model")
    _set(p)
    _finish(p)

    p = leaf(
        "list",
        "cmd_model:list_",
        "List models (every version), or the versions of one",
        [f"{PROG} model list -o table", f"{PROG} model list --name sklearn-demo"],
        columns=cols,
    )
    _name(p, "model", required=False)
    _finish(p)

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
    _name(p, "model")
    p.add_argument("-v", "--version", help="version (default: latest)")
    p.add_argument("-l", "--label", help="accepted for az compatibility (latest)")
    _finish(p)

    p = leaf(
        "delete",
        "cmd_model:delete",
        "Delete one version of a model (refused while a deployment uses it)",
        [f"{PROG} model delete --name sklearn-demo --version 1 --yes"],
    )
    _name(p, "model")
    p.add_argument("-v", "--version", required=True, help="version to delete")
    _yes(p)
    _finish(p)


def _environment_group(subs: Any) -> None:
    leaf = _leaf_factory(subs, "environment")
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
    _name(p, "environment", required=False)
    p.add_argument("-v", "--version", help="version (default: the next one)")
    p.add_argument("-i", "--image", help="container image (Kubernetes uses it)")
    p.add_argument("--conda-file", help="conda environment file (its pip: list and packages)")
    p.add_argument("-d", "--description", help="description")
    _file(p, "environment")
    _finish(p)

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
    _name(p, "environment", required=False)
    _finish(p)

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
    _name(p, "environment")
    p.add_argument("-v", "--version", help="version (default: latest)")
    p.add_argument("-l", "--label", help="latest (the newest version not archived)")
    _finish(p)

    p = leaf(
        "archive",
        "cmd_environment:archive",
        "Archive a version: @latest skips it; deployments that name it keep working",
        [f"{PROG} environment archive --name sklearn-env --version 1"],
        columns=cols,
    )
    _name(p, "environment")
    p.add_argument("-v", "--version", required=True, help="version to archive")
    _finish(p)

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
    _yes(p)
    _finish(p)


def _endpoint_group(subs: Any) -> None:
    leaf = _leaf_factory(subs, "online-endpoint")
    cols = ["name", "compute", "auth_mode", "provisioning_state", "traffic", "scoring_uri"]

    p = leaf(
        "create",
        "cmd_endpoint:create",
        "Create an online endpoint from YAML and/or flags",
        [
            f"{PROG} online-endpoint create -f endpoint.yml",
            f"{PROG} online-endpoint create --name my-endpoint --set compute=myaks --auth-mode aml_token",
        ],
        description=(
            "Create an online endpoint (kubernetesOnlineEndpoint YAML). compute: azureml:NAME\n"
            "names the cluster; auth_mode is key (default), aml_token or none."
        ),
        columns=cols,
    )
    _file(p, "endpoint")
    _name(p, "endpoint", required=False)
    p.add_argument("--auth-mode", help="key (default), aml_token or none")
    _set(p)
    _dry_run(p)
    _no_wait(p)
    _finish(p)

    p = leaf(
        "show",
        "cmd_endpoint:show",
        "Show an endpoint: scoring_uri, traffic, mirror_traffic, auth_mode, state",
        [
            f"{PROG} online-endpoint show -n my-endpoint",
            f"{PROG} online-endpoint show -n my-endpoint --query traffic",
            f"URI=$({PROG} online-endpoint show -n my-endpoint -o tsv --query scoring_uri)",
        ],
        columns=cols,
    )
    _name(p, "endpoint")
    _finish(p)

    p = leaf(
        "list",
        "cmd_endpoint:list_",
        "List the online endpoints",
        [
            f"{PROG} online-endpoint list -o table",
            f"{PROG} online-endpoint list --query '[].name' -o tsv",
        ],
        columns=cols,
    )
    _finish(p)

    p = leaf(
        "update",
        "cmd_endpoint:update",
        "Update an endpoint: traffic split, mirror traffic, description, tags",
        [
            f'{PROG} online-endpoint update --name my-endpoint --traffic "blue=90 green=10"',
            f'{PROG} online-endpoint update --name my-endpoint --traffic "green=20" --rest blue',
            f'{PROG} online-endpoint update --name my-endpoint --mirror-traffic "green=10"',
            f"{PROG} online-endpoint update --name my-endpoint --set description='rolled out'",
            f"{PROG} online-endpoint update --name my-endpoint --set control=blue",
        ],
        description=(
            "Update an endpoint. The traffic map is changed only when --traffic/--rest (or a\n"
            "traffic: in the file) is given: an update without it keeps the current split.\n"
            "Percentages add up to 100 (or all 0); deployments left out get 0. With --rest NAME,\n"
            "NAME takes whatever the others do not (the seed's default version).\n"
            "--set control=NAME marks one deployment as the control (the others are\n"
            "treatments); --set control=none clears it."
        ),
        columns=cols,
    )
    _name(p, "endpoint")
    p.add_argument(
        "--traffic", metavar='"NAME=PCT ..."', help='traffic split, e.g. "blue=90 green=10"'
    )
    p.add_argument(
        "--rest", metavar="DEPLOYMENT", help="this deployment takes the remainder of --traffic"
    )
    p.add_argument(
        "--mirror-traffic",
        metavar='"NAME=PCT"',
        help='copy a share of requests to one deployment, e.g. "green=10" ("green=0" stops it)',
    )
    _file(p, "endpoint")
    _set(p)
    _if_revision(p, "endpoint")
    _no_wait(p)
    _finish(p)

    p = leaf(
        "delete",
        "cmd_endpoint:delete",
        "Delete an endpoint and its deployments",
        [f"{PROG} online-endpoint delete --name my-endpoint --yes"],
    )
    _name(p, "endpoint")
    _yes(p)
    _no_wait(p)
    _finish(p)

    p = leaf(
        "invoke",
        "cmd_endpoint:invoke",
        "Send a request to the endpoint's scoring URI, with its key or token",
        [
            f"{PROG} online-endpoint invoke --name my-endpoint --request-file sample-request.json",
            f"{PROG} online-endpoint invoke -n my-endpoint --deployment-name green --request-file sample-request.json",
        ],
        description=(
            "Score a request through the endpoint's gateway. --deployment-name pins the request\n"
            "to one deployment whatever the traffic split (header azureml-model-deployment)."
        ),
    )
    _name(p, "endpoint")
    p.add_argument("-r", "--request-file", required=True, help="file with the request body (JSON)")
    p.add_argument("-d", "--deployment-name", help="send the request to this deployment")
    _finish(p)

    p = leaf(
        "get-credentials",
        "cmd_endpoint:get_credentials",
        "Show the endpoint's keys (key auth) or a token (aml_token auth)",
        [
            f"{PROG} online-endpoint get-credentials -n my-endpoint",
            f"KEY=$({PROG} online-endpoint get-credentials -n my-endpoint -o tsv --query primaryKey)",
        ],
    )
    _name(p, "endpoint")
    _finish(p)

    p = leaf(
        "regenerate-keys",
        "cmd_endpoint:regenerate_keys",
        "Regenerate the primary or the secondary key (the old one stops working at once)",
        [
            f"{PROG} online-endpoint regenerate-keys --name my-endpoint --key-type primary",
            f"{PROG} online-endpoint regenerate-keys --name my-endpoint --key-type secondary",
        ],
        description=(
            "Regenerate one key. Rotate without downtime: move clients to the secondary key,\n"
            "regenerate the primary, move them back, regenerate the secondary."
        ),
    )
    _name(p, "endpoint")
    p.add_argument("--key-type", default="primary", help="primary (default) or secondary")
    _no_wait(p)
    _finish(p)


def _deployment_group(subs: Any) -> None:
    leaf = _leaf_factory(subs, "online-deployment")
    cols = [
        "name",
        "endpoint_name",
        "model",
        "provisioning_state",
        "ready_replicas",
        "desired_replicas",
        "traffic",
    ]

    p = leaf(
        "create",
        "cmd_deployment:create",
        "Create a deployment of an endpoint from YAML",
        [
            f"{PROG} online-deployment create --name blue --endpoint my-endpoint -f blue.yml --all-traffic",
            f"{PROG} online-deployment create --name green --endpoint my-endpoint -f green.yml",
            f"{PROG} online-deployment create -f green.yml --set instance_count=2 --no-wait",
            f"{PROG} online-deployment create -f blue.yml --dry-run -o yaml > blue-manifests.yaml",
        ],
        description=(
            "Create a deployment (kubernetesOnlineDeployment YAML). An inline model: {path: ...}\n"
            "is registered as a new model version first, as az ml does. New deployments take no\n"
            "traffic unless --all-traffic is given."
        ),
        columns=cols,
    )
    _name(p, "deployment", required=False)
    _endpoint(p, required=False)
    _file(p, "deployment", required=True)
    _set(p)
    p.add_argument(
        "--all-traffic", action="store_true", help="send all of the endpoint's traffic to it"
    )
    p.add_argument("--skip-script-validation", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    _dry_run(p)
    _no_wait(p)
    _finish(p)

    p = leaf(
        "show",
        "cmd_deployment:show",
        "Show a deployment: spec, state, replicas, traffic, why it is not ready",
        [f"{PROG} online-deployment show --name blue --endpoint my-endpoint"],
        columns=cols,
    )
    _name(p, "deployment")
    _endpoint(p)
    _finish(p)

    p = leaf(
        "list",
        "cmd_deployment:list_",
        "List the deployments of an endpoint (or of every endpoint)",
        [f"{PROG} online-deployment list -e my-endpoint -o table"],
        columns=cols,
    )
    _endpoint(p, required=False)
    _finish(p)

    p = leaf(
        "update",
        "cmd_deployment:update",
        "Update a deployment (rolling: new replicas are ready before old ones stop)",
        [
            f"{PROG} online-deployment update --name blue --endpoint my-endpoint --set instance_count=2",
            f"{PROG} online-deployment update -n blue -e my-endpoint -f blue.yml",
            f"{PROG} online-deployment update -n blue -e my-endpoint -f blue.yml --if-revision 7",
            f"{PROG} online-deployment update -n blue -e my-endpoint --set request_settings.request_timeout_ms=1000",
        ],
        description=(
            "Update a deployment. Without -f the current spec is read, --set is applied to it,\n"
            "and the whole spec is sent; with -f the file is the new spec. To apply a file only\n"
            "if nobody changed the deployment since you read it, keep the revision: that\n"
            "`show -o yaml` printed in it, or pass --if-revision REV."
        ),
        columns=cols,
    )
    _name(p, "deployment")
    _endpoint(p)
    _file(p, "deployment")
    _set(p)
    _if_revision(p, "deployment")
    _dry_run(p)
    _no_wait(p)
    _finish(p)

    p = leaf(
        "delete",
        "cmd_deployment:delete",
        "Delete a deployment (refused while it takes live or mirrored traffic)",
        [
            f'{PROG} online-endpoint update --name my-endpoint --traffic "blue=0 green=100"',
            f"{PROG} online-deployment delete --name blue --endpoint my-endpoint --yes",
        ],
    )
    _name(p, "deployment")
    _endpoint(p)
    _yes(p)
    _no_wait(p)
    _finish(p)

    p = leaf(
        "get-logs",
        "cmd_deployment:get_logs",
        "Show the deployment's logs (all replicas: stdout, stderr, logging)",
        [
            f"{PROG} online-deployment get-logs --name green --endpoint my-endpoint --lines 50",
            f"{PROG} online-deployment get-logs -n green -e my-endpoint --follow",
            f"{PROG} online-deployment get-logs -n green -e my-endpoint --since 10m",
        ],
        description=(
            "Print the last lines of the deployment's log, each prefixed with its replica.\n"
            "An init() that failed shows its traceback here. --follow keeps printing new lines\n"
            "until Ctrl-C. --since keeps only the lines written since then (like kubectl logs\n"
            "--since / --since-time); --lines still bounds how many are shown."
        ),
    )
    _name(p, "deployment")
    _endpoint(p)
    p.add_argument("-l", "--lines", type=int, default=100, help="number of lines (default: 100)")
    p.add_argument("--follow", action="store_true", help="keep printing new lines")
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="only lines written since: a duration (30s, 10m, 2h, 1d) or an ISO 8601 time "
        "(2026-01-02T03:04:05Z; without a zone: UTC)",
    )
    p.add_argument("--container", help=argparse.SUPPRESS)
    _finish(p)


def _daemon_group(subs: Any) -> None:
    leaf = _leaf_factory(subs, "daemon")
    p = leaf(
        "status",
        "cmd_daemon:status",
        "Show whether the local control plane runs: pid, socket, gateway, log file",
        [f"{PROG} daemon status", f"{PROG} daemon status --query gateway -o tsv"],
    )
    _finish(p)
    p = leaf(
        "stop",
        "cmd_daemon:stop",
        "Stop the local control plane (deployments come back when it starts again)",
        [f"{PROG} daemon stop"],
    )
    _finish(p)


# name -> (aliases, summary, builder)
GROUPS: dict[str, tuple[tuple[str, ...], str, Callable[[Any], None]]] = {
    "compute": (("cluster",), "Clusters: local pools and attached Kubernetes clusters", _compute),
    "model": ((), "Registered models and their versions", _model),
    "environment": (
        (),
        "Registered environments: what deployments' Python is built from",
        _environment_group,
    ),
    "online-endpoint": (("endpoint",), "Online endpoints: traffic, keys, invoke", _endpoint_group),
    "online-deployment": (
        ("deployment",),
        "Deployments of an endpoint: create, update, logs",
        _deployment_group,
    ),
    "daemon": ((), "The local control plane (status, stop)", _daemon_group),
}
ALIASES = {alias: name for name, (aliases, _, _) in GROUPS.items() for alias in aliases}

DESCRIPTION = """\
modeldeck: run machine-learning model deployments from the terminal.

With no arguments it opens the dashboard. The commands are az ml v2's (online-endpoint,
online-deployment, model, compute) with their flags and output field names, so an
existing az ml script runs with only the program name changed.
"""

EPILOG = f"""\
walkthrough:
  {PROG} cluster create --name myaks
  {PROG} model create --name sklearn-demo --path ./model
  {PROG} online-endpoint create -f endpoint.yml
  {PROG} online-deployment create --name blue --endpoint my-endpoint -f blue.yml --all-traffic
  {PROG} online-endpoint invoke --name my-endpoint --request-file sample-request.json
  {PROG} online-deployment create --name green --endpoint my-endpoint -f green.yml
  {PROG} online-endpoint update --name my-endpoint --traffic "blue=90 green=10"
  {PROG} online-endpoint update --name my-endpoint --traffic "blue=0 green=100"
  {PROG} online-deployment delete --name blue --endpoint my-endpoint --yes

see '{PROG} GROUP --help' and '{PROG} GROUP COMMAND --help'.
"""


def selected_group(argv: Sequence[str]) -> str | None:
    return selected(argv)[0]


def selected(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """(group, command) named by the first two words of ``argv``, if they are there."""
    words = [t for t in argv if not t.startswith("-")][:2]
    group = ALIASES.get(words[0], words[0]) if words else None
    if group not in GROUPS:
        return None, None
    return group, (words[1] if len(words) > 1 else None)


def build_parser(argv: Sequence[str] = (), *, full: bool = False) -> Parser:
    """The parser; only the group named in ``argv`` is built in full unless ``full``."""
    wanted, wanted_cmd = (None, None) if full else selected(argv)
    parser = Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subs = parser.add_subparsers(dest="_top", metavar="COMMAND")
    for name, (aliases, summary, builder) in GROUPS.items():
        gp = subs.add_parser(
            name,
            aliases=list(aliases),
            help=summary,
            description=summary,
            formatter_class=_Formatter,
        )
        gp.set_defaults(_group_parser=gp)
        if full or wanted == name:
            gsubs = gp.add_subparsers(dest="_sub", metavar="COMMAND")
            gsubs.modeldeck_wanted = wanted_cmd  # type: ignore[attr-defined]
            builder(gsubs)

    p = subs.add_parser(
        "serve",
        help="Run the local control plane in the foreground",
        description=(
            "Run the local control plane (state, replicas, gateway) in the foreground.\n"
            "The CLI and the dashboard start it in the background when needed."
        ),
        epilog=f"examples:\n  {PROG} serve\n  {PROG} serve --port 8080",
        formatter_class=_Formatter,
    )
    p.add_argument("--host", help="gateway address (default 127.0.0.1; others get a warning)")
    p.add_argument("--port", type=int, help="gateway port (default: a free one)")
    p.set_defaults(_cmd="cmd_daemon:serve", _columns=None, _group="serve")
    _add_common(p)

    p = subs.add_parser(
        "ui",
        help="Open the dashboard (also: no arguments)",
        description="Open the terminal dashboard on a workspace.",
        epilog=f"examples:\n  {PROG}\n  {PROG} --readonly\n  {PROG} ui --workspace prod --readonly",
        formatter_class=_Formatter,
    )
    p.add_argument(
        "--readonly",
        action="store_true",
        help="hide and refuse every action that changes something (safe with production)",
    )
    p.set_defaults(_cmd="cmd_daemon:ui", _columns=None, _group="ui")
    _add_common(p)
    return parser


def iter_commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (path, parser) pair, depth first, without aliases (docgen, tests)."""
    out: list[tuple[tuple[str, ...], argparse.ArgumentParser]] = [(prefix, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:
                    continue
                seen.add(id(sub))
                out += iter_commands(sub, (*prefix, name))
    return out
