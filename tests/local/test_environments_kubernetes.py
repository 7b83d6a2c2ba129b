"""An environment on a Kubernetes deployment (issue 10): the control plane builds nothing on
this machine for it (the pods get the environment: the manifests' part); the scoring
container keeps the image given, and an update of the conda file goes through. Through a
real daemon against the strict fake API server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from modeldeck.services import specs
from modeldeck.services.domain import ClusterDriver, ClusterSpec
from modeldeck.services.local import daemon
from modeldeck.services.local.client import LocalWorkspace

FAKE = Path(__file__).resolve().parents[1] / "kubernetes" / "fake_apiserver.py"


def _fake_module() -> Any:
    name = "modeldeck_tests_fake_apiserver"  # the name tests/kubernetes loads it under
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FAKE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


async def test_a_conda_file_on_kubernetes_is_not_built_here(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    fk = _fake_module()
    fake = fk.FakeKube().start()
    home = tmp_path_factory.mktemp("mdk")
    work = tmp_path_factory.mktemp("work")
    config = fk.write_kubeconfig(home / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    aks = ClusterSpec(
        name="aks", driver=ClusterDriver.KUBERNETES, kube_context="fake", namespace="ml"
    )
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
                loaded = specs.load_deployment(work / "blue.yml")
                assert loaded.spec.environment == "example.org/scoring:1"
                await specs.deployment_warnings(ws, loaded)  # not refused: not a pool
                await h.wait(await ws.create_deployment(loaded.spec))
                pod = fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"]["spec"]
                assert {c["name"]: c["image"] for c in pod["containers"]}["scoring"] == (
                    "example.org/scoring:1"
                )
                # a new conda file: an update that changes nothing the pods see, and no build
                (work / "conda.yml").write_text("dependencies:\n  - pip:\n    - six==1.16.0\n")
                again = specs.load_deployment(work / "blue.yml")
                assert again.spec.environment_inline != loaded.spec.environment_inline
                await h.wait(await ws.update_deployment(again.spec))
                pod = fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"]["spec"]
                assert {c["name"]: c["image"] for c in pod["containers"]}["scoring"] == (
                    "example.org/scoring:1"
                )
                envs = home / "data" / "envs"
                assert not envs.exists() or [p.name for p in envs.iterdir()] == []  # no build
    finally:
        fake.stop()
    assert fake.invalid == []
