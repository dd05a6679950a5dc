"""Typed JSON: dataclasses to JSON data and back, every field checked against its type, and
the JSON Schema of the same dataclasses for other tools.

Field metadata states what a valid value is (POSITIVE, NON_NEGATIVE, NAN_OK; in the JSON
Schema also "enum", "items" and "maximum") and which absent values are left out of the JSON
(OPTIONAL), so files written before a field existed still load and round-trip unchanged.
"""

from __future__ import annotations

import functools
import json
import math
import types
import typing
from dataclasses import fields, is_dataclass
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
    built = cls(**values)
    if hasattr(built, "validate"):  # a type with rules across its fields (RunConfig)
        try:
            built.validate()
        except ValueError as e:
            _fail(source, where, f"invalid ({e})")
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


@functools.cache
def _field_readers(cls: type) -> tuple[tuple[str, bool, Reader], ...]:
    """(name, optional, reader) of each field of dataclass `cls`, worked out once: a result
    file of 200,000 steps holds 200,000 step records."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            _optional(hints[f.name]),
            _reader(
                hints[f.name],
                bool(f.metadata.get("nan_ok")),
                bool(f.metadata.get("positive")),
                bool(f.metadata.get("non_negative")),
            ),
        )
        for f in fields(cls)
    )


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _reader(hint: Any, nan_ok: bool, positive: bool, non_negative: bool) -> Reader:
    """The reader of values of type `hint` with the field's rules."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        read_inner = _reader(inner, nan_ok, positive, non_negative)
        if type(None) not in args:
            return read_inner
        return lambda value, source, where: (
            None if value is None else read_inner(value, source, where)
        )
    if is_dataclass(hint):
        return lambda value, source, where: _read(hint, value, source, _path(where))
    if origin is list:
        item = _reader(args[0], nan_ok, positive, non_negative)

        def read_list(value: Any, source: str, where: Any) -> list:
            if not isinstance(value, list):
                _fail(source, _path(where), f"expected a list, found {_shown(value)}")
            return [item(v, source, (where, i)) for i, v in enumerate(value)]

        return read_list
    if origin is dict:
        item = _reader(args[1], nan_ok, positive, non_negative)

        def read_dict(value: Any, source: str, where: Any) -> dict:
            if not isinstance(value, dict):
                _fail(source, _path(where), f"expected an object, found {_shown(value)}")
            return {k: item(v, source, (where, k)) for k, v in value.items()}

        return read_dict
    if hint is bool:

        def read_bool(value: Any, source: str, where: Any) -> bool:
            if not isinstance(value, bool):
                _fail(source, _path(where), f"expected true or false, found {_shown(value)}")
            return value

        return read_bool
    if hint is str:

        def read_str(value: Any, source: str, where: Any) -> str:
            if not isinstance(value, str):
                _fail(source, _path(where), f"expected text, found {_shown(value)}")
            return value

        return read_str
    if hint in (int, float):
        wanted = (int,) if hint is int else (int, float)
        kind = "a whole number" if hint is int else "a number"

        def read_number(value: Any, source: str, where: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, wanted):
                _fail(source, _path(where), f"expected {kind}, found {_shown(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                if nan_ok:
                    return value
                _fail(source, _path(where), f"expected a finite number, found {value}")
            if positive and value <= 0:
                _fail(source, _path(where), f"must be greater than 0, found {value}")
            if non_negative and value < 0:
                _fail(source, _path(where), f"must be 0 or more, found {value}")
            return value

        return read_number
    raise TypeError(f"no reader for {hint!r}")  # a programming error, not a file's


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
