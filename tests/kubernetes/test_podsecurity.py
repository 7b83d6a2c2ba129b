"""Pods that pass Pod Security ``restricted`` (issue 15, point 6): every pod modeldeck makes
(plain, with an environment build, with a model from ``storage_uri``) is admitted by a
namespace that enforces ``restricted``, rolls out there, and its pod server, run as the
user and groups the manifest names with the keys laid out as the kubelet lays out a Secret
volume, reads the keys and answers the endpoint's key. The admission checker
(``tests/support/podsecurity.py``) is checked first against the standard's own example."""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from modeldeck.services.api.domain import Model
from modeldeck.services.drivers.base import DeploymentRuntime
from modeldeck.services.drivers.kubernetes import manifests as mf
from modeldeck.services.drivers.kubernetes import podsecurity as ps
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

from tests.support import podsecurity as psa
from tests.support.fake_apiserver import TOKEN
from tests.support.polling import eventually

from .test_environments import _resolved, _with_env
from .test_podserver import stop, wait_for_port

RESTRICTED = {psa.ENFORCE_LABEL: "restricted"}
KINDS = ("plain", "environment", "storage_uri")


def _runtime(kind: str, k: Any, tmp_path: Path, examples: Path) -> DeploymentRuntime:
    if kind == "environment":
        return _with_env(k, _resolved(tmp_path, ["six==1.16.0"]))
    rt = k.runtime()
    if kind == "plain":
        return rt
    big = tmp_path / "big" / "model"  # too large for the ConfigMap: the initializer fetches it
    shutil.copytree(examples / "model", big)
    (big / "weights.bin").write_bytes(b"\0" * (mf.CONFIGMAP_LIMIT + 1))
    spec = dataclasses.replace(rt.spec, storage_uri="https://example.com/models/big.tar.gz")
    return dataclasses.replace(rt, spec=spec, model=Model(name="big", version=1, path=str(big)))


# ----------------------------------------------------------------------- the checker


def test_the_checker_words_a_bare_pod_as_the_api_server_does() -> None:
    # the example of https://kubernetes.io/docs/concepts/security/pod-security-admission/
    # (an nginx pod with no security settings, in a namespace enforcing restricted)
    pod = {"metadata": {"name": "nginx"}, "spec": {"containers": [{"name": "nginx"}]}}
    assert psa.refusal(RESTRICTED, pod) == (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "nginx" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "nginx" must set securityContext.capabilities.'
        'drop=["ALL"]), runAsNonRoot != true (pod or container "nginx" must set '
        'securityContext.runAsNonRoot=true), seccompProfile (pod or container "nginx" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    assert psa.refusal({}, pod) is None  # no label: privileged, nothing refused
    assert psa.refusal({psa.ENFORCE_LABEL: "baseline"}, pod) is None


def test_the_checker_refuses_each_control_of_the_standard() -> None:
    good_sc = ps.container_security_context()
    spec = {
        "hostNetwork": True,
        "securityContext": {**ps.pod_security_context(), "sysctls": [{"name": "kernel.msgmax"}]},
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}, ps.tmp_volume()],
        "containers": [
            {
                "name": "a",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {**good_sc, "privileged": True, "runAsUser": 0},
            },
            {
                "name": "b",
                "securityContext": {
                    **good_sc,
                    "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_BIND_SERVICE"]},
                    "procMount": "Unmasked",
                    "seccompProfile": {"type": "Unconfined"},
                    "seLinuxOptions": {"type": "spc_t"},
                },
            },
        ],
    }
    found = psa.violations({}, spec)
    assert found == [
        "host namespaces (hostNetwork)",
        'hostPort (container "a" uses hostPort 80)',
        'privileged (container "a" must not set securityContext.privileged=true)',
        'procMount (container "b" must not set securityContext.procMount to "Unmasked")',
        'seLinuxOptions (container "b" set forbidden securityContext.seLinuxOptions: type "spc_t")',
        "forbidden sysctls (kernel.msgmax)",
        'unrestricted capabilities (container "b" must not include "SYS_ADMIN" in '
        "securityContext.capabilities.add)",
        'restricted volume types (volume "host" uses restricted volume type "hostPath")',
        'runAsUser=0 (container "a" must not set runAsUser=0)',
        'seccompProfile (container "b" must not set securityContext.seccompProfile.type to '
        '"Unconfined")',
    ]


# ----------------------------------------------------------------------- the manifests


@pytest.mark.parametrize("kind", KINDS)
def test_every_pod_modeldeck_makes_passes_restricted(
    kind: str, k: Any, tmp_path: Path, examples: Path
) -> None:
    rt = _runtime(kind, k, tmp_path, examples)
    env = mf.environment_build(rt.environment) if rt.environment else None
    app = mf.collect_files(rt.spec, rt.model, rt.code_dir, env)
    objs = mf.deployment_objects("ml", "ep", rt.spec, app, rt.model.ref)
    [dep] = [o for o in objs if o["kind"] == "Deployment"]
    template = dep["spec"]["template"]
    assert psa.violations(template["metadata"], template["spec"]) == []
    pod = template["spec"]
    containers = pod["containers"] + pod.get("initContainers", [])
    assert [c["name"] for c in containers] == {
        "plain": ["scoring"],
        "environment": ["scoring", "environment"],
        "storage_uri": ["scoring", "storage-initializer"],
    }[kind]
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["runAsGroup"] == 1000
    assert sc["fsGroup"] == 1000  # the keys volume belongs to the pod's group
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["defaultMode"] & 0o040  # group-readable, and not by others
    assert not keys["secret"]["defaultMode"] & 0o007
    writable = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for c in containers:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts["/tmp"]["name"] in writable and not mounts["/tmp"].get("readOnly")
        assert {"name": "HOME", "value": "/tmp"} in c["env"]
    if kind == "environment":  # the venv is built into an emptyDir the build may write
        build = pod["initContainers"][0]
        [venv] = [m for m in build["volumeMounts"] if m["mountPath"] == mf.ENV_DIR]
        assert venv["name"] in writable and not venv.get("readOnly")


def test_a_home_the_deployment_sets_is_kept(k: Any) -> None:
    rt = k.runtime(environment_variables={"HOME": "/var/cache/me"})
    app = mf.collect_files(rt.spec, rt.model, rt.code_dir)
    dep = mf.deployment("ml", "ep", rt.spec, app, rt.model.ref)
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == "HOME"] == ["/var/cache/me"]


# ----------------------------------------------------------------------- against the fake


def test_the_fake_refuses_a_pod_that_breaks_restricted_with_403(fake: Any) -> None:
    fake.label_namespace("ml", RESTRICTED)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nginx"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
    }
    r = httpx.post(
        f"{fake.url}/api/v1/namespaces/ml/pods",
        json=pod,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 403
    body = r.json()
    assert body["reason"] == "Forbidden"
    assert body["message"].startswith(
        'pods "nginx" is forbidden: violates PodSecurity "restricted:latest": '
        "allowPrivilegeEscalation != false"
    )
    assert fake.get("pods", "ml", "nginx") is None


async def test_a_pod_template_that_breaks_restricted_gets_no_pods_and_says_why(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    """What the cluster shows for a Deployment whose pods the namespace refuses: no pod, a
    FailedCreate event of its ReplicaSet and a ReplicaFailure condition with the message."""
    fake.label_namespace(k.NS, RESTRICTED)
    rt = k.runtime()
    app = mf.collect_files(rt.spec, rt.model, rt.code_dir)
    dep = mf.deployment(k.NS, "ep", rt.spec, app, rt.model.ref)
    del dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]  # as before the fix
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"{fake.url}/apis/apps/v1/namespaces/{k.NS}/deployments"
    assert httpx.post(base, json=dep, headers=headers).status_code == 201  # not a pod: admitted

    def failed() -> dict | None:
        got = fake.get("deployments", k.NS, "ep-blue") or {}
        conds = (got.get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "ReplicaFailure"), None)

    await eventually(failed, what="a ReplicaFailure condition")
    cond = failed()
    assert cond is not None
    assert cond["reason"] == "FailedCreate"
    assert (
        'is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true'
        in (cond["message"])
    )
    assert fake.pods_of(k.NS, "ep-blue") == []
    events = await driver.events(endpoint="ep", name="blue")
    assert any(e["reason"] == "FailedCreate" and "PodSecurity" in e["message"] for e in events)


# ----------------------------------------------------------------------- the pod, as the kubelet runs it


def _python_for(uid: int, gid: int) -> str | None:
    """A Python the pod's user may run (this one may live in root's home)."""
    for exe in (sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3"):
        try:
            r = subprocess.run(
                [exe, "-I", "-c", "import sys; assert sys.version_info >= (3, 9)"],
                user=uid,
                group=gid,
                cwd="/",
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if r.returncode == 0:
            return exe
    return None


def _kubelet_volumes(root: Path, pod: dict, objects: dict[str, dict], model: Path | None) -> None:
    """The pod's volumes under ``root/NAME`` as the kubelet makes them: ConfigMap and Secret
    files owned by root with their ``defaultMode``; with ``fsGroup``, given to that group
    and group-readable (what the kubelet does to these read-only volumes); emptyDirs
    0777 (and the group's, set-gid). ``model``: what the storage initializer fetched."""
    group = (pod.get("securityContext") or {}).get("fsGroup")
    for vol in pod["volumes"]:
        where = root / vol["name"]
        where.mkdir(mode=0o755)
        source = vol.get("configMap") or vol.get("secret")
        if source is not None:
            obj = objects[source.get("name") or source.get("secretName")]
            data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
            if vol.get("secret"):
                data = {k: base64.b64decode(v) for k, v in data.items()}
            data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                path = where / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                path.write_bytes(data[item["key"]])
                mode = source.get("defaultMode", 0o644)
                if group is not None:
                    os.chown(path, 0, group)
                    mode |= 0o440
                os.chmod(path, mode)
        else:  # emptyDir
            os.chmod(where, 0o777 | (stat.S_ISGID if group is not None else 0))
            if group is not None:
                os.chown(where, 0, group)
            if vol["name"] == "model" and model is not None:
                shutil.copytree(model, where / model.name)


def _run_scoring(root: Path, pod: dict, python: str) -> tuple[subprocess.Popen, str]:
    """The scoring container as the kubelet starts it: its command (the image's python
    replaced by one the user may run), its variables with the mount paths under ``root``,
    as the pod's user, group and supplementary groups (``fsGroup``)."""
    [c] = pod["containers"]
    mounts = sorted(
        ((m["mountPath"], root / m["name"]) for m in c["volumeMounts"]),
        key=lambda m: -len(m[0]),
    )

    def local(value: str) -> str:
        for path, there in mounts:
            if value == path or value.startswith(path + "/"):
                return str(there) + value[len(path) :]
        return value

    sc = pod.get("securityContext") or {}
    env = {e["name"]: local(e["value"]) for e in c["env"] if "value" in e}
    env.update(PORT="0", PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    proc = subprocess.Popen(
        [python, *map(local, c["command"][1:])],
        env=env,
        user=sc.get("runAsUser", 1000),
        group=sc.get("runAsGroup", 1000),
        extra_groups=[sc["fsGroup"]] if "fsGroup" in sc else [],
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, f"http://127.0.0.1:{wait_for_port(proc, 90.0)}"


@pytest.fixture
def pod_root() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("running the pod server as the pod's user needs root (setuid, chown)")
    root = Path(tempfile.mkdtemp(prefix="modeldeck-pod-"))
    os.chmod(root, 0o755)  # the pod's user walks into it, as into the kubelet's pod dir
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("kind", KINDS)
async def test_in_a_restricted_namespace_the_pod_rolls_out_and_answers_its_key(
    kind: str,
    driver: KubernetesDriver,
    fake: Any,
    k: Any,
    tmp_path: Path,
    examples: Path,
    pod_root: Path,
) -> None:
    fake.label_namespace(k.NS, RESTRICTED)
    rt = _runtime(kind, k, tmp_path, examples)
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment("ep", rt, k.ProgressLog())
    assert (await driver.deployment_status("ep", "blue")).ready_replicas == 1
    assert len(fake.pods_of(k.NS, "ep-blue")) == 1

    pod = fake.get("deployments", k.NS, "ep-blue")["spec"]["template"]["spec"]
    sc = pod["securityContext"]
    python = _python_for(sc["runAsUser"], sc["runAsGroup"])
    if python is None:
        pytest.skip(f"no Python here that uid {sc['runAsUser']} may run")
    objects = {
        o["metadata"]["name"]: o
        for plural in ("configmaps", "secrets")
        for o in fake.list(plural, k.NS)
    }
    body = (examples / "sample-request.json").read_bytes()
    model = Path(rt.model.path) if kind == "storage_uri" else None

    def score(spec: dict, where: Path) -> int:
        where.mkdir(mode=0o755)
        _kubelet_volumes(where, spec, objects, model)
        proc, url = _run_scoring(where, spec, python)
        try:
            r = httpx.post(
                url + "/api/v1/endpoint/ep/score",
                content=body,
                headers={"Authorization": f"Bearer {k.KEY1}"},
                timeout=60,
            )
            return r.status_code
        finally:
            stop(proc)

    assert score(pod, pod_root / "pod") == 200
    # the same pod without fsGroup (as before): the keys are root's, 0440; its user reads
    # none of them and the pod answers 401 to everyone
    bare = {**pod, "securityContext": {k_: v for k_, v in sc.items() if k_ != "fsGroup"}}
    assert score(bare, pod_root / "bare") == 401
