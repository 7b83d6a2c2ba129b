"""MODELDECK_HOME on a shared host: 0700 whatever the umask; refused when others can write it."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import TIMEOUT_S, modeldeck_command

from .conftest import Cli

pytestmark = pytest.mark.e2e


def run_umask_000(cli: Cli, command: str) -> subprocess.CompletedProcess[str]:
    """``modeldeck COMMAND`` started from a shell whose umask is 000."""
    argv = [*modeldeck_command(), *shlex.split(command)]
    proc = subprocess.run(
        ["sh", "-c", 'umask 000 && exec "$@"', "sh", *argv],
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    return proc


def test_everything_modeldeck_creates_is_private_under_umask_000(cli: Cli) -> None:
    home = cli.home / "fresh"  # modeldeck creates MODELDECK_HOME itself
    cli.env["MODELDECK_HOME"] = str(home)
    for command in (
        "cluster create --name myaks -o none",
        "model create --name sklearn-demo --path ./model -o none",
        "online-endpoint create -f endpoint.yml -o none",
        "online-deployment create -n blue -e my-endpoint -f blue.yml --all-traffic -o none",
        "online-deployment get-logs -n blue -e my-endpoint --lines 5",
    ):
        run_umask_000(cli, command)
    probe = cli.cwd / "probe"
    subprocess.run(["sh", "-c", f"umask 000 && mkdir {probe}"], check=True)
    assert stat.S_IMODE(probe.stat().st_mode) == 0o777  # the umask really was 000

    dirs, files, loose = 0, 0, []
    for root, dirnames, filenames in os.walk(home):
        for name in [".", *dirnames]:
            p = Path(root, name)
            if p.is_symlink():  # a link's own mode means nothing; its target is walked
                continue
            dirs += 1
            if stat.S_IMODE(p.lstat().st_mode) != 0o700:
                loose.append(f"{p} {stat.S_IMODE(p.lstat().st_mode):04o}")
        for name in filenames:
            p = Path(root, name)
            files += 1
            if p.lstat().st_mode & 0o077 and not stat.S_ISLNK(p.lstat().st_mode):
                loose.append(f"{p} {stat.S_IMODE(p.lstat().st_mode):04o}")
    assert dirs >= 6 and files >= 5, (dirs, files)  # state, data, models, logs, ...
    assert loose == [], "readable or writable by others:\n" + "\n".join(loose)
    cli("daemon stop", ok=False)


def test_a_group_writable_state_dir_is_refused_by_client_and_daemon(cli: Cli) -> None:
    state = cli.home / "state"
    state.mkdir(mode=0o700)
    os.chmod(state, 0o770)
    r = cli("online-endpoint list", ok=False)
    assert r.code == 2, r
    assert f"modeldeck refuses to use its state directory {state}" in r.err, r
    assert "mode 0770" in r.err and f"chmod 700 {state}" in r.err, r
    assert "unexpected" not in r.err
    r = cli("serve", ok=False)  # the control plane itself, in the foreground
    assert r.code == 1, r
    assert "the control plane will not start" in r.err and "mode 0770" in r.err, r
    assert sorted(p.name for p in state.iterdir()) == []  # no socket, no pid, no log
    assert stat.S_IMODE(state.stat().st_mode) == 0o770  # left as found, for its owner to fix


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another uid needs root")
def test_a_state_dir_owned_by_another_user_is_refused(cli: Cli) -> None:
    state = cli.home / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    r = cli("daemon status", ok=False)
    assert r.code == 2, r
    assert "uid 65534" in r.err and "chown" in r.err, r


@pytest.mark.skipif(os.getuid() != 0, reason="writing a file as another uid needs root")
def test_a_config_another_user_wrote_is_refused_by_the_cli(cli: Cli) -> None:
    """The reviewer's case: no MODELDECK_HOME, HOME whose ~/.config was made under umask 000,
    and another user's config.toml asking for a gateway on every interface."""
    fh = cli.home / "fh"
    fh.mkdir(mode=0o755)
    config = fh / ".config" / "modeldeck"
    subprocess.run(["sh", "-c", f"umask 000 && mkdir -p {config}"], check=True)
    folder = os.open(config, os.O_RDONLY | os.O_DIRECTORY)
    try:  # uid 65534 writes it through the open folder (pytest's folders are 0700)
        subprocess.run(
            ["sh", "-c", f"cat > /proc/self/fd/{folder}/config.toml"],
            input=b'[daemon]\ngateway_host = "0.0.0.0"\ngateway_port = 18081\n',
            pass_fds=(folder,),
            user=65534,
            group=65534,
            extra_groups=[],
            check=True,
            timeout=TIMEOUT_S,
        )
    finally:
        os.close(folder)
    assert (config / "config.toml").stat().st_uid == 65534
    env = {k: v for k, v in cli.env.items() if k != "MODELDECK_HOME" and not k.startswith("XDG_")}
    cli.env = {**env, "HOME": str(fh)}

    r = cli("model list", ok=False)
    assert r.code == 2, r
    assert f"modeldeck refuses to use its config directory {config}" in r.err, r
    assert "mode 0777" in r.err and f"chmod 700 {config}" in r.err, r

    os.chmod(config, 0o700)  # the folder fixed: ~/.config above it is still anyone's
    r = cli("model list", ok=False)
    assert r.code == 2, r
    assert f"{fh / '.config'} above it can be written by other users (mode 0777)" in r.err, r
    assert f"chmod go-w {fh / '.config'}" in r.err, r

    os.chmod(fh / ".config", 0o755)  # now only the file itself is someone else's
    r = cli("model list", ok=False)
    assert r.code == 2, r
    assert f"modeldeck refuses to use its config file {config / 'config.toml'}" in r.err, r
    assert "nobody (uid 65534)" in r.err and f"chown root {config / 'config.toml'}" in r.err, r
    assert not (fh / ".local" / "state" / "modeldeck").exists()  # no control plane started
