"""JSON Schema (draft 2020-12) of the results files, made from the dataclasses and types that read them
(store.schema), so that another tool can check them without this harness. The files ship in the package
(harness/resources/schema/); a test holds them equal to what this makes, and checks real files against
them with the jsonschema library. Regenerate with `python -m harness.store.json_schema`.

A schema cannot say what the readers check across fields (a record agrees with its folder, a run id
stays inside its sweep); it says each field's type, range, length and date format.
"""
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any

from harness.store.perflog import PerfEntry
from harness.store.records import RunRecord, SweepSpec
from harness.store.schema import Date, Keys, Length, Range, declared_fields
from harness.store.submissions import Submissions

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "resources" / "schema"
FILES = {"sweep": SweepSpec, "result": RunRecord, "jobs": Submissions, "perflog-line": PerfEntry}
SIMPLE = {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"}, bool: {"type": "boolean"},
          type(None): {"type": "null"}}


def type_schema(kind: Any) -> dict[str, Any]:
    """The JSON Schema of a declared type (the vocabulary of store.schema.type_problem)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        schema = dict(type_schema(args[0]))
        for rule in args[1:]:
            if isinstance(rule, Range):
                if rule.low is not None:
                    schema["exclusiveMinimum" if rule.above else "minimum"] = rule.low
                if rule.high is not None:
                    schema["maximum"] = rule.high
            elif isinstance(rule, Length):
                schema.update(minItems=rule.count, maxItems=rule.count)
            elif isinstance(rule, Date):
                schema["format"] = "date-time"
            elif isinstance(rule, Keys):  # known keys typed; others pass (a later version's)
                schema["properties"] = {key: type_schema(inner) for key, inner in rule.kinds.items()}
        return schema
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(arg) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0])}
    if origin is dict:
        return {"type": "object"} if args[1] is Any else {"type": "object", "additionalProperties": type_schema(args[1])}
    if dataclasses.is_dataclass(kind):
        return dataclass_schema(kind)  # type: ignore[arg-type]
    if kind is Any:
        return {}
    return dict(SIMPLE[kind])


def dataclass_schema(cls: type) -> dict[str, Any]:
    """An object with the dataclass's fields: those without a default required, no other field."""
    hints, fields = declared_fields(cls)
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return {"type": "object", "properties": {name: type_schema(hints[name]) for name in fields},
            "required": required, "additionalProperties": False}


def file_schema(name: str) -> dict[str, Any]:
    """The schema of one of FILES, with its identity."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"harness/{name}.schema.json",
            "title": f"harness {name}", **dataclass_schema(FILES[name])}


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in FILES:
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(file_schema(name), indent=2) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_schemas():
        print(written)
