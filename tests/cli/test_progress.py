"""Long operations: a progress line on a terminal, quiet otherwise, --no-wait at once."""

from __future__ import annotations

import io

import pytest
from modeldeck.cli.progress import wait
from modeldeck.services.api.domain import Operation, OperationStatus
from modeldeck.services.api.errors import CapacityExceeded
from modeldeck.services.api.workspace import OperationHandle


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def handle(*states: Operation) -> tuple[OperationHandle, list[str]]:
    """An operation whose back end reports ``states`` one poll after the other."""
    polled: list[str] = []
    queue = list(states[1:])

    async def poll(op_id: str) -> Operation:
        polled.append(op_id)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return OperationHandle(states[0], poll, interval=0.001), polled


def op(
    status: OperationStatus, progress: float, message: str, error: dict | None = None
) -> Operation:
    return Operation("op-1", "deployment.create", "ep/blue", status, progress, message, error)


RUN = OperationStatus.RUNNING
STATES = (
    op(RUN, 0.0, "queued"),
    op(RUN, 0.5, "starting replicas"),
    op(OperationStatus.SUCCEEDED, 1.0, "ready"),
)


async def test_progress_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    h, _ = handle(*STATES)
    done = await wait(h, "Creating deployment ep/blue")
    assert done.status is OperationStatus.SUCCEEDED
    text = term.getvalue()
    assert "Creating deployment ep/blue: starting replicas [ 50%]" in text
    assert text.endswith("\n") and "Succeeded" in text.splitlines()[-1]


async def test_quiet_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    h, polled = handle(*STATES)
    assert (await wait(h, "Creating")).status is OperationStatus.SUCCEEDED
    assert polled and pipe.getvalue() == ""


async def test_no_wait_returns_at_once() -> None:
    h, polled = handle(*STATES)
    first = await wait(h, "Creating", no_wait=True)
    assert first.status is RUN and polled == []


async def test_failed_operation_raises_its_typed_error() -> None:
    error = CapacityExceeded("deployment 'blue' does not fit", fix="scale the cluster").to_dict()
    h, _ = handle(op(RUN, 0.1, "scheduling"), op(OperationStatus.FAILED, 0.1, "failed", error))
    with pytest.raises(CapacityExceeded) as exc:
        await wait(h, "Creating")
    assert exc.value.fix == "scale the cluster" and exc.value.exit_code == 7
