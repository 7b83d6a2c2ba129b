"""ARM ids and times as az prints them (services/armids.py)."""

from __future__ import annotations

from datetime import datetime

from modeldeck.services import armids


def test_times_are_iso_8601_in_utc_as_azure_ai_ml_dumps_them() -> None:
    text = armids.iso_time(1706696430.123456)
    assert text == "2024-01-31T10:20:30.123456+00:00"
    assert datetime.fromisoformat(text).timestamp() == 1706696430.123456
    assert armids.iso_time(None) is None
    # ARM writes up to 7 fractional digits and a Z; a time without an offset is UTC
    assert armids.parse_time("2024-01-31T10:20:30.1234567Z") == 1706696430.123456
    assert armids.parse_time("2024-01-31T10:20:30") == 1706696430.0
    assert armids.parse_time("not a time") is None and armids.parse_time(None) is None


def test_local_ids_are_the_documented_placeholders_and_stable() -> None:
    scope = armids.local_scope("local")
    assert scope.id("onlineEndpoints", "ep") == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modeldeck-local"
        "/providers/Microsoft.MachineLearningServices/workspaces/local/onlineEndpoints/ep"
    )
    principal = armids.placeholder_uuid(scope.id("onlineEndpoints", "ep"))
    assert principal == armids.placeholder_uuid(scope.id("onlineEndpoints", "EP"))
    assert principal != armids.placeholder_uuid(scope.id("onlineEndpoints", "other"))
