"""An environment on a Kubernetes deployment (issue 10): the manifests are another part, so
today's behaviour stays (the image as it is, nothing built here) and a conda file gets a
warning. Through a real daemon against the strict fake API server."""

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


async def test_a_conda_file_on_kubernetes_keeps_the_image_and_warns(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
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
    # a package no index has: were it built here, the deployment would fail
    (work / "conda.yml").write_text(
        "dependencies:\n  - python=3.11\n  - pip:\n    - modeldeck-no-such-package-4f1c2==1.0\n"
    )
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
                warnings = await specs.deployment_warnings(ws, loaded)
                assert len(warnings) == 1
                assert "conda_file is not built on Kubernetes" in warnings[0]
                assert "example.org/scoring:1" in warnings[0]
                await h.wait(await ws.create_deployment(loaded.spec))
                pod = fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"]["spec"]
                assert [c["image"] for c in pod["containers"]] == ["example.org/scoring:1"]
                envs = home / "data" / "envs"
                assert not envs.exists() or [p.name for p in envs.iterdir()] == []  # no build
    finally:
        fake.stop()
    assert fake.invalid == []
