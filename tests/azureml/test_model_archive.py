"""``model archive`` / ``restore`` on Azure ML: the version is PUT back with isArchived (ARM
has no archive action; azure-ai-ml's models.archive does the same), listed with
listViewType=All and left out of the latest."""

from __future__ import annotations

from typing import Any


async def test_archive_model_puts_is_archived(ws: Any, fake: Any) -> None:
    fake.add_model("m", "1")
    fake.add_model("m", "2")
    archived = await ws.archive_model("m", 2)
    assert archived.archived is True
    assert fake.models["m"]["2"]["properties"]["isArchived"] is True
    assert (await ws.get_model("m", None)).version == 1
    assert [(m.version, m.archived) for m in await ws.list_models("m")] == [(1, False), (2, True)]
    put = [
        r for r in fake.requests if r.method == "PUT" and r.path.endswith("/models/m/versions/2")
    ]
    assert put and put[-1].body["properties"]["isArchived"] is True
    restored = await ws.archive_model("m", 2, archived=False)
    assert restored.archived is False and (await ws.get_model("m", None)).version == 2
