"""Generated YAML and --set overrides thrown at the spec loader: only typed errors come out."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.specs.deployment import (
    DEPLOYMENT_KEYS,
    PROBE_KEYS,
    REQUEST_KEYS,
    deployment_from_doc,
)
from modeldeck.services.specs.document import parse_yaml
from modeldeck.services.specs.endpoint import ENDPOINT_KEYS, endpoint_from_doc
from modeldeck.services.specs.setargs import apply_overrides

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["0.5", "500m", "1Gi", "Key", "azureml:m:1", "./blue", "score.py", "x" * 40]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from([*REQUEST_KEYS, *PROBE_KEYS, "cpu", "memory", "path", "zz"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
deployment_docs = st.dictionaries(
    st.sampled_from([*DEPLOYMENT_KEYS, "instance_cont", "bogus"]), values, max_size=8
)
endpoint_docs = st.dictionaries(st.sampled_from([*ENDPOINT_KEYS, "zz"]), values, max_size=6)
overrides = st.lists(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(
            [
                "instance_count",
                "resources.requests.cpu",
                "resources.requests.nvidia.com/gpu",
                "request_settings",
                "model.path",
                "tags.x",
                "a..b",
                "",
            ]
        ),
        st.text(max_size=8),
    ),
    max_size=3,
)

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(doc=deployment_docs, sets=overrides)
def test_deployment_loader_raises_only_invalid_input(
    doc: dict, sets: list[str], tmp_path: Path
) -> None:
    text = yaml.safe_dump(doc)
    try:
        parsed = parse_yaml(text, "gen.yml", tmp_path, "deployment")
        apply_overrides(parsed, sets)
        deployment_from_doc(parsed)
    except InvalidInput as exc:
        assert exc.message and exc.field is not None
        assert exc.fix, exc  # every refusal says what to do


@SETTINGS
@given(doc=endpoint_docs, sets=overrides)
def test_endpoint_loader_raises_only_invalid_input(
    doc: dict, sets: list[str], tmp_path: Path
) -> None:
    try:
        parsed = parse_yaml(yaml.safe_dump(doc), "gen.yml", tmp_path, "endpoint")
        apply_overrides(parsed, sets)
        endpoint_from_doc(parsed)
    except InvalidInput as exc:
        assert exc.message
        assert exc.fix, exc


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_is_valid_yaml_or_invalid_input(text: str) -> None:
    try:
        parse_yaml(text, "gen.yml", None, "endpoint")
    except InvalidInput as exc:
        assert exc.field == "file" and exc.fix, exc


def test_recursive_alias_is_refused() -> None:
    try:
        parse_yaml("name: &a [*a]\n", "rec.yml", None, "endpoint")
    except InvalidInput as exc:
        assert "rec.yml" in exc.message
    else:
        raise AssertionError("a recursive alias was accepted")
