"""A deployment's environment on Kubernetes (issue 10, part 5): an init container builds the
conda file's packages (resolved as for a local pool) into an emptyDir, the scoring container
runs the host with that venv's python; pip credentials come from a Secret; a build that
fails shows pip's message as the deployment's error. Against the strict fake API server
(every object schema-validated), and the build script itself run for real (offline)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from modeldeck.services import environments as envs
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.drivers.base import DeploymentRuntime
from modeldeck.services.drivers.kubernetes import manifests as mf
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver
from modeldeck.services.drivers.kubernetes.rollout import RolloutFailed

from .conftest import NS

MISSING = "modeldeck-no-such-package-4f1c2==1.0"


def validate(obj: dict) -> None:
    kubernetes_validate.validate(obj, "1.33", strict=True)


def _resolved(
    tmp_path: Path, pip: list[str], conda: list[Any] | None = None, **cfg: Any
) -> envs.ResolvedEnvironment:
    doc = {"dependencies": [*(conda or ["python=3.11", "scikit-learn=1.0.2"]), {"pip": pip}]}
    spec = envs.environment_from_dict(
        {"name": "e", "conda_file": doc}, base_dir=tmp_path, source="test"
    )
    return envs.resolve(spec, pip_config=envs.PipConfig(**cfg))


def _with_env(k: Any, resolved: Any, **changes: Any) -> DeploymentRuntime:
    rt = k.runtime(**changes)
    return DeploymentRuntime(
        spec=rt.spec, model=rt.model, code_dir=rt.code_dir, environment=resolved
    )


def _objects(rt: DeploymentRuntime, *, redact: bool = False) -> list[dict]:
    app = mf.collect_files(rt.spec, rt.model, rt.code_dir, mf.environment_build(rt.environment))
    return mf.deployment_objects("ml", "ep", rt.spec, app, rt.model.ref, redact=redact)


def _files(cm: dict, dep: dict) -> dict[str, str]:
    items = dep["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
    return {i["path"]: cm["data"][i["key"]] for i in items}


def test_the_init_container_builds_the_resolved_lines_and_the_host_runs_in_them(
    k: Any, tmp_path: Path
) -> None:
    resolved = _resolved(
        tmp_path,
        ["six==1.16.0", "--extra-index-url https://mirror.example/simple"],
        index_url="https://pypi.corp.example/simple",
        trusted_hosts=["pypi.corp.example"],
    )
    objs = _objects(_with_env(k, resolved))
    assert [o["kind"] for o in objs] == ["ConfigMap", "Deployment", "Service"]
    for obj in objs:
        validate(obj)
    cm, dep = objs[0], objs[1]
    pod = dep["spec"]["template"]["spec"]
    scoring = pod["containers"][0]
    [init] = pod["initContainers"]
    assert init["name"] == "environment"
    assert init["image"] == scoring["image"] == mf.DEFAULT_IMAGE  # no image named: the default
    assert init["command"] == ["python", "/var/modeldeck/app/env/build.py"]
    assert scoring["command"] == [
        "/var/modeldeck/env/venv/bin/python",
        "/var/modeldeck/app/host.py",
    ]
    # one emptyDir: written by the build, read-only for the scoring container
    assert {"name": "environment", "emptyDir": {}} in pod["volumes"]
    assert {"name": "environment", "mountPath": "/var/modeldeck/env"} in init["volumeMounts"]
    assert {
        "name": "environment",
        "mountPath": "/var/modeldeck/env",
        "readOnly": True,
    } in scoring["volumeMounts"]
    # the same lines a local pool installs (conda's '=' mapped by services/environments)
    files = _files(cm, dep)
    lines = files["env/requirements.txt"].splitlines()
    assert lines == ["--extra-index-url https://mirror.example/simple", *resolved.requirements]
    assert "scikit-learn==1.0.2" in lines and "six==1.16.0" in lines
    config = json.loads(files["env/build.json"])
    assert config["key"] == resolved.key and config["python"] == "3.11"
    assert files["env/build.py"] == mf.ENV_BUILD_SCRIPT.read_text()
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["PIP_INDEX_URL"] == "https://pypi.corp.example/simple"
    assert env["PIP_TRUSTED_HOST"] == "pypi.corp.example"
    # another environment: another ConfigMap (a rollout), never the old pods' files changed
    other = _objects(_with_env(k, _resolved(tmp_path, ["six==1.15.0"])))[0]
    assert other["metadata"]["name"] != cm["metadata"]["name"]


def test_an_index_url_with_a_token_comes_from_a_secret_and_dry_run_redacts_it(
    k: Any, tmp_path: Path
) -> None:
    token = "s3cr3t-token-9f8e7d"
    resolved = _resolved(
        tmp_path,
        ["six==1.16.0"],
        index_url=f"https://build:{token}@pypi.corp.example/simple",
        extra_index_urls=["https://public.example/simple"],
    )
    rt = _with_env(k, resolved, environment_variables={"HTTPS_PROXY": "http://proxy:3128"})
    objs = _objects(rt)
    assert [o["kind"] for o in objs] == ["ConfigMap", "Secret", "Deployment", "Service"]
    for obj in objs:
        validate(obj)
    secret, dep = objs[1], objs[2]
    assert secret["metadata"]["name"] == "ep-blue-pip"
    assert (
        base64.b64decode(secret["data"]["PIP_INDEX_URL"])
        .decode()
        .endswith(f"{token}@pypi.corp.example/simple")
    )
    dep_text = json.dumps(dep) + json.dumps(objs[0])
    assert token not in dep_text  # not in the Deployment, not in argv, not in the ConfigMap
    [init] = dep["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e for e in init["env"]}
    assert env["PIP_INDEX_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "ep-blue-pip",
        "key": "PIP_INDEX_URL",
    }
    assert env["PIP_EXTRA_INDEX_URL"]["value"] == "https://public.example/simple"
    assert env["HTTPS_PROXY"]["value"] == "http://proxy:3128"  # the deployment's own variables
    # the deployment's PIP_INDEX_URL wins (a mirror the cluster reaches): no Secret reference
    mirror = _with_env(
        k, resolved, environment_variables={"PIP_INDEX_URL": "http://mirror.svc/simple"}
    )
    init = _objects(mirror)[2]["spec"]["template"]["spec"]["initContainers"][0]
    assert [e for e in init["env"] if e["name"] == "PIP_INDEX_URL"] == [
        {"name": "PIP_INDEX_URL", "value": "http://mirror.svc/simple"}
    ]
    printed = mf.to_yaml(_objects(rt, redact=True))
    assert token not in printed and base64.b64encode(token.encode()).decode() not in printed
    for doc in yaml.safe_load_all(printed):
        validate(doc)


def test_requirement_files_ride_in_the_configmap_and_local_packages_are_refused(
    k: Any, tmp_path: Path
) -> None:
    (tmp_path / "extra.txt").write_text("six==1.16.0\n")
    (tmp_path / "pins.txt").write_text("six<2\n")
    resolved = _resolved(tmp_path, ["-r extra.txt", "-c pins.txt"])
    cm, dep = _objects(_with_env(k, resolved))[:2]
    files = _files(cm, dep)
    lines = files["env/requirements.txt"].splitlines()
    assert "-r /var/modeldeck/app/env/requirements-0.txt" in lines
    assert "-c /var/modeldeck/app/env/constraints-1.txt" in lines
    assert files["env/requirements-0.txt"] == "six==1.16.0\n"
    assert files["env/constraints-1.txt"] == "six<2\n"
    assert str(tmp_path) not in files["env/requirements.txt"]  # no path of this machine
    wheel = tmp_path / "mine-1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    with pytest.raises(InvalidInput) as err:
        mf.environment_build(_resolved(tmp_path, [str(wheel)]))
    assert err.value.field == "environment.conda_file"
    assert "a Kubernetes pod cannot read it" in err.value.rule
    assert "PIP_INDEX_URL" in (err.value.fix or "")


def test_what_of_this_machines_pip_configuration_cannot_reach_a_pod_is_said_in_its_log(
    tmp_path: Path,
) -> None:
    resolved = _resolved(
        tmp_path,
        ["six==1.16.0"],
        extra_index_urls=["file:///opt/pypi/simple", "https://mirror.example/simple"],
        find_links=["/opt/wheels", "https://wheels.example/"],
        cert="/etc/ssl/certs/corp.pem",
    )
    build = mf.environment_build(resolved)
    assert dict(build.env) == {
        "PIP_EXTRA_INDEX_URL": "https://mirror.example/simple",
        "PIP_FIND_LINKS": "https://wheels.example/",
    }
    said = " ".join(build.warnings)
    assert "file:///opt/pypi/simple" in said and "/opt/wheels" in said
    assert "/etc/ssl/certs/corp.pem" in said
    assert json.loads(mf._environment_files(build)["env/build.json"])["warnings"] == list(
        build.warnings
    )


# ----------------------------------------------------------------------- against the fake


async def test_a_built_environment_rolls_out_and_its_build_log_is_in_get_logs(
    driver: KubernetesDriver, fake: Any, k: Any, tmp_path: Path
) -> None:
    await driver.apply_endpoint(k.route())
    progress = k.ProgressLog()
    await driver.apply_deployment(
        "ep", _with_env(k, _resolved(tmp_path, ["six==1.16.0"])), progress
    )
    assert any("init container to build" in m for _, m in progress.events)
    assert (await driver.deployment_status("ep", "blue")).ready_replicas == 1
    [pod] = fake.pods_of(k.NS, "ep-blue")
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == (
        "Completed"
    )
    lines = await driver.read_logs("ep", "blue", 50)
    built = [ln.text for ln in lines if ln.stream == "environment"]
    # scikit-learn==1.0.2 was built against NumPy 1.x: numpy<2 comes with it (conda.py)
    assert any(t.startswith("Successfully installed numpy scikit-learn six") for t in built), built
    assert [ln.stream for ln in lines][-1] == "stdout"  # the build first, then the host


async def test_a_package_that_does_not_exist_fails_with_pips_message(
    driver: KubernetesDriver, fake: Any, k: Any, tmp_path: Path
) -> None:
    await driver.apply_endpoint(k.route())
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment(
            "ep", _with_env(k, _resolved(tmp_path, [MISSING])), k.ProgressLog()
        )
    text = err.value.message
    assert "the environment build failed (exit code 1, Error" in text
    assert f"ERROR: No matching distribution found for {MISSING}" in text
    assert "get-logs" in (err.value.fix or "")
    status = await driver.deployment_status("ep", "blue")
    assert status.ready_replicas == 0
    assert f"No matching distribution found for {MISSING}" in (status.error or "")
    logs = await driver.read_logs("ep", "blue", 20)
    assert any(MISSING in ln.text and ln.stream == "environment" for ln in logs)


async def test_a_build_in_progress_shows_in_the_progress_and_in_show(
    fake: Any, kubeconfig: Path, make_driver: Any, k: Any, tmp_path: Path
) -> None:
    driver = make_driver(rollout_timeout=1.0)
    await driver.apply_endpoint(k.route())
    fake.hold_builds = True
    progress = k.ProgressLog()
    with pytest.raises(RolloutFailed) as err:  # never done: the build does not finish here
        await driver.apply_deployment(
            "ep", _with_env(k, _resolved(tmp_path, ["six==1.16.0"])), progress
        )
    assert "0/1 ready" in err.value.message
    assert any(
        m == "0/1 new replicas ready; building the environment in 1 pod(s)"
        for _, m in progress.events
    ), progress.events
    error = (await driver.deployment_status("ep", "blue")).error or ""
    assert "init container environment running (building the environment)" in error
    logs = await driver.read_logs("ep", "blue", 20)
    assert [ln.stream for ln in logs] == ["environment", "environment"]  # pip's lines so far


async def test_an_update_whose_build_fails_is_rolled_back_and_the_previous_keeps_serving(
    driver: KubernetesDriver, fake: Any, k: Any, tmp_path: Path
) -> None:
    await driver.apply_endpoint(k.route())
    good = _with_env(k, _resolved(tmp_path, ["six==1.16.0"]))
    await driver.apply_deployment("ep", good, k.ProgressLog())
    before = fake.get("deployments", k.NS, "ep-blue")["spec"]["template"]
    bad = _with_env(k, _resolved(tmp_path, ["six==1.16.0", MISSING]))
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment("ep", bad, k.ProgressLog())
    assert err.value.details.get("rolled_back") is True
    assert f"No matching distribution found for {MISSING}" in err.value.message
    after = fake.get("deployments", k.NS, "ep-blue")["spec"]["template"]
    assert after == before
    assert (await driver.deployment_status("ep", "blue")).ready_replicas == 1
    # back to no environment: the image's python, no init container, nothing left behind
    await driver.apply_deployment("ep", k.runtime(), k.ProgressLog())
    pod = fake.get("deployments", k.NS, "ep-blue")["spec"]["template"]["spec"]
    assert "initContainers" not in pod and pod["containers"][0]["command"][0] == "python"


async def test_pip_credentials_secret_is_applied_and_deleted_with_the_deployment(
    driver: KubernetesDriver, fake: Any, k: Any, tmp_path: Path
) -> None:
    await driver.apply_endpoint(k.route())
    resolved = _resolved(
        tmp_path, ["six==1.16.0"], index_url="https://u:tok-123@pypi.corp.example/simple"
    )
    await driver.apply_deployment("ep", _with_env(k, resolved), k.ProgressLog())
    assert fake.get("secrets", k.NS, "ep-blue-pip") is not None
    await driver.apply_deployment("ep", k.runtime(), k.ProgressLog())  # no credentials now
    assert fake.get("secrets", k.NS, "ep-blue-pip") is None
    await driver.apply_deployment("ep", _with_env(k, resolved), k.ProgressLog())
    await driver.delete_deployment("ep", "blue")
    assert fake.get("secrets", k.NS, "ep-blue-pip") is None
    assert fake.get("secrets", k.NS, "ep-keys") is not None  # the endpoint's keys stay


# ----------------------------------------------------------------------- the script, for real


def _wheel(folder: Path, name: str, version: str, source: str) -> None:
    """A pure-Python wheel pip installs offline."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": source.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        for path, data in files.items():
            z.writestr(path, data)


def _app(tmp_path: Path, resolved: Any) -> Path:
    """The ConfigMap's env/ files as the pod sees them."""
    build = mf.environment_build(resolved)
    app = tmp_path / "app"
    for rel, data in mf._environment_files(build).items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_bytes(data)
    return app


def _run_build(
    app: Path, target: Path, wheels: Path, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(target.parent),
        "MODELDECK_ENV_DIR": str(target),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",  # offline: only the folder below
        "PIP_FIND_LINKS": str(wheels),
    }
    return subprocess.run(
        [python, str(app / "env" / "build.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("version", ["this", "3.8"])
def test_the_build_script_builds_a_venv_the_host_can_run_and_reuses_it(
    tmp_path: Path, version: str
) -> None:
    # the image's python runs it: Python 3.8 is the oldest the script is written for
    python = sys.executable
    if version != "this":
        found, _ = envs.find_python(version, use_uv=False)  # PATH, then pyenv's versions
        if found.minor != version:
            pytest.skip(f"no Python {version} on this machine")
        python = str(found.path)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "mdtoy", "1.0", "VALUE = 42\n")
    app = _app(tmp_path, _resolved(tmp_path, ["mdtoy==1.0"], conda=["python=3.11"]))
    target = tmp_path / "env"
    target.mkdir()
    first = _run_build(app, target, wheels, python)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Successfully installed mdtoy-1.0" in first.stdout
    built = target / "venv" / "bin" / "python"
    got = subprocess.run(
        [str(built), "-c", "import mdtoy, json; print(mdtoy.VALUE, 'json' in dir())"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert got.stdout.split() == ["42", "True"]
    # the scoring host is stdlib only: it imports in the built environment
    host = Path(mf.PODSERVER)
    check = subprocess.run(
        [str(built), "-c", f"import runpy; runpy.run_path({str(host)!r}, run_name='x')"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    again = _run_build(app, target, wheels, python)  # a restarted init container on the same volume
    assert again.returncode == 0 and "already built; reusing it" in again.stdout


def test_the_build_script_fails_with_pips_message_and_keeps_nothing(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    app = _app(tmp_path, _resolved(tmp_path, [MISSING], conda=["python=3.11"]))
    target = tmp_path / "env"
    target.mkdir()
    got = _run_build(app, target, wheels)
    assert got.returncode == 1
    assert f"No matching distribution found for {MISSING}" in got.stdout
    assert "pip install failed (exit 1); nothing is kept" in got.stdout
    assert list(target.iterdir()) == []  # no venv, no marker: the next attempt starts clean
    shutil.rmtree(app)


# ----------------------------------------------------------------------- through the CLI


@pytest.mark.e2e
def test_cli_dry_run_shows_the_build_and_a_failed_build_is_the_deployments_error(
    kube_cli: Any,
) -> None:
    cli, fake = kube_cli
    work: Path = cli.cwd
    (work / "conda.yml").write_text(
        "name: demo\ndependencies:\n  - python=3.11\n  - numpy=1.26\n  - pip:\n    - six==1.16.0\n"
    )
    (work / "broken.yml").write_text(
        f"dependencies:\n  - pip:\n    - six==1.16.0\n    - {MISSING}\n"
    )
    text = (work / "blue.yml").read_text()
    image = "  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest\n"
    (work / "env-blue.yml").write_text(text.replace(image, image + "  conda_file: conda.yml\n"))
    (work / "env-red.yml").write_text(
        text.replace(image, image + "  conda_file: broken.yml\n").replace("name: blue", "name: red")
    )
    cli("cluster attach prod --kube-context aks-prod --namespace ml")
    cli("model create --name sklearn-demo --path ./model")
    cli("endpoint create -f k8s-endpoint.yml")

    r = cli("online-deployment create -f env-blue.yml --dry-run -o yaml")
    docs = r.docs()
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service", "HTTPRoute"]
    pod = docs[1]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["environment"]
    assert pod["containers"][0]["command"][0] == "/var/modeldeck/env/venv/bin/python"
    assert {"name": "environment", "emptyDir": {}} in pod["volumes"]
    reqs = next(v for key, v in docs[0]["data"].items() if key.endswith("env_requirements.txt"))
    assert reqs.splitlines()[:2] == ["numpy==1.26.*", "six==1.16.0"]
    for doc in docs[:3]:
        validate(doc)
    assert fake.get("deployments", NS, "my-endpoint-blue") is None

    blue = cli("online-deployment create -f env-blue.yml --all-traffic").json()
    assert (blue["provisioning_state"], blue["ready_replicas"]) == ("Succeeded", 1)
    logs = cli("online-deployment get-logs -e my-endpoint -n blue").out
    assert "Successfully installed numpy six" in logs

    r = cli("online-deployment create -f env-red.yml", ok=False)
    assert f"No matching distribution found for {MISSING}" in r.err, r
    shown = cli("online-deployment show -e my-endpoint -n red").json()
    assert shown["provisioning_state"] == "Failed"
    assert f"No matching distribution found for {MISSING}" in (shown.get("error") or ""), shown
    logs = cli("online-deployment get-logs -e my-endpoint -n red").out
    assert f"ERROR: No matching distribution found for {MISSING}" in logs
    # the other deployment keeps serving
    assert cli("online-deployment show -e my-endpoint -n blue").json()["ready_replicas"] == 1


async def test_get_logs_container_reads_the_init_containers_or_the_server(
    driver: KubernetesDriver, fake: Any, k: Any, tmp_path: Path
) -> None:
    """az ml's ``--container``: storage-initializer is what runs before the server (here
    the environment build's init container), inference-server the scoring container."""
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment(
        "ep", _with_env(k, _resolved(tmp_path, ["six==1.16.0"])), k.ProgressLog()
    )
    init = await driver.read_logs("ep", "blue", 50, container="storage-initializer")
    assert init and {ln.stream for ln in init} == {"environment"}
    assert any(ln.text.startswith("Successfully installed") for ln in init)
    server = await driver.read_logs("ep", "blue", 50, container="inference-server")
    assert server and {ln.stream for ln in server} == {"stdout"}
    with pytest.raises(InvalidInput) as refused:  # said, not ignored
        driver.follow_logs("ep", "blue", 10, container="storage-initializer")
    assert refused.value.field == "container" and "followed" in str(refused.value)
