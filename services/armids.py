"""ARM resource ids and times as ``az`` prints them, for every back end.

az ml prints an object's ``id`` as its ARM resource id and its times in ISO 8601: azure-ai-ml
dumps them through marshmallow's ``fields.DateTime``, that is ``datetime.isoformat()``
(``2024-01-31T10:20:30.123456+00:00``; ``_schema/job/creation_context.py``). The Azure ML
back end has real coordinates (its profile's subscription, resource group and workspace);
the local workspace prints stable placeholders, the same on every machine and every run:

* subscription ``00000000-0000-0000-0000-000000000000`` (:data:`LOCAL_SUBSCRIPTION`),
* resource group ``modeldeck-local`` (:data:`LOCAL_RESOURCE_GROUP`),
* workspace: the profile's name (``local``), location ``local`` (:data:`LOCAL_LOCATION`),
* tenant ``00000000-0000-0000-0000-000000000000`` and a principal id derived from the
  resource's id (:func:`placeholder_uuid`): a local endpoint has no Entra identity, but az
  scripts read ``identity.principal_id`` and must not get an empty string.

So ``online-endpoint show -n ep --query id`` on the local workspace prints
``/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modeldeck-local/
providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/ep``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PROVIDER = "Microsoft.MachineLearningServices"
LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LOCAL_RESOURCE_GROUP = "modeldeck-local"
LOCAL_LOCATION = "local"
LOCAL_TENANT = "00000000-0000-0000-0000-000000000000"
#: the namespace of :func:`placeholder_uuid` (a uuid5 of our own, fixed forever)
_NAMESPACE = uuid.UUID("6f0c6a1e-5d8e-5b8e-9a57-6d6f64656c64")


def resource_group_id(subscription: str, resource_group: str) -> str:
    """The ARM id of a resource group."""
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}"


def workspace_id(subscription: str, resource_group: str, workspace: str) -> str:
    """The ARM id of an Azure ML workspace."""
    return f"{resource_group_id(subscription, resource_group)}/providers/{PROVIDER}/workspaces/{workspace}"


@dataclass(frozen=True)
class Scope:
    """Where a workspace's resources live in ARM terms (``Workspace.arm_scope()``)."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    #: "" when the back end does not know it without a call (then az's key prints null)
    location: str = ""
    tenant_id: str = ""
    #: the local workspace's: what ARM would give (an identity) is made up, stably
    placeholders: bool = False

    @property
    def workspace_id(self) -> str:
        return workspace_id(self.subscription_id, self.resource_group, self.workspace_name)

    def id(self, *segments: str) -> str:
        """A child's id: ``scope.id("onlineEndpoints", "ep", "deployments", "blue")``."""
        return "/".join((self.workspace_id, *segments))


def local_scope(workspace_name: str) -> Scope:
    """The local workspace's placeholders (see the module's docstring)."""
    return Scope(
        LOCAL_SUBSCRIPTION,
        LOCAL_RESOURCE_GROUP,
        workspace_name,
        LOCAL_LOCATION,
        LOCAL_TENANT,
        placeholders=True,
    )


def placeholder_uuid(arm_id: str) -> str:
    """A stable UUID for a resource that has none (a local endpoint's principal id)."""
    return str(uuid.uuid5(_NAMESPACE, arm_id.lower()))


def iso_time(epoch: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 in UTC as az prints it (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(float(epoch), tz=UTC).isoformat()


def parse_time(value: Any) -> float | None:
    """An ISO 8601 time as ARM writes it (``Z``, up to 7 fractional digits), or epoch
    seconds, -> epoch seconds; None when absent or unreadable."""
    if not value:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # ARM writes up to 7 digits; Python takes 6
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:  # ARM's times are UTC
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()
