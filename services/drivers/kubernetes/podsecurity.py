"""The security settings of every pod modeldeck makes: what the Pod Security Standard
``restricted`` asks (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
so a namespace labelled ``pod-security.kubernetes.io/enforce: restricted`` admits them.

* Pod level: ``runAsNonRoot: true`` with a fixed uid and gid (:data:`RUN_AS_USER`),
  ``seccompProfile: RuntimeDefault`` and ``fsGroup``: the kubelet gives the Secret volume of
  the keys (mounted ``0440``) to that group, so the pod server reads them whatever user the
  image was built for (without it a non-root user outside group 0 reads no keys and the pod
  answers 401 to everyone).
* Every container (the scoring one, the ``environment`` build, the storage initializer):
  ``allowPrivilegeEscalation: false``, ``capabilities: {drop: [ALL]}``,
  ``readOnlyRootFilesystem: true``. What they write goes to ``emptyDir`` volumes: the built
  venv and the model have theirs (see manifests), and ``/tmp`` is one, which is also
  ``HOME`` (pip, scoring scripts and the libraries they use write caches under it).

uid and gid 1000: the user Azure ML's inference images run as (``useradd --create-home
dockeruser``, their first user) and KServe's storage initializer's (``USER 1000``), so the
files those images own stay theirs; any other image runs as that user too (Python needs no
``/etc/passwd`` entry for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RUN_AS_USER = 1000
RUN_AS_GROUP = 1000
FS_GROUP = 1000
#: the writable scratch directory of every container (an emptyDir), also its HOME
TMP_DIR = "/tmp"
TMP_VOLUME = "tmp"


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "fsGroup": FS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def tmp_volume() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "emptyDir": {}}


def tmp_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": TMP_DIR}


def home_env(own: Mapping[str, Any]) -> list[dict[str, str]]:
    """``HOME`` on the writable ``/tmp``, unless the deployment's variables set it."""
    return [] if "HOME" in own else [{"name": "HOME", "value": TMP_DIR}]
