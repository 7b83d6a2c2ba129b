"""JSON Schemas of the ARM REST spec (tests/azureml/schemas/*.json, swagger 2.0 definitions) for jsonschema.

Swagger models inheritance with ``allOf`` + ``discriminator``; plain JSON Schema would
reject a child's inherited properties under ``additionalProperties: false``. So each
definition is flattened (the parents' properties and ``required`` merged into it), and
a discriminator base dispatches to its children with ``if``/``then`` on the
discriminator's value, as autorest reads the spec. ``x-nullable`` allows null.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[1] / "azureml" / "schemas"
FILES = {
    "mfe": "mfe-2024-10-01.json",
    "rp": "machineLearningServices-2024-10-01.json",
    "common": "common-types-v3.json",
}
_BY_FILENAME = {v: k for k, v in FILES.items()}
_DURATION = re.compile(
    r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)


class Spec:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {
            key: json.loads((SCHEMAS / name).read_text())["definitions"]
            for key, name in FILES.items()
        }
        self.defs: dict[str, Any] = {}
        self._validators: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
        self.format_checker = jsonschema.FormatChecker(formats=())

        @self.format_checker.checks("duration")
        def _duration(value: object) -> bool:
            return not isinstance(value, str) or bool(_DURATION.match(value))

        for file, definitions in self.docs.items():  # every definition, before any validator
            for name in definitions:
                self.ref(file, name)

    def _resolve(self, ref: str, current: str) -> tuple[str, str]:
        path, _, frag = ref.partition("#")
        file = _BY_FILENAME.get(Path(path).name, current) if path else current
        if path and Path(path).name in ("types.json", "managedidentity.json"):
            file = "common"
        return file, frag.rsplit("/", 1)[-1]

    def _flatten(self, file: str, name: str) -> tuple[dict[str, tuple[str, Any]], list[str]]:
        d = self.docs[file][name]
        props: dict[str, tuple[str, Any]] = {}
        required: list[str] = []
        for parent in d.get("allOf", []):
            pp, pr = self._flatten(*self._resolve(parent["$ref"], file))
            props.update(pp)
            required += pr
        for k, v in (d.get("properties") or {}).items():
            props[k] = (file, v)
        required += d.get("required", [])
        return props, required

    def ref(self, file: str, name: str) -> dict[str, Any]:
        key = f"{file}.{name}"
        if key not in self.defs:
            self.defs[key] = {}  # placeholder against recursion
            self.defs[key] = self._build(file, name)
        return {"$ref": f"#/definitions/{key}"}

    def _build(self, file: str, name: str) -> dict[str, Any]:
        d = self.docs[file][name]
        if "enum" in d:
            return {"type": d.get("type", "string"), "enum": d["enum"]}
        props, required = self._flatten(file, name)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {k: self._convert(f, v) for k, (f, v) in props.items()},
        }
        if required:
            schema["required"] = sorted(set(required))
        if d.get("additionalProperties") is False:
            schema["additionalProperties"] = False
        elif isinstance(d.get("additionalProperties"), dict):
            schema["additionalProperties"] = self._convert(file, d["additionalProperties"])
        disc = d.get("discriminator")
        if disc:
            subs = []
            for sub_name, sd in self.docs[file].items():
                parents = [self._resolve(p["$ref"], file) for p in sd.get("allOf", [])]
                if (file, name) in parents and "x-ms-discriminator-value" in sd:
                    subs.append((sub_name, sd["x-ms-discriminator-value"]))
            schema["allOf"] = [
                {
                    "if": {"properties": {disc: {"const": value}}, "required": [disc]},
                    "then": self.ref(file, sub),
                }
                for sub, value in subs
            ]
        return schema

    def _convert(self, file: str, s: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in s:
            out: dict[str, Any] = self.ref(*self._resolve(s["$ref"], file))
        else:
            out = {}
            for k in ("type", "enum", "format", "minimum", "maximum", "minLength", "pattern"):
                if k in s:
                    out[k] = s[k]
            if "properties" in s:
                out["properties"] = {k: self._convert(file, v) for k, v in s["properties"].items()}
            if "required" in s:
                out["required"] = s["required"]
            if "items" in s:
                out["items"] = self._convert(file, s["items"])
            if isinstance(s.get("additionalProperties"), dict):
                out["additionalProperties"] = self._convert(file, s["additionalProperties"])
            elif s.get("additionalProperties") is False:
                out["additionalProperties"] = False
        if s.get("x-nullable"):
            out = {"anyOf": [out, {"type": "null"}]}
        return out

    def validator(self, file: str, name: str) -> jsonschema.Draft7Validator:
        found = self._validators.get((file, name))
        if found is None:
            root = self.ref(file, name)
            schema = {"definitions": self.defs, **root}
            found = jsonschema.Draft7Validator(schema, format_checker=self.format_checker)
            self._validators[(file, name)] = found
        return found


@cache
def spec() -> Spec:
    return Spec()


def errors(file: str, name: str, body: Any) -> list[str]:
    """Every schema violation of ``body`` against definition ``name``, as text."""
    v = spec().validator(file, name)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
        for e in sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]
