"""Issue 5's walkthrough through the real ``modeldeck`` console script.

The fake API server runs in this process (a thread); the CLI runs as a subprocess with
its own MODELDECK_HOME and a KUBECONFIG pointing at the fake. The control plane daemon
that the first command starts inherits that environment, as a user's would.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
from typing import Any

import pytest

from tests.support.cli import TIMEOUT_S

from .conftest import NS, Cli

pytestmark = pytest.mark.e2e


def managed(fake: Any) -> set[tuple[str, str]]:
    """(plural, name) of what modeldeck made in the namespace."""
    return {
        (plural, obj["metadata"]["name"])
        for plural in (
            "deployments",
            "services",
            "configmaps",
            "secrets",
            "httproutes",
            "horizontalpodautoscalers",
        )
        for obj in fake.list(plural, NS, "app.kubernetes.io/managed-by=modeldeck")
    }


def split(fake: Any) -> dict[str, int]:
    route = fake.get("httproutes", NS, "my-endpoint")
    refs = route["spec"]["rules"][-1]["backendRefs"]  # header rules first, the split last
    return {r["name"]: r["weight"] for r in refs}


def follow_first_line(cli: Cli, command: str, text: str) -> str:
    """Start a ``--follow``, wait (bounded) for a line holding ``text``, then Ctrl-C it."""
    proc = cli.popen(command)
    found: list[str] = []
    done = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if text in line:
                found.append(line)
                done.set()
                return
        done.set()

    threading.Thread(target=pump, daemon=True).start()
    done.wait(60)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    return found[0] if found else ""


def answer_on_a_terminal(cli: Cli, command: str, answer: str) -> tuple[int, str]:
    """Run ``command`` with a terminal as its input, type ``answer``; (exit code, stderr)."""
    import pty

    master, slave = pty.openpty()
    try:
        proc = cli.popen(command, stdin=slave)
        os.write(master, (answer + "\n").encode())
        try:
            _, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    finally:
        os.close(slave)
        os.close(master)
    return proc.returncode, err


def test_kubernetes_walkthrough(kube_cli: Any) -> None:
    cli, fake = kube_cli

    # attach, and pools and Kubernetes clusters side by side
    prod = cli("cluster attach prod --kube-context aks-prod --namespace ml").json()
    assert (prod["driver"], prod["namespace"], prod["purpose"]) == ("kubernetes", NS, "FastProd")
    assert prod["vcpus_total"] >= 12 and prod["agent_count"] == 4
    cli("cluster create --name myaks")
    listed = {c["name"]: c for c in cli("cluster list").json()}
    assert {n: c["driver"] for n, c in listed.items()} == {"prod": "kubernetes", "myaks": "pool"}
    table = cli("cluster list -o table").out
    assert "prod" in table and "myaks" in table
    r = cli("cluster attach --name prod2 --kube-context aks-prod --namespace ml", ok=False)
    assert "already attached as cluster 'prod'" in r.err

    cli("model create --name sklearn-demo --path ./model")

    # --dry-run of the endpoint: its manifests, keys redacted, nothing applied
    r = cli("online-endpoint create -f k8s-endpoint.yml --dry-run -o yaml")
    assert [d["kind"] for d in r.docs()] == ["Secret", "HTTPRoute"]
    values = {base64.b64decode(v).decode() for v in r.docs()[0]["data"].values()}
    assert values == {"key", "REDACTED-set-with-modeldeck"}
    assert managed(fake) == set()
    r = cli("online-endpoint create -f endpoint.yml --name pool-ep --dry-run", ok=False)
    assert "local pool" in r.err

    ep = cli("endpoint create -f k8s-endpoint.yml").json()
    assert ep["compute"] == "prod" and ep["provisioning_state"] == "Succeeded"
    keys = cli("online-endpoint get-credentials -n my-endpoint").json()

    # --dry-run of a deployment: the manifests for GitOps; the model is not registered
    r = cli("deployment create -f blue.yml --dry-run -o yaml")
    docs = r.docs()
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service", "HTTPRoute"]
    assert docs[1]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modeldeck"
    assert docs[1]["spec"]["template"]["spec"]["containers"][0]["image"].startswith("mcr.")
    assert keys["primaryKey"] not in r.out
    r = cli("online-deployment create -f green.yml --dry-run -o yaml")  # an inline model
    assert [d["kind"] for d in r.docs()][:2] == ["ConfigMap", "Deployment"]
    assert [m["name"] for m in cli("model list").json()] == ["sklearn-demo"]
    assert fake.get("deployments", NS, "my-endpoint-blue") is None

    r = cli("online-deployment create -f blue.yml --all-traffic")
    assert "environment" not in r.err, r  # a Kubernetes cluster uses the image: no warning
    blue = r.json()
    assert (blue["provisioning_state"], blue["traffic"], blue["ready_replicas"]) == (
        "Succeeded",
        100,
        1,
    )
    assert fake.get("deployments", NS, "my-endpoint-blue") is not None
    cli("online-deployment create -f green.yml")
    assert {k: v for k, v in split(fake).items() if v} == {"my-endpoint-blue": 100}
    cli('endpoint update --name my-endpoint --traffic "blue=90 green=10"')
    assert split(fake) == {"my-endpoint-blue": 90, "my-endpoint-green": 10}

    r = cli(
        "online-deployment update -n blue -e my-endpoint --set instance_count=2 --dry-run -o yaml"
    )
    assert next(d for d in r.docs() if d["kind"] == "Deployment")["spec"]["replicas"] == 2
    assert fake.get("deployments", NS, "my-endpoint-blue")["spec"]["replicas"] == 1

    logs = cli("online-deployment get-logs --endpoint-name my-endpoint --name blue").out
    assert "modeldeck podserver: listening" in logs
    get_logs = "online-deployment get-logs -e my-endpoint -n blue --since"
    assert "modeldeck podserver: listening" in cli(f"{get_logs} 1h").out
    assert cli(f"{get_logs} 2999-01-01T00:00:00Z").out.strip() == ""  # none written since
    r = cli(f"{get_logs} 10minutes", ok=False)
    assert "since" in r.err and "10m" in r.err
    line = follow_first_line(
        cli,
        "deployment get-logs --endpoint-name my-endpoint --name blue --follow",
        "modeldeck podserver",
    )
    assert "| modeldeck podserver" in line

    # detach: asks first (refused off a terminal without --yes), says what keeps running
    r = cli("cluster detach prod", ok=False)
    assert "not a terminal" in r.err and "keeps running" in r.err and "my-endpoint" in r.err
    code, err = answer_on_a_terminal(cli, "cluster detach prod", "n")
    assert code != 0 and "Are you sure" in err and "nothing was changed" in err
    assert {c["name"] for c in cli("cluster list").json()} == {"prod", "myaks"}
    r = cli("cluster detach --name myaks --yes", ok=False)
    assert "cluster delete" in r.err
    running = managed(fake)
    assert ("deployments", "my-endpoint-blue") in running and (
        "httproutes",
        "my-endpoint",
    ) in running
    cli("cluster detach --name prod --yes")
    assert [c["name"] for c in cli("cluster list").json()] == ["myaks"]
    assert cli("online-endpoint list").json() == []
    assert managed(fake) == running  # forgotten, still running

    # attached again: what runs there is adopted (and said so), then detached with
    # --delete-resources: what modeldeck made is gone
    r = cli("cluster attach --name prod --kube-context aks-prod --namespace ml")
    adopted = [line for line in r.err.splitlines() if "adopted endpoint(s)" in line]
    assert adopted and adopted[0].startswith("WARNING") and "my-endpoint" in adopted[0], r
    assert [e["name"] for e in cli("online-endpoint list").json()] == ["my-endpoint"]
    r = cli("cluster detach --name prod --delete-resources", ok=False)
    assert "will be DELETED" in r.err
    assert managed(fake) == running
    cli("cluster detach --name prod --delete-resources --yes")
    assert managed(fake) == set()
    assert fake.get("namespaces", "", NS) is not None  # nothing else is touched
