"""Lost updates: two ``update`` commands at once, through the real CLI entry point.

Each round runs two ``modeldeck ... update`` commands in two threads (each its own event loop
and socket connection, as two shells would) against one real control plane. A barrier holds
both right after their first read, so every round is the worst case: both computed their
change from the same revision, then both write.

* different fields: both changes land (the loser of the race reads again and retries);
* the same field: one lands, the other is refused with Conflict (exit 4) naming the change;
  nothing is overwritten silently.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import threading
from collections.abc import Callable

import pytest
from modeldeck.cli.main import main
from modeldeck.services.api.errors import Conflict
from modeldeck.services.local.client import LocalWorkspace

pytestmark = pytest.mark.e2e

ROUNDS = 50
ENDPOINT_ROUNDS = 10
CONFLICT_EXIT = Conflict.exit_code  # 4

_held = threading.local()  # the barrier a command's first read waits at


def _hold_first_read(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Make ``LocalWorkspace.<method>`` wait at the round's barrier after its first read."""
    real = getattr(LocalWorkspace, method)

    async def held(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = await real(self, *args, **kwargs)
        barrier = getattr(_held, "barrier", None)
        if barrier is not None:
            _held.barrier = None
            await asyncio.to_thread(barrier.wait)
        return result

    monkeypatch.setattr(LocalWorkspace, method, held)


def race(a: str, b: str) -> tuple[int, int]:
    """Run two CLI commands at once; both read before either writes. Their exit codes."""
    barrier = threading.Barrier(2, timeout=60)
    codes: dict[str, int] = {}

    def run(key: str, command: str) -> None:
        _held.barrier = barrier
        try:
            codes[key] = main([*shlex.split(command), "-o", "none"])
        finally:
            _held.barrier = None

    threads = [threading.Thread(target=run, args=kv) for kv in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(codes) == {"a", "b"}, "a command did not finish"
    return codes["a"], codes["b"]


@pytest.fixture
def deck(examples_cli: Callable[[str], int]) -> Callable[[str], int]:
    """The examples' endpoint with blue and green at 0 instances (see ``examples_cli``)."""
    for name in ("blue", "green"):
        argv = f"online-deployment create -n {name} -e my-endpoint -f blue.yml"
        assert examples_cli(f"{argv} --set instance_count=0") == 0
    return examples_cli


def _read(what: str, *args: str) -> object:
    async def go() -> object:
        ws = LocalWorkspace(autostart=False)
        try:
            return await getattr(ws, what)(*args)
        finally:
            await ws.close()

    return asyncio.run(go())


def test_two_updates_of_different_fields_both_land(deck, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    _hold_first_read(monkeypatch, "get_deployment")
    update = "online-deployment update -n blue -e my-endpoint --set"
    lost = refused = 0
    for i in range(ROUNDS):
        codes = race(
            f"{update} request_settings.request_timeout_ms={1000 + i}",
            f"{update} tags.round=r{i}",
        )
        d = _read("get_deployment", "my-endpoint", "blue")
        landed = (d.spec.request_settings.request_timeout_ms, d.spec.tags.get("round"))  # type: ignore[attr-defined]
        lost += (landed[0] != 1000 + i) + (landed[1] != f"r{i}")
        refused += sum(c == CONFLICT_EXIT for c in codes)
        assert codes == (0, 0), (i, codes, capsys.readouterr().err)
    err = capsys.readouterr().err
    with capsys.disabled():
        print(f"\nlost updates in {ROUNDS} concurrent rounds (different fields): {lost}")
    assert (lost, refused) == (0, 0), err
    # the revision scripts can read: two updates a round, each one change (recorded when it
    # is marked Updating; its rollout ending is status, not a second change)
    assert main(["online-deployment", "show", "-n", "blue", "-e", "my-endpoint"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert int(shown["revision"]) > 2 * ROUNDS


def test_two_updates_of_the_same_field_one_wins_the_other_is_refused(  # type: ignore[no-untyped-def]
    deck, monkeypatch, capsys
) -> None:
    _hold_first_read(monkeypatch, "get_deployment")
    update = "online-deployment update -n blue -e my-endpoint --set"
    lost = refused = 0
    previous = 3000  # blue.yml's request_timeout_ms
    for i in range(ROUNDS):
        a, b = 4000 + i, 5000 + i  # never the value already there: that would change nothing
        codes = race(
            f"{update} request_settings.request_timeout_ms={a}",
            f"{update} request_settings.request_timeout_ms={b}",
        )
        err = capsys.readouterr().err
        assert sorted(codes) == [0, CONFLICT_EXIT], (i, codes, err)
        winner = a if codes[0] == 0 else b
        d = _read("get_deployment", "my-endpoint", "blue")
        lost += d.spec.request_settings.request_timeout_ms != winner  # type: ignore[attr-defined]
        refused += 1
        # the loser is told what changed, from what to what, and that it overlaps
        assert err.count("ERROR: deployment 'blue' changed since you read it") == 1, err
        assert f"request_settings.request_timeout_ms {previous} -> {winner}" in err, err
        assert "your change touches request_settings.request_timeout_ms too" in err, err
        previous = winner
    with capsys.disabled():
        print(
            f"\nlost updates in {ROUNDS} concurrent rounds (same field): {lost} "
            f"(losers refused with Conflict: {refused})"
        )
    assert lost == 0 and refused == ROUNDS


def test_traffic_and_tags_at_once_both_land_two_traffic_maps_do_not(  # type: ignore[no-untyped-def]
    deck, monkeypatch, capsys
) -> None:
    """``endpoint update --traffic ... --rest X`` is a read-modify-write too."""
    _hold_first_read(monkeypatch, "get_endpoint")
    update = "online-endpoint update -n my-endpoint"
    for i in range(ENDPOINT_ROUNDS):
        codes = race(f"{update} --traffic green={i} --rest blue", f"{update} --set tags.round=r{i}")
        assert codes == (0, 0), (i, codes, capsys.readouterr().err)
        ep = _read("get_endpoint", "my-endpoint")
        assert ep.traffic == {"blue": 100 - i, "green": i}  # type: ignore[attr-defined]
        assert ep.tags["round"] == f"r{i}" and ep.tags["team"] == "demo"  # type: ignore[attr-defined]
    # (each round's two maps differ from each other and from any earlier one: a write of
    # the map already live changes nothing, so it is no conflict)
    for i in range(ENDPOINT_ROUNDS):
        mine, theirs = {"blue": 80 - i, "green": 20 + i}, {"blue": 90 - i, "green": 10 + i}
        codes = race(
            f"{update} --traffic green={mine['green']} --rest blue",
            f"{update} --traffic 'blue={theirs['blue']} green={theirs['green']}'",
        )
        err = capsys.readouterr().err
        assert sorted(codes) == [0, CONFLICT_EXIT], (i, codes, err)
        ep = _read("get_endpoint", "my-endpoint")
        won = mine if codes[0] == 0 else theirs
        assert ep.traffic == won  # type: ignore[attr-defined]
        assert "ERROR: endpoint 'my-endpoint' changed since you read it" in err
        assert "your change touches traffic" in err
