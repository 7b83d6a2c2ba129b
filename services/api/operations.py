"""Domain types: long operations and the audit history (see domain.py: re-exported there,
loaded on first use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .domain import OperationStatus


@dataclass(frozen=True)
class Operation:
    """A long operation: create cluster, create/update deployment, delete, ..."""

    id: str
    kind: str  # e.g. "deployment.create"
    target: str  # e.g. "my-endpoint/blue"
    status: OperationStatus
    progress: float = 0.0  # 0..1
    message: str = ""
    error: dict[str, Any] | None = None  # ModeldeckError.to_dict() when Failed
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.status is not OperationStatus.RUNNING


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class ChangeRecord:
    """One change of an endpoint, one of its deployments or a cluster, as the audit history
    records it: who (``user@host`` of the client, local; the caller, Azure), when, what
    (``action``: create, update, delete, regenerate-keys, attach, detach, or the ARM
    operation's name) and each field's value before and after (``{path: [before, after]}``,
    None where it did not exist; keys never, only ``set <fingerprint>``)."""

    at: float  # epoch seconds
    actor: str
    kind: str  # "endpoint" | "deployment" | "cluster"
    target: str  # "ep", "ep/blue", or the cluster's name
    action: str
    changed: dict[str, list[Any]] = field(default_factory=dict)
    #: the revision this change made (local workspace): a revert sends it as ``if_revision``
    revision: str | None = None
    status: str = ""  # Azure activity log: Succeeded, Failed, ...


@dataclass(frozen=True)
class ChangeHistory:
    """What ``get_history`` answers: the changes, oldest first, and what this back end
    cannot show (None: nothing missing), in words."""

    changes: list[ChangeRecord] = field(default_factory=list)
    missing: str | None = None
