"""Error messages a person can act on: ranges with thousands separators, a NUL in YAML shown
at its line and column, a huge --set value cut in the message as any value is."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.local.controlplane import daemon
from modeldeck.services.specs import yamlload
from modeldeck.services.specs.endpoint import load_endpoint

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_whole_number_range_is_shown_with_separators_not_in_exponent_form() -> None:
    with pytest.raises(InvalidInput) as exc:
        daemon._connection_setting("gateway_max_connections", {"gateway_max_connections": 0})
    assert "must be a whole number from 1 to 1,048,576" in exc.value.message
    assert "e+" not in exc.value.message


@pytest.mark.parametrize(
    ("char", "name"), [("\x00", "a NUL (#x0000)"), ("\x07", "a control character (#x0007)")]
)
def test_a_control_character_in_yaml_is_named_at_its_line_and_column(
    tmp_path: Path, char: str, name: str
) -> None:
    spec = tmp_path / "spec.yml"
    spec.write_text(f"name: my-endpoint\nauth_mode: ke{char}y\n")
    with pytest.raises(InvalidInput) as exc:
        yamlload.safe_load(yamlload.read_text(spec), str(spec))
    err = exc.value
    assert (
        err.message
        == f"{spec}: line 2, column 14: not valid YAML: {name}, which YAML does not allow"
    )
    assert "position" not in err.message and "<unicode string>" not in err.message
    assert err.fix == "remove the character at line 2, column 14: a spec is plain UTF-8 text"


def test_a_huge_set_value_is_cut_in_the_messages_prefix() -> None:
    big = "a" * 100_000
    with pytest.raises(InvalidInput) as exc:
        load_endpoint(str(EXAMPLES / "endpoint.yml"), [f"tags.x={big}"])
    text = str(exc.value)
    # the --set item that failed is named, cut short, before the rule it broke
    prefix, _, rest = text.partition("...: invalid tags.x")
    assert rest and prefix.startswith("--set tags.x=aaaa") and len(prefix) < 100, text[:200]
    assert len(text) < 600 and "100,000 characters" in text
