"""Directories modeldeck creates are 0700 whatever the umask; ones others can write are refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from modeldeck.services import paths
from modeldeck.services.api.errors import InvalidInput


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_private_dir_and_its_parents_are_0700_under_umask_000(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        os.umask(0)
        from modeldeck.services import paths
        paths.private_dir(Path(sys.argv[1]) / "state")
        paths.write_private(Path(sys.argv[1]) / "data" / "x" / "secret", b"s")
        Path(sys.argv[1], "probe").mkdir()  # what umask 000 gives without modeldeck
        """
    )
    home = tmp_path / "new" / "home"
    env = {**os.environ, "MODELDECK_HOME": str(home)}
    subprocess.run([sys.executable, "-c", code, str(home)], check=True, env=env, timeout=60)
    assert mode(home / "probe") == 0o777  # the umask really was 000
    for d in (tmp_path / "new", home, home / "state", home / "data", home / "data" / "x"):
        assert mode(d) == 0o700, (d, oct(mode(d)))
    assert mode(home / "data" / "x" / "secret") == 0o600


def test_an_existing_dir_of_ours_that_others_can_only_read_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o755)  # what an older modeldeck left
    paths.private_dir(state)
    assert mode(state) == 0o700


@pytest.mark.parametrize("bits", [0o770, 0o707, 0o777, 0o1777])
def test_a_state_dir_others_can_write_is_refused_naming_path_mode_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, bits)
    with pytest.raises(InvalidInput) as exc:
        paths.private_dir(state)
    err = exc.value
    assert err.field == "state directory" and err.value == str(state)
    assert f"mode {bits:04o}" in err.message and str(state) in err.message
    assert err.fix == f"chmod 700 {state} (modeldeck creates its directories 0700)"
    assert mode(state) == bits  # refused, not silently changed
    with pytest.raises(InvalidInput):
        paths.check_tree(state)  # what the client runs before it uses the socket


def test_a_group_writable_modeldeck_home_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o775)
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    with pytest.raises(InvalidInput) as exc:
        paths.private_dir(paths.state_dir())
    assert exc.value.field == "MODELDECK_HOME" and "mode 0775" in exc.value.message


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another uid needs root")
def test_a_state_dir_owned_by_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    with pytest.raises(InvalidInput) as exc:
        paths.private_dir(state)
    assert "uid 65534" in exc.value.message and "not to you" in exc.value.message
    assert exc.value.fix and "chown" in exc.value.fix and "MODELDECK_HOME" in exc.value.fix


def test_a_missing_dir_is_not_a_refusal(tmp_path: Path) -> None:
    paths.check_private(tmp_path / "nope")  # nothing there yet: nothing to refuse


def write_as(uid: int, path: Path, data: bytes) -> None:
    """Create ``path`` as another user (a forked child that drops to ``uid``). Its folder is
    opened first: the folders above it (pytest's, 0700) need not let that user through."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            os.setgid(uid)
            os.setuid(uid)
            fd = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=folder)
            os.write(fd, data)
            os.close(fd)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"could not write {path} as uid {uid}"
    assert path.stat().st_uid == uid


CONFIG = b'[daemon]\ngateway_host = "0.0.0.0"\ngateway_port = 18081\n'


@pytest.mark.skipif(os.getuid() != 0, reason="writing a file as another uid needs root")
def test_a_config_file_written_by_another_user_is_refused_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modeldeck.services import profiles

    home = tmp_path / "home"
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    config = paths.private_dir(paths.config_dir())
    os.chmod(config, 0o777)  # what `mkdir` under umask 000 leaves
    write_as(65534, config / "config.toml", CONFIG)
    with pytest.raises(InvalidInput) as exc:  # the folder first: anyone could swap the file
        profiles.load_config()
    assert exc.value.field == "config directory" and "mode 0777" in exc.value.message
    assert exc.value.fix == f"chmod 700 {config} (modeldeck creates its directories 0700)"
    os.chmod(config, 0o700)
    with pytest.raises(InvalidInput) as exc:  # then the file, owned by nobody
        profiles.load_config()
    err = exc.value
    assert err.field == "config file" and err.value == str(config / "config.toml")
    assert "nobody (uid 65534)" in err.message and "gateway address" in err.message
    assert err.fix and f"chown root {config / 'config.toml'} && chmod 600" in err.fix
    with pytest.raises(InvalidInput):  # the control plane's settings refuse it too
        from modeldeck.services.local.controlplane import daemon

        daemon._config()


def test_a_config_file_others_can_write_is_refused_and_a_private_one_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modeldeck.services import profiles

    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    config = paths.private_dir(paths.config_dir()) / "config.toml"
    config.write_bytes(CONFIG)
    os.chmod(config, 0o666)
    with pytest.raises(InvalidInput) as exc:
        profiles.load_config()
    assert exc.value.field == "config file" and "mode 0666" in exc.value.message
    assert exc.value.fix == f"chmod 600 {config}"
    os.chmod(config, 0o644)  # readable by others is fine: nothing secret in it
    assert profiles.load_config()["daemon"]["gateway_port"] == 18081


def test_a_platform_config_dir_under_a_world_writable_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's case: HOME=/tmp/fh, ~/.config made under umask 000, no MODELDECK_HOME."""
    from modeldeck.services import profiles

    fh = tmp_path / "fh"
    (fh / ".config" / "modeldeck").mkdir(parents=True)
    os.chmod(fh / ".config", 0o777)
    monkeypatch.delenv("MODELDECK_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(fh / ".config"))
    (fh / ".config" / "modeldeck" / "config.toml").write_bytes(CONFIG)
    with pytest.raises(InvalidInput) as exc:
        profiles.load_config()
    err = exc.value
    assert err.field == "config directory" and err.value == str(fh / ".config")
    assert "mode 0777" in err.message and "rename modeldeck away" in err.message
    assert err.fix and f"chmod go-w {fh / '.config'}" in err.fix
    os.chmod(fh / ".config", 0o755)
    assert profiles.load_config()["daemon"]["gateway_host"] == "0.0.0.0"  # ours: used


@pytest.mark.parametrize("bits", [0o777, 0o775, 0o757])
def test_a_modeldeck_home_whose_parent_others_can_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    shared = tmp_path / "shared"
    home = shared / "a" / "home"
    home.mkdir(parents=True, mode=0o700)
    os.chmod(shared, bits)
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    with pytest.raises(InvalidInput) as exc:
        paths.private_dir(paths.state_dir())
    err = exc.value
    assert err.field == "MODELDECK_HOME" and err.value == str(shared)
    assert f"{shared} above it can be written by other users (mode {bits:04o})" in err.message
    assert err.fix and "MODELDECK_HOME" in err.fix and f"chmod go-w {shared}" in err.fix
    assert not (home / "state").exists()  # refused before anything was made
    with pytest.raises(InvalidInput):
        paths.check_tree(home / "state")  # what the client runs before the socket


def test_a_sticky_root_dir_like_tmp_above_modeldeck_home_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    if shared.stat().st_uid != 0:  # the sticky rule is for root's folders only
        with pytest.raises(InvalidInput):
            paths.check_above(shared / "home")
        return
    monkeypatch.setenv("MODELDECK_HOME", str(shared / "home"))
    state = paths.private_dir(paths.state_dir())
    assert mode(state) == 0o700 and mode(shared / "home") == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another uid needs root")
def test_a_parent_owned_by_another_user_is_refused_even_if_only_they_can_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "theirs"
    (theirs / "home").mkdir(parents=True, mode=0o700)
    os.chmod(theirs, 0o755)
    os.chown(theirs, 65534, 65534)
    monkeypatch.setenv("MODELDECK_HOME", str(theirs / "home"))
    with pytest.raises(InvalidInput) as exc:
        paths.private_dir(paths.data_dir())
    assert exc.value.value == str(theirs)
    assert "belongs to nobody (uid 65534)" in exc.value.message, exc.value.message
    assert "have root give it to you" in (exc.value.fix or "")


def test_a_link_to_a_home_under_a_world_writable_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    (shared / "home").mkdir(parents=True)
    os.chmod(shared, 0o777)
    (tmp_path / "mine").mkdir(mode=0o700)
    link = tmp_path / "mine" / "home"
    link.symlink_to(shared / "home")
    with pytest.raises(InvalidInput) as exc:
        paths.check_above(link)  # the folder the link points into is checked too
    assert exc.value.value == str(shared)


def test_the_ownership_fix_is_a_command_a_shell_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: 65534)  # as if another user ran modeldeck
    with pytest.raises(InvalidInput) as exc:
        paths.check_private(state)
    fix = exc.value.fix or ""
    assert f"(as root: chown -R nobody {state} && chmod 700 {state})" in fix, fix
