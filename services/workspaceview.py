"""The workspace as ``az ml workspace show`` / ``list`` print it, for every back end.

Keys: azure-ai-ml's ``WorkspaceSchema`` (sdk/ml/azure-ai-ml/azure/ai/ml/_schema/workspace/
workspace.py: name, location, id, resource_group, description, discovery_url,
display_name, hbi_workspace, storage_account, container_registry, key_vault,
application_insights, tags, mlflow_tracking_uri, public_network_access), plus ``identity``
and ``enable_data_isolation`` as newer az ml versions print them. An Azure ML workspace's
come from ARM's ``Workspace`` (``azureml/mapping.workspace_to_dict``).

The local workspace has no Azure resources; it prints placeholders in ARM form under the
local subscription and resource group of :mod:`.armids`, so an az script's
``az ml workspace show --query container_registry -o tsv | cut -d'/' -f9-`` gets a name
(``modeldecklocal``): ``container_registry``, ``storage_account``, ``key_vault`` and
``application_insights`` are ``.../providers/<type>/modeldecklocal``. It has no MLflow
server and no discovery service: those keys are null. Its ``identity`` is a stable
placeholder as a local endpoint's (:func:`.armids.placeholder_uuid` of its id), so a script's
``--query identity.principal_id`` (an Azure ML workspace's system-assigned identity, which
scripts hand to ``az role assignment create``) gets a value, not an empty string.
"""

from __future__ import annotations

from typing import Any

from .api.domain import Identity, to_dict
from .armids import (
    LOCAL_LOCATION,
    LOCAL_RESOURCE_GROUP,
    LOCAL_SUBSCRIPTION,
    LOCAL_TENANT,
    placeholder_uuid,
    resource_group_id,
    workspace_id,
)

#: the name the local workspace's placeholder resources have (letters and digits: valid
#: for an ACR or storage account name, which scripts pass on to `az acr` / `az storage`)
LOCAL_RESOURCE_NAME = "modeldecklocal"

_LOCAL_RESOURCES = {
    "storage_account": "Microsoft.Storage/storageAccounts",
    "container_registry": "Microsoft.ContainerRegistry/registries",
    "key_vault": "Microsoft.KeyVault/vaults",
    "application_insights": "Microsoft.insights/components",
}


def local_workspace(name: str, description: str = "") -> dict[str, Any]:
    """The local workspace (a profile ``name``) in az's shape, with the placeholders above."""
    group = resource_group_id(LOCAL_SUBSCRIPTION, LOCAL_RESOURCE_GROUP)
    resources = {
        key: f"{group}/providers/{kind}/{LOCAL_RESOURCE_NAME}"
        for key, kind in _LOCAL_RESOURCES.items()
    }
    arm_id = workspace_id(LOCAL_SUBSCRIPTION, LOCAL_RESOURCE_GROUP, name)
    identity = Identity(principal_id=placeholder_uuid(arm_id), tenant_id=LOCAL_TENANT)
    return shape(
        name=name,
        id=arm_id,
        location=LOCAL_LOCATION,
        resource_group=LOCAL_RESOURCE_GROUP,
        display_name=name,
        description=description,
        discovery_url=None,
        mlflow_tracking_uri=None,
        hbi_workspace=False,
        public_network_access="Enabled",
        enable_data_isolation=False,
        tags={},
        identity=to_dict(identity),
        **resources,
    )


def shape(**fields: Any) -> dict[str, Any]:
    """The keys in az's order (alphabetical, as az's JSON output sorts them)."""
    return {k: fields[k] for k in sorted(fields)}
