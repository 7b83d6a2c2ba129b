"""az ml's own commands and flags, as data, and what modeldeck does with the ones it lacks.

Read from the az ml extension (Azure/azure-cli-extensions, src/machinelearningservices/
azext_mlv2/manual): ``commands.py`` (the commands; ``supports_no_wait`` adds --no-wait,
``confirmation`` adds --yes/-y, ``generic_update_command`` adds --set/--add/--remove/
--force-string), ``_params/_*_params.py`` (each flag's options_list) and ``custom/*.py``
(the parameters az turns into flags by name when _params gives no options_list, e.g.
``--local-enable-gpu``, ``--vscode-debug``, ``--package-model``). The common flags are
``_common_params.add_common_params`` (-g/--resource-group, -w/--workspace-name) and az's
own (--subscription, -o, --query, --debug, --verbose, --only-show-errors, -h).

The parser (``parser.build_parser``) turns :data:`REFUSED` into flags that stop with a
message naming them and :data:`MISSING` into commands that do the same, so no az flag is
accepted and ignored; ``tests/cli/test_azml_compat.py`` checks that every flag of
:data:`COMMANDS` is either implemented or refused, and ``docgen --azml`` writes
docs/azml-compat.md from this table and the parser.
"""

from __future__ import annotations

import argparse
from typing import Any

SOURCE = (
    "Azure/azure-cli-extensions src/machinelearningservices/azext_mlv2/manual "
    "(commands.py, _params/, custom/)"
)

#: az's flags every ml command takes (long, then short)
GLOBAL: tuple[str, ...] = (
    "--resource-group -g",
    "--workspace-name -w",
    "--subscription",
    "--output -o",
    "--query",
    "--debug",
    "--verbose",
    "--only-show-errors",
    "--help -h",
)

_UPDATE = ("--set", "--add", "--remove", "--force-string")  # az's generic update arguments
#: an asset version's show, archive and restore (model and environment alike), and share
_ONE_VERSION = ("--name -n", "--version -v", "--label -l", "--registry-name")
#: compute create's flags for AmlCompute and compute instances (_compute_params.py)
_AML_ONLY = (
    "--min-instances",
    "--max-instances",
    "--idle-time-before-scale-down -d",
    "--tier",
    "--enable-node-public-ip",
    "--vnet-name",
    "--subnet",
    "--admin-username",
    "--admin-password",
    "--ssh-key-value",
    "--ssh-public-access-enabled -p",
    "--user-tenant-id",
    "--user-object-id",
)
#: what online-deployment create and update share (_online_deployment_params.py)
_DEPLOYMENT = (
    "--name -n",
    "--endpoint-name -e",
    "--file -f",
    "--local",
    "--local-enable-gpu",
    "--vscode-debug",
)
_SHARE = (
    "--name -n",
    "--version -v",
    "--share-with-name",
    "--share-with-version",
    "--registry-name",
)

#: ``group command`` -> its flags as az ml declares them ("--long -s"), GLOBAL left out
COMMANDS: dict[str, tuple[str, ...]] = {
    # _online_endpoint_params.py, custom/online_endpoint.py
    "online-endpoint create": (
        "--name -n",
        "--file -f",
        "--auth-mode",
        "--local",
        "--no-wait",
        "--set",
        "--web -e",
    ),
    "online-endpoint show": ("--name -n", "--local", "--web -e"),
    "online-endpoint list": ("--local",),
    "online-endpoint update": (
        "--name -n",
        "--file -f",
        "--traffic -r",
        "--mirror-traffic",
        "--local",
        "--no-wait",
        "--web -e",
        *_UPDATE,
    ),
    "online-endpoint delete": ("--name -n", "--local", "--no-wait", "--yes -y"),
    "online-endpoint invoke": (
        "--name -n",
        "--request-file -r",
        "--deployment-name -d",
        "--local",
        "--set",
    ),
    "online-endpoint get-credentials": ("--name -n",),
    "online-endpoint regenerate-keys": ("--name -n", "--key-type", "--no-wait"),
    # _online_deployment_params.py, custom/online_deployment.py
    "online-deployment create": (
        *_DEPLOYMENT,
        "--all-traffic",
        "--set",
        "--web",
        "--skip-script-validation",
        "--package-model",
        "--with-package",  # its earlier preview name (azureml-examples deploy-with-packages)
        "--no-wait",
    ),
    "online-deployment show": ("--name -n", "--endpoint-name -e", "--local", "--web"),
    "online-deployment list": ("--endpoint-name -e", "--local"),
    "online-deployment update": (
        *_DEPLOYMENT,
        "--web",
        "--skip-script-validation",
        "--no-wait",
        *_UPDATE,
    ),
    "online-deployment delete": (
        "--name -n",
        "--endpoint-name -e",
        "--local",
        "--no-wait",
        "--yes -y",
    ),
    "online-deployment get-logs": (
        "--name -n",
        "--endpoint-name -e",
        "--lines -l",
        "--container -c",
        "--local",
    ),
    # _model_params.py, custom/model.py
    "model create": (
        "--name -n",
        "--version -v",
        "--file -f",
        "--path -p",
        "--type -t",
        "--description",
        "--tags",
        "--stage -s",
        "--registry-name",
        "--datastore",
        "--default-deployment-template -d",
        "--set",
        "--no-wait",
    ),
    "model show": _ONE_VERSION,
    "model list": (
        "--name -n",
        "--stage -s",
        "--max-results -r",
        "--registry-name",
        "--include-archived",
        "--archived-only",
    ),
    "model update": (
        "--name -n",
        "--version -v",
        "--label -l",
        "--stage -s",
        "--file -f",
        "--description",
        "--registry-name",
        *_UPDATE,
    ),
    "model archive": _ONE_VERSION,
    "model restore": _ONE_VERSION,
    "model download": ("--name -n", "--version -v", "--download-path -p", "--registry-name"),
    "model package": ("--name -n", "--version -v", "--file -f", "--registry-name"),
    "model share": _SHARE,
    # _environment_params.py, custom/environment.py
    "environment create": (
        "--name -n",
        "--version -v",
        "--file -f",
        "--image -i",
        "--conda-file -c",
        "--build-context -b",
        "--dockerfile-path -d",
        "--os-type",
        "--path -p",
        "--description",
        "--tags",
        "--datastore",
        "--registry-name",
        "--set",
    ),
    "environment show": _ONE_VERSION,
    "environment list": (
        "--name -n",
        "--max-results -r",
        "--registry-name",
        "--include-archived",
        "--archived-only",
    ),
    "environment update": (
        "--name -n",
        "--version -v",
        "--label -l",
        "--description",
        "--registry-name",
        *_UPDATE,
    ),
    "environment archive": _ONE_VERSION,
    "environment restore": _ONE_VERSION,
    "environment share": _SHARE,
    # _compute_params.py, custom/compute.py
    "compute create": (
        "--name -n",
        "--file -f",
        "--type -t",
        "--size",
        "--description",
        "--tags",
        "--location -l",
        "--identity-type",
        "--user-assigned-identities -i",
        *_AML_ONLY,
        "--set",
        "--no-wait",
    ),
    "compute show": ("--name -n",),
    "compute list": ("--type", "--max-results -r"),
    "compute update": (
        "--name -n",
        "--tags",
        "--min-instances",
        "--max-instances",
        "--idle-time-before-scale-down -d",
        "--identity-type",
        "--user-assigned-identities -i",
        "--no-wait",
        *_UPDATE,
    ),
    "compute delete": ("--name -n", "--no-wait", "--yes -y"),
    "compute attach": (
        "--name -n",
        "--type -t",
        "--file -f",
        "--resource-id",
        "--namespace",
        "--identity-type",
        "--user-assigned-identities -i",
        "--admin-username",
        "--admin-password",
        "--ssh-port",
        "--ssh-private-key-file",
        "--no-wait",
    ),
    "compute detach": ("--name -n", "--no-wait", "--yes -y"),
    "compute list-nodes": ("--name -n",),
    "compute list-sizes": ("--location -l", "--type -t"),
    "compute list-usage": ("--location -l",),
    "compute start": ("--name -n", "--no-wait"),
    "compute stop": ("--name -n", "--no-wait"),
    "compute restart": ("--name -n", "--no-wait"),
    "compute connect-ssh": ("--name -n", "--private-key-file-path -f"),
    "compute enable-sso": ("--name -n", "--disable"),
    # _workspace_params.py, custom/workspace.py (workspace commands name it -n/--name)
    "workspace show": ("--name -n",),
    "workspace list": ("--filtered-kinds", "--max-results -r"),
    "workspace create": ("--name -n", "--file -f", "--location -l", "--no-wait"),
    "workspace update": ("--name -n", "--file -f", "--no-wait", *_UPDATE),
    "workspace delete": ("--name -n", "--all-resources", "--permanently-delete -p", "--no-wait"),
    "workspace list-keys": ("--name -n",),
    "workspace sync-keys": ("--name -n", "--no-wait"),
    "workspace diagnose": ("--name -n", "--no-wait"),
    "workspace provision-network": ("--name -n", "--include-spark", "--no-wait"),
}

_REGISTRY = (
    "Azure ML registries are not reachable from modeldeck: register the asset in the "
    "workspace, or reference a registry asset from YAML (azureml://registries/...)"
)
_WEB = "modeldeck opens no browser; the dashboard is `modeldeck` with no arguments"
_VSCODE = "no VS Code debugger is attached: run the scoring script under your debugger"
_STAGE = "model stages are not kept; tag the version instead (--tags stage=Production)"
_DATASTORE = "files are copied into the workspace's own store (Azure ML: workspaceblobstore)"
_ARCHIVED = "archived environment versions are listed with the others (stage: Archived)"
_MAX = "every item is listed; keep the first N with --query '[:N]'"
_AML_COMPUTE = (
    "AmlCompute and compute instances are not made here: modeldeck computes are local "
    "pools and Kubernetes clusters (--agent-count, --vm-size)"
)
_IDENTITY = "a compute's managed identity is set on the cluster itself (AKS), not here"
_SSH = "virtual-machine computes are not attached; attach a Kubernetes cluster"
_PACKAGE = (
    "model packages are images Azure ML builds; modeldeck builds the environment from its "
    "conda file and serves the model from its store, unpackaged: leave the flag out"
)

#: (command, long flag) -> why modeldeck refuses it; command "*": wherever az has the flag
REFUSED: dict[tuple[str, str], str] = {
    ("*", "--registry-name"): _REGISTRY,
    ("*", "--web"): _WEB,
    ("*", "--vscode-debug"): _VSCODE,
    ("*", "--datastore"): _DATASTORE,
    ("environment list", "--include-archived"): _ARCHIVED,
    ("environment list", "--archived-only"): _ARCHIVED,
    ("online-endpoint invoke", "--set"): "invoke sends a request; it has no fields to set",
    ("*", "--local-enable-gpu"): (
        "local replicas are processes on this host, not Docker containers: they use its GPUs "
        "as any process does, there is nothing to enable"
    ),
    ("online-deployment create", "--with-package"): _PACKAGE,
    ("online-deployment create", "--package-model"): _PACKAGE,
    ("model create", "--stage"): _STAGE,
    ("model list", "--stage"): _STAGE,
    ("model list", "--max-results"): _MAX,
    ("model create", "--default-deployment-template"): (
        "deployment templates are an Azure ML registry feature"
    ),
    ("environment create", "--build-context"): (
        "environments are built from a conda file (and an image for Kubernetes), not from a "
        "Docker build context"
    ),
    ("environment create", "--dockerfile-path"): (
        "environments are built from a conda file, not from a Dockerfile"
    ),
    ("environment create", "--path"): _REGISTRY,
    ("environment list", "--max-results"): _MAX,
    ("compute create", "--file"): "computes are created from flags (--agent-count, --vm-size)",
    ("compute create", "--size"): "the node size is --vm-size",
    ("compute create", "--location"): "a compute is where its workspace is",
    ("compute create", "--set"): "computes are created from flags (--agent-count, --vm-size)",
    **{("compute create", entry.split()[0]): _AML_COMPUTE for entry in _AML_ONLY},
    ("compute create", "--identity-type"): _IDENTITY,
    ("compute create", "--user-assigned-identities"): _IDENTITY,
    ("compute list", "--max-results"): _MAX,
    ("compute update", "--min-instances"): "scale a pool with `compute scale --agent-count N`",
    ("compute update", "--max-instances"): "scale a pool with `compute scale --agent-count N`",
    ("compute update", "--idle-time-before-scale-down"): _AML_COMPUTE,
    ("compute update", "--identity-type"): _IDENTITY,
    ("compute update", "--user-assigned-identities"): _IDENTITY,
    ("compute update", "--set"): "a compute's tags are changed with --tags / --remove-tag",
    ("compute update", "--add"): "a compute's tags are changed with --tags / --remove-tag",
    ("compute update", "--remove"): "a compute's tags are changed with --tags / --remove-tag",
    ("compute update", "--force-string"): "a compute's tags are changed with --tags",
    (
        "compute attach",
        "--file",
    ): "computes are attached from flags (--resource-id, --kube-context)",
    ("compute attach", "--identity-type"): _IDENTITY,
    ("compute attach", "--user-assigned-identities"): _IDENTITY,
    ("compute attach", "--admin-username"): _SSH,
    ("compute attach", "--admin-password"): _SSH,
    ("compute attach", "--ssh-port"): _SSH,
    ("compute attach", "--ssh-private-key-file"): _SSH,
}

#: az ml commands modeldeck does not have, and why (the parser answers them with this)
MISSING: dict[str, str] = {
    "model update": "a model version does not change once registered: create a new version",
    "model download": "the model's files are in the workspace's store: `model show` prints path",
    "model package": (
        "model packages are container images Azure ML builds with its image builder; "
        "modeldeck serves a model from its store with an environment it builds itself"
    ),
    "model share": _REGISTRY,
    "environment update": "an environment version does not change once registered: create a new version",
    "environment restore": "archiving only hides a version from @latest: name the version to use it",
    "environment share": _REGISTRY,
    "compute list-nodes": _AML_COMPUTE,
    "compute list-sizes": _AML_COMPUTE,
    "compute list-usage": _AML_COMPUTE,
    "compute start": _AML_COMPUTE,
    "compute stop": _AML_COMPUTE,
    "compute restart": _AML_COMPUTE,
    "compute connect-ssh": _AML_COMPUTE,
    "compute enable-sso": _AML_COMPUTE,
    "workspace create": "workspaces are profiles in config.toml (docs/azureml.md); Azure ML ones are made in Azure",
    "workspace update": "workspaces are profiles in config.toml (docs/azureml.md); Azure ML ones are changed in Azure",
    "workspace delete": "workspaces are profiles in config.toml (docs/azureml.md); Azure ML ones are deleted in Azure",
    "workspace list-keys": "modeldeck reads no workspace keys: it signs in with Microsoft Entra ID",
    "workspace sync-keys": "modeldeck reads no workspace keys: it signs in with Microsoft Entra ID",
    "workspace diagnose": "see `modeldeck daemon status` (local) and --debug (Azure ML)",
    "workspace provision-network": "managed networks are an Azure ML workspace setting",
}

#: modeldeck's own commands, which az ml does not have, and what az ml users do instead
#: (docs/azml-compat.md lists them; a command of the parser is in COMMANDS or here)
OWN: dict[str, str] = {
    "compute scale": "az ml scales AmlCompute only (compute update --max-instances)",
    "model delete": "az ml archives a version (model archive), which modeldeck also does",
    "environment prune": "Azure ML builds and keeps images itself",
    "online-endpoint rollout": (
        "a progressive rollout with analysis and rollback; with az ml, traffic is moved by hand "
        "(online-endpoint update --traffic) and watched"
    ),
    "online-endpoint history": "Azure's activity log (az monitor activity-log list)",
    "online-deployment metrics": "Azure Monitor (az monitor metrics list)",
    "daemon status": "the local control plane's own",
    "daemon stop": "the local control plane's own",
}

#: (command, flag) -> how modeldeck's flag differs from az ml's (docs/azml-compat.md)
DIFFERS: dict[tuple[str, str], str] = {
    ("*", "--workspace-name"): (
        "`-w` names a modeldeck profile (or, as in az, an Azure ML workspace); "
        "`--workspace-name` and `-g` select an Azure ML workspace only when one can be "
        "found, else they are ignored on the local workspace with a warning"
    ),
    ("*", "--resource-group"): "as --workspace-name",
    ("*", "--local"): (
        "the local workspace (processes on this host, not Docker), whatever the profile; "
        "as az ml's local endpoints take requests with no key, a `--local` endpoint takes "
        "its owner's own keyless requests (the gateway checks the connection's uid: a "
        "loopback socket of the workspace owner's uid); another user still needs the key"
    ),
    ("online-deployment create", "--local"): (
        "the endpoint is created if missing and its sole deployment takes its traffic, as "
        "az ml's local endpoint routes to its only deployment; more than one local "
        "deployment per endpoint is allowed; that endpoint takes its owner's own keyless "
        "requests, as every `--local` endpoint (the gateway checks the connection's uid)"
    ),
    ("model create", "--default-deployment-template"): (
        "`-d` is --description here (modeldeck's older short form); the long flag is refused"
    ),
    ("environment create", "--dockerfile-path"): "`-d` is --description here",
    ("environment create", "--os-type"): (
        "linux only (az's default); windows is refused, as `os_type: windows` in the YAML: "
        "environments are built as Linux Python environments"
    ),
}


def refusal(command: str, flag: str) -> str | None:
    return REFUSED.get((command, flag)) or REFUSED.get(("*", flag))


def note(command: str, flag: str) -> str | None:
    return DIFFERS.get((command, flag)) or DIFFERS.get(("*", flag))


def split(entry: str) -> tuple[str, str | None]:
    """``"--name -n"`` -> (``--name``, ``-n``)."""
    long, _, short = entry.partition(" ")
    return long, short or None


# --------------------------------------------------------------------------- the parser


class Refused(argparse.Action):
    """An az ml flag modeldeck does not take: using it stops with its reason (exit 2)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        parser.error(f"{option_string} (az ml's) is not supported by modeldeck: {self.const}")


def add_refused(group: str, gsubs: Any, wanted: str | None) -> None:
    """Give the group's commands the az flags they refuse and the az commands they lack."""
    names = {n for n in gsubs.choices}
    for key, reason in MISSING.items():
        grp, _, cmd = key.partition(" ")
        if grp != group or cmd in names:
            continue
        p = gsubs.add_parser(
            cmd,
            help=f"az ml's; not available: {reason}",
            description=f"az ml's `{key}`: not available in modeldeck: {reason}.",
            prefix_chars="+",  # takes whatever follows, to answer with the reason
            add_help=False,
        )
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(
            _cmd="azml:refused_command", _columns=None, _group=group, _refused=(key, reason)
        )
    seen: set[int] = set()
    for cmd, sub in gsubs.choices.items():
        if (wanted is not None and cmd != wanted) or id(sub) in seen:
            continue
        seen.add(id(sub))
        have = set(sub._option_string_actions)
        extra = None
        for entry in COMMANDS.get(f"{group} {cmd}", ()):
            long, short = split(entry)
            reason = refusal(f"{group} {cmd}", long)
            if long in have or reason is None:
                continue
            if extra is None:
                extra = sub.add_argument_group("az ml flags modeldeck refuses")
            options = [long] + ([short] if short and short not in have else [])
            extra.add_argument(
                *options,
                action=Refused,
                nargs="?",
                const=reason,
                default=argparse.SUPPRESS,
                metavar="VALUE",
                help=f"refused: {reason}",
            )


def refused_command(args: argparse.Namespace) -> int:
    """The handler of an az ml command modeldeck does not have."""
    import sys

    key, reason = args._refused
    if any(word in ("-h", "--help") for word in args.rest):
        sys.stdout.write(f"usage: modeldeck {key}\n\naz ml's; not available: {reason}\n")
        return 0
    sys.stderr.write(
        f"ERROR: `{key}` (az ml's) is not available in modeldeck: {reason}\n"
        "  fix: see docs/azml-compat.md for what modeldeck takes instead\n"
    )
    return 2


refused_command.standalone = True  # type: ignore[attr-defined]
