"""Typed JSON: dataclasses to JSON data and back, every field checked against its type, and
the JSON Schema of the same dataclasses for other tools.

Field metadata states what a valid value is (POSITIVE, NON_NEGATIVE, NAN_OK; in the JSON
Schema also "enum", "items" and "maximum") and which absent values are left out of the JSON
(OPTIONAL), so files written before a field existed still load and round-trip unchanged.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import operator
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from segbench.errors import BadInput

POSITIVE = {"positive": True}
NON_NEGATIVE = {"non_negative": True}
NAN_OK = {"nan_ok": True}  # a loss or metric that diverged is a finding, not a broken file
OPTIONAL = {"omit_none": True}
OPTIONAL_POSITIVE = {**POSITIVE, **OPTIONAL}


class FieldError(BadInput):
    """A JSON value does not fit its field; the message names the source and the field."""


def to_json(value: Any) -> Any:
    """A dataclass as JSON-ready data, fields in declaration order; OPTIONAL Nones left out."""
    if is_dataclass(value):
        return {
            f.name: to_json(getattr(value, f.name))
            for f in fields(value)
            if not (f.metadata.get("omit_none") and getattr(value, f.name) is None)
        }
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(cls: type, data: Any, source: str) -> Any:
    """Dataclass `cls` from JSON data; FieldError naming `source` and the field otherwise."""
    return _read(cls, data, source, "")


def _fail(source: str, where: str, problem: str) -> typing.NoReturn:
    raise FieldError(f"{source}: field {where}: {problem}")


def _read(cls: type, data: Any, source: str, where: str) -> Any:
    """Build dataclass `cls` from `data`, checking every field against its type and metadata."""
    if not isinstance(data, dict):
        _fail(source, where or "(top)", f"expected an object, found {_shown(data)}")
    values = {}
    for name, optional, read in _field_readers(cls):
        if name not in data:
            if optional:
                continue  # the dataclass default (None) stands for an absent value
            _fail(source, f"{where}.{name}" if where else name, "missing")
        values[name] = read(data[name], source, (where, name))
    return _validated(cls(**values), source, where)


def _validated(built: Any, source: str, where: str) -> Any:
    if hasattr(built, "validate"):  # a type with rules across its fields (RunConfig, Trace)
        try:
            built.validate()
        except ValueError as e:
            _fail(source, where or "(top)", f"invalid ({e})")
    return built


# A reader checks one JSON value and returns it: (value, source, where) → value. `where` is
# the field's path, or (parent, name or list index) joined only when an error names it.
Reader = typing.Callable[[Any, str, Any], Any]


def _path(where: Any) -> str:
    if isinstance(where, tuple):
        parent, key = where
        parent = _path(parent)
        if isinstance(key, int):  # a list item
            return f"{parent}[{key}]"
        return f"{parent}.{key}" if parent else key
    return where


@dataclass(frozen=True)
class _Rules:
    """What a valid value of one field is, from the field's metadata."""

    nan_ok: bool = False
    positive: bool = False
    non_negative: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple | None = None
    items: int | None = None  # a list of exactly this many items

    @staticmethod
    def of(metadata: Any) -> _Rules:
        enum = metadata.get("enum")
        return _Rules(
            nan_ok=bool(metadata.get("nan_ok")),
            positive=bool(metadata.get("positive")),
            non_negative=bool(metadata.get("non_negative")),
            minimum=metadata.get("minimum"),
            maximum=metadata.get("maximum"),
            enum=None if enum is None else tuple(enum),
            items=metadata.get("items"),
        )


@functools.cache
def _field_readers(cls: type) -> tuple[tuple[str, bool, Reader], ...]:
    """(name, optional, reader) of each field of dataclass `cls`, worked out once: a result
    file of 200,000 steps holds 200,000 step records."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, _optional(hints[f.name]), _reader(hints[f.name], _Rules.of(f.metadata)))
        for f in fields(cls)
    )


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _reader(hint: Any, rules: _Rules) -> Reader:
    """The reader of values of type `hint` with the field's rules."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        read_inner = _reader(inner, rules)
        if type(None) not in args:
            return read_inner
        return lambda value, source, where: (
            None if value is None else read_inner(value, source, where)
        )
    if is_dataclass(hint):
        return lambda value, source, where: _read(hint, value, source, _path(where))
    if origin is list:
        return _list_reader(args[0], rules)
    if origin is dict:
        item = _reader(args[1], rules)

        def read_dict(value: Any, source: str, where: Any) -> dict:
            if not isinstance(value, dict):
                _fail(source, _path(where), f"expected an object, found {_shown(value)}")
            return {k: item(v, source, (where, k)) for k, v in value.items()}

        return read_dict
    if hint not in _SCALARS:
        raise TypeError(f"no reader for {hint!r}")  # a programming error, not a file's
    return _scalar_reader(hint, rules)


# JSON scalars: the Python types json.loads gives for each, and how an error names them.
_SCALARS: dict[type, tuple[frozenset[type], str]] = {
    bool: (frozenset({bool}), "true or false"),
    str: (frozenset({str}), "text"),
    int: (frozenset({int}), "a whole number"),
    float: (frozenset({int, float}), "a number"),
}
# No measurement in a result file is this large: a bound keeps every sum and variance of
# 200,000 values finite in float64 (1e18² × 2e5 ≪ 1.8e308) and ints within JSON's int64.
LARGEST_NUMBER = 1e18
LARGEST_INT = 2**63 - 1


def _scalar_reader(hint: type, rules: _Rules) -> Reader:
    wanted, kind = _SCALARS[hint]
    number = hint in (int, float)
    largest = LARGEST_INT if hint is int else LARGEST_NUMBER
    if rules.maximum is not None:
        largest = min(largest, rules.maximum)

    def read_scalar(value: Any, source: str, where: Any) -> Any:
        if type(value) not in wanted:
            _fail(source, _path(where), f"expected {kind}, found {_shown(value)}")
        if rules.enum is not None and value not in rules.enum:
            choices = ", ".join(json.dumps(c) for c in rules.enum)
            _fail(source, _path(where), f"must be one of {choices}, found {_shown(value)}")
        if not number:
            return value
        if type(value) is float and not math.isfinite(value):
            if rules.nan_ok:
                return value
            _fail(source, _path(where), f"expected a finite number, found {value}")
        if rules.positive and value <= 0:
            _fail(source, _path(where), f"must be greater than 0, found {_shown(value)}")
        if rules.non_negative and value < 0:
            _fail(source, _path(where), f"must be 0 or more, found {_shown(value)}")
        if rules.minimum is not None and value < rules.minimum:
            _fail(
                source, _path(where), f"must be at least {rules.minimum:g}, found {_shown(value)}"
            )
        if value > largest or value < -(LARGEST_INT if hint is int else LARGEST_NUMBER):
            _fail(source, _path(where), f"must be at most {largest:g}, found {_shown(value)}")
        return value

    return read_scalar


def _list_reader(item_hint: Any, rules: _Rules) -> Reader:
    """A list reader. Long lists (a step record or a loss per step) are checked column by
    column with built-ins, which costs a fraction of reading item by item; when a column
    breaks a rule the items are read one by one, so that the error names the first bad one."""
    item = _reader(item_hint, rules)
    columns = _columns_check(item_hint, rules)

    def read_list(value: Any, source: str, where: Any) -> list:
        if type(value) is not list:
            _fail(source, _path(where), f"expected a list, found {_shown(value)}")
        if rules.items is not None and len(value) != rules.items:
            _fail(source, _path(where), f"expected {rules.items} items, found {len(value)}")
        if columns is not None and len(value) >= _COLUMNAR_FROM and columns[0](value):
            return columns[1](value)
        return [item(v, source, (where, i)) for i, v in enumerate(value)]

    return read_list


_COLUMNAR_FROM = 64  # items; below this the item-by-item reader is as fast


def _columns_check(hint: Any, rules: _Rules):
    """(check, build) for lists of `hint` that can be read column by column — scalars and
    flat dataclasses (every field a scalar or an optional one) — or None."""
    scalar = _column_rules(hint, rules)
    if scalar is not None:
        return (lambda values: scalar(values), lambda values: values)
    if not is_dataclass(hint) or hasattr(hint, "validate"):
        return None
    hints = typing.get_type_hints(hint)
    checks = []
    for f in fields(hint):
        check = _column_rules(hints[f.name], _Rules.of(f.metadata))
        if check is None:
            return None
        checks.append((f.name, _optional(hints[f.name]), check))
    order = tuple(f.name for f in fields(hint))
    names = frozenset(order)
    required = frozenset(name for name, optional, _ in checks if not optional)

    def check_records(values: list) -> bool:
        if set(map(type, values)) != {dict}:
            return False
        key_sets = {frozenset(keys) for keys in set(map(tuple, values))}
        if not all(required <= keys <= names for keys in key_sets):
            return False
        if key_sets == {names}:  # every record has every field
            found = {name: list(map(operator.itemgetter(name), values)) for name in order}
        else:
            found = {name: [v.get(name) for v in values] for name in order}
        return all(check(found[name]) for name, _, check in checks)

    positional = not any(f.kw_only for f in fields(hint))
    by_position = operator.itemgetter(*order)

    def build_records(values: list) -> list:
        # Every value has been checked above; records with every field (all of a file's
        # since schema version 3) are built from their values in field order, the fastest
        # way Python builds 200,000 dataclass instances.
        if positional and set(map(len, values)) == {len(order)}:
            return list(itertools.starmap(hint, map(by_position, values)))
        return [hint(**value) for value in values]

    return (check_records, build_records)


def _column_rules(hint: Any, rules: _Rules):
    """A check of a whole column of JSON values of scalar type `hint` (None allowed when the
    hint is optional) against `rules`, or None for other types."""
    allowed = frozenset()
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        allowed = frozenset({type(None)})
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if hint not in _SCALARS or rules.items is not None:
        return None
    wanted = _SCALARS[hint][0] | allowed
    number = hint in (int, float)
    largest = LARGEST_INT if hint is int else LARGEST_NUMBER
    if rules.maximum is not None:
        largest = min(largest, rules.maximum)
    smallest = -(LARGEST_INT if hint is int else LARGEST_NUMBER)

    def check(column: list) -> bool:
        if not set(map(type, column)) <= wanted:
            return False
        if rules.enum is not None and not set(column) - {None} <= set(rules.enum):
            return False
        if not number:
            return True
        values = [v for v in column if v is not None] if allowed else column
        if not values:
            return True
        if not all(map(math.isfinite, values)):
            if not rules.nan_ok:
                return False
            values = [v for v in values if math.isfinite(v)]
            if not values:
                return True
        low, high = min(values), max(values)
        if (rules.positive and low <= 0) or (rules.non_negative and low < 0):
            return False
        if rules.minimum is not None and low < rules.minimum:
            return False
        return smallest <= low and high <= largest

    return check


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def json_schema(cls: type, title: str, version: int) -> dict:
    """The JSON Schema (draft-07) of dataclass `cls` and the dataclasses it holds, made from
    the same type hints and metadata the reader checks."""
    definitions: dict[str, dict] = {}
    root = _object_schema(cls, definitions)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"https://segbench.invalid/result-v{version}.schema.json",
        "title": title,
        **root,
        "definitions": dict(sorted(definitions.items())),
    }


def _object_schema(cls: type, definitions: dict[str, dict]) -> dict:
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for f in fields(cls):
        hint = hints[f.name]
        properties[f.name] = _type_schema(hint, f.metadata, definitions)
        comment = _field_comment(cls, f.name)
        if comment:
            properties[f.name]["description"] = comment
        if not _optional(hint):
            required.append(f.name)
    schema = {"type": "object", "properties": properties, "required": required}
    doc = (cls.__doc__ or "").strip().splitlines()
    if doc and not doc[0].startswith(f"{cls.__name__}("):
        schema = {"description": doc[0], **schema}
    return schema


def _type_schema(hint: Any, meta: Any, definitions: dict[str, dict]) -> dict:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        schema = _type_schema(inner, meta, definitions)
        if meta.get("omit_none"):
            return schema  # None is written as an absent field, never as null
        if isinstance(schema.get("type"), str):
            return {**schema, "type": [schema["type"], "null"]}
        return {"anyOf": [schema, {"type": "null"}]}
    if is_dataclass(hint):
        name = hint.__name__
        if name not in definitions:
            definitions[name] = {}  # placeholder: a dataclass that holds itself stops here
            definitions[name] = _object_schema(hint, definitions)
        return {"$ref": f"#/definitions/{name}"}
    if origin is list:
        schema = {"type": "array", "items": _type_schema(args[0], meta, definitions)}
        if "items" in meta:
            schema["minItems"] = schema["maxItems"] = meta["items"]
        return schema
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], meta, definitions)}
    simple = {bool: "boolean", str: "string", int: "integer", float: "number"}
    if hint not in simple:
        raise TypeError(f"no JSON Schema for {hint!r}")  # a programming error
    schema: dict[str, Any] = {"type": simple[hint]}
    if "enum" in meta:
        schema["enum"] = list(meta["enum"])
    if meta.get("positive"):
        schema["exclusiveMinimum"] = 0
    if meta.get("non_negative"):
        schema["minimum"] = 0
    if "minimum" in meta:
        schema["minimum"] = meta["minimum"]
    if "maximum" in meta:
        schema["maximum"] = meta["maximum"]
    return schema


def _field_comment(cls: type, name: str) -> str:
    """The comment at the end of a field's line in the class source, if any: the field's
    documentation, said once."""
    import inspect

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(f"{name}:") and "  # " in stripped:
            return stripped.split("  # ", 1)[1].strip()
    return ""
