"""Reading a dataclass back from JSON, every field checked against its declared type.

What comes from disk is as untrusted as the command line: a file that does not hold what its
schema says is reported as damaged, with the file and the field, never half-used.
"""
import dataclasses
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, Protocol, TypeVar

from harness.errors import UserError

T = TypeVar("T")


class DamagedFile(UserError):
    """A results file that cannot be read as its schema says (truncated, edited, of another version)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged: {reason}")
        self.path, self.reason = Path(path), reason


def matches_type(value: Any, kind: Any) -> bool:
    """Whether a value read from JSON is of a declared type (bool is not a number; an int is a float)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, arg) for arg in args)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(matches_type(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and matches_type(v, args[1]) for k, v in value.items())
    if dataclasses.is_dataclass(kind):
        return isinstance(value, dict)
    return isinstance(value, kind)


@functools.cache
def _declared(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """A dataclass's field types and fields (read once per class: a sweep's spec has a run per seed)."""
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def from_fields(cls: type[T], data: Any, path: Path) -> T:
    """cls(**data), each field of its declared type (nested dataclasses too); DamagedFile otherwise.
    Fields with a default may be absent (files written by an earlier version); unknown keys are refused."""
    if not isinstance(data, dict):
        raise DamagedFile(path, f"expected a JSON object, found {type(data).__name__}")
    hints, fields = _declared(cls)  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise DamagedFile(path, f"unknown fields {', '.join(unknown)}")
    values = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise DamagedFile(path, f"field {name!r} is missing")
            continue
        kind, value = hints[name], data[name]
        if not matches_type(value, kind):
            raise DamagedFile(path, f"field {name!r} is {value!r:.60}, not {getattr(kind, '__name__', kind)}")
        inner = typing.get_args(kind)[0] if typing.get_origin(kind) is list else None
        if inner is not None and dataclasses.is_dataclass(inner):
            value = [from_fields(inner, item, path) for item in value]  # type: ignore[arg-type]
        values[name] = value
    return cls(**values)


def load_json(path: Path) -> Any:
    """The JSON in path; DamagedFile when it is not whole JSON (a truncated write, an edit)."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFile(path, f"not whole JSON ({err})") from None



class Versioned(Protocol):
    @property
    def schema_version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


def from_versioned_fields(cls: type[V], data: Any, path: Path, version: int) -> V:
    """from_fields for a file with a `schema_version`: one of another version is damaged, not half-read."""
    made = from_fields(cls, data, path)
    if made.schema_version != version:
        raise DamagedFile(path, f"schema_version {made.schema_version}; this harness reads {version}")
    return made
