"""The dashboard (the real Textual app, driven with Pilot) on an Azure ML workspace opened
through the profile path, against the fake ARM server: the views show what ARM holds, and a
traffic change made with the sliders reaches ARM as one PUT carrying the full map."""

from __future__ import annotations

from typing import Any

from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.widgets.resource_table import ResourceTable
from modeldeck.tui.widgets.traffic_slider import TrafficSlider

from tests.support.polling import eventually

SIZE = (120, 40)


def row_text(app: ModeldeckApp, key: str) -> str:
    tables = app.screen.query("#table")
    if not tables:
        return ""
    cells = tables.first(ResourceTable).cells(key) or ()
    return " ".join(getattr(c, "plain", str(c)) for c in cells)


def notes(app: ModeldeckApp) -> str:
    return " ".join(f"{n.title or ''} {n.message}" for n in app._notifications)


async def command(pilot: Any, text: str) -> None:
    await pilot.press("colon")
    keys = {" ": "space", "-": "minus"}
    await pilot.press(*[keys.get(ch, ch) for ch in text])
    await pilot.press("enter")


async def test_dashboard_shows_arm_data_and_sliders_send_the_full_map(ws: Any, seeded: Any) -> None:
    seeded.add_deployment("my-endpoint", "red", model="sklearn-demo", version="1", capacity=2)
    seeded.endpoints["my-endpoint"]["properties"]["traffic"] = {"blue": 90, "green": 0, "red": 10}
    seeded.add_endpoint("other-endpoint", "myaks", auth="AMLToken", traffic={"solo": 100})
    seeded.add_deployment("other-endpoint", "solo", model="sklearn-demo", version="2")

    app = ModeldeckApp(ws, poll_scale=0.25)
    assert app.workspace_label == ("cloud", "azureml")
    async with app.run_test(size=SIZE) as pilot:
        # endpoints view: both endpoints, with their traffic, as ARM holds them
        await eventually(lambda: "other-endpoint" in row_text(app, "other-endpoint"), pilot)
        mine = row_text(app, "my-endpoint")
        assert mine.startswith("my-endpoint myaks key Ready") and "blue=90 red=10" in mine
        other = row_text(app, "other-endpoint")
        assert other.startswith("other-endpoint myaks aml_token Ready") and "solo=100" in other

        # deployments view: every deployment of every endpoint, with its live weight
        await pilot.press("2")
        await eventually(lambda: bool(row_text(app, "my-endpoint/red")), pilot)
        assert row_text(app, "my-endpoint/red").split()[:6] == [
            "my-endpoint",
            "red",
            "Ready",
            "2/2",
            "sklearn-demo:1",
            "0.5/0.5G",
        ]
        assert row_text(app, "my-endpoint/red").split()[-1] == "10%"
        assert row_text(app, "my-endpoint/blue").split()[-1] == "90%"
        assert row_text(app, "other-endpoint/solo").split()[-2:] == ["0.5/0.5G", "100%"]

        # clusters and models views: the AKS compute and both model versions
        await pilot.press("3")
        await eventually(lambda: bool(row_text(app, "myaks")), pilot)
        cluster = row_text(app, "myaks").split()
        # AKS, FastProd, Ready, 3 agents of 4 vCPU, used by 2 endpoints
        assert cluster[:5] == ["myaks", "azureml/aks", "FastProd", "Ready", "3"]  # + its type
        assert "0/12" in cluster and cluster[-1] == "2"
        await pilot.press("4")
        await eventually(lambda: bool(row_text(app, "sklearn-demo:000002")), pilot)
        assert row_text(app, "sklearn-demo:000001").startswith("sklearn-demo 1")
        await pilot.press("2")

        # traffic sliders: green +10, blue takes the rest; red (untouched) keeps its 10
        await command(pilot, "traffic my-endpoint")
        await eventually(lambda: bool(app.screen.query("#slider-red")), pilot)
        screen = app.screen
        assert screen.live == {"blue": 90, "green": 0, "red": 10}
        sliders = {s.deployment: s for s in screen.query(TrafficSlider) if s.id != "mirror-slider"}
        assert sorted(sliders) == ["blue", "green", "red"]
        sliders["green"].focus()
        await pilot.pause()
        await pilot.press("shift+right")
        await pilot.press("r")  # the default (blue, the largest) takes the rest
        assert screen.staged == {"blue": 80, "green": 10, "red": 10}
        assert seeded.calls("PUT") == []  # staged, nothing sent yet
        await pilot.press("enter")

        def applied() -> bool:
            props = seeded.endpoints["my-endpoint"]["properties"]
            return (
                props["traffic"] == {"blue": 80, "green": 10, "red": 10}
                and props["provisioningState"] == "Succeeded"
            )

        await eventually(applied, pilot)
        await eventually(lambda: not screen.dirty, pilot)

    puts = seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint")
    assert len(puts) == 1
    # the full map, every deployment named, including the one the user did not touch
    assert puts[0].body["properties"]["traffic"] == {"blue": 80, "green": 10, "red": 10}
    # the map was read from ARM just before the PUT
    reads = [
        i
        for i, r in enumerate(seeded.requests)
        if r.method == "GET" and r.path.endswith("/onlineEndpoints/my-endpoint")
    ]
    put_at = seeded.requests.index(puts[0])
    assert any(i < put_at for i in reads)
    assert seeded.calls("PUT", suffix="/onlineEndpoints/other-endpoint") == []
    assert seeded.schema_errors == []
    assert "error" not in notes(app).lower()


async def test_dashboard_keys_logs_and_metrics_on_azure_ml(ws: Any, seeded: Any) -> None:
    from modeldeck.tui.screens.dialogs import ConfirmScreen
    from modeldeck.tui.widgets.log_view import LogView

    old = dict(seeded.keys["my-endpoint"])
    seeded.logs[("my-endpoint", "blue", "InferenceServer")] = [
        "2026-11-26T10:00:00Z INFO model loaded from azureml-models/sklearn-demo/1"
    ]
    seeded.metrics["my-endpoint"] = {"blue": {"RequestsPerMinute": 120}}
    app = ModeldeckApp(ws, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        # keys: ARM's listKeys, masked by default; regenerate the primary through ARM
        await command(pilot, "keys my-endpoint")
        await eventually(
            lambda: (
                app.screen.query("#key-primary")
                and app.screen.query_one("#key-primary").secret == old["primaryKey"]
            ),
            pilot,
        )
        text = " ".join(str(w.render()) for w in app.screen.query("SecretField"))
        assert old["primaryKey"] not in text and old["secondaryKey"] not in text
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await eventually(
            lambda: seeded.keys["my-endpoint"]["primaryKey"] != old["primaryKey"], pilot
        )
        assert seeded.keys["my-endpoint"]["secondaryKey"] == old["secondaryKey"]
        assert seeded.calls("POST", "/regenerateKeys")[0].body == {"keyType": "Primary"}
        await pilot.press("escape")

        # logs: getLogs of the inference server
        await command(pilot, "logs my-endpoint/blue")
        await eventually(lambda: app.screen.__class__.__name__ == "LogsScreen", pilot)
        view = app.screen.query_one(LogView)
        await eventually(lambda: any("model loaded" in ln.text for ln in view.lines()), pilot)
        await pilot.press("escape")

        # metrics: Azure Monitor's requests per minute, per deployment
        await command(pilot, "metrics my-endpoint")
        await eventually(lambda: app.screen.__class__.__name__ == "MetricsScreen", pilot)

        def counted() -> bool:
            tables = app.screen.query("#metric-table")
            cells = tables.first(ResourceTable).cells("my-endpoint/blue") if tables else None
            return cells is not None and int(str(cells[3])) == 120

        await eventually(counted, pilot)
    assert seeded.schema_errors == []
