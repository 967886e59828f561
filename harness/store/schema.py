"""Reading a dataclass back from JSON, every field checked against its declared type.

What comes from disk is as untrusted as the command line: a file that does not hold what its
schema says is reported as damaged, with the file and the field, never half-used.
"""
import dataclasses
import functools
import json
import logging
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

from harness.errors import UserError
from harness.store.regular import Unreadable, read_regular

log = logging.getLogger("harness.store")

T = TypeVar("T")


class DamagedFile(UserError):
    """A results file that cannot be read as its schema says (truncated, edited, of another version)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged: {reason}")
        self.path, self.reason = Path(path), reason


@dataclass(frozen=True)
class Range:
    """A number's bounds, declared beside its type: Annotated[float, Range(0, 1)]. above: low itself is out."""

    low: float | None = None
    high: float | None = None
    above: bool = False

    def holds(self, value: float) -> bool:
        return ((self.low is None or (value > self.low if self.above else value >= self.low))
                and (self.high is None or value <= self.high))

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        return f"{'(' if self.above else '['}{low}, {'inf' if self.high is None else f'{self.high:g}'}]"


@dataclass(frozen=True)
class Length:
    """A list's length, declared beside its type: Annotated[list[float], Length(3)]."""

    count: int


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes what Annotated carries
class Keys:
    """A JSON object whose known keys have declared types: Annotated[dict[str, Any], Keys({...})]. Other
    keys pass (fields a later version adds to a nested object); a known key may be absent."""

    kinds: Mapping[str, Any]


@dataclass(frozen=True)
class Date:
    """Text that is an ISO 8601 date and time, declared beside its type: Annotated[str, Date()]."""


# The kinds of number a results file holds (every number read is finite: parse_json).
Fraction = Annotated[float, Range(0, 1)]  # a metric, a share, a probability
Count = Annotated[int, Range(0)]  # images, epochs, requeues, samples
Positive = Annotated[int, Range(1)]  # parameters, seeds of a sweep, batch size
Amount = Annotated[float, Range(0)]  # images/s, seconds, joules, bytes


def _is_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _name(kind: Any) -> str:
    if typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


_FORMS: dict[int, tuple[Any, Any, tuple[Any, ...]]] = {}  # id(kind) -> (kind, origin, arguments)


def _form(kind: Any) -> tuple[Any, tuple[Any, ...]]:
    """A declared type's origin and arguments, worked out once per type: a perflog or a sweep's records
    check the same few types hundreds of thousands of times (kept by identity: hashing a typing form is
    slower than working it out; the entry holds the kind, so its id is never reused)."""
    known = _FORMS.get(id(kind))
    if known is None or known[0] is not kind:
        known = _FORMS[id(kind)] = (kind, typing.get_origin(kind), typing.get_args(kind))
    return known[1], known[2]


def type_problem(value: Any, kind: Any, where: str = "") -> str | None:
    """Why a value read from JSON is not of a declared type (None when it is): its type (bool is not a
    number; an int is a float), the Range, Length and Keys declared beside it, nested lists and objects
    item by item. where: the value's name in the file ('test.auc'), for the message."""
    origin, args = _form(kind)
    shown = where or "the value"
    if origin is Annotated:
        problem = type_problem(value, args[0], where)
        if problem or value is None:
            return problem
        for rule in args[1:]:
            if isinstance(rule, Range) and not rule.holds(value):
                return f"{shown} is {value!r:.40}, outside {rule}"
            if isinstance(rule, Length) and len(value) != rule.count:
                return f"{shown} holds {len(value)} values, not {rule.count}"
            if isinstance(rule, Date) and not _is_date(value):
                return f"{shown} is {value!r:.40}, not an ISO 8601 date"
            if isinstance(rule, Keys):
                for key, inner in rule.kinds.items():
                    if key in value and (problem := type_problem(value[key], inner, f"{where}.{key}" if where else key)):
                        return problem
        return None
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = []
        for arg in args:
            if (problem := type_problem(value, arg, where)) is None:
                return None
            problems.append(problem)
        # the reason of the arm whose type it has (a number out of its range), else its type
        of_its_type = [p for p, arg in zip(problems, args) if _form(arg)[0] is Annotated and matches_type(value, _form(arg)[1][0])]
        return of_its_type[0] if of_its_type else f"{shown} is {value!r:.60}, not {' or '.join(map(_name, args))}"
    if origin is typing.Literal:
        return None if value in args and type(value) is type(args[0]) else \
            f"{shown} is {value!r:.60}, not one of {', '.join(map(str, args))}"
    if origin is list:
        if not isinstance(value, list):
            return f"{shown} is {value!r:.60}, not a list"
        return next((p for i, item in enumerate(value) if (p := type_problem(item, args[0], f"{where}[{i}]"))), None)
    if origin is dict:
        if not isinstance(value, dict):
            return f"{shown} is {value!r:.60}, not an object"
        if args[1] is Any:  # every value passes: none is looked at
            return None
        return next((p for k, v in value.items() if (p := type_problem(v, args[1], f"{where}.{k}" if where else str(k)))), None)
    if kind is type(None):
        matches = value is None
    elif kind is float:
        matches = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind is int:
        matches = isinstance(value, int) and not isinstance(value, bool)
    elif kind is Any or (dataclasses.is_dataclass(kind) and isinstance(value, dict)):
        return None
    else:
        matches = isinstance(value, kind)
    return None if matches else f"{shown} is {value!r:.60}, not {_name(kind)}"


def matches_type(value: Any, kind: Any) -> bool:
    """Whether a value read from JSON is of a declared type (type_problem finds nothing)."""
    return type_problem(value, kind) is None


@functools.cache
def declared_fields(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """A dataclass's field types and fields (read once per class: a sweep's spec has a run per seed)."""
    return typing.get_type_hints(cls, include_extras=True), {f.name: f for f in dataclasses.fields(cls)}


def from_fields(cls: type[T], data: Any, path: Path) -> T:
    """cls(**data), each field of its declared type (nested dataclasses too); DamagedFile otherwise.
    Fields with a default may be absent (files written by an earlier version); unknown keys are refused."""
    if not isinstance(data, dict):
        raise DamagedFile(path, f"expected a JSON object, found {type(data).__name__}")
    hints, fields = declared_fields(cls)  # type: ignore[arg-type]
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
        problem = type_problem(value, kind, name)
        if problem:
            raise DamagedFile(path, f"field {name!r}: {problem}")
        inner = typing.get_args(kind)[0] if typing.get_origin(kind) is list else None
        if inner is not None and dataclasses.is_dataclass(inner):
            value = [from_fields(inner, item, path) for item in value]  # type: ignore[arg-type]
        values[name] = value
    return cls(**values)


@functools.cache
def _nested(cls: type) -> dict[str, Any]:
    """A dataclass's fields that are lists of dataclasses, and of which."""
    hints, fields = declared_fields(cls)
    lists = {name: typing.get_args(hints[name])[0] for name in fields if typing.get_origin(hints[name]) is list}
    return {name: inner for name, inner in lists.items() if dataclasses.is_dataclass(inner)}


def from_checked_fields(cls: type[T], data: dict[str, Any]) -> T:
    """What from_fields made of data before (the same file, unchanged: store.record_checks), made again
    without its checks: a sweep's spec of 10,000 runs is checked once. Keys it does not know are left out
    (a newer minor version's, as from_versioned_fields leaves them)."""
    known = declared_fields(cls)[1]  # type: ignore[arg-type]
    nested = _nested(cls)  # type: ignore[arg-type]
    if not nested and data.keys() <= known.keys():  # a run of 10,000: made as it is
        return cls(**data)
    values = {key: value for key, value in data.items() if key in known}
    for name, inner in nested.items():
        if name in values:
            values[name] = [from_checked_fields(inner, item) for item in values[name]]
    return cls(**values)


class NotFinite(ValueError):
    """A number no figure can be: NaN, an infinity, or beyond what a float or an int64 holds."""


def _refuse_constant(text: str) -> Any:
    raise NotFinite(f"it holds {text}, not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotFinite(f"it holds {text:.40}, beyond what a number can be")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) >= 2**63:
        raise NotFinite(f"it holds {text:.40}, beyond what an int64 holds")
    return value


class TooDeep(ValueError):
    """Lists or tables nested deeper than any file the harness reads holds them (MAX_DEPTH)."""


# The most a results file the harness writes may hold (a spec of 100,000 runs is about 30 MB): more is damage,
# not read into memory.
MAX_KEPT_BYTES = 1 << 30
MAX_DEPTH = 32  # a record nests 5 deep, a references file 5: deeper is damage, and Python's parsers recurse


def nesting(data: Any) -> int:
    """How deep lists and objects (tables) nest in data, a plain value 0; counted level by level, without
    recursion, and only up to MAX_DEPTH + 1."""
    level, deepest = [data], 0
    while deepest <= MAX_DEPTH:
        containers = [value for value in level if isinstance(value, (list, dict))]
        if not containers:
            break
        deepest += 1
        level = [item for value in containers for item in (value.values() if isinstance(value, dict) else value)]
    return deepest


def within_depth(parse: Callable[[], T]) -> T:
    """What parse() returns, where it nests at most MAX_DEPTH deep; TooDeep otherwise, never the
    RecursionError the parser meets first."""
    try:
        data = parse()
        deep = nesting(data) > MAX_DEPTH
    except RecursionError:
        deep = True
    if deep:
        raise TooDeep(f"it nests lists or tables more than {MAX_DEPTH} deep")
    return data


def parse_json(text: str | bytes) -> Any:
    """JSON as every results file holds it: each number finite (Python's json reads NaN and Infinity,
    which no figure can be and no other JSON reader accepts), nested at most MAX_DEPTH deep. ValueError
    otherwise."""
    return within_depth(lambda: json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                                           parse_int=_bounded_int))


def parse_toml(text: str) -> dict[str, Any]:
    """TOML (a references file, a profile), nested at most MAX_DEPTH deep; tomllib.TOMLDecodeError (a
    ValueError) or TooDeep otherwise."""
    import tomllib

    return within_depth(lambda: tomllib.loads(text))


def read_kept(path: Path, limit: int = MAX_KEPT_BYTES) -> bytes:
    """The bytes of a file the harness writes in a results folder (a record, a run's history or scores, a
    progress file, a log); DamagedFile where something else was put in its place (a FIFO, a device, a
    folder: read_regular) or it holds more than limit bytes; FileNotFoundError as it comes."""
    try:
        return read_regular(path, limit)
    except Unreadable as err:
        raise DamagedFile(path, str(err)) from None


def load_json(path: Path) -> Any:
    """The JSON in path; DamagedFile when it is not whole JSON (a truncated write, an edit), holds a
    number that is not finite, nests too deep, or is no regular file (read_kept)."""
    try:
        return parse_json(read_kept(path))
    except (NotFinite, TooDeep) as err:
        raise DamagedFile(path, str(err)) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFile(path, f"not whole JSON ({err})") from None



class Versioned(Protocol):
    @property
    def schema_version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


def from_versioned_fields(cls: type[V], data: Any, path: Path, version: int, minor: int = 0) -> V:
    """from_fields for a file with a `schema_version` (its major version) and a `schema_minor`: a file of
    another major version is damaged, not half-read; one of a newer minor version (fields added by a later
    harness) is read without the fields this harness does not know, each file with a warning."""
    if isinstance(data, dict) and isinstance(data.get("schema_version"), int) and data["schema_version"] > version:
        raise DamagedFile(path, f"schema_version {data['schema_version']} is a newer harness's; this harness reads "
                                f"{version}: upgrade harness to read it")
    newer = isinstance(data, dict) and isinstance(data.get("schema_minor"), int) and data["schema_minor"] > minor
    if newer:
        known = set(declared_fields(cls)[1])
        unknown = sorted(set(data) - known)
        if unknown:
            log.warning("%s: schema %s.%s is newer than this harness's %s.%s; its fields %s are not read",
                        path, data.get("schema_version"), data["schema_minor"], version, minor, ", ".join(unknown))
        data = {k: v for k, v in data.items() if k in known}
    made = from_fields(cls, data, path)
    if made.schema_version != version:
        raise DamagedFile(path, f"schema_version {made.schema_version}; this harness reads {version}")
    return made
