"""A dashboard prompt applies to the deployment it showed, not to whatever is there at confirm.

The Scale prompt opens prefilled with the instance count; meanwhile "another operator" (a
second workspace client, logged in from another SSH address) changes the deployment. On
confirm, a change of the same field is refused with a Conflict notice naming who and what,
and theirs is kept; a change of another field is no conflict: both land. Real daemon.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.dialogs import PromptScreen
from textual.widgets import Input

pytestmark = pytest.mark.e2e
SIZE = (120, 40)
EP = "ep-prompt-ops"  # the second test uses EP2 (one control plane per module)
EP2 = "ep-prompt-tags"


def notes(app: ModeldeckApp) -> list[str]:
    return [f"{n.title or ''} {n.message}" for n in app._notifications]


async def _open_scale_prompt(app: ModeldeckApp, pilot: Any, h: Any, ep: str) -> PromptScreen:
    await h.select_row(app, pilot, f"{ep}/blue")
    await pilot.press("s")
    assert isinstance(app.screen, PromptScreen)
    return app.screen


async def test_scale_prompt_refuses_when_someone_else_scaled_meanwhile(  # type: ignore[no-untyped-def]
    workspace, other, h
) -> None:
    await h.make_endpoint(workspace, EP, {})
    spec = h.deployment_spec("blue", EP, instance_count=0)
    await asyncio.wait_for((await workspace.create_deployment(spec)).wait(), 60)
    app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="deployments")
    async with app.run_test(size=SIZE) as pilot:
        prompt = await _open_scale_prompt(app, pilot, h, EP)
        assert prompt.query_one(Input).value == "0"  # prefilled from what the row shows

        # meanwhile another operator scales it to 1
        theirs = await other.get_deployment(EP, "blue")
        await asyncio.wait_for(
            (
                await other.update_deployment(
                    h.deployment_spec("blue", EP, instance_count=1), if_revision=theirs.revision
                )
            ).wait(),
            60,
        )

        prompt.query_one(Input).value = "2"
        await pilot.press("enter")
        await h.eventually(lambda: any("failed" in n for n in notes(app)), pilot)
        said = " ".join(notes(app))
        assert "scale ep-prompt-ops/blue to 2: failed" in said, said
        assert "deployment 'blue' changed since you read it" in said, said
        assert "10.9.8.7" in said, said  # who
        assert "instance_count 0 -> 1" in said, said  # what
        assert "succeeded" not in said, said
    after = await workspace.get_deployment(EP, "blue")
    assert after.spec.instance_count == 1  # theirs kept, not overwritten with 2


async def test_scale_prompt_applies_when_someone_else_changed_another_field(  # type: ignore[no-untyped-def]
    workspace, other, h
) -> None:
    await h.make_endpoint(workspace, EP2, {})
    spec = h.deployment_spec("blue", EP2, instance_count=0)
    await asyncio.wait_for((await workspace.create_deployment(spec)).wait(), 60)
    app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="deployments")
    async with app.run_test(size=SIZE) as pilot:
        prompt = await _open_scale_prompt(app, pilot, h, EP2)

        theirs = await other.get_deployment(EP2, "blue")
        tagged = h.deployment_spec("blue", EP2, instance_count=0, tags={"owner": "bob"})
        await asyncio.wait_for(
            (await other.update_deployment(tagged, if_revision=theirs.revision)).wait(), 60
        )

        prompt.query_one(Input).value = "1"
        await pilot.press("enter")
        await h.eventually(lambda: any("succeeded" in n for n in notes(app)), pilot)
    after = await workspace.get_deployment(EP2, "blue")
    assert after.spec.instance_count == 1 and after.spec.tags.get("owner") == "bob"
