"""The grammar of ``online-deployment`` (alias ``deployment``): create, update, logs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..parser import PROG
from . import flags

if TYPE_CHECKING:
    from ..parser import Leaf


def _deployment(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``-n/--name`` of the deployment and ``-e/--endpoint-name`` of its endpoint."""
    flags.name(p, "deployment", required=required)
    flags.endpoint(p, required=required)


def _skip_script_validation(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-script-validation",
        action="store_true",
        help="do not parse the scoring script for init() and run() first (az ml's flag); it "
        "must still be a file in the code folder, and a broken one fails when it starts",
    )


def build(leaf: Leaf) -> None:
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
    _deployment(p, required=False)
    flags.file(p, "deployment", required=True)
    flags.set_(p)
    p.add_argument(
        "--all-traffic", action="store_true", help="send all of the endpoint's traffic to it"
    )
    _skip_script_validation(p)
    flags.local(
        p,
        "create the deployment (the endpoint is created first if it does not exist; the "
        "sole deployment of the endpoint takes its traffic, as az ml's local endpoint routes "
        "to its only deployment)",
    )
    flags.finish(p, dry_run=True, no_wait=True)

    p = leaf(
        "show",
        "cmd_deployment:show",
        "Show a deployment: spec, state, replicas, traffic, why it is not ready",
        [f"{PROG} online-deployment show --name blue --endpoint my-endpoint"],
        columns=cols,
    )
    _deployment(p)
    flags.local(p, "show the deployment")
    flags.finish(p)

    p = leaf(
        "list",
        "cmd_deployment:list_",
        "List the deployments of an endpoint (or of every endpoint)",
        [f"{PROG} online-deployment list -e my-endpoint -o table"],
        columns=cols,
    )
    flags.endpoint(p, required=False)
    flags.local(p, "list the deployments")
    flags.finish(p)

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
    _deployment(p, required=False)  # with -f, the file's names (as az ml reads them)
    flags.file(p, "deployment")
    flags.set_(p, generic=True)
    _skip_script_validation(p)
    flags.local(p, "update the deployment (the sole deployment of the endpoint takes its traffic)")
    flags.finish(p, if_revision="deployment", dry_run=True, no_wait=True)

    p = leaf(
        "delete",
        "cmd_deployment:delete",
        "Delete a deployment (refused while it takes live or mirrored traffic)",
        [
            f'{PROG} online-endpoint update --name my-endpoint --traffic "blue=0 green=100"',
            f"{PROG} online-deployment delete --name blue --endpoint my-endpoint --yes",
        ],
    )
    _deployment(p)
    flags.local(p, "delete the deployment")
    flags.finish(p, yes=True, no_wait=True)

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
            "--since / --since-time); --lines still bounds how many are shown; --lines 0 shows\n"
            "none of the earlier lines (with --follow: only new ones). On Azure ML the lines are\n"
            "printed as the service returns them, as az ml prints them."
        ),
    )
    _deployment(p)
    p.add_argument("-l", "--lines", type=int, default=100, help="number of lines (default: 100)")
    p.add_argument("--follow", action="store_true", help="keep printing new lines")
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="only lines written since: a duration (30s, 10m, 2h, 1d) or an ISO 8601 time "
        "(2026-01-02T03:04:05Z; without a zone: UTC)",
    )
    p.add_argument(
        "-c",
        "--container",
        "--container-type",
        dest="container",
        metavar="CONTAINER",
        help="the container whose log to show, as az ml names them: inference-server (the "
        "scoring server) or storage-initializer (the model and code download before it "
        "starts; on a local pool and Kubernetes, the environment build); default: the "
        "scoring server's log",
    )
    flags.local(p, "show the logs")
    flags.finish(p)

    p = leaf(
        "metrics",
        "cmd_metrics:deployment_metrics",
        "Show a deployment's metrics history (requests, status classes, latency, CPU, memory)",
        [
            f"{PROG} online-deployment metrics -e my-endpoint -n blue",
            f"{PROG} online-deployment metrics -e my-endpoint -n blue --window 24h -o table",
        ],
        description=(
            "Print the deployment's metrics over the last --window, a point per step: requests\n"
            "per second, requests by status class (2xx, 4xx, 5xx), error rate, latency\n"
            "p50/p95/p99, CPU and memory, ready replicas. The step follows the window: 5m: 10 s,\n"
            "1h: 1 min, 24h: 5 min, 7d: 1 h (Azure ML: Azure Monitor's, at least 1 min).\n"
            "The local control plane samples every deployment every 10 s whether or not anyone\n"
            "watches, and keeps 10 s steps for 24 h and 1 min steps for 30 days; Azure ML reads\n"
            "Azure Monitor's history. This command is modeldeck's own: az ml has none (its\n"
            "figures are in Azure Monitor: az monitor metrics list)."
        ),
    )
    _deployment(p)
    p.add_argument(
        "--window",
        default="1h",
        metavar="WINDOW",
        help="how far back: 5m, 1h, 24h or 7d (default: 1h)",
    )
    flags.local(p, "show the deployment's metrics")
    flags.finish(p)
