"""The grammar of ``online-endpoint`` (alias ``endpoint``): traffic, keys, invoke."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..parser import PROG
from . import flags

if TYPE_CHECKING:
    from ..parser import Leaf


def build(leaf: Leaf) -> None:
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
    flags.file(p, "endpoint")
    flags.name(p, "endpoint", required=False)
    p.add_argument("--auth-mode", help="key (default), aml_token or none")
    flags.set_(p)
    flags.local(p, "create the endpoint")
    flags.finish(p, dry_run=True, no_wait=True)

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
    flags.name(p, "endpoint")
    flags.local(p, "show the endpoint")
    flags.finish(p)

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
    flags.local(p, "list the endpoints")
    flags.finish(p)

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
            f'{PROG} online-endpoint update --name my-endpoint --traffic "blue=90 green=10" --force',
        ],
        description=(
            "Update an endpoint. The traffic map is changed only when --traffic/--rest (or a\n"
            "traffic: in the file) is given: an update without it keeps the current split.\n"
            "Percentages add up to 100 (or all 0); deployments left out get 0. With --rest NAME,\n"
            "NAME takes whatever the others do not (the seed's default version).\n"
            "--set control=NAME marks one deployment as the control (the others are\n"
            "treatments); --set control=none clears it.\n"
            "A change that gives more traffic (or mirror traffic) to a deployment that is not\n"
            "ready (READY 0/1, Failed) or failing (over 5% of its requests answered 5xx) is\n"
            "refused, naming the deployment and its last error, unless --force is given.\n"
            "Taking traffic away from such a deployment needs no --force."
        ),
        columns=cols,
    )
    flags.name(p, "endpoint", required=False)  # with -f, the file's name (as az ml reads it)
    p.add_argument(
        "-r",
        "--traffic",
        metavar='"NAME=PCT ..."',
        help='traffic split, e.g. "blue=90 green=10"',
    )
    p.add_argument(
        "--rest", metavar="DEPLOYMENT", help="this deployment takes the remainder of --traffic"
    )
    p.add_argument(
        "--mirror-traffic",
        metavar='"NAME=PCT"',
        help='copy a share of requests to one deployment, e.g. "green=10" ("green=0" stops it)',
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="send traffic (or mirror traffic) to a deployment that is not ready or failing; "
        "without it such a change is refused, naming the deployment, READY x/y and its last error",
    )
    flags.file(p, "endpoint")
    flags.set_(p, generic=True)
    flags.local(p, "update the endpoint")
    flags.finish(p, if_revision="endpoint", no_wait=True)

    p = leaf(
        "delete",
        "cmd_endpoint:delete",
        "Delete an endpoint and its deployments",
        [f"{PROG} online-endpoint delete --name my-endpoint --yes"],
    )
    flags.name(p, "endpoint")
    flags.local(p, "delete the endpoint")
    flags.finish(p, yes=True, no_wait=True)

    p = leaf(
        "invoke",
        "cmd_endpoint:invoke",
        "Send a request to the endpoint's scoring URI, with its key or token",
        [
            f"{PROG} online-endpoint invoke --name my-endpoint --request-file sample-request.json",
            f"{PROG} online-endpoint invoke -n my-endpoint --deployment-name green --request-file sample-request.json",
            f"{PROG} online-endpoint invoke -n my-endpoint --via api --request-file sample-request.json",
        ],
        description=(
            "Score a request through the endpoint's gateway. --deployment-name pins the request\n"
            "to one deployment whatever the traffic split (header azureml-model-deployment).\n"
            "On a Kubernetes cluster, when the scoring URI is unknown or does not take the\n"
            "connection (or with --via api), the request goes through the API server's service\n"
            "proxy to a deployment's Service (drawn by the traffic weights), and says so."
        ),
    )
    flags.name(p, "endpoint")
    p.add_argument("-r", "--request-file", required=True, help="file with the request body (JSON)")
    p.add_argument("-d", "--deployment-name", help="send the request to this deployment")
    p.add_argument(
        "--via",
        choices=("api", "uri"),
        help="Kubernetes clusters: api = through the API server's service proxy (a jump box "
        "that reaches only the API server); uri = the scoring URI only, no fallback",
    )
    flags.local(p, "invoke the endpoint")
    flags.finish(p)

    p = leaf(
        "get-credentials",
        "cmd_endpoint:get_credentials",
        "Show the endpoint's keys (key auth) or a token (aml_token auth)",
        [
            f"{PROG} online-endpoint get-credentials -n my-endpoint",
            f"KEY=$({PROG} online-endpoint get-credentials -n my-endpoint -o tsv --query primaryKey)",
        ],
    )
    flags.name(p, "endpoint")
    flags.finish(p)

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
    flags.name(p, "endpoint")
    p.add_argument("--key-type", default="primary", help="primary (default) or secondary")
    flags.finish(p, no_wait=True)

    rollout(leaf)

    p = leaf(
        "history",
        "cmd_endpoint:history",
        "Who changed the endpoint and its deployments, when, and what (before -> after)",
        [
            f"{PROG} online-endpoint history -n my-endpoint -o table",
            f"{PROG} online-endpoint history -n my-endpoint -o json",
            f"{PROG} online-endpoint history -n my-endpoint --query \"[?action=='update'].what\"",
        ],
        description=(
            "The audit history of an endpoint and its deployments, oldest first: time (ISO\n"
            "8601, UTC), who (user@host; the peer's uid on the local workspace), what was done\n"
            "(create, update, delete, regenerate-keys) and each field before -> after (keys\n"
            "never, only a fingerprint). Deleted deployments are included; a deleted endpoint's\n"
            "history stays readable.\n"
            "Not an az ml command: az has none. On Azure ML it reads the Azure activity log\n"
            "(who and which operation, not the values before and after; 90 days)."
        ),
        columns=["time", "who", "target", "action", "what"],
    )
    flags.name(p, "endpoint")
    flags.finish(p)


def rollout(leaf: Leaf) -> None:
    """``online-endpoint rollout``: modeldeck's own (az ml has none; docs/rollouts.md)."""
    p = leaf(
        "rollout",
        "cmd_rollout:rollout",
        "Progressive rollout: start one, show it, pause, resume, promote or abort it",
        [
            f"{PROG} online-endpoint rollout -n my-endpoint --to green --from blue --steps 5,10,25,50,100 --interval 2m",
            f"{PROG} online-endpoint rollout -n my-endpoint --to green --mirror-first 10m --watch -o table",
            f"{PROG} online-endpoint rollout -n my-endpoint -f rollout.yml",
            f"{PROG} online-endpoint rollout -n my-endpoint",
            f"{PROG} online-endpoint rollout -n my-endpoint --query last_check",
            f"{PROG} online-endpoint rollout -n my-endpoint --pause",
            f"{PROG} online-endpoint rollout -n my-endpoint --abort --yes",
        ],
        description=(
            "Move an endpoint's traffic from the control to the treatment in steps, holding\n"
            "each step for --interval while the control plane compares the treatment with the\n"
            "control over the same window (error rate, p95 latency; no verdict before\n"
            "--min-requests). A failed check puts all traffic back on the control at once and\n"
            "marks the rollout Failed; passing every step promotes the treatment to 100%.\n"
            "The rollout runs in the control plane: it survives this command, the SSH session\n"
            "and a daemon restart. A manual traffic change pauses it.\n"
            "On an Azure ML workspace this home's daemon drives it through ARM, signed in\n"
            "with its own Azure credentials (az login's, or the AZURE_* variables it was\n"
            "started with); --interval is at least 5m there (Azure Monitor's figures).\n"
            "With --to (or -f): start one. With none of the action flags: show the current or\n"
            "last one. --pause, --resume, --promote, --abort act on the one in progress\n"
            "(--promote and --abort ask first on a terminal; --yes does not ask).\n"
            "--watch prints each change until it ends; exit 1 when it Failed or was Aborted.\n"
            "Not an az ml command: az has none (docs/rollouts.md)."
        ),
        columns=["endpoint", "treatment", "control", "state", "phase", "traffic", "message"],
    )
    p.add_argument("-n", "--name", help="name of the endpoint (with -f: else the file's name)")
    p.add_argument(
        "--to", metavar="DEPLOYMENT", help="start a rollout of this deployment (the treatment)"
    )
    p.add_argument(
        "--from",
        dest="from_",
        metavar="DEPLOYMENT",
        help="the control (default: the endpoint's control, else the deployment with the most traffic)",
    )
    p.add_argument(
        "--steps",
        metavar="PCT,...",
        help="the treatment's share at each step: whole percents, increasing, ending at 100 "
        "(default 5,10,25,50,100)",
    )
    p.add_argument(
        "--interval",
        metavar="DURATION",
        help="how long each step is held and analysed: 30s, 2m, 1h (default 2m; 1s to 24h)",
    )
    p.add_argument(
        "--max-error-rate",
        metavar="POINTS",
        help="fail when the treatment's error rate is more than this many percentage points "
        "above the control's (default 1)",
    )
    p.add_argument(
        "--max-p95-ratio",
        metavar="RATIO",
        help="fail when the treatment's p95 latency is more than this times the control's "
        "(default 1.3)",
    )
    p.add_argument(
        "--min-requests",
        metavar="N",
        help="requests the treatment must serve in a step before any verdict (default 200)",
    )
    p.add_argument(
        "--mirror-first",
        metavar="DURATION",
        help="first copy half the live requests to the treatment for this long (no user "
        "sees its answers) and analyse it, before any live step (default: no mirror phase)",
    )
    p.add_argument(
        "--webhook",
        metavar="URL",
        help="post each step and the verdict there as JSON (default: the profile's "
        "rollout_webhook); shown redacted",
    )
    p.add_argument(
        "-f",
        "--file",
        help="a YAML file with a modeldeck.rollout block (the endpoint's YAML, or a file of its "
        "own); the flags given win over it",
    )
    actions = p.add_mutually_exclusive_group()
    for action, what in (
        ("pause", "hold the traffic where it is"),
        ("resume", "go on from the step it was paused at"),
        ("promote", "give the treatment all the traffic now, skipping the remaining steps"),
        ("abort", "put all traffic back on the control now"),
    ):
        actions.add_argument(
            f"--{action}",
            dest="action",
            action="store_const",
            const=action,
            help=f"{what} (the rollout in progress)",
        )
    p.add_argument(
        "--watch",
        action="store_true",
        help="print each change (phase, traffic, the last check's numbers, verdict) until the "
        "rollout ends; -o json prints one object a line",
    )
    flags.finish(p, yes=True)
