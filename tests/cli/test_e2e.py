"""The issue's walkthrough and the CLI's bad inputs, through the real console script
against a real local control plane (started on demand, stopped at the end)."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import modeldeck_command

from .conftest import Cli

pytestmark = pytest.mark.e2e


def http_score(uri: str, key: str, body: bytes) -> httpx.Response:
    """What the walkthrough's curl does."""
    return httpx.post(
        uri,
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30.0,
    )


class LineReader:
    """Lines of a running process's stdout, read in a thread, with time-outs."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                self.queue.put(line)
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next_line(self, timeout: float) -> str | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.next_line(left)
            if line is None:
                return False
            if text in line:
                return True
        return False


def test_walkthrough(cli: Cli, work: Path) -> None:
    cluster = cli("cluster create --name myaks").json()
    assert (cluster["name"], cluster["purpose"], cluster["vcpus_total"]) == (
        "myaks",
        "FastProd",
        12,
    )

    model = cli("model create --name sklearn-demo --path ./model").json()
    assert (model["name"], model["version"]) == ("sklearn-demo", "1")  # az: a string

    ep = cli("online-endpoint create -f endpoint.yml").json()
    assert (ep["name"], ep["compute"], ep["auth_mode"]) == ("my-endpoint", "myaks", "key")

    r = cli("online-deployment create --name blue --endpoint my-endpoint -f blue.yml --all-traffic")
    blue = r.json()
    assert (blue["name"], blue["provisioning_state"], blue["traffic"]) == ("blue", "Succeeded", 100)
    # the environment image is ignored locally, in one line, and no progress line off a TTY
    assert r.err.startswith("WARNING: blue.yml: line ") and "environment" in r.err
    assert len(r.err.strip().splitlines()) == 1

    answer = cli(
        "online-endpoint invoke --name my-endpoint --request-file sample-request.json"
    ).json()
    assert answer["version"] == "blue" and len(answer["predictions"]) == 2

    r = cli("online-deployment update --name blue --endpoint my-endpoint --set instance_count=2")
    assert r.json()["instance_count"] == 2
    assert r.json()["request_settings"]["request_timeout_ms"] == 3000  # the rest is kept

    green = cli("online-deployment create --name green --endpoint my-endpoint -f green.yml").json()
    assert green["model"] == "azureml:my-endpoint-green:1"  # the inline model, registered first
    assert green["traffic"] == 0
    models = cli("model list --query '[].name'").json()
    assert sorted(models) == ["my-endpoint-green", "sklearn-demo"]

    traffic = cli("online-endpoint show -n my-endpoint --query traffic").json()
    assert traffic == {"blue": 100, "green": 0}

    pinned = cli(
        "online-endpoint invoke --name my-endpoint --deployment-name green"
        " --request-file sample-request.json"
    ).json()
    assert pinned["version"] == "green"

    logs = cli("online-deployment get-logs --name green --endpoint my-endpoint --lines 50").out
    assert "green-0 | green: scoring 2 row(s)" in logs

    # --follow prints new lines as they come, until Ctrl-C
    (work / "three-rows.json").write_text('{"data": [[1, 2, 3, 4], [0, 0, 0, 0], [1, 1, 1, 1]]}')
    follow = cli.popen("online-deployment get-logs -n green -e my-endpoint --lines 1 --follow")
    try:
        lines = LineReader(follow)
        assert lines.next_line(timeout=30) is not None  # the last line: the stream is attached
        cli("online-endpoint invoke -n my-endpoint -d green -r three-rows.json -o none")
        assert lines.wait_for("green: scoring 3 row(s)", timeout=30)
    finally:
        follow.send_signal(signal.SIGINT)
        _, err = follow.communicate(timeout=30)
    assert follow.returncode == 0 and "Traceback" not in err, err

    key = cli("online-endpoint get-credentials -n my-endpoint -o tsv --query primaryKey").out
    uri = cli("online-endpoint show -n my-endpoint -o tsv --query scoring_uri").out
    key, uri = key.strip(), uri.strip()
    assert uri.startswith("http://127.0.0.1:") and uri.endswith(
        "/api/v1/endpoint/my-endpoint/score"
    )
    body = (work / "sample-request.json").read_bytes()
    resp = http_score(uri, key, body)
    assert resp.status_code == 200 and resp.json()["version"] == "blue"

    # the OpenAPI spec, as Azure ML serves it: openapi_uri, behind the endpoint's key
    spec_uri = cli("online-endpoint show -n my-endpoint -o tsv --query openapi_uri").out.strip()
    assert spec_uri == uri[: -len("/score")] + "/swagger.json"
    assert httpx.get(spec_uri, timeout=30.0).status_code == 401
    auth = {"Authorization": f"Bearer {key}"}
    spec = httpx.get(spec_uri, headers=auth, timeout=30.0)
    assert spec.status_code == 200 and spec.json()["swagger"] == "2.0"
    assert spec.headers["azureml-model-deployment"] == "blue"
    spec3 = httpx.get(spec_uri, params={"version": "3"}, headers=auth, timeout=30.0)
    assert spec3.json()["openapi"] == "3.0.3"

    # mirror a share of the requests to green while it takes no live traffic, then stop it
    r = cli("online-endpoint update --name my-endpoint --mirror-traffic green=10")
    assert r.json()["mirror_traffic"] == {"green": 10}
    r = cli('online-endpoint update --name my-endpoint --traffic "blue=90 green=10"', ok=False)
    assert r.code == 2 and '--mirror-traffic "green=0"' in r.err  # live and mirror: not both
    r = cli("online-endpoint update --name my-endpoint --mirror-traffic green=0")
    assert r.json()["mirror_traffic"] == {}

    r = cli('online-endpoint update --name my-endpoint --traffic "blue=90 green=10"')
    assert r.json()["traffic"] == {"blue": 90, "green": 10}
    # an update without --traffic keeps the split (az resets it; we do not)
    r = cli("online-endpoint update --name my-endpoint --set 'description=rolling out'")
    assert r.json()["description"] == "rolling out"
    assert r.json()["traffic"] == {"blue": 90, "green": 10}
    # the seed's default version takes the remainder
    r = cli("online-endpoint update -n my-endpoint --traffic green=20 --rest blue")
    assert r.json()["traffic"] == {"blue": 80, "green": 20}

    cli("online-endpoint regenerate-keys --name my-endpoint --key-type primary")
    assert http_score(uri, key, body).status_code == 401  # the old key stopped working
    new_key = cli("online-endpoint get-credentials -n my-endpoint -o tsv --query primaryKey").out
    new_key = new_key.strip()
    assert new_key != key
    assert http_score(uri, new_key, body).status_code == 200

    r = cli('online-endpoint update --name my-endpoint --traffic "blue=0 green=100"')
    assert r.json()["traffic"] == {"blue": 0, "green": 100}
    assert http_score(uri, new_key, body).json()["version"] == "green"

    cli("online-deployment delete --name blue --endpoint my-endpoint --yes")
    assert cli("online-deployment list -e my-endpoint --query '[].name'").json() == ["green"]
    cli("online-endpoint delete --name my-endpoint --yes")
    assert cli("online-endpoint list").json() == []


def test_bad_inputs_change_nothing(cli: Cli, work: Path) -> None:
    cli("cluster create --name myaks -o none")
    cli("online-endpoint create -f endpoint.yml -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("online-deployment create -n blue -e my-endpoint -f blue.yml --all-traffic -o none")

    def state() -> tuple[object, ...]:
        return (
            cli("online-endpoint list --query '[].[name, traffic, mirror_traffic]'").json(),
            cli("online-deployment list --query '[].[name, instance_count]'").json(),
            cli("model list --query '[].[name, version]'").json(),
            cli("cluster list --query '[].[name, agent_count]'").json(),
        )

    before = state()

    # an unknown key in the YAML: its line and the key it probably meant
    text = (work / "green.yml").read_text().replace("instance_count: 1", "instance_cont: 1")
    (work / "typo.yml").write_text(text)
    line = text.splitlines().index("instance_cont: 1") + 1
    r = cli("online-deployment create -f typo.yml", ok=False)
    assert r.code == 2
    assert (
        f"typo.yml: line {line}: unknown key 'instance_cont' in deployment; "
        "did you mean 'instance_count'?" in r.err
    )
    assert r.err.startswith("ERROR: ") and "\n  fix: " in r.err

    # a name that breaks the rule
    r = cli("online-endpoint create --name b_d --set compute=myaks", ok=False)
    assert r.code == 2 and "3-32 characters" in r.err and "fix: " in r.err

    # traffic that does not add up to 100, and traffic to a deployment that does not exist
    r = cli("online-endpoint update -n my-endpoint --traffic blue=90", ok=False)
    assert r.code == 2 and "add up to 90" in r.err and "--rest" in r.err
    r = cli('online-endpoint update -n my-endpoint --traffic "blue=90 red=10"', ok=False)
    assert r.code == 2 and "no deployment 'red'" in r.err and "existing deployments: blue" in r.err

    # a wrong type through --set on update
    r = cli("online-deployment update -n blue -e my-endpoint --set instance_count=many", ok=False)
    assert r.code == 2 and "--set instance_count=many" in r.err and "whole number" in r.err

    # delete without --yes on a terminal asks; anything but y cancels
    r = cli.answered("online-endpoint delete -n my-endpoint", "n")
    assert r.code == 2, str(r)
    assert "Are you sure" in r.err and "cancelled" in r.err

    # delete without --yes on a non-terminal: refused, says how (even if the input says y)
    r = cli("online-endpoint delete -n my-endpoint", ok=False, stdin="y\n")
    assert r.code == 2 and "pass --yes" in r.err
    # a deployment that still takes traffic cannot be deleted (the service says so)
    r = cli("online-deployment delete -n blue -e my-endpoint --yes", ok=False)
    assert r.code == 4 and "traffic" in r.err

    # an inline model whose path does not exist: no model registered
    (work / "nomodel.yml").write_text(
        (work / "green.yml").read_text().replace("./model", "./absent")
    )
    r = cli("online-deployment create -f nomodel.yml", ok=False)
    assert r.code == 2 and "model.path" in r.err and "does not exist" in r.err

    # a model a deployment uses, and a cluster with endpoints, cannot be deleted
    r = cli("model delete -n sklearn-demo --version 1 --yes", ok=False)
    assert r.code == 4, str(r)
    r = cli("cluster delete -n myaks --yes", ok=False)
    assert r.code == 4 and "endpoint" in r.err, str(r)

    # what does not exist: exit 3 and how to list what does
    r = cli("online-endpoint get-credentials -n nope-ep", ok=False)
    assert r.code == 3 and "not found" in r.err and "list" in r.err

    assert state() == before

    # one deployment is the control, the others treatments (what the service's own fix says)
    r = cli("online-endpoint update -n my-endpoint --set control=purple", ok=False)
    assert (
        r.code == 2 and "no deployment 'purple'" in r.err and "existing deployments: blue" in r.err
    )
    # no control yet: a null result prints nothing, as az prints no None (issue 12)
    assert cli("online-endpoint show -n my-endpoint --query control").out == ""
    assert (
        cli("online-endpoint update -n my-endpoint --set control=blue").json()["control"] == "blue"
    )
    assert cli("online-deployment show -n blue -e my-endpoint --query role").json() == "control"
    assert "Control      blue" in cli("online-endpoint show -n my-endpoint -o table").out
    assert cli("online-endpoint update -n my-endpoint --set control=none").json()["control"] is None
    assert state() == before

    # a 7th deployment is refused before its inline model is registered
    for i in range(2, 7):
        cli(f"online-deployment create -n dep{i} -e my-endpoint -f blue.yml --set instance_count=0")
    models = cli("model list --query '[].[name, version]'").json()
    r = cli("online-deployment create -n seventh -e my-endpoint -f green.yml", ok=False)
    assert r.code == 2 and "at most 6 deployments" in r.err, str(r)
    assert len(cli("online-deployment list -e my-endpoint").json()) == 6
    assert cli("model list --query '[].[name, version]'").json() == models


def test_no_wait_clusters_and_tokens(cli: Cli) -> None:
    r = cli(
        "cluster create --name devpool --agent-count 1 --vm-size Standard_D2_v2"
        " --purpose DevTest --no-wait"
    )
    assert r.out == ""  # az's --no-wait prints nothing (issue 12); the create goes on
    assert "compute show -n devpool" in r.err
    assert "purpose: DevTest" in cli("cluster show -n devpool -o yaml").out
    r = cli("cluster create --name small --agent-count 1 --vm-size Standard_D2_v2", ok=False)
    assert r.code == 2 and "12 vCPU" in r.err and "--purpose DevTest" in r.err

    # an aml_token endpoint: get-credentials gives a token and its times, as az prints them
    cli("online-endpoint create -n tok-ep --set compute=devpool --auth-mode AMLToken -o none")
    token = cli("online-endpoint get-credentials -n tok-ep").json()
    assert set(token) == {"accessToken", "expiryTimeUtc", "refreshAfterTimeUtc", "tokenType"}
    assert token["expiryTimeUtc"] > token["refreshAfterTimeUtc"]
    r = cli("online-endpoint regenerate-keys -n tok-ep", ok=False)
    assert r.code == 2 and "does not use keys" in r.err
    # invoking an endpoint that sends no traffic: the gateway's reason and fix, not raw JSON
    (cli.cwd / "req.json").write_text('{"data": [[1, 2, 3, 4]]}')
    r = cli("online-endpoint invoke -n tok-ep --request-file req.json", ok=False)
    assert r.code == 1, str(r)
    assert "HTTP 503: endpoint 'tok-ep' sends no traffic to any deployment" in r.err
    assert "fix: set traffic" in r.err and '{"error"' not in r.err

    assert cli("daemon status").json()["running"] is True
    assert cli("cluster list --query 'length(@)'").out.strip() == "1"


def test_progress_is_drawn_on_a_terminal_and_quiet_in_a_pipe(cli: Cli) -> None:
    cli("cluster create --name myaks -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("online-endpoint create -f endpoint.yml -o none")
    # stderr on a terminal: one line redrawn in place, ending with the outcome
    primary, replica = os.openpty()
    try:
        proc = subprocess.Popen(
            [*modeldeck_command(), *shlex.split("online-deployment create -n blue -f blue.yml")],
            cwd=cli.cwd,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=replica,
            text=True,
        )
        out, _ = proc.communicate(timeout=120)
        os.close(replica)
        replica = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(primary)
        if replica >= 0:
            os.close(replica)
    assert proc.returncode == 0
    assert json.loads(out)["ready_replicas"] == 1  # stdout keeps the result, clean
    text = drawn.decode()
    assert "\r\x1b[KCreating deployment my-endpoint/blue: " in text
    assert "Creating deployment my-endpoint/blue: Succeeded (" in text
    # in a pipe (a script): only the one-line environment warning, no progress
    r = cli("online-deployment create -n green -f blue.yml -o none")
    assert "Creating deployment" not in r.err and "\r" not in r.err
