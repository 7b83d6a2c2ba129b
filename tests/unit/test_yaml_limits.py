"""YAML is read within bounds: aliases, expansion, nesting and bytes; errors name file and line."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
import yaml
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.drivers.kubernetes import kubeconfig
from modeldeck.services.specs import yamlload
from modeldeck.services.specs.document import parse_yaml, read_yaml
from modeldeck.services.specs.setargs import parse_set_value


def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: ``levels`` lists of nine aliases of the level before."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BOMB = billion_laughs()


def _peak_while(fn: object) -> tuple[BaseException | None, int]:
    yaml.SafeLoader("")  # the yaml modules are loaded before measuring
    tracemalloc.start()
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:
        err: BaseException | None = exc
    else:
        err = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return err, peak


def test_a_billion_laughs_spec_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yml"
    path.write_text(BOMB)
    assert len(BOMB.encode()) < 450  # 9**9 "lol"s once expanded
    err, peak = _peak_while(lambda: read_yaml(path, "endpoint"))
    assert isinstance(err, InvalidInput), err
    assert err.field == "file" and err.value == str(path)
    assert "expands to more than 100,000 values" in err.message
    assert err.message.startswith(f"{path}: line ")  # where the expansion passes the bound
    assert "billion laughs" in (err.fix or "")
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"


def test_the_same_bomb_through_safe_load_and_set_values_is_bounded() -> None:
    err, peak = _peak_while(lambda: yamlload.safe_load(BOMB, "x.yml"))
    assert isinstance(err, InvalidInput) and "x.yml: line" in err.message
    assert peak < 4 * 1024 * 1024
    # a --set value is YAML too: the bomb stays the text it was given
    one_line = BOMB.replace("\n", ", ").rstrip(", ")
    assert parse_set_value("{" + one_line + "}") == "{" + one_line + "}"


def test_a_bomb_in_a_kubeconfig_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(BOMB)
    with pytest.raises(InvalidInput) as exc:
        kubeconfig.merge([path])
    assert exc.value.field == "KUBECONFIG" and str(path) in exc.value.message


def test_too_many_aliases_are_refused_even_when_they_expand_little() -> None:
    text = "base: &b 1\nlist: [" + ", ".join(["*b"] * 101) + "]\n"
    with pytest.raises(InvalidInput) as exc:
        yamlload.safe_load(text, "many.yml")
    assert "more than 100 aliases" in exc.value.message
    assert "many.yml: line 2, column" in exc.value.message


def test_a_recursive_alias_names_its_line() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_yaml("name: blue\ntags: &t {x: *t}\n", "rec.yml", None, "endpoint")
    assert exc.value.message.startswith("rec.yml: line 2, column 14:")
    assert "recursive alias" in exc.value.message


def test_ordinary_anchors_and_merge_keys_still_work() -> None:
    text = (
        "base: &base {A: '1', B: '2'}\nenvironment_variables:\n  <<: *base\n  C: '3'\nalso: *base\n"
    )
    data = yamlload.safe_load(text, "ok.yml")
    assert data["environment_variables"] == {"A": "1", "B": "2", "C": "3"}
    assert data["also"] == {"A": "1", "B": "2"}


@pytest.mark.parametrize("levels", [33, 5000])
def test_deep_flow_nesting_names_line_and_column(levels: int) -> None:
    text = "name: blue\ndescription: x\ntags: " + "[" * levels + "]" * levels + "\n"
    with pytest.raises(InvalidInput) as exc:
        parse_yaml(text, "deep.yml", None, "endpoint")
    # the top mapping is level 0, tags' value level 1: the 33rd bracket is one too deep
    assert exc.value.message.startswith("deep.yml: line 3, column 39: YAML refused"), exc.value
    assert "nests deeper than 32 levels" in exc.value.message
    assert "RecursionError" not in str(exc.value)


def test_deep_block_nesting_names_the_line() -> None:
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(40)) + "  " * 40 + "v: 1\n"
    with pytest.raises(InvalidInput) as exc:
        parse_yaml(text, "deep.yml", None, "endpoint")
    assert exc.value.message.startswith("deep.yml: line 33, column 65:"), exc.value


def test_32_levels_are_allowed_33_are_not() -> None:
    # the value 1 inside 31 lists under key a: level 32
    data = yamlload.safe_load("a: " + "[" * 31 + "1" + "]" * 31 + "\n", "ok.yml")["a"]
    for _ in range(30):
        data = data[0]
    assert data == [1]
    with pytest.raises(InvalidInput) as exc:
        yamlload.safe_load("a: " + "[" * 32 + "1" + "]" * 32 + "\n", "no.yml")
    assert exc.value.message.startswith("no.yml: line 1, column 36:")


def test_a_recursion_error_becomes_invalid_input_with_the_file() -> None:
    err = yamlload.as_invalid(RecursionError("maximum recursion depth exceeded"), "r.yml")
    assert err.field == "file" and err.message.startswith("r.yml: ")
    assert "nests deeper" in err.message and "Recursion" not in err.message


def test_syntax_errors_name_line_and_column() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_yaml("name: blue\ntags: [a, b\n", "bad.yml", None, "endpoint")
    assert exc.value.message.startswith("bad.yml: line 3, column 1: not valid YAML")
    assert "indentation" in (exc.value.fix or "")


def test_a_file_over_the_size_cap_is_refused_after_reading_only_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    with open(path, "w") as f:
        f.write("name: blue\ndescription: '")
        f.write("x" * (40 * 1024 * 1024))
        f.write("'\n")
    err, peak = _peak_while(lambda: read_yaml(path, "endpoint"))
    assert isinstance(err, InvalidInput)
    assert err.field == "file" and "is larger than 1 MiB" in err.message
    assert "(40 MiB)" in err.message  # its size, from the file system
    assert peak < 3 * 1024 * 1024  # the cap (+1 byte) was read, not 40 MiB


def test_a_file_at_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yml"
    head = "name: blue\n"
    path.write_text(head + "#" * (yamlload.MAX_BYTES - len(head) - 1) + "\n")
    assert path.stat().st_size == yamlload.MAX_BYTES
    assert read_yaml(path, "endpoint").data == {"name": "blue"}


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin.yml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InvalidInput) as exc:
        read_yaml(path, "endpoint")
    assert "not UTF-8 text (byte 9)" in exc.value.message


def test_a_document_of_too_many_plain_values_is_not_called_an_alias_bomb(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yamlload.loader_class(), "max_nodes", 1000)  # parsing 100,000 is slow
    text = "tags:\n" + "".join(f"  t{i}: v\n" for i in range(600))
    with pytest.raises(InvalidInput) as exc:
        yamlload.safe_load(text, "tags.yml")
    assert exc.value.message.startswith(
        "tags.yml: line 2, column 3: YAML refused: holds more than 1,000 values"
    )
    assert "alias" not in str(exc.value)
    assert yamlload.safe_load("tags:\n" + "".join(f"  t{i}: v\n" for i in range(400)), "ok")
