"""az's generic update arguments through the CLI grammar: ``--set``/``--add``/``--remove``/
``--force-string`` parsed as az parses them, applied as az's algorithm applies them.

The table is azure-cli's own: ``src/azure-cli-core/azure/cli/core/tests/test_generic_update.py``
(``test_generic_update_scenario``, ``test_generic_update_errors``,
``test_generic_update_empty_nodes``; Azure/azure-cli, MIT), with its outcomes copied. Its
object is an SDK model whose snake_case attributes it names in camelCase (``myProp``); az ml
applies the arguments to a YAML mapping, where az indexes keys as written, so the same object
is a mapping here with the keys as the YAML spells them (``my_prop``), and "Available options"
lists them so. Where az sets an SDK attribute to ``[]`` on ``--remove myList``, a mapping's
key is deleted (az's ``remove_properties`` on a dict).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import pytest
from modeldeck.cli.grammar import flags
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.specs.document import Doc
from modeldeck.services.specs.setargs import Edit, apply_overrides, internal_path, set_paths


def _parser(generic: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genupdate", exit_on_error=False)
    flags.set_(p, generic=generic)
    return p


def _az_object() -> dict[str, Any]:
    """azure-cli's TestObject, as a mapping."""
    return {
        "my_prop": "my_value",
        "my_list": [
            "myValA",
            ["myValB", "myValC"],
            {"myKey": "valueA"},
            {"my_string": "myString", "my_int": 0, "my_bool": True},
        ],
        "my_dict": {},
        "my_list_of_camel_dicts": [{"myKey": "value_1"}, {"myKey": "value_2"}],
        "my_list_of_snake_dicts": [{"my_key": "value1"}, {"my_key": "value2"}],
        "my_list_of_objects": [
            {"my_string": "myKeyA", "my_int": 25, "my_bool": True},
            {"my_string": "1.2.3.4", "my_int": 100, "my_bool": False},
        ],
        "empty_prop": None,
        "empty_list": [],
        "empty_dict_of_dicts": {"dict": {"dict2": None}},
        "empty_dict": {"dict3": None},
    }


class GenUpdate:
    """``genupdate ARGS``: parsed by our grammar, applied to one mapping (az's test CLI)."""

    def __init__(self) -> None:
        self.obj = _az_object()

    def __call__(self, command: str, *, shell: bool = False) -> None:
        argv = shlex.split(command) if shell else command.split()  # az's test splits so
        args = _parser().parse_args(argv)
        apply_overrides(Doc(self.obj, "genupdate", None), args.set)

    def error(self, command: str) -> str:
        with pytest.raises(InvalidInput) as exc:
            self(command)
        assert exc.value.fix, exc.value  # every refusal says what to do
        return exc.value.message


def test_generic_update_scenario() -> None:
    run = GenUpdate()
    o = run.obj
    run("--set my_prop=newValue")
    assert o["my_prop"] == "newValue"  # set simple property
    run("--set my_prop=val3")
    assert o["my_prop"] == "val3"  # set simple property again
    run('--set my_prop="foo=bar"')
    assert o["my_prop"] == "foo=bar"  # use equal in value
    run("--set my_list[0]=newValA")
    assert o["my_list"][0] == "newValA"  # set simple list element
    run("--set my_list[-4]=newValB")
    assert o["my_list"][0] == "newValB"
    run("--set my_dict.myCamelKey=success")
    assert o["my_dict"]["myCamelKey"] == "success"
    run("--set my_dict.my_snake_key=success")
    assert o["my_dict"]["my_snake_key"] == "success"

    # indexing into a list of mappings by filter
    run('--set my_list_of_camel_dicts[myKey=value_2].myKey="foo=bar"')
    assert o["my_list_of_camel_dicts"][1]["myKey"] == "foo=bar"
    run('--set my_list_of_camel_dicts[myKey="foo=bar"].myKey=new_value')
    assert o["my_list_of_camel_dicts"][1]["myKey"] == "new_value"
    run("--set my_list_of_snake_dicts[my_key=value2].my_key=new_value")
    assert o["my_list_of_snake_dicts"][1]["my_key"] == "new_value"
    run("--set my_list_of_objects[my_string=1.2.3.4].my_string=new_value")
    assert o["my_list_of_objects"][1]["my_string"] == "new_value"

    # setting on elements nested within lists
    run("--set my_list[1][1]=newValue")
    assert o["my_list"][1][1] == "newValue"
    run("--set my_list[2].myKey=newValue")
    assert o["my_list"][2]["myKey"] == "newValue"
    run("--set my_list[3].my_int=50")
    assert o["my_list"][3]["my_int"] == 50  # a JSON value

    # overwriting and removing values; several KEY=VALUE after one --set
    run("--set my_prop={} my_prop.foo=bar")
    assert o["my_prop"]["foo"] == "bar"  # replace scalar with dict
    run("--set my_prop=[] --add my_prop key1=value1 --set my_prop[0].key2=value2")
    assert o["my_prop"][0]["key1"] == "value1"  # in the order given
    assert o["my_prop"][0]["key2"] == "value2"
    run("--remove my_prop --add my_prop str1 str2 --remove my_prop 0")
    assert o["my_prop"] == ["str2"]  # nullify property, add two and remove one

    # various --add to lists
    run("--set my_list=[]")
    run("--add my_list value1", shell=True)
    assert o["my_list"][0] == "value1"
    run("--set my_list=[]")
    run('--add my_list key1=value1 key2=value2 foo "string in quotes" [] {} foo=bar', shell=True)
    assert o["my_list"][0] == {"key1": "value1", "key2": "value2"}
    assert o["my_list"][1] == "foo"
    assert o["my_list"][2] == "string in quotes"
    assert o["my_list"][3] == []
    assert o["my_list"][4] == {}
    assert o["my_list"][-1] == {"foo": "bar"}

    # --remove
    assert len(o["my_list"]) == 6
    run("--remove my_list -2")
    assert len(o["my_list"]) == 5
    assert o["my_list"][4]["foo"] == "bar"  # the right item removed
    assert "key1" in o["my_list"][0]
    run("--remove my_list[0].key1")
    assert "key1" not in o["my_list"][0]
    run("--remove my_list")
    assert "my_list" not in o  # a mapping's key is deleted


def test_generic_update_errors() -> None:
    run = GenUpdate()
    options = sorted(_az_object())
    missing = f"Couldn't find 'doesnt_exist' in ''. Available options: {options}"
    assert missing in run.error("--remove doesnt_exist")
    assert missing in run.error("--remove doesnt_exist 2")
    assert (
        "Couldn't find 'doesnt_exist' in 'my_list.doesnt_exist'. Available options: index "
        "into the collection 'my_list.doesnt_exist' with [<index>] or [<key=value>]"
    ) in run.error("--remove my_list.doesnt_exist.missing 2")
    assert "index 20 doesn't exist on my_list" in run.error("--remove my_list 20")
    on_list = (
        "Couldn't find 'doesnt_exist' in 'my_list'. Available options: index into the "
        "collection 'my_list' with [<index>] or [<key=value>]"
    )
    assert on_list in run.error("--set my_list.doesnt_exist=foo")
    assert on_list in run.error("--set my_list.doesnt_exist.doesnt_exist2=foo")
    assert "index 5 doesn't exist on my_list" in run.error("--set my_list[5].doesnt_exist=foo")
    assert (
        "invalid syntax: --remove property.list <indexToRemove> OR --remove propertyToRemove"
    ) in run.error("--remove my_list[0]")

    run("--set my_dict={'foo':'bar'}")  # a Python literal, as az's shell_safe_json_parse reads it
    assert (
        "Couldn't find 'doo' in 'my_dict.foo'. 'my_dict.foo' does not support further indexing."
    ) in run.error("--set my_dict.foo.doo=boo")
    assert (
        "Couldn't find '[0]' in 'my_dict'. 'my_dict' does not support further indexing."
    ) in run.error("--set my_dict.foo[0]=boo")
    assert (
        "invalid syntax: --add property.listProperty <key=value, string or JSON string>"
    ) in run.error("--add my_dict la=da")

    run("--add my_list_of_camel_dicts myKey=value_2")  # 'myKey' no longer unique
    assert (
        "non-unique key 'myKey' found multiple matches on my_list_of_camel_dicts. "
        "Key must be unique."
    ) in run.error("--set my_list_of_camel_dicts[myKey=value_2].myKey=foo")
    assert (
        "item with value 'foo' doesn't exist for key 'myKey' on my_list_of_camel_dicts"
    ) in run.error("--set my_list_of_camel_dicts[myKey=foo].myKey=foo")


def test_generic_update_empty_nodes() -> None:
    run = GenUpdate()
    o = run.obj
    run("--add empty_prop a=b")
    assert o["empty_prop"] == [{"a": "b"}]  # object added to null list
    run("--add empty_list c=d")
    assert o["empty_list"] == [{"c": "d"}]
    run("--set empty_dict_of_dicts.dict.dict2.e=f")
    assert o["empty_dict_of_dicts"]["dict"]["dict2"] == {"e": "f"}
    run("--set empty_dict.dict3.g=h")
    assert o["empty_dict"]["dict3"] == {"g": "h"}


# ---------------------------------------------------------------- beyond az's own table


def test_values_are_json_unless_force_string_wherever_it_is_given() -> None:
    parse = _parser().parse_args
    for argv in (
        ["--set", "a=1", "b=true", "--add", "l", "2", "--force-string"],
        ["--force-string", "--set", "a=1", "b=true", "--add", "l", "2"],
    ):
        doc = Doc({}, "x", None)
        apply_overrides(doc, parse(argv).set)
        assert doc.data == {"a": "1", "b": "true", "l": ["2"]}, argv
    doc = Doc({}, "x", None)
    argv = ["--set", "a=1", "b=true", "c=null", "d=text", "--add", "l", "2", "{}"]
    apply_overrides(doc, parse(argv).set)
    assert doc.data == {"a": 1, "b": True, "c": None, "d": "text", "l": [2, {}]}


def test_create_takes_only_set_and_keeps_its_values_as_text() -> None:
    """az ml's create: ``--set`` (OverridePropertiesBySet, several KEY=VALUE, repeatable),
    its values handed to the schema as text; no --add/--remove/--force-string."""
    p = _parser(generic=False)
    args = p.parse_args(["--set", "instance_count=2", "version=7", "--set", "model=azureml:m:3"])
    doc = Doc({}, "x", None)
    apply_overrides(doc, args.set)
    assert doc.data == {"instance_count": "2", "version": "7", "model": "azureml:m:3"}
    for flag in ("--add", "--remove", "--force-string"):
        with pytest.raises(SystemExit):
            p.parse_args([flag, "x"])  # unrecognized arguments, as az ml's create says


def test_paths_keep_the_keys_that_hold_dots() -> None:
    assert internal_path("resources.requests.nvidia.com/gpu") == [
        "resources",
        "requests",
        "nvidia.com/gpu",
    ]
    assert internal_path('properties."azureml.x"') == ["properties", "azureml.x"]
    assert internal_path("tags.team.name") == ["tags", "team.name"]
    assert internal_path("a.b[0][1].c") == ["a", "b", "[0]", "[1]", "c"]
    doc = Doc({}, "x", None)
    apply_overrides(doc, ['properties."azureml.x"=1'])
    assert doc.data == {"properties": {"azureml.x": 1}}
    assert set_paths(["a.b=1", Edit("--add", ("l[0].m", "x")), Edit("--remove", ("tags.t",))]) == [
        "a.b",
        "l",
        "tags.t",
    ]


def test_a_set_without_a_value_or_a_key_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        apply_overrides(Doc({}, "x", None), ["=1"])
    assert (
        "Empty key in --set. Correct syntax: --set KEY=VALUE [KEY=VALUE ...]" in exc.value.message
    )
    with pytest.raises(InvalidInput) as exc:
        apply_overrides(Doc({}, "x", None), ["instance_count"])
    assert exc.value.field == "--set" and "KEY=VALUE" in exc.value.message


def test_set_paths_resolve_against_the_yaml_folder_and_without_a_file_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """az ml loads the file with params_override, so a path --set gives is relative to the
    file's folder (its base path); with no file, to where the command runs."""
    from modeldeck.services.specs.deployment import load_deployment, updated_deployment

    (tmp_path / "deploy" / "code-a").mkdir(parents=True)
    (tmp_path / "deploy" / "code-a" / "score.py").write_text("def init(): pass\n")
    (tmp_path / "deploy" / "d.yml").write_text(
        "name: dep\nendpoint_name: my-ep\nmodel: azureml:m:1\n"
        "code_configuration: {code: ./nowhere, scoring_script: score.py}\n"
    )
    (tmp_path / "here" / "code-b").mkdir(parents=True)
    (tmp_path / "here" / "code-b" / "score.py").write_text("def init(): pass\n")
    monkeypatch.chdir(tmp_path / "here")
    loaded = load_deployment(
        "../deploy/d.yml", [Edit("--set", ("code_configuration.code=code-a",), parse=False)]
    )
    assert loaded.spec.code_configuration.code == str(tmp_path / "deploy" / "code-a")
    again = updated_deployment(loaded.spec, ["code_configuration.code=code-b"])
    assert again.spec.code_configuration.code == str(tmp_path / "here" / "code-b")
