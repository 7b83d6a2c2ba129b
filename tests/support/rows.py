"""Many deployments as domain objects, for the dashboard's tests and benchmarks that fill a
table without a control plane (bench/tui_table.py, tests/tui/test_widgets.py)."""

from __future__ import annotations

from modeldeck.services.api.domain import (
    CodeConfiguration,
    Deployment,
    DeploymentSpec,
    ProvisioningState,
)


def many_deployments(n: int, colours: tuple[str, str] = ("blue", "green")) -> list[Deployment]:
    """``n`` deployments, two per index (``blue-7``, ``green-7``), six indexes an endpoint
    (``ep-1``); the first colour takes the traffic."""
    return [
        Deployment(
            DeploymentSpec(
                f"{c}-{i}", f"ep-{i // 6}", "azureml:m:1", CodeConfiguration("/c", "score.py")
            ),
            ProvisioningState.SUCCEEDED,
            1,
            1,
            100 if c == colours[0] else 0,
        )
        for i in range(n // 2)
        for c in colours
    ]
