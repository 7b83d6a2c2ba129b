"""An environment on a Kubernetes deployment (issue 10, part 5): the control plane resolves
the conda file as for a local pool and builds nothing on this machine; the pods' init
container (``environment``) builds it and the scoring container keeps the image given, running
the host with the built python; a package that does not exist fails the deployment with
pip's message from the pod. Through a real daemon against the strict fake API server."""

from __future__ import annotations

import pytest
from modeldeck.services import apply
from modeldeck.services.api.domain import ClusterSpec, DriverKind
from modeldeck.services.api.errors import ModeldeckError
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon
from modeldeck.services.specs.deployment import load_deployment

from tests.support import fake_apiserver


async def test_a_conda_file_on_kubernetes_is_not_built_here(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    fk = fake_apiserver
    fake = fk.FakeKube().start()
    home = tmp_path_factory.mktemp("mdk")
    work = tmp_path_factory.mktemp("work")
    config = fk.write_kubeconfig(home / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    aks = ClusterSpec(name="aks", driver=DriverKind.KUBERNETES, kube_context="fake", namespace="ml")
    (work / "code").mkdir()
    (work / "code" / "score.py").write_text(
        "def init():\n    pass\n\ndef run(raw):\n    return 1\n"
    )
    (work / "conda.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n    - six==1.15.0\n")
    (work / "blue.yml").write_text(
        "name: blue\nendpoint_name: kube-ep\nmodel: azureml:sklearn-demo:1\n"
        "code_configuration: {code: ./code, scoring_script: score.py}\n"
        "environment:\n  image: example.org/scoring:1\n  conda_file: conda.yml\n"
    )
    try:
        with h.running_home(home, KUBECONFIG=str(config)):
            daemon.ensure_daemon()
            async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
                await h.wait(await ws.attach_cluster(aks))
                await h.ensure_model(ws)
                await h.make_endpoint(ws, "kube-ep", cluster="aks")
                loaded = load_deployment(work / "blue.yml")
                assert loaded.spec.environment == "example.org/scoring:1"
                await apply.deployment_warnings(ws, loaded)  # not refused: not a pool
                await h.wait(await ws.create_deployment(loaded.spec))
                pod = fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"]["spec"]
                assert {c["name"]: c["image"] for c in pod["containers"]}["scoring"] == (
                    "example.org/scoring:1"
                )
                # a new conda file: an update that changes nothing the pods see, and no build
                (work / "conda.yml").write_text("dependencies:\n  - pip:\n    - six==1.16.0\n")
                again = load_deployment(work / "blue.yml")
                assert again.spec.environment_inline != loaded.spec.environment_inline
                await h.wait(await ws.update_deployment(again.spec))
                pod = fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"]["spec"]
                assert {c["name"]: c["image"] for c in pod["containers"]}["scoring"] == (
                    "example.org/scoring:1"
                )
                envs = home / "data" / "envs"
                assert not envs.exists() or [p.name for p in envs.iterdir()] == []  # no build

                # a conda-only package: the pods' pip cannot install it either, so it is
                # refused here, before anything is sent, as on a local pool
                (work / "conda.yml").write_text("dependencies:\n  - r-base=4.2\n")
                bad = load_deployment(work / "blue.yml")
                with pytest.raises(ModeldeckError) as err:
                    await apply.deployment_warnings(ws, bad)
                assert "r-base" in str(err.value)
    finally:
        fake.stop()
    assert fake.invalid == []


async def test_the_pods_init_container_builds_it_and_a_missing_package_fails_with_pips_message(  # type: ignore[no-untyped-def]
    h, tmp_path_factory
) -> None:
    fk = fake_apiserver
    fake = fk.FakeKube().start()
    home = tmp_path_factory.mktemp("mdk")
    work = tmp_path_factory.mktemp("work")
    config = fk.write_kubeconfig(home / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    aks = ClusterSpec(name="aks", driver=DriverKind.KUBERNETES, kube_context="fake", namespace="ml")
    (work / "code").mkdir()
    (work / "code" / "score.py").write_text(
        "def init():\n    pass\n\ndef run(raw):\n    return 1\n"
    )
    (work / "good.yml").write_text(
        "dependencies:\n  - python=3.11\n  - scikit-learn=1.0.2\n  - pip:\n    - six==1.16.0\n"
    )
    # a package no index has: the pod's build fails as pip does
    (work / "bad.yml").write_text(
        "dependencies:\n  - python=3.11\n  - pip:\n    - modeldeck-no-such-package-4f1c2==1.0\n"
    )
    for name, conda in (("blue", "good.yml"), ("green", "bad.yml")):
        (work / f"{name}.yml").write_text(
            f"name: {name}\nendpoint_name: kube-ep\nmodel: azureml:sklearn-demo:1\n"
            "code_configuration: {code: ./code, scoring_script: score.py}\n"
            f"environment:\n  image: example.org/scoring:1\n  conda_file: {conda}\n"
        )
    pip_says = "No matching distribution found for modeldeck-no-such-package-4f1c2==1.0"
    try:
        with h.running_home(home, KUBECONFIG=str(config)):
            daemon.ensure_daemon()
            async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
                await h.wait(await ws.attach_cluster(aks))
                await h.ensure_model(ws)
                await h.make_endpoint(ws, "kube-ep", cluster="aks")
                blue = load_deployment(work / "blue.yml")
                warnings = await apply.deployment_warnings(ws, blue)
                assert not [w for w in warnings if "Kubernetes" in w], warnings
                # --dry-run: the init container, the volume, the host on the built python
                shown = await ws.render_manifests(blue.spec)
                pod = next(o for o in shown if o["kind"] == "Deployment")["spec"]["template"]
                [init] = pod["spec"]["initContainers"]
                assert (init["name"], init["image"]) == ("environment", "example.org/scoring:1")
                scoring = pod["spec"]["containers"][0]
                assert scoring["command"][0] == "/var/modeldeck/env/venv/bin/python"
                assert {"name": "environment", "emptyDir": {}} in pod["spec"]["volumes"]
                cm = next(o for o in shown if o["kind"] == "ConfigMap")
                reqs = [v for k, v in cm["data"].items() if k.endswith("env_requirements.txt")]
                # conda's '=' mapped as for a local pool (then this machine's pip constraints);
                # scikit-learn 1.0.2 was built against NumPy 1.x: numpy<2 comes with it
                assert reqs[0].splitlines()[:3] == ["numpy<2", "scikit-learn==1.0.2", "six==1.16.0"]
                assert fake.get("deployments", "ml", "kube-ep-blue") is None  # nothing applied

                await h.wait(await ws.create_deployment(blue.spec))
                pod = fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"]["spec"]
                assert [c["name"] for c in pod["initContainers"]] == ["environment"]
                logs = await ws.get_logs("kube-ep", "blue", lines=50)
                assert any("Successfully installed numpy scikit-learn six" in ln.text for ln in logs)

                green = load_deployment(work / "green.yml")
                with pytest.raises(ModeldeckError) as err:
                    await h.wait(await ws.create_deployment(green.spec))
                assert pip_says in err.value.message
                shown_dep = await ws.get_deployment("kube-ep", "green")
                assert shown_dep.provisioning_state.value == "Failed"
                assert pip_says in (shown_dep.error or "")
                logs = await ws.get_logs("kube-ep", "green", lines=50)
                assert any(pip_says in ln.text for ln in logs)
                envs = home / "data" / "envs"
                assert not envs.exists() or [p.name for p in envs.iterdir()] == []  # no build
    finally:
        fake.stop()
    assert fake.invalid == []
