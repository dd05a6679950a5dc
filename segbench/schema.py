"""Typed JSON: dataclasses to JSON data and back, every field checked against its type, and
the JSON Schema of the same dataclasses for other tools.

Field metadata states what a valid value is (POSITIVE, NON_NEGATIVE, NAN_OK; in the JSON
Schema also "enum", "items" and "maximum") and which absent values are left out of the JSON
(OPTIONAL), so files written before a field existed still load and round-trip unchanged.
"""

from __future__ import annotations

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
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        path = f"{where}.{f.name}" if where else f.name
        if f.name not in data:
            if _optional(hints[f.name]):
                continue  # the dataclass default (None) stands for an absent value
            _fail(source, path, "missing")
        values[f.name] = _value(hints[f.name], data[f.name], source, path, f.metadata)
    built = cls(**values)
    if hasattr(built, "validate"):  # a type with rules across its fields (RunConfig)
        try:
            built.validate()
        except ValueError as e:
            _fail(source, where, f"invalid ({e})")
    return built


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _value(hint: Any, value: Any, source: str, where: str, meta: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, source, where, meta)
    if is_dataclass(hint):
        return _read(hint, value, source, where)
    if origin is list:
        if not isinstance(value, list):
            _fail(source, where, f"expected a list, found {_shown(value)}")
        return [_value(args[0], v, source, f"{where}[{i}]", meta) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(source, where, f"expected an object, found {_shown(value)}")
        return {k: _value(args[1], v, source, f"{where}.{k}", meta) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            _fail(source, where, f"expected true or false, found {_shown(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            _fail(source, where, f"expected text, found {_shown(value)}")
        return value
    if hint in (int, float):
        wanted = (int,) if hint is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            kind = "a whole number" if hint is int else "a number"
            _fail(source, where, f"expected {kind}, found {_shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            if meta.get("nan_ok"):
                return value
            _fail(source, where, f"expected a finite number, found {value}")
        if meta.get("positive") and value <= 0:
            _fail(source, where, f"must be greater than 0, found {value}")
        if meta.get("non_negative") and value < 0:
            _fail(source, where, f"must be 0 or more, found {value}")
        return value
    raise TypeError(f"no reader for {hint!r} at {where}")  # a programming error, not a file's


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
