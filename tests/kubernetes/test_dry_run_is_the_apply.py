"""``--dry-run -o yaml`` prints what the apply sends (issue 15, point 4): the same objects as
the API server then receives for the same create, field for field, so a GitOps diff of the
printed manifests against the cluster shows nothing.

Left out of the comparison: what the API server sets (resourceVersion, uid,
creationTimestamp, generation, managedFields, status), the ``modeldeck.io/changed-by`` and
``modeldeck.io/changed-at`` stamps of a write (who and when: a printed manifest has no
write yet), and the Secret's values (dry run never prints a key; the Secret's keys are
compared).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from .conftest import NS

pytestmark = pytest.mark.e2e

SERVER_SET = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")
#: who/when stamps, and the audit history's last change (written after the apply)
STAMPS = ("modeldeck.io/changed-by", "modeldeck.io/changed-at", "modeldeck.io/last-change")


def comparable(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in SERVER_SET:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    for key in STAMPS:
        annotations.pop(key, None)
    if not annotations:
        meta.pop("annotations", None)
    if out.get("kind") == "Secret":
        out["data"] = sorted(out.get("data") or {})
    return out


def received(fake: Any, kind: str, name: str) -> dict:
    """The last body of ``kind``/``name`` the API server received (apply, create, replace)."""
    bodies = [
        b
        for b in fake.written
        if b.get("kind") == kind and (b.get("metadata") or {}).get("name") == name
    ]
    assert bodies, f"nothing written for {kind}/{name}"
    return bodies[-1]


def test_dry_run_prints_what_the_create_applies(kube_cli: Any) -> None:
    cli, fake = kube_cli
    (cli.cwd / "k8s-endpoint.yml").write_text(
        "name: my-endpoint\ncompute: azureml:prod\nauth_mode: key\n"
        "description: fraud scoring\ntags:\n  team: risk\n  tier: gold\n"
    )
    cli("cluster attach prod --kube-context aks-prod --namespace ml")
    cli("model create --name sklearn-demo --path ./model")

    printed = cli("online-endpoint create -f k8s-endpoint.yml --dry-run -o yaml").docs()
    secret = next(d for d in printed if d["kind"] == "Secret")
    annotations = secret["metadata"]["annotations"]
    assert annotations["modeldeck.io/description"] == "fraud scoring"
    assert "risk" in annotations["modeldeck.io/tags"]
    cli("online-endpoint create -f k8s-endpoint.yml")
    for doc in printed:
        sent = received(fake, doc["kind"], doc["metadata"]["name"])
        assert comparable(doc) == comparable(sent), doc["kind"]

    printed = cli("online-deployment create -f blue.yml --all-traffic --dry-run -o yaml").docs()
    assert fake.get("deployments", NS, "my-endpoint-blue") is None
    cli("online-deployment create -f blue.yml --all-traffic")
    assert {d["kind"] for d in printed} == {"ConfigMap", "Deployment", "Service", "HTTPRoute"}
    for doc in printed:
        sent = received(fake, doc["kind"], doc["metadata"]["name"])
        assert comparable(doc) == comparable(sent), doc["kind"]
    # dry run and apply name the workspace's copy of the code (as the records do), not the
    # folder the YAML points to
    dep = fake.get("deployments", NS, "my-endpoint-blue")
    code = json.loads(dep["metadata"]["annotations"]["modeldeck.io/spec"])["code_configuration"]
    assert code["code"].startswith(str(cli.home)) and "/code/my-endpoint/blue/" in code["code"]
