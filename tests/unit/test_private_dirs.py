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
from modeldeck.services.errors import InvalidInput


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
