"""An attached Kubernetes compute is listed as what ARM says it is (issue 16, point 7): type
``kubernetes`` (az ml's ``KubernetesCompute.type``), its namespace and cluster id, and no
purpose, node count or capacity, which ARM's ``KubernetesProperties`` do not have; it used
to read "FastProd, 0 vCPU"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modeldeck.services.api.domain import ClusterPurpose, DriverKind

ARC_ID = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-demo/providers/"
    "Microsoft.Kubernetes/connectedClusters/prod-arc"
)


async def test_a_kubernetes_compute_has_its_type_and_no_made_up_figures(
    ws: Any, seeded: Any
) -> None:
    seeded.add_compute("arc", kind="Kubernetes", resource_id=ARC_ID)
    clusters = {c.name: c for c in await ws.list_clusters()}
    arc, aks = clusters["arc"], clusters["myaks"]
    assert arc.type == "kubernetes" and arc.driver is DriverKind.AZUREML
    assert arc.purpose is None
    assert (arc.agent_count, arc.vm_size, arc.vcpus_total, arc.memory_gb_total) == (
        None,
        None,
        None,
        None,
    )
    assert arc.namespace == "default" and arc.resource_id == ARC_ID
    # an AKS compute keeps what ARM gives it
    assert aks.type == "aks" and aks.purpose is ClusterPurpose.FAST_PROD
    assert (aks.agent_count, aks.vcpus_total) == (3, 12.0)


async def test_the_dashboard_row_shows_no_purpose_or_capacity(ws: Any, seeded: Any) -> None:
    from modeldeck.tui.screens.clusters import cluster_cells

    seeded.add_compute("arc", kind="Kubernetes", resource_id=ARC_ID)
    cells = [str(c) for c in cluster_cells(await ws.get_cluster("arc"))]
    assert cells[:3] == ["arc", "azureml/kubernetes", "-"]
    assert cells[4:7] == ["-", "-", "-"]  # nodes, vCPU, memory
    assert "FastProd" not in cells and not any("0/0" in c for c in cells)


async def test_cli_lists_it_as_az_ml_would(tmp_path: Path, seeded: Any) -> None:
    from tests.azureml.test_cli_e2e import AzCli, _profile

    seeded.add_compute("arc", kind="Kubernetes", resource_id=ARC_ID)
    cli = AzCli(tmp_path, token="static-token-1")
    cli.write_config(_profile(seeded))
    code, out, err = await cli.run("compute", "show", "-n", "arc", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["type"] == "kubernetes"
    assert shown["purpose"] is None and shown["vcpus_total"] is None
    assert shown["agent_count"] is None and shown["namespace"] == "default"
    code, out, err = await cli.run("compute", "list", "-o", "table")
    assert code == 0, err
    header, _, *rows = out.splitlines()
    row = next(line for line in rows if line.startswith("arc "))
    for column in ("Purpose", "Nodes", "VM size", "vCPU "):  # blank, not FastProd / 0
        at = header.index(column)
        assert row[at : at + len(column)].strip() == "", (column, row)
