"""``workspace show`` / ``workspace list`` on the local workspace, in az ml's shape, so an
az script's ``az ml workspace show --query container_registry -o tsv | cut -d'/' -f9-``
(deploy-moe-binary-payloads.sh and 11 others, under set -e) gets a name."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from modeldeck.cli.main import main

#: azure-ai-ml WorkspaceSchema's keys (sdk/ml/azure-ai-ml/azure/ai/ml/_schema/workspace)
AZ_KEYS = {
    "name",
    "location",
    "id",
    "resource_group",
    "description",
    "discovery_url",
    "display_name",
    "hbi_workspace",
    "storage_account",
    "container_registry",
    "key_vault",
    "application_insights",
    "tags",
    "mlflow_tracking_uri",
    "public_network_access",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_workspace_show_local(md_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "workspace", "show", "-o", "json")
    assert code == 0
    shown = json.loads(out)
    assert set(shown) >= AZ_KEYS
    assert shown["name"] == "local" and shown["location"] == "local"
    assert shown["id"] == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modeldeck-local"
        "/providers/Microsoft.MachineLearningServices/workspaces/local"
    )
    assert shown["resource_group"] == "modeldeck-local"
    code, out = run(capsys, "workspace", "show", "--query", "container_registry", "-o", "tsv")
    assert code == 0
    # the script's own pipeline
    acr = subprocess.run(
        ["cut", "-d/", "-f9-"], input=out, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert acr == "modeldecklocal"
    for key in ("storage_account", "key_vault", "application_insights"):
        assert shown[key].startswith(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modeldeck-local/providers/"
        )
    code, out = run(capsys, "workspace", "list", "--query", "[].name", "-o", "tsv")
    assert (code, out.split()) == (0, ["local"])


def test_workspace_list_refuses_filtered_kinds(
    md_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workspace", "list", "--filtered-kinds", "hub"]) == 2
    assert "--filtered-kinds" in capsys.readouterr().err


def test_workspace_show_local_has_an_identity(
    md_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Azure ML workspace has a system-assigned identity (azure-ai-ml WorkspaceSchema's
    ``identity``: type, principal_id, tenant_id); scripts read ``identity.principal_id`` to
    grant it roles. The local workspace's is a stable placeholder, as a local endpoint's."""
    code, out = run(capsys, "workspace", "show", "--query", "identity.principal_id", "-o", "tsv")
    principal = out.strip()
    assert code == 0 and len(principal) == 36, out
    shown = json.loads(run(capsys, "workspace", "show", "-o", "json")[1])
    assert shown["identity"] == {
        "type": "system_assigned",
        "principal_id": principal,
        "tenant_id": "00000000-0000-0000-0000-000000000000",
    }
    listed = json.loads(run(capsys, "workspace", "list", "-o", "json")[1])
    assert listed[0]["identity"]["principal_id"] == principal
