"""Model and code inputs (services/inputs.py): what may be copied, read or uploaded.

Each rule is checked on real files in tmp_path (FIFOs, sockets, links, sparse files made
with truncate: nothing fills the disk) and on the real /dev and /proc.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from pathlib import Path

import pytest
from modeldeck.services import inputs
from modeldeck.services.api import validation
from modeldeck.services.api.domain import (
    CodeConfiguration,
    DeploymentSpec,
    Model,
    ModelSpec,
)
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.drivers.kubernetes import manifests


def refused(path: Path | str, field: str = "path", **kw: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        inputs.scan(str(path), field, **kw)  # type: ignore[arg-type]
    assert err.value.field == field
    assert err.value.fix
    return err.value


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 100)
    (folder / "sub" / "config.json").write_text("{}")
    return folder


# --------------------------------------------------------------------------- kinds


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/proc/self", "/proc/kmsg", "/sys"])
def test_devices_and_kernel_file_systems_are_refused_before_a_byte_is_read(path: str) -> None:
    if not os.path.lexists(path):
        pytest.skip(f"{path} does not exist here")
    err = refused(path)
    assert err.value == path
    assert "is on /" in err.rule and "never a model" in err.rule


def test_proc_self_is_refused_though_it_is_a_link(tmp_path: Path) -> None:
    # /proc/self -> /proc/PID: followed once, still on /proc; a link in tmp_path to it too
    link = tmp_path / "innocent"
    link.symlink_to("/proc/self")
    err = refused(link)
    assert "/proc" in err.rule and err.value == str(link)


def test_fifo_and_socket_are_refused_named_and_never_opened(tmp_path: Path, model: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it would block until a writer comes: it is never opened
    assert "FIFO" in refused(fifo).rule
    os.mkfifo(model / "sub" / "pipe")
    err = refused(model)
    assert err.value == str(model / "sub" / "pipe") and "FIFO" in err.rule
    (model / "sub" / "pipe").unlink()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(model / "sock"))
        err = refused(model)
    assert err.value == str(model / "sock") and "a socket" in err.rule
    assert "remove it" in (err.fix or "")


def test_validation_model_spec_refuses_a_device_on_the_cli_side() -> None:
    with pytest.raises(InvalidInput) as err:
        validation.model_spec(ModelSpec(name="zero", path="/dev/zero"))
    assert err.value.field == "path" and "/dev" in err.value.rule


# --------------------------------------------------------------------------- links


def test_a_link_out_of_the_folder_is_refused_naming_the_link_and_its_target(
    tmp_path: Path, model: Path
) -> None:
    secret = tmp_path / "secret.txt"  # stands for /etc/shadow or ~/.ssh/id_ed25519
    secret.write_text("not for the store")
    (model / "sub" / "key").symlink_to(secret)
    err = refused(model)
    assert err.value == str(model / "sub" / "key")
    assert str(secret) in err.rule and "outside" in err.rule
    # a folder link out is refused the same way, and so is one through '..'
    (model / "sub" / "key").unlink()
    (model / "up").symlink_to("..")
    assert refused(model).value == str(model / "up")


def test_dangling_and_looping_links_are_refused(model: Path) -> None:
    (model / "gone").symlink_to("no-such-file")
    err = refused(model)
    assert err.value == str(model / "gone") and "does not exist" in err.rule
    (model / "gone").unlink()
    (model / "sub" / "again").symlink_to("..")
    err = refused(model)
    assert err.value == str(model / "sub" / "again") and "loop" in err.rule


def test_an_in_folder_link_is_copied_as_the_file_it_points_to(tmp_path: Path, model: Path) -> None:
    (model / "latest.bin").symlink_to("weights.bin")
    (model / "conf").symlink_to("sub")
    checked = inputs.scan(str(model), "path")
    dest = tmp_path / "copy"
    inputs.copy(checked, dest)
    assert not (dest / "latest.bin").is_symlink()
    assert (dest / "latest.bin").read_bytes() == b"w" * 100
    assert not (dest / "conf").is_symlink() and (dest / "conf" / "config.json").read_text() == "{}"
    files = sorted(e.rel for e in checked.files())
    assert files == ["conf/config.json", "latest.bin", "sub/config.json", "weights.bin"]


def test_the_named_path_may_itself_be_a_link(tmp_path: Path, model: Path) -> None:
    link = tmp_path / "current"
    link.symlink_to(model)
    checked = inputs.scan(str(link), "path")
    assert checked.root == str(model) and checked.name == "current"
    assert checked.total_bytes == 102


# --------------------------------------------------------------------------- size cap


def test_the_cap_is_checked_before_copying(tmp_path: Path, model: Path) -> None:
    big = model / "huge.bin"
    os.truncate(os.open(big, os.O_CREAT | os.O_WRONLY, 0o600), 5 * inputs.GiB)  # sparse
    err = refused(model, limit=2 * inputs.GiB)
    assert "size cap of 2 GiB" in err.rule and "MODELDECK_MAX_MODEL_BYTES" in (err.fix or "")


def test_the_cap_is_checked_during_the_copy_and_the_partial_is_removed(
    tmp_path: Path, model: Path
) -> None:
    checked = inputs.scan(str(model), "path")
    # the file grows after the walk: what is read counts, not what the walk saw
    (model / "weights.bin").write_bytes(b"w" * 5000)
    small = dataclasses.replace(checked, limit=1000)
    dest = tmp_path / "copy"
    with pytest.raises(InvalidInput) as err:
        inputs.copy(small, dest)
    assert "grew while it was being read" in err.value.rule
    assert not dest.exists()


def test_caps_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELDECK_MAX_MODEL_BYTES", "3GiB")
    monkeypatch.setenv("MODELDECK_MAX_CODE_BYTES", "1048576")
    assert inputs.max_bytes("model") == 3 * inputs.GiB
    assert inputs.max_bytes("code") == inputs.MiB
    monkeypatch.delenv("MODELDECK_MAX_CODE_BYTES")
    assert inputs.max_bytes("code") == inputs.DEFAULT_MAX_CODE_BYTES
    monkeypatch.setenv("MODELDECK_MAX_MODEL_BYTES", "lots")
    with pytest.raises(InvalidInput) as err:
        inputs.max_bytes("model")
    assert err.value.field == "MODELDECK_MAX_MODEL_BYTES" and "GiB" in err.value.rule


def test_caps_from_config_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    monkeypatch.delenv("MODELDECK_MAX_MODEL_BYTES", raising=False)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('[daemon]\nmax_model_bytes = "512MiB"\n')
    assert inputs.max_bytes("model") == 512 * inputs.MiB


# --------------------------------------------------------------------------- the copy


def test_a_cancelled_copy_stops_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        f.truncate(64 * inputs.GiB)  # sparse: reading it is cheap, nothing is written
    checked = inputs.scan(str(src), "path", limit=128 * inputs.GiB)
    dest = tmp_path / "out" / "big.bin"
    dest.parent.mkdir()
    cancel = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            inputs.copy(checked, dest, cancel=cancel)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    for _ in range(2000):  # until the copy has begun (bounded)
        if dest.exists() or not t.is_alive():
            break
        threading.Event().wait(0.005)
    cancel.set()
    t.join(60)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], inputs.CopyCancelled)
    assert list((tmp_path / "out").iterdir()) == []


def test_holes_stay_holes_and_contents_match(tmp_path: Path) -> None:
    src = tmp_path / "sparse.bin"
    with open(src, "wb") as f:
        f.write(b"head")
        f.seek(64 * inputs.MiB)
        f.write(b"tail")
    dest = tmp_path / "copy.bin"
    inputs.copy(inputs.scan(str(src), "path"), dest)
    assert dest.stat().st_size == src.stat().st_size
    with open(dest, "rb") as f:
        assert f.read(4) == b"head"
        f.seek(64 * inputs.MiB)
        assert f.read() == b"tail"
    assert dest.stat().st_blocks * 512 < 8 * inputs.MiB  # the 64 MiB of zeros were not written


def test_digest_without_copying_is_the_copys(tmp_path: Path, model: Path) -> None:
    """``--dry-run`` names the code store's copy by this digest before any copy is made."""
    (model / "empty").mkdir()
    (model / "zero.txt").write_bytes(b"")
    for src in (model, model / "weights.bin"):
        checked = inputs.scan(str(src), "path")
        copied = inputs.copy(checked, tmp_path / f"copy-{src.name}", digest=True)
        assert inputs.digest(checked) == copied


def test_a_file_swapped_for_a_link_after_the_walk_is_not_followed(
    tmp_path: Path, model: Path
) -> None:
    checked = inputs.scan(str(model), "path")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the store")
    (model / "weights.bin").unlink()
    (model / "weights.bin").symlink_to(secret)
    dest = tmp_path / "copy"
    with pytest.raises(InvalidInput) as err:
        inputs.copy(checked, dest)
    assert err.value.value == str(model / "weights.bin")
    assert not dest.exists()


def test_caches_and_version_control_are_not_copied(tmp_path: Path, model: Path) -> None:
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (model / ".git").mkdir()
    os.mkfifo(model / ".git" / "fsmonitor")  # inside what is skipped: never looked at
    names = {e.rel for e in inputs.scan(str(model), "path").entries}
    assert names == {"", "sub", "weights.bin", "sub/config.json"}


# --------------------------------------------------------------------------- scoring script


@pytest.mark.parametrize(
    ("script", "rule"),
    [
        ("../green/score.py", "'..' is not allowed"),
        ("src/../../score.py", "'..' is not allowed"),
        ("/abs/score.py", "not an absolute path"),
        ("~/score.py", "not an absolute path"),
    ],
)
def test_scoring_script_stays_in_the_code_folder(script: str, rule: str, tmp_path: Path) -> None:
    spec = DeploymentSpec(
        name="blue",
        endpoint_name="my-ep",
        model="azureml:m:1",
        code_configuration=CodeConfiguration(code=str(tmp_path), scoring_script=script),
    )
    with pytest.raises(InvalidInput) as err:
        validation.deployment_spec(spec)
    assert err.value.field == "code_configuration.scoring_script"
    assert err.value.value == script and rule in err.value.rule


def test_scoring_script_link_out_of_the_code_folder_is_refused(tmp_path: Path) -> None:
    code, other = tmp_path / "code", tmp_path / "green"
    code.mkdir()
    other.mkdir()
    (other / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    (code / "score.py").symlink_to(other / "score.py")
    with pytest.raises(InvalidInput) as err:
        inputs.check_code(str(code), "score.py")
    assert err.value.field == "code_configuration.scoring_script"
    assert "leads outside" in err.value.rule
    (code / "score.py").unlink()
    os.mkfifo(code / "score.py")
    with pytest.raises(InvalidInput) as err:
        inputs.check_code(str(code), "score.py")
    assert "is not a file" in err.value.rule


# --------------------------------------------------------------------------- Kubernetes


def test_kubernetes_configmap_files_follow_the_same_rules(tmp_path: Path, model: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the cluster")
    (code / "id").symlink_to(secret)
    spec = DeploymentSpec(
        name="blue",
        endpoint_name="my-ep",
        model="azureml:m:1",
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
    )
    m = Model(name="m", version=1, path=str(model))
    with pytest.raises(InvalidInput) as err:
        manifests.collect_files(spec, m, str(code))
    assert err.value.field == "code_configuration.code" and err.value.value == str(code / "id")
    (code / "id").unlink()
    (code / "alias.py").symlink_to("score.py")
    app = manifests.collect_files(spec, m, str(code))
    assert app.files["code/alias.py"] == (code / "score.py").read_bytes()
    assert app.files["model/model/weights.bin"] == b"w" * 100
    with pytest.raises(InvalidInput) as err:
        manifests.collect_files(spec, Model(name="z", version=1, path="/dev/zero"), str(code))
    assert err.value.field == "model.path"
