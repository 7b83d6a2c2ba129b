"""A progress line for long operations, from the same OperationHandle the dashboard uses.

On a terminal (stderr is a TTY) one line is redrawn in place: ``label: message [ 40%]``.
Otherwise nothing is printed. ``--no-wait`` returns at once (and the command prints
nothing, as az does).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..services.api.domain import Operation
    from ..services.api.workspace import OperationHandle


class ProgressLine:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._drawn = False

    def update(self, op: Operation) -> None:
        if not self.enabled:
            return
        pct = max(0.0, min(1.0, op.progress)) * 100
        elapsed = time.monotonic() - self.started
        text = f"{self.label}: {op.message or op.status.value} [{pct:3.0f}%] {elapsed:4.0f}s"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._drawn = True

    def close(self, op: Operation | None = None) -> None:
        if self.enabled and self._drawn:
            status = op.status.value if op is not None else "interrupted"
            elapsed = time.monotonic() - self.started
            self.stream.write(f"\r\x1b[K{self.label}: {status} ({elapsed:.1f}s)\n")
            self.stream.flush()


async def wait(handle: OperationHandle, label: str, *, no_wait: bool = False) -> Operation:
    """Wait for the operation (raising its typed error if it failed), drawing progress."""
    if no_wait:
        return handle.operation
    line = ProgressLine(label)
    op: Operation | None = None
    try:
        op = await handle.wait(line.update)
    finally:
        line.close(op if op is not None else handle.operation if handle.operation.done else None)
    return op


async def wait_then_show(
    handle: OperationHandle,
    label: str,
    no_wait: bool,
    show: Callable[[], Awaitable[Any]],
    *,
    status: str = "",
    warn: Callable[[str], None] | None = None,
) -> Any:
    """What a create or update prints: the object as it is once the operation succeeded
    (``show`` reads it in az's shape, ``cli/shapes.py``). With ``--no-wait``, nothing, as
    az prints nothing then: azure-cli-extensions ``azext_mlv2/manual/custom/
    online_endpoint.py`` returns no entity and warns ``Endpoint create request initiated.
    Status can be checked using `az ml online-endpoint show -n NAME``` (``warn`` gets our
    words for it, naming the ``status`` command)."""
    await wait(handle, label, no_wait=no_wait)
    if no_wait:
        if warn is not None and status:
            warn(f"{label}: request initiated. Status can be checked using `{status}`")
        return None
    return await show()
