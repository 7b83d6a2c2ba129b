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
        help="workspace profile (default: $MODELDECK_WORKSPACE, the config's default, or "
        "local); as az's -w, an Azure ML workspace name also works: the azureml profile of "
        "that workspace, else that workspace when an Azure subscription is known",
    )
    g.add_argument(
        "-g",
        "--resource-group",
        help="Azure resource group, as az ml: overrides an azureml profile's; on a local "
        "profile it selects the Azure ML workspace it names (the azureml profile that "
        "matches, or any when an Azure subscription is known: --subscription, "
        "AZURE_SUBSCRIPTION_ID, az login, config.json), else it is ignored with a warning",
    )
    g.add_argument("--workspace-name", help="Azure ML workspace name, as az ml (as -g says)")
    g.add_argument("--subscription", help="Azure subscription id, as az ml (as -g says)")
    g.add_argument(
        "--debug",
        action="store_true",
        help="log the HTTP requests and what is done on stderr; the traceback of an unexpected error",
    )
    g.add_argument(
        "--verbose",
        action="store_true",
        help="log what is done on stderr (the requests, at INFO), as az's --verbose; --debug adds the details",
    )
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


class _Edits(argparse.Action):
    """az's generic update arguments, kept in the order given in one list (az's
    ``OrderedArgsAction``): ``--set`` adds one item per KEY=VALUE, ``--add``/``--remove`` one
    with their values. On ``create`` (``const=False``) ``--set`` values stay text, as az ml's
    OverridePropertiesBySet passes them; on ``update`` they are read as JSON unless
    ``--force-string`` is given (anywhere on the line)."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        from ...services.specs.setargs import SET, Edit

        items = list(getattr(namespace, self.dest, None) or [])  # the default is shared
        parse = bool(self.const) and not getattr(namespace, "force_string", False)
        if option_string == SET:
            items += [Edit(SET, (v,), parse) for v in values]
        else:
            items.append(Edit(self.option_strings[0], tuple(values), parse))
        setattr(namespace, self.dest, items)


class _ForceString(argparse.Action):
    """``--force-string``: the --set/--add values given before it are kept as text too."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        import dataclasses

        namespace.force_string = True
        items = getattr(namespace, "set", None) or []
        namespace.set = [dataclasses.replace(e, parse=False) for e in items]


def set_(p: argparse.ArgumentParser, *, generic: bool = False) -> None:
    """``--set KEY=VALUE [KEY=VALUE ...]`` (repeatable; az ml's create takes only it); with
    ``generic``, az's generic update arguments of an ``update``: --set, --add, --remove and
    --force-string (azure-cli core GenericUpdateCommandOperation)."""
    p.add_argument(
        "--set",
        nargs="+",
        action=_Edits,
        const=generic,
        dest="set",
        default=[],
        metavar="KEY=VALUE",
        help="set a field of the YAML: a dotted path, [N] for a list item (several KEY=VALUE "
        "after one --set; repeatable), e.g. --set instance_count=2 "
        "code_configuration.code=src",
    )
    if not generic:
        return
    p.add_argument(
        "--add",
        nargs="+",
        action=_Edits,
        const=True,
        dest="set",
        metavar="LIST KEY=VALUE",
        help="add an item to the list at LIST: KEY=VALUE pairs make one mapping, any other "
        "value (JSON) is an item, e.g. --add identity.user_assigned_identities resource_id=ID",
    )
    p.add_argument(
        "--remove",
        nargs="+",
        action=_Edits,
        const=True,
        dest="set",
        metavar="LIST INDEX",
        help="remove a field (--remove tags.team) or the INDEX-th item of a list",
    )
    p.add_argument(
        "--force-string",
        nargs=0,
        action=_ForceString,
        help="keep --set and --add values as text instead of reading them as JSON",
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
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        dest="tag",
        help="tags: KEY=VALUE (or KEY) pairs, several after one flag as az takes them "
        "(--tags team=demo stage=dev), or the flag repeated",
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
        help="do not wait for the operation to finish; nothing is printed, as in az",
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
