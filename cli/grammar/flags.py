"""The flags several commands share, each declared once: the global arguments, names,
files and overrides, and the tail every command ends with."""

from __future__ import annotations

import argparse

OUTPUTS = ("json", "jsonc", "yaml", "yamlc", "table", "tsv", "none")


def add_common(p: argparse.ArgumentParser) -> None:
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
    g.add_argument(
        "--debug",
        action="store_true",
        help="log the HTTP requests and what is done on stderr; the traceback of an unexpected error",
    )
    g.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    g.add_argument("--only-show-errors", action="store_true", help="do not print warnings")


def name(p: argparse.ArgumentParser, what: str, required: bool = True) -> None:
    p.add_argument("-n", "--name", required=required, help=f"name of the {what}")


def name_or_first(p: argparse.ArgumentParser, what: str) -> None:
    """``--name NAME``, or ``NAME`` as the first argument (``cluster attach prod ...``)."""
    p.add_argument("name_arg", nargs="?", metavar="NAME", help=f"the {what}'s name (or --name)")
    p.add_argument("-n", "--name", help=f"name of the {what}")


def endpoint(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "-e",
        "--endpoint-name",
        "--endpoint",
        dest="endpoint_name",
        required=required,
        help="name of the endpoint",
    )


def file(p: argparse.ArgumentParser, what: str, required: bool = False) -> None:
    p.add_argument(
        "-f",
        "--file",
        required=required,
        help=f"Azure ML v2 {what} YAML file (paths in it are relative to the file)",
    )


def set_(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the YAML (dotted path; repeatable), e.g. --set instance_count=2",
    )


def three_state(value: str) -> bool:
    """az's three-state flag value (``--local``, ``--local true``, ``--local false``)."""
    word = value.strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid value {value!r}: use true or false")


def local(p: argparse.ArgumentParser, what: str) -> None:
    """az ml's ``--local`` (azext_mlv2 _params: a three-state flag): the command goes to the
    local workspace whatever the current profile."""
    p.add_argument(
        "--local",
        nargs="?",
        const=True,
        default=False,
        type=three_state,
        metavar="true|false",
        help=f"{what} on the local workspace, whatever the current profile (-w, "
        "$MODELDECK_WORKSPACE, -g/--workspace-name are then ignored), as az ml's local "
        "endpoints; not with --no-wait",
    )


def tags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tag",
        "--tags",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="tag",
        help="tag (repeatable)",
    )


def purpose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--purpose", default="FastProd", help="FastProd (default) or DevTest")


def version(p: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    """``-v/--version`` of a model or an environment."""
    p.add_argument("-v", "--version", required=required, help=help)


def description(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--description", help="description")


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


def finish(
    p: argparse.ArgumentParser,
    *,
    yes: bool = False,
    if_revision: str | None = None,
    dry_run: bool = False,
    no_wait: bool = False,
) -> None:
    """The tail of every command, in this order: ``--yes``, ``--if-revision`` (of the kind
    named), ``--dry-run``, ``--no-wait`` where asked for, then the global arguments."""
    if yes:
        _yes(p)
    if if_revision is not None:
        _if_revision(p, if_revision)
    if dry_run:
        _dry_run(p)
    if no_wait:
        _no_wait(p)
    add_common(p)
