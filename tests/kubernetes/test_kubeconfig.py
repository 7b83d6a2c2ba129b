"""Contexts read from KUBECONFIG as kubectl reads them: several files, merged, first wins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.drivers.kubernetes.kubeconfig import client_configuration, load_context


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def config(
    clusters: dict[str, str],
    contexts: dict[str, tuple[str, str, str | None]],
    current: str | None = None,
    users: dict[str, str] | None = None,
) -> dict:
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in clusters.items()],
        "users": [{"name": n, "user": {"token": t}} for n, t in (users or {}).items()],
        "contexts": [
            {"name": n, "context": {"cluster": c, "user": u, **({"namespace": ns} if ns else {})}}
            for n, (c, u, ns) in contexts.items()
        ],
    }
    if current:
        out["current-context"] = current
    return out


def test_several_files_merge_first_definition_wins(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a",
        config(
            {"shared": "https://first:6443"},
            {"dev": ("shared", "u", "team-a")},
            current="dev",
            users={"u": "t1"},
        ),
    )
    b = write(
        tmp_path / "b",
        config(
            {"shared": "https://second:6443", "prod": "https://prod:6443"},
            {"dev": ("prod", "u", None), "prod": ("prod", "u2", None)},
            current="prod",
            users={"u": "t2", "u2": "t3"},
        ),
    )
    env = os.pathsep.join([str(tmp_path / "missing"), str(a), str(b)])
    dev = load_context(None, env=env)  # current-context from the first file that sets it
    assert (dev.name, dev.server, dev.namespace) == ("dev", "https://first:6443", "team-a")
    prod = load_context("prod", env=env)  # defined only in the second file
    assert (prod.server, prod.namespace) == ("https://prod:6443", "default")
    assert prod.files == (str(a), str(b))
    cfg = client_configuration(prod)
    assert cfg.host == "https://prod:6443"
    assert cfg.auth_settings()["BearerToken"]["value"] == "Bearer t3"


def test_missing_context_names_the_context_and_the_files(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a",
        config(
            {"c": "https://c:6443"},
            {"one": ("c", "u", None), "two": ("c", "u", None)},
            users={"u": "t"},
        ),
    )
    with pytest.raises(InvalidInput) as err:
        load_context("aks-prod", env=str(a))
    text = str(err.value)
    assert "aks-prod" in text and str(a) in text
    assert "one, two" in (err.value.fix or "")


def test_no_kubeconfig_at_all_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        load_context("x", env=str(tmp_path / "nothing-here"))
    assert str(tmp_path / "nothing-here") in str(err.value)


def test_relative_certificate_paths_are_relative_to_their_file(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    data = config({"c": "https://c:6443"}, {"ctx": ("c", "u", None)}, users={"u": "t"})
    data["clusters"][0]["cluster"]["certificate-authority"] = "ca.crt"
    f = write(sub / "config", data)
    ctx = load_context("ctx", env=str(f))
    cluster = ctx.config["clusters"][0]["cluster"]
    assert cluster["certificate-authority"] == str(sub / "ca.crt")


def test_kubeconfig_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(
        tmp_path / "a", config({"c": "https://a:6443"}, {"a": ("c", "u", "ml")}, users={"u": "t"})
    )
    b = write(
        tmp_path / "b", config({"d": "https://b:6443"}, {"b": ("d", "u", None)}, users={"u": "t"})
    )
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(a), str(b)]))
    assert load_context("b").server == "https://b:6443"
    assert load_context("a").namespace == "ml"


@pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is not installed: the cross-check against it cannot run "
    "(test_several_files_merge_first_definition_wins covers the rules)",
)
def test_merge_agrees_with_kubectl_itself(tmp_path: Path) -> None:
    """The same KUBECONFIG list read by kubectl (``config view --minify``): every context
    resolves to the same server, namespace and credentials, and the same current context."""
    a = write(
        tmp_path / "a",
        config(
            {"shared": "https://first:6443"},
            {"dev": ("shared", "u", "team-a")},
            users={"u": "t1"},
        ),
    )
    b = write(
        tmp_path / "b",
        config(
            {"shared": "https://second:6443", "prod": "https://prod:6443"},
            {"dev": ("prod", "u", None), "prod": ("prod", "u2", None), "x": ("shared", "u2", "x")},
            current="prod",
            users={"u": "t2", "u2": "t3"},
        ),
    )
    c = write(tmp_path / "c", config({}, {}, current="x"))
    env_value = os.pathsep.join([str(tmp_path / "missing"), str(a), str(b), str(c)])
    env = dict(os.environ, KUBECONFIG=env_value)

    def kubectl(*args: str) -> str:
        out = subprocess.run(
            ["kubectl", *args], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        return out.stdout.strip()

    assert load_context(None, env=env_value).name == kubectl("config", "current-context")
    for name in ("dev", "prod", "x"):
        view = json.loads(
            kubectl("config", "view", "--minify", "--raw", "-o", "json", "--context", name)
        )
        ours = load_context(name, env=env_value)
        ctx = view["contexts"][0]["context"]
        assert ours.server == view["clusters"][0]["cluster"]["server"], name
        assert ours.namespace == ctx.get("namespace", "default"), name
        assert ours.user == ctx["user"], name
        token = client_configuration(ours).auth_settings()["BearerToken"]["value"]
        assert token == "Bearer " + view["users"][0]["user"]["token"], name
